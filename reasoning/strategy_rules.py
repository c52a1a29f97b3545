"""The Prolog engine of the guard: each strategy's declared preconditions, from `rules/strategies.pl`.

The rule file defines `validate(+Facts, -Denials, -Trace)`; per decision the engine passes the facts
as a `Key=Value` list argument (nothing is asserted or retracted per decision) and returns the
denials with the validation trace as the proof.

Bridge: pyswip (0.3), called at its C level (`pyswip.core`) — one `PL_chars_to_term` + `PL_call`
per decision, the answer read back as one string — because pyswip's `Prolog.query` costs ~250 µs a
call converting bindings. janus-swi, the newer official bridge, does not install on Debian's
SWI-Prolog 9.0.4 (it needs 9.1+), so pyswip it is.

Threads: SWI-Prolog is not thread-safe through pyswip, so every Prolog call runs on one dedicated
worker thread (a queue of jobs). A caller waits at most its time budget (`timeout_s`) and then raises
`PrologTimeoutError`, so the guard can fail closed. The query itself runs under
`call_with_inference_limit/3` (`inference_limit`), so a looping rule stops and the worker moves on;
an inference budget costs nothing per call, where `call_with_time_limit/2` costs ~16 µs (an alarm)
and does not interrupt `sleep/1` in a thread attached from C anyway. A rule stuck in a blocking
foreign call keeps the worker busy until it returns; callers queued behind it time out (fail closed).

Loading: each load reads the file into a fresh module, so a reload replaces the rules atomically and
a rejected file leaves the previous module, the previous rules, in use. Syntax errors, load errors
and warnings (singletons, ...) that SWI would print are captured by a `message_hook` and reported as
`file:line:col: message`; any of them rejects the file.

A rule file is data that risk officers edit; loading it or deciding with it must run no code of its
own. The file is read once (the hashed bytes are the loaded bytes) and checked in two steps:

1. Before loading, every term is read without being run (`read_term/3`; quasi quotations come back
   unparsed) and the file is rejected, at the term, if it holds
   * a directive, `:- Goal` or `?- Goal`: SWI runs it while loading (`:- halt.`, `:- shell(...)`);
   * a clause or grammar rule with a module-qualified head, `M:Head`: it defines a predicate outside
     the file's own module, such as `user:term_expansion/2`, `user:message_hook/3`,
     `prolog:message//1` or a bridge predicate;
   * a clause of `term_expansion/2,4` or `goal_expansion/2,4`: SWI calls these hooks in the module
     being loaded, on the rest of the file;
   * a quasi quotation, `{|Syntax||Text|}`: reading it calls the parser `Syntax`;
   * a term nested deeper than `MAX_TERM_DEPTH` (and a file over `MAX_RULE_FILE_BYTES` is not read):
     see the constants, a deep term kills the process.
   A term with a syntax error is skipped, as the loader skips it, so that every term the loader
   compiles has been checked; the loader reports the error.
2. After loading, SWI-Prolog's `library(sandbox)` checks `validate/3` with everything it can reach
   (`safe_goal/1`): only predicates without side effects outside the module (no I/O, OS, `halt`,
   changes to other modules or flags, goals built at run time, undefined predicates). A rejected call
   is reported at the goal in the clause that makes it.
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import itertools
import math
import queue
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyswip import core as swipl

from core.errors import CryptoScalpError
from core.intent import Intent
from reasoning.context import DecisionContext
from reasoning.engine import JSON, EngineResult, EngineTimeout, RuleFileError

RULES_PATH = Path(__file__).resolve().parents[1] / "rules" / "strategies.pl"
DEFAULT_TIMEOUT_S = 0.25  # the guard's per-engine budget is far lower; this is the engine's own hard stop
DEFAULT_INFERENCE_LIMIT = 200_000  # validate/3 of the shipped rules takes ~100 inferences
# pyswip starts SWI-Prolog with --nosignals, so SWI cannot catch a C-stack overflow: reading a term
# recurses in C once per level of brackets, and a deep enough term kills the process (measured on an
# 8 MiB stack: 12,000 levels read, 20,000 crash). A rule file is capped in size, the worker's stack is
# large enough to read any file under the cap (measured: 256 MiB reads 262,000 levels, twice what
# 256 KiB of brackets holds), and a term nested deeper than MAX_TERM_DEPTH is rejected before the loader,
# the sandbox or a decision sees it.
MAX_RULE_FILE_BYTES = 256 * 1024  # the shipped rules/strategies.pl is 5.5 KiB
MAX_TERM_DEPTH = 1_000  # the shipped rules nest 10 levels; a list's elements count as one level
_WORKER_STACK_BYTES = 256 * 1024 * 1024  # address space; only the pages a deep read touches are used
REASON_CODE = re.compile(r"L[1-7]\.[a-z][a-z0-9_]*")
_LOCATION_PREFIX = re.compile(r"^\S+:\d+:(\d+:)?\s*")

# Loaded once into the worker's Prolog: checking and loading a rule file with captured messages, and
# the per-decision call.
_BRIDGE = r"""
:- module(cryptoscalp_bridge, [load_rules/5, decide/4]).
:- use_module(library(sandbox)).
:- dynamic loading/0, problem/4, scanned_clause/4.

