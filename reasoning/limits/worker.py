"""Runs the limits engine's Z3 solver in a child process, so the guard's other engines work meanwhile.

Why a process: the guard's four engines share one interpreter, and the GIL serialises them even though
Z3 and SWI-Prolog run in C (measured: a Z3 thread beside the other engines gained nothing). Z3 is the
longest engine (about half of a decision), so running it on the other core while Datalog, CLIPS and
Prolog run here takes it off the critical path. A process can also be killed, which a thread cannot: a
check that overruns its budget ends with the process, never with a solver left in an unknown state.

What crosses the pipe is small: the decision's constants (a dict of floats), the quantity and the mode
on the way in; the verdict and the checks (plain tuples, dicts and floats) on the way back. The rule set
is sent once per install; the child compiles it itself (Z3 objects cannot be pickled).

Messages (tuples): parent → child `("install", ruleset, weakened, rlimit, timeout_ms)`,
`("decide", seq, env, quantity, search_max)`, `("stop",)`; child → parent `("ready", -1)`,
`("ok", seq, verdict, checks, solver_ms)`, `("error", seq, type, message)` (seq -1 for an install).

Failure is closed: a decision whose answer does not come within its budget, or whose child dies or
answers garbage, raises (`EngineTimeout`, `LimitsSolverError`) and the guard denies it. A late answer is
dropped when it comes; a child that dies, garbles, or leaves a request unanswered past `STUCK_AFTER_S`
is killed and a fresh one launched at once with the last installed rule set (a start takes about
0.15 s, during which decisions are refused at once).

The waiting sides spin briefly before blocking (`_poll`), and only when there is a second core to
spin on.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from reasoning.engine import JSON, EngineTimeout
from reasoning.limits.errors import LimitsSolverError
from reasoning.limits.parser import RuleSet

if TYPE_CHECKING:
    from reasoning.limits.prover import LimitsVerdict

START_TIMEOUT_S = 60.0  # a cold start imports z3 and compiles the rule set; an install waits this long
RESTART_DEADLINE_S = 10.0  # a relaunched child not ready by then is replaced again
STUCK_AFTER_S = 1.0  # a request unanswered this long means the child is stuck: it is replaced
# How long a waiting side polls before it blocks (see `_poll`); only with a second core to spin on.
SPIN_S = 0.002 if len(os.sched_getaffinity(0)) >= 2 else 0.0
LINGER_S = SPIN_S  # the child, after an answer, for the next request


class SolverProcess:
    """The parent's handle on one solver child. Requests are answered in order; `Pending` matches them.

    A request that misses its caller's budget is abandoned (its answer, when it comes, is dropped); Z3's
    per-check resource limit bounds how long the child can take. A child that leaves a request
    unanswered for `stuck_after_s`, dies or garbles a reply is killed and a new one launched at once
    with the last installed rule set; until that one reports ready (about 0.15 s), decisions are
    refused at once (`LimitsSolverError`), and one not ready within `RESTART_DEADLINE_S` is replaced.
    Only the process that created the handle may use it (a forked copy would read its replies)."""

    def __init__(self, rlimit: int, timeout_ms: int | None, stuck_after_s: float = STUCK_AFTER_S) -> None:
        self._rlimit = rlimit
        self._timeout_ms = timeout_ms
        self._stuck_after_s = stuck_after_s
        self._owner = os.getpid()
        self._lock = threading.Lock()
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None
        self._installed: tuple[RuleSet, frozenset[str]] | None = None
        self._starting = False  # a relaunched child has not yet confirmed its rule set
        self._start_deadline = 0.0
        self._closed = False
        self._sequence = 0
        self._sent: dict[int, float] = {}  # unanswered requests → when they were sent
        self._abandoned: set[int] = set()  # requests whose caller gave up: their answers are dropped
        self._early: dict[int, tuple[Any, ...]] = {}  # replies read while waiting for another request's
        self.starts = 0  # how many children were started (restarts show here)
        self.last_solver_ms = 0.0  # the child's own time on the last answered decision

    def install(self, ruleset: RuleSet, weakened: frozenset[str]) -> None:
        """Compile `ruleset` in the child (starting one if needed); raises if the child refuses it, and
        then keeps the rule set it had."""
        with self._lock:
            connection = self._connected()
            if self._starting and self._receive(connection, -1, START_TIMEOUT_S) is None:
                self._restart()
                raise LimitsSolverError("limits worker did not start; relaunched")
            connection = self._connected()
            connection.send(("install", ruleset, weakened, self._rlimit, self._timeout_ms))
            reply = self._receive(connection, -1, START_TIMEOUT_S)
            if reply is None:
                self._restart()
                raise LimitsSolverError(f"limits worker did not compile the rule set within {START_TIMEOUT_S:.0f} s")
            if reply[0] != "ready":
                raise LimitsSolverError(f"limits worker refused the rule set: {reply[2]}: {reply[3]}")
            self._installed = (ruleset, weakened)

    def ready(self, timeout_s: float) -> bool:
        """Whether the child has its rule set, waiting at most `timeout_s` for a relaunched one (a live
        loop waits for this before it trades)."""
        with self._lock:
            connection = self._connected()
            return not self._starting or self._receive(connection, -1, timeout_s) is not None

    def submit(self, env: dict[str, float], quantity: float, search_max: bool) -> Pending:
        """Send one decision; `Pending.result` waits for its answer."""
        with self._lock:
            connection = self._connected()
            now = time.perf_counter()
            if self._sent and now - min(self._sent.values()) > self._stuck_after_s:
                self._restart()
                raise LimitsSolverError("limits worker stuck on an earlier request; relaunched")
            if self._starting and self._receive(connection, -1, 0.0) is None:
                if now > self._start_deadline:
                    self._restart()
                raise LimitsSolverError("limits worker restarting after a fault; nothing is proven yet")
            self._sequence += 1
            try:
                connection.send(("decide", self._sequence, env, quantity, search_max))
            except (OSError, ValueError) as exc:
                self._restart()
                raise LimitsSolverError(f"limits worker unreachable ({exc}); relaunched") from exc
            self._sent[self._sequence] = now
            return Pending(self, self._sequence, self.starts)

    def wait(self, sequence: int, generation: int, timeout_s: float) -> tuple[LimitsVerdict, list[JSON]]:
        if not self._lock.acquire(timeout=max(timeout_s, 0.0)):
            self._abandon(sequence)
            raise EngineTimeout(f"limits worker busy for {timeout_s * 1000:.0f} ms (another call holds it)")
        try:
            reply = self._early.pop(sequence, None)
            if reply is None:
                if self._connection is None or generation != self.starts or self._closed:
                    raise LimitsSolverError("limits worker restarted before answering; nothing is proven")
                reply = self._receive(self._connection, sequence, timeout_s)
                if reply is None:
                    self._abandoned.add(sequence)
                    raise EngineTimeout(f"limits worker gave no answer within {timeout_s * 1000:.0f} ms")
        finally:
            self._lock.release()
        if reply[0] == "ok":
            self.last_solver_ms = reply[4]
            return reply[2], reply[3]
        raise LimitsSolverError(f"limits worker: {reply[2]}: {reply[3]}")

    def close(self) -> None:
        """Stop the child for good: later calls raise."""
        with self._lock:
            self._closed = True
            if self._connection is not None and self._owner == os.getpid():
                with contextlib.suppress(OSError, ValueError):  # already gone: nothing to stop
                    self._connection.send(("stop",))
                if self._process is not None:
                    self._process.join(timeout=0.5)
            self._kill()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def _abandon(self, sequence: int) -> None:
        with self._lock:
            if sequence in self._sent:
                self._abandoned.add(sequence)

    def _connected(self) -> Connection:
        if self._closed:
            raise LimitsSolverError("limits engine closed")
        if self._owner != os.getpid():
            raise LimitsSolverError("limits worker belongs to another process (forked copy)")
        if self._connection is None or self._process is None or not self._process.is_alive():
            self._restart()
        assert self._connection is not None
        return self._connection

    def _restart(self) -> None:
        """Kill the child, if any, and launch a new one that installs the last rule set by itself."""
        self._kill()
        context = multiprocessing.get_context("spawn")  # never fork: the parent has threads (Prolog, watchers)
        parent, child = context.Pipe()
        process = context.Process(target=serve, args=(child,), name="cryptoscalp-z3", daemon=True)
        process.start()
        child.close()
        self._process, self._connection = process, parent
        self.starts += 1
        if self._installed is not None:
            ruleset, weakened = self._installed
            parent.send(("install", ruleset, weakened, self._rlimit, self._timeout_ms))
            self._starting = True
            self._start_deadline = time.perf_counter() + RESTART_DEADLINE_S

    def _receive(self, connection: Connection, sequence: int, timeout_s: float) -> tuple[Any, ...] | None:
        """The reply to `sequence` (-1: to an install), or None when none came within `timeout_s`.
        Replies to other requests are kept for their `Pending`, abandoned ones dropped; a child that
        died or garbled a reply is replaced (and this raises)."""
        deadline = time.perf_counter() + timeout_s
        while True:
            try:
                if not _poll(connection, max(deadline - time.perf_counter(), 0.0)):
                    return None
                reply = connection.recv()
            except (EOFError, OSError) as exc:
                code = None if self._process is None else self._process.exitcode
                self._restart()
                raise LimitsSolverError(f"limits worker died (exit code {code}); relaunched") from exc
            if not isinstance(reply, tuple) or len(reply) < 2 or not isinstance(reply[1], int):
                self._restart()
                raise LimitsSolverError(f"limits worker answered {type(reply).__name__}, not a reply; relaunched")
            if reply[1] == -1:  # an install's answer
                if self._starting:
                    self._starting = False
                    if reply[0] != "ready":  # the set it ran before no longer compiles: nothing can be proven
                        self._kill()
                        raise LimitsSolverError(f"limits worker could not reinstall its rule set: {reply[3]}")
                    if sequence == -1 and self._installed is not None:
                        return reply
                    continue
                if sequence == -1:
                    return reply
                continue
            self._sent.pop(reply[1], None)
            if reply[1] in self._abandoned:
                self._abandoned.discard(reply[1])
                continue
            if reply[1] == sequence:
                return reply
            self._early[reply[1]] = reply

    def _kill(self) -> None:
        if self._connection is not None:
            self._connection.close()
        if self._process is not None and self._owner == os.getpid() and self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=5.0)
        self._process, self._connection = None, None
        self._starting = False
        self._sent.clear()
        self._abandoned.clear()
        self._early.clear()


def _poll(connection: Connection, timeout_s: float) -> bool:
    """`connection.poll(timeout_s)`, spinning for the first `SPIN_S`: waking a process blocked in the
    kernel costs tens to hundreds of microseconds here, more than a Z3 check."""
    deadline = time.perf_counter() + min(timeout_s, SPIN_S)
    while time.perf_counter() < deadline:
        if connection.poll(0):
            return True
        os.sched_yield()  # a spinning side gives way to anything else runnable on its core
    return connection.poll(max(timeout_s - SPIN_S, 0.0))


class Pending:
    """One submitted decision; its outcome is kept, so asking twice gives the same answer."""

    __slots__ = ("_generation", "_outcome", "_owner", "_sequence")

    def __init__(self, owner: SolverProcess, sequence: int, generation: int) -> None:
        self._owner = owner
        self._sequence = sequence
        self._generation = generation  # which child it was sent to
        self._outcome: tuple[LimitsVerdict, list[JSON]] | Exception | None = None

    def result(self, timeout_s: float) -> tuple[LimitsVerdict, list[JSON]]:
        if self._outcome is None:
            try:
                self._outcome = self._owner.wait(self._sequence, self._generation, timeout_s)
            except EngineTimeout:
                raise  # late, not failed: the caller may not ask again, but nothing is cached
            except Exception as exc:
                self._outcome = exc
        if isinstance(self._outcome, Exception):
            raise self._outcome
        return self._outcome


def serve(connection: Connection) -> None:
    """The child's loop: install rule sets, decide, until `stop` or the parent goes away."""
    from reasoning.limits.compiler import compile_ruleset
    from reasoning.limits.prover import SolverBudget, SolverState

    state: SolverState | None = None
    while True:
        try:
            _poll(connection, LINGER_S)
            message = connection.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        kind = message[0]
        if kind == "stop":
            return
        if kind == "install":
            _, ruleset, weakened, rlimit, timeout_ms = message
            try:
                candidate = SolverState(compile_ruleset(ruleset, weakened), SolverBudget(rlimit, timeout_ms))
            except Exception as exc:  # reported to the parent, which keeps its rule set
                connection.send(("error", -1, type(exc).__name__, str(exc)))
                continue
            state = candidate
            gc.collect()
            gc.freeze()  # the compiled rule set lives as long as the child: keep the collector off it
            connection.send(("ready", -1))
            continue
        _, sequence, env, quantity, search_max = message
        if state is None:
            connection.send(("error", sequence, "LimitsSolverError", "no rule set installed"))
            continue
        started = time.perf_counter()
        try:
            verdict, checks = state.decide(env, quantity, search_max)
        except Exception as exc:  # a failed decision is denied by the guard; the child carries on
            connection.send(("error", sequence, type(exc).__name__, str(exc)))
            continue
        connection.send(("ok", sequence, verdict, checks, (time.perf_counter() - started) * 1000.0))
