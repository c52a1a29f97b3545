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
REASON_CODE = re.compile(r"L[1-7]\.[a-z][a-z0-9_]*")
_LOCATION_PREFIX = re.compile(r"^\S+:\d+:(\d+:)?\s*")

# Loaded once into the worker's Prolog: loading with captured messages, and the per-decision call.
_BRIDGE = r"""
:- module(cryptoscalp_bridge, [load_rules/3, decide/4]).
:- dynamic loading/0, problem/4.

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

load_rules(Path, Module, Out) :-
    retractall(problem(_, _, _, _)),
    atomic_list_concat([Path, '#', Module], SourceId),
    setup_call_cleanup(
        ( assertz(loading), open(Path, read, Stream) ),
        catch(load_files(Module:SourceId, [stream(Stream), silent(true)]), Error, note(Error, error)),
        ( retractall(loading), close(Stream) )),
    (   \+ problem(_, _, _, _), \+ current_predicate(Module:validate/3)
    ->  assertz(problem(1, 1, error, 'validate/3 is not defined (the engine calls validate(+Facts, -Denials, -Trace))'))
    ;   true
    ),
    findall(Line-Column-Kind-Text, problem(Line, Column, Kind, Text), Problems),
    with_output_to(string(Out),
        forall(member(Line-Column-Kind-Text, Problems), format("~w\t~w\t~w\t~w~n", [Line, Column, Kind, Text]))).

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
        self.thread_self = _function(lib.PL_thread_self, [], ctypes.c_int)
        self.thread_attach_engine = _function(lib.PL_thread_attach_engine, [ctypes.c_void_p], ctypes.c_int)
        self.thread_destroy_engine = _function(lib.PL_thread_destroy_engine, [], ctypes.c_int)

    def call_for_string(self, goal: str, path: tuple[int, ...]) -> str | None:
        """Call `goal` once; return the text of its sub-term at argument `path` (None: the goal failed)."""
        frame = self.open_foreign_frame()
        try:
            term = self.new_term_ref()
            if not self.chars_to_term(goal.encode(), term):
                raise PrologEngineError(f"not a Prolog term: {goal[:200]}")
            if not self.call(term, None):
                return None
            if not path:
                return ""
            for index in path:
                argument = self.new_term_ref()
                self.get_arg(index, term, argument)
                term = argument
            text = ctypes.c_char_p()
            if not self.get_chars(term, ctypes.byref(text), _CVT_ATOM | _CVT_STRING | _REP_UTF8):
                raise PrologEngineError(f"the answer of {goal[:200]} is not text")
            return (text.value or b"").decode()
        finally:
            self.discard_foreign_frame(frame)


_CVT_ATOM, _CVT_STRING, _REP_UTF8 = 0x1, 0x2, 0x00100000


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
        self._thread.start()
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
        module = f"cryptoscalp_strategies_{next(_module_numbers)}"
        goal = f"cryptoscalp_bridge:load_rules({_atom(str(path))}, {_atom(module)}, Out)"
        report = self._worker.submit(lambda prolog: prolog.call_for_string(goal, (2, 3)), max(self._timeout_s, 10.0))
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