:- multifile user:message_hook/3.
user:message_hook(Term, Kind, _) :-
    cryptoscalp_bridge:loading,
    ( Kind == error ; Kind == warning ),
    cryptoscalp_bridge:note(Term, Kind).

note(Term, Kind) :-
    position(Term, Line, Column),
    (   catch('$messages':translate_message(Term, Lines, []), _, fail)
    ->  with_output_to(string(Text), print_message_lines(current_output, '', Lines))
    ;   format(string(Text), "~q", [Term])
    ),
    split_string(Text, "\n", " \t", Parts),
    atomic_list_concat(Parts, ' ', Flat),
    assertz(problem(Line, Column, Kind, Flat)).

position(error(_, file(_, Line, Column, _)), Line, Column) :- !.
position(error(_, stream(_, Line, Column, _)), Line, Column) :- !.
position(_, Line, 1) :- source_location(_, Line), !.
position(_, 1, 1).

load_rules(Path, Module, Source, MaxDepth, Out) :-
    retractall(problem(_, _, _, _)),
    retractall(scanned_clause(_, _, _, _)),
    scan_rules(Source, MaxDepth),
    (   problem(_, _, _, _)
    ->  true
    ;   load_scanned(Path, Module, Source),
        (   problem(_, _, _, _)
        ->  true
        ;   \+ current_predicate(Module:validate/3)
        ->  assertz(problem(1, 1, error, 'validate/3 is not defined (the engine calls \c
                                              validate(+Facts, -Denials, -Trace))'))
        ;   check_sandbox(Module, Source)
        )
    ),
    retractall(scanned_clause(_, _, _, _)),
    findall(Line-Column-Kind-Text, problem(Line, Column, Kind, Text), Problems),
    with_output_to(string(Out),
        forall(member(Line-Column-Kind-Text, Problems), format("~w\t~w\t~w\t~w~n", [Line, Column, Kind, Text]))).

load_scanned(Path, Module, Source) :-
    atomic_list_concat([Path, '#', Module], SourceId),
    setup_call_cleanup(
        ( assertz(loading), open_string(Source, Stream) ),
        catch(load_files(Module:SourceId, [stream(Stream), silent(true)]), Error, note(Error, error)),
        ( retractall(loading), close(Stream) )).

% Reading runs no code: quasi quotations are returned unparsed. A syntax error is skipped, as the loader
% skips it, so every term the loader would compile is checked; the loader then reports the error.
scan_rules(Source, MaxDepth) :-
    setup_call_cleanup(open_string(Source, Stream), scan_terms(Stream, Source, MaxDepth), close(Stream)).

scan_terms(Stream, Source, MaxDepth) :-
    catch(read_term(Stream, Term, [module(user), subterm_positions(Layout), quasi_quotations(Quoted)]), Error, true),
    (   var(Error)
    ->  (   Term == end_of_file
        ->  true
        ;   too_deep(Term, MaxDepth)
        ->  format(atom(Text), 'this term is nested more than ~w levels deep; SWI-Prolog recurses on \c
                                    nesting and a rule file needs nowhere near that', [MaxDepth]),
            scan_problem(Layout, Source, Text),
            scan_terms(Stream, Source, MaxDepth)
        ;   check_term(Term, Layout, Quoted, Source),
            scan_terms(Stream, Source, MaxDepth)
        )
    ;   Error = error(syntax_error(_), _)
    ->  scan_terms(Stream, Source, MaxDepth)
    ;   note(Error, error)
    ).

% Deeper than Limit levels of compound terms; the elements of a list are one level below the list.
too_deep(Term, _) :-
    \+ compound(Term),
    !,
    fail.
too_deep(_, Limit) :-
    Limit =< 0,
    !.
too_deep([Head|Tail], Limit) :-
    !,
    (   Deeper is Limit - 1,
        too_deep(Head, Deeper)
    ->  true
    ;   too_deep(Tail, Limit)
    ).
too_deep(Term, Limit) :-
    Deeper is Limit - 1,
    arg(_, Term, Argument),
    too_deep(Argument, Deeper),
    !.

check_term(_, Layout, Quoted, Source) :-
    Quoted \== [],
    !,
    scan_problem(Layout, Source, 'quasi quotations ({|Syntax||Text|}) are not allowed in a rule file: \c
                                  reading one runs its parser').
check_term((:- _), Layout, _, Source) :-
    !,
    scan_problem(Layout, Source, 'directives (:- Goal) are not allowed in a rule file: SWI-Prolog would \c
                                  run the goal while loading it').
check_term((?- _), Layout, _, Source) :-
    !,
    scan_problem(Layout, Source, 'directives (?- Goal) are not allowed in a rule file: SWI-Prolog would \c
                                  run the goal while loading it').
check_term(Term, Layout, _, Source) :-
    clause_parts(Term, Layout, Head, HeadLayout, Body, BodyLayout),
    (   forbidden_head(Head, Why)
    ->  scan_problem(HeadLayout, Source, Why)
    ;   callable(Head)
    ->  functor(Head, Name, Arity),
        start_of(Layout, Start),
        assertz(scanned_clause(Name/Arity, Start, Body, BodyLayout))
    ;   true
    ).

clause_parts(Term, parentheses_term_position(_, _, Inner), Head, HeadLayout, Body, BodyLayout) :-
    !,
    clause_parts(Term, Inner, Head, HeadLayout, Body, BodyLayout).
clause_parts((Head0 :- Body), term_position(_, _, _, _, [HeadLayout0, BodyLayout]),
             Head, HeadLayout, Body, BodyLayout) :-
    !,
    unwrap(Head0, HeadLayout0, Head, HeadLayout).
clause_parts((Head0 --> Body), term_position(_, _, _, _, [HeadLayout0, BodyLayout]),
             Head, HeadLayout, Body, BodyLayout) :-
    !,
    unwrap(Head0, HeadLayout0, Head1, HeadLayout1),
    (   nonvar(Head1), Head1 = (NonTerminal, _Pushback), HeadLayout1 = term_position(_, _, _, _, [Layout, _])
    ->  unwrap(NonTerminal, Layout, Head, HeadLayout)
    ;   Head = Head1, HeadLayout = HeadLayout1
    ).
clause_parts(Head, Layout, Head, Layout, true, Layout).

unwrap(Term, parentheses_term_position(_, _, Inner), Term1, Layout) :- !, unwrap(Term, Inner, Term1, Layout).
unwrap(Term, Layout, Term, Layout).

% What SWI-Prolog itself calls while loading or that lands outside the rule file's fresh module: a
% module-qualified head defines (or extends) a predicate in another module (user:term_expansion/2,
% prolog:message//1, user:exception/3, a bridge predicate, ...); term_expansion/2,4 and
% goal_expansion/2,4 are called from the module being loaded, on the rest of the file.
forbidden_head(Head, _) :-
    var(Head),
    !,
    fail.
forbidden_head(Module:_, Why) :-
    !,
    format(atom(Why), 'module-qualified clause heads (~q:...) are not allowed: a rule file defines \c
                       predicates in its own module only', [Module]).
forbidden_head(Head, Why) :-
    callable(Head),
    functor(Head, Name, Arity),
    memberchk(Name/Arity, [term_expansion/2, term_expansion/4, goal_expansion/2, goal_expansion/4]),
    format(atom(Why), '~w/~w is a load-time hook (SWI-Prolog would call it while loading the file); \c
                       a rule file may not define it', [Name, Arity]).

scan_problem(Layout, Source, Text) :-
    start_of(Layout, Start),
    offset_location(Source, Start, Line, Column),
    assertz(problem(Line, Column, error, Text)).

start_of(Layout, Start) :- arg(1, Layout, Start).

offset_location(Source, Offset, Line, Column) :-
    sub_string(Source, 0, Offset, _, Before),
    split_string(Before, "\n", "", Lines),
    length(Lines, Line),
    last(Lines, Current),
    string_length(Current, Length),
    Column is Length + 1.

% SWI-Prolog's library(sandbox) (the one SWISH and pengines use) walks every clause validate/3 can
% reach and admits only predicates without side effects outside the module: no I/O, no OS, no
% changes to other modules, no goals built at run time.
check_sandbox(Module, Source) :-
    catch(safe_goal(Module:validate(_, _, _)), Error, unsafe(Error, Module, Source)).

unsafe(error(Formal, sandbox(Goal, Parents)), Module, Source) :-
    culprit(Module, [Goal|Parents], Callee, Caller),
    !,
    indicator(Callee, CalleePI),
    indicator(Caller, CallerPI),
    unsafe_text(Formal, CalleePI, CallerPI, Text),
    call_location(CallerPI, CalleePI, Source, Line, Column),
    assertz(problem(Line, Column, error, Text)).
unsafe(Error, _, _) :-
    format(atom(Text), 'SWI-Prolog\'s sandbox rejected validate/3: ~q', [Error]),
    assertz(problem(1, 1, error, Text)).

% Caller: the deepest predicate of the rule file on the call chain; Callee: what its clause calls.
culprit(Module, Chain, Callee, Caller) :-
    append(Before, [Caller|_], Chain),
    Before \== [],
    local_goal(Module, Caller),
    !,
    (   last_qualified(Before, Callee0)
    ->  Callee = Callee0
    ;   last(Before, Callee)
    ).

local_goal(Module, Qualifier:Goal) :-
    Qualifier == Module,
    callable(Goal),
    predicate_property(Module:Goal, implementation_module(Module)),
    predicate_property(Module:Goal, number_of_clauses(_)).

last_qualified(Goals, Last) :-
    reverse(Goals, Reversed),
    member(Last, Reversed),
    nonvar(Last),
    Last = Qualifier:_,
    atom(Qualifier),
    !.

indicator(Goal, Name/Arity) :-
    strip_module(Goal, _, Plain),
    callable(Plain),
    !,
    functor(Plain, Name, Arity).
indicator(_, call/1).

unsafe_text(permission_error(_, _, _), Callee, Caller, Text) :-
    !,
    format(atom(Text), '~q calls ~q, which a rule file may not call: only predicates without side \c
                        effects are allowed (SWI-Prolog library(sandbox))', [Caller, Callee]).
unsafe_text(existence_error(_, _), Callee, Caller, Text) :-
    !,
    format(atom(Text), '~q calls ~q, which is not defined', [Caller, Callee]).
unsafe_text(instantiation_error, _, Caller, Text) :-
    !,
    format(atom(Text), '~q calls a goal that is only known at run time: a rule file must name every \c
                        predicate it calls, so that it can be checked', [Caller]).
unsafe_text(Formal, Callee, Caller, Text) :-
    format(atom(Text), '~q calls ~q, which SWI-Prolog library(sandbox) rejects: ~q', [Caller, Callee, Formal]).

call_location(Caller, Name/Arity, Source, Line, Column) :-
    scanned_clause(Caller, _, Body, BodyLayout),
    sub_layout(Body, BodyLayout, Goal, GoalLayout),
    callable(Goal),
    functor(Goal, Name, Arity),
    !,
    start_of(GoalLayout, Start),
    offset_location(Source, Start, Line, Column).
call_location(Caller, _, Source, Line, Column) :-
    scanned_clause(Caller, Start, _, _),
    !,
    offset_location(Source, Start, Line, Column).
call_location(_, _, _, 1, 1).

sub_layout(Term, parentheses_term_position(_, _, Inner), Sub, SubLayout) :-
    !,
    sub_layout(Term, Inner, Sub, SubLayout).
sub_layout(Term, Layout, Term, Layout).
sub_layout(Term, term_position(_, _, _, _, ArgLayouts), Sub, SubLayout) :-
    compound(Term),
    compound_name_arguments(Term, _, Args),
    sub_layouts(Args, ArgLayouts, Sub, SubLayout).
sub_layout(Term, list_position(_, _, ElementLayouts, TailLayout), Sub, SubLayout) :-
    list_parts(Term, ElementLayouts, Elements, Tail),
    (   sub_layouts(Elements, ElementLayouts, Sub, SubLayout)
    ;   TailLayout \== none,
        sub_layout(Tail, TailLayout, Sub, SubLayout)
    ).
sub_layout({Arg}, brace_term_position(_, _, ArgLayout), Sub, SubLayout) :-
    sub_layout(Arg, ArgLayout, Sub, SubLayout).

sub_layouts([Term|_], [Layout|_], Sub, SubLayout) :-
    sub_layout(Term, Layout, Sub, SubLayout).
sub_layouts([_|Terms], [_|Layouts], Sub, SubLayout) :-
    sub_layouts(Terms, Layouts, Sub, SubLayout).

list_parts(Tail, [], [], Tail) :- !.
list_parts([Element|Rest], [_|Layouts], [Element|Elements], Tail) :-
    list_parts(Rest, Layouts, Elements, Tail).

decide(Module, Limit, Facts, Out) :-
    catch(call_with_inference_limit(Module:validate(Facts, Denials, Trace), Limit, Result), Error, true),
    !,
    (   Result == inference_limit_exceeded
    ->  Out = "timeout"
    ;   nonvar(Error)
    ->  format(string(Out), "error\t~q", [Error])
    ;   with_output_to(string(Out),
            ( forall(member(Reason, Denials), format("deny\t~w~n", [Reason])),
              forall(member(check(Check, Value, Outcome, Reason), Trace),
                     format("check\t~q\t~q\t~w\t~w~n", [Check, Value, Outcome, Reason])) ))
    ).
decide(_, _, _, "error\tvalidate/3 failed").
"""


class PrologRuleError(RuleFileError):
    """The Prolog rule file was rejected, at `path:line:column`."""


class PrologEngineError(CryptoScalpError):
    """A decision could not be completed: Prolog raised, `validate/3` failed, or the worker is gone."""


class PrologTimeoutError(PrologEngineError, EngineTimeout):
    """The Prolog worker did not answer within the time budget."""


@dataclass(frozen=True, slots=True)
class PrologRuleset:
    path: Path
    module: str  # the fresh module the file was loaded into
    ruleset_hash: str  # SHA-256 of the file bytes


class _Swipl:
    """The few SWI-Prolog C functions the worker calls, with their ctypes signatures."""

    def __init__(self) -> None:
        lib = swipl._lib
        term_t = ctypes.c_size_t
        self.open_foreign_frame = _function(lib.PL_open_foreign_frame, [], ctypes.c_size_t)
        self.discard_foreign_frame = _function(lib.PL_discard_foreign_frame, [ctypes.c_size_t], None)
        self.new_term_ref = _function(lib.PL_new_term_ref, [], term_t)
        self.chars_to_term = _function(lib.PL_chars_to_term, [ctypes.c_char_p, term_t], ctypes.c_int)
        self.call = _function(lib.PL_call, [term_t, ctypes.c_void_p], ctypes.c_int)
        self.get_arg = _function(lib.PL_get_arg, [ctypes.c_int, term_t, term_t], ctypes.c_int)
        self.get_chars = _function(
            lib.PL_get_chars, [term_t, ctypes.POINTER(ctypes.c_char_p), ctypes.c_uint], ctypes.c_int
        )
        self.unify_chars = _function(
            lib.PL_unify_chars, [term_t, ctypes.c_int, ctypes.c_size_t, ctypes.c_char_p], ctypes.c_int
        )
        self.thread_self = _function(lib.PL_thread_self, [], ctypes.c_int)
        self.thread_attach_engine = _function(lib.PL_thread_attach_engine, [ctypes.c_void_p], ctypes.c_int)
        self.thread_destroy_engine = _function(lib.PL_thread_destroy_engine, [], ctypes.c_int)

    def call_for_string(
        self, goal: str, path: tuple[int, ...], text_at: tuple[tuple[int, ...], str] | None = None
    ) -> str | None:
        """Call `goal` once; return the text of its sub-term at argument `path` (None: the goal failed).

        `text_at` = (argument path, text) binds that variable of `goal` to the text as a Prolog string
        first: a rule file's text goes in whole this way, never through the term reader.
        """
        frame = self.open_foreign_frame()
        try:
            term = self.new_term_ref()
            if not self.chars_to_term(goal.encode(), term):
                raise PrologEngineError(f"not a Prolog term: {goal[:200]}")
            if text_at is not None:
                at, text = text_at
                encoded = text.encode()
                if not self.unify_chars(self._argument(term, at), _PL_STRING | _REP_UTF8, len(encoded), encoded):
                    raise PrologEngineError(f"argument {at} of {goal[:200]} is not a free variable")
            if not self.call(term, None):
                return None
            if not path:
                return ""
            answer = ctypes.c_char_p()
            if not self.get_chars(
                self._argument(term, path), ctypes.byref(answer), _CVT_ATOM | _CVT_STRING | _REP_UTF8
            ):
                raise PrologEngineError(f"the answer of {goal[:200]} is not text")
            return (answer.value or b"").decode()
        finally:
            self.discard_foreign_frame(frame)

    def _argument(self, term: int, path: tuple[int, ...]) -> int:
        for index in path:
            argument = self.new_term_ref()
            self.get_arg(index, term, argument)
            term = argument
        return term


_CVT_ATOM, _CVT_STRING, _REP_UTF8, _PL_STRING = 0x1, 0x2, 0x00100000, 6


def _function(function: Any, argtypes: list[Any], restype: Any) -> Callable[..., Any]:
    function.argtypes = argtypes
    function.restype = restype
    return function  # type: ignore[no-any-return]


class _Job:
    """One call for the worker; `done` is released when `result` or `error` is set.

    A bare lock rather than a `Future`: the hand-off between threads is most of a decision's
    latency, and a lock wakes the waiting caller with the least work.
    """

    __slots__ = ("abandoned", "done", "error", "result", "work")

    def __init__(self, work: Callable[[_Swipl], Any]) -> None:
        self.work = work
        self.done = threading.Lock()
        self.done.acquire()
        self.result: Any = None
        self.error: BaseException | None = None
        self.abandoned = False  # the caller stopped waiting: skip it if it has not started


class _PrologWorker:
    """The one thread that talks to SWI-Prolog; jobs run in submission order, one at a time."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._ready = _Job(lambda _: None)
        self._thread = threading.Thread(target=self._serve, name="prolog-worker", daemon=True)
        default_stack = threading.stack_size(_WORKER_STACK_BYTES)
        try:
            self._thread.start()
        finally:
            threading.stack_size(default_stack)
        self._ready.done.acquire()
        if self._ready.error is not None:
            raise PrologEngineError(f"cannot start the Prolog worker: {self._ready.error}") from self._ready.error
        atexit.register(self.stop)

    def submit(self, work: Callable[[_Swipl], Any], timeout_s: float) -> Any:
        if not self._thread.is_alive():
            raise PrologEngineError("the Prolog worker thread has stopped")
        job = _Job(work)
        self._jobs.put(job)
        if not job.done.acquire(timeout=timeout_s):
            job.abandoned = True
            raise PrologTimeoutError(f"Prolog did not answer within {timeout_s * 1000:.0f} ms")
        if job.error is not None:
            raise job.error
        return job.result

    def stop(self) -> None:
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join(timeout=5.0)

    def _serve(self) -> None:
        prolog = _Swipl()
        try:
            if prolog.thread_self() == -1 and prolog.thread_attach_engine(None) < 0:
                raise PrologEngineError("cannot attach a Prolog engine to the worker thread")
            bridge = _atom(_BRIDGE)
            if (
                prolog.call_for_string(f"(open_string({bridge}, S), load_files(cryptoscalp_bridge, [stream(S)]))", ())
                is None
            ):
                raise PrologEngineError("cannot load the Prolog bridge module")
        except PrologEngineError as error:
            self._ready.error = error
            self._ready.done.release()
            return
        self._ready.done.release()
        while (job := self._jobs.get()) is not None:
            if job.abandoned:
                continue
            try:
                job.result = job.work(prolog)
            except Exception as error:  # handed to the caller, who raises it
                job.error = error
            job.done.release()
        prolog.thread_destroy_engine()


_module_numbers = itertools.count(1)
_worker: _PrologWorker | None = None
_worker_lock = threading.Lock()


def prolog_worker() -> _PrologWorker:
    """The process's one Prolog worker, started on first use; every `PrologEngine` shares it."""
    global _worker
    with _worker_lock:
        if _worker is None:
            _worker = _PrologWorker()
        return _worker


class PrologEngine:
    """The guard's Prolog engine (`Engine` protocol); callable from any thread."""

    name = "prolog"

    def __init__(
        self,
        path: Path = RULES_PATH,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        inference_limit: int = DEFAULT_INFERENCE_LIMIT,
    ) -> None:
        self._timeout_s = timeout_s
        self._inference_limit = inference_limit
        self._worker = prolog_worker()
        self._ruleset = self._load(path)

    @property
    def ruleset_hash(self) -> str:
        return self._ruleset.ruleset_hash

    @property
    def path(self) -> Path:
        return self._ruleset.path

    def reload(self, path: Path | None = None) -> str:
        """Load the rule file again (or another one) into a fresh module and return its hash.

        On `PrologRuleError` the current rules stay active.
        """
        self._ruleset = self._load(path or self._ruleset.path)
        return self._ruleset.ruleset_hash

    def evaluate(self, intent: Intent, context: DecisionContext, quantity: float) -> EngineResult:
        ruleset = self._ruleset
        goal = (
            f"cryptoscalp_bridge:decide({_atom(ruleset.module)}, {int(self._inference_limit)}, "
            f"{_facts(intent, context, quantity)}, Out)"
        )
        answer = self._worker.submit(lambda prolog: prolog.call_for_string(goal, (2, 4)), self._timeout_s)
        return _result(ruleset, answer)

    def _load(self, path: Path) -> PrologRuleset:
        try:
            raw = path.read_bytes()
        except OSError as error:
            raise PrologRuleError(path, 1, 1, f"cannot read the rule file: {error.strerror}") from error
        if len(raw) > MAX_RULE_FILE_BYTES:
            raise PrologRuleError(
                path, 1, 1, f"the rule file is {len(raw)} bytes; a rule file may hold at most {MAX_RULE_FILE_BYTES}"
            )
        try:
            source = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise PrologRuleError(path, raw[: error.start].count(b"\n") + 1, 1, "the rule file is not UTF-8") from error
        module = f"cryptoscalp_strategies_{next(_module_numbers)}"
        # The bytes read once here are the ones hashed, checked and loaded: no second read of the file
        # could load a different file than the one checked.
        goal = f"cryptoscalp_bridge:load_rules({_atom(str(path))}, {_atom(module)}, _, {MAX_TERM_DEPTH}, Out)"
        report = self._worker.submit(
            lambda prolog: prolog.call_for_string(goal, (2, 5), ((2, 3), source)), max(self._timeout_s, 10.0)
        )
        if report is None:
            raise PrologRuleError(path, 1, 1, "SWI-Prolog could not load the file")
        for line in report.splitlines():
            row, column, kind, text = line.split("\t", 3)
            message = _LOCATION_PREFIX.sub("", text).strip()
            raise PrologRuleError(path, int(row), int(column), f"{kind}: {message}")
        return PrologRuleset(path, module, hashlib.sha256(raw).hexdigest())


def _facts(intent: Intent, context: DecisionContext, quantity: float) -> str:
    """The `Key=Value` list `validate/3` reads."""
    market = context.market
    pairs = (
        ("strategy_id", _atom(intent.strategy_id)),
        ("side", intent.side.value),
        ("side_sign", str(intent.side.sign)),
        ("order_type", intent.order_type.value),
        ("regime", market.regime.value),
        ("volatility_regime", market.volatility_regime.value),
        ("breakout_confirmed", _boolean(market.breakout_confirmed)),
        ("reduce_only", _boolean(intent.reduce_only)),
        ("reverse", _boolean(intent.reverse)),
        ("quantity", _number(quantity)),
        ("position_qty", _number(context.position.quantity)),
    )
    return "[" + ",".join(f"{key}= {value}" for key, value in pairs) + "]"  # the space: `=-1` is one token


def _atom(text: str) -> str:
    """`text` as a quoted Prolog atom, whatever characters it holds."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
    return f"'{escaped}'"


def _boolean(value: bool) -> str:
    return "true" if value else "false"


def _number(value: float) -> str:
    number = float(value)
    if not math.isfinite(number):
        raise PrologEngineError(f"{number} is not a finite number; the strategy facts are incomplete")
    mantissa, _, exponent = repr(number).partition("e")
    if "." not in mantissa:
        mantissa += ".0"  # Prolog reads `1e-05` as an error, `1.0e-05` as a float
    return f"{mantissa}e{exponent}" if exponent else mantissa


def _result(ruleset: PrologRuleset, answer: str | None) -> EngineResult:
    if answer is None:
        raise PrologEngineError(f"{ruleset.path}: the decision query failed")
    if answer == "timeout":
        raise PrologTimeoutError(f"{ruleset.path}: validate/3 exceeded its inference budget")
    if answer.startswith("error\t"):
        raise PrologEngineError(f"{ruleset.path}: validate/3 raised {answer[6:]}")
    denials: list[str] = []
    trace: list[JSON] = []
    for line in answer.splitlines():
        kind, *fields = line.split("\t")
        if kind == "deny":
            if not REASON_CODE.fullmatch(fields[0]):
                raise PrologEngineError(f"{ruleset.path}: validate/3 denied with a malformed reason {fields[0]!r}")
            denials.append(fields[0])
        else:
            precondition, observed, outcome, reason = fields
            trace.append({"precondition": precondition, "observed": observed, "outcome": outcome, "reason": reason})
    proof: JSON = {"ruleset_hash": ruleset.ruleset_hash, "module": ruleset.module, "trace": trace, "denials": denials}
    notes = tuple(f"{step['precondition']} on {step['observed']}: {step['outcome']}" for step in trace)
    return EngineResult(engine="prolog", denials=tuple(denials), proof=proof, notes=notes)
