"""The Z3 limits engine: proves an order quantity admissible under `limits.toml`, or names what forbids it.

One `z3.Solver` is reused for every decision. Per decision: push; assert the compiled conjunction with the
decision's numerals substituted for its constants (linear in `qty`); ask with one assumption literal per
limit; pop. `evaluate` asserts and assumes only the limits the bound search did not find true at every qty:
the implication of a limit whose literal is never assumed is satisfied by setting the literal false, so
leaving it out changes no answer and no core. `prove_order` asserts and assumes every limit. Verdicts
(`evaluate`):

- the requested qty is admissible → no denials, `max_qty` = the largest admissible qty;
- only a smaller qty is → no denials, `max_qty` < qty (the guard turns that into `reduce`), the proof
  names the binding limits: the unsat core of "qty > max_qty";
- no qty > 0 is → denials = the unsat core of "qty > 0", as reason codes `<layer>.<name>`.

`max_qty` comes from `bounds.py` and is then confirmed by Z3 twice: "qty = max_qty" is satisfiable and
"qty > max_qty·(1 + 1e-9)" is not. A timeout, an `unknown`, or Z3 disagreeing with the bound search
raises `LimitsSolverError`: the guard must deny (fail closed).

Z3 contexts are not thread-safe: an engine serialises its decisions with a lock; use one engine per
worker thread for parallelism.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import z3

from core.intent import Intent
from reasoning.context import DecisionContext
from reasoning.engine import JSON, EngineResult
from reasoning.limits import ir
from reasoning.limits.bounds import INF, holds, intersect, interval_function
from reasoning.limits.compiler import CompiledLimit, CompiledRuleSet, compile_ruleset
from reasoning.limits.errors import LimitsSolverError
from reasoning.limits.parser import RuleSet, load_ruleset
from reasoning.limits.vocabulary import decision_constants
from reasoning.limits.worker import STUCK_AFTER_S, Pending, SolverProcess

# Z3's `timeout` starts a timer thread on every check (≈ 120 µs here, more than the check itself), so the
# per-check budget is a resource limit instead: deterministic, and exhausting it answers `unknown`, which
# fails closed. A typical decision's check uses a few thousand units.
DEFAULT_RLIMIT = 2_000_000
DEFAULT_WAIT_S = 10.0  # how long a direct caller waits for an isolated solver (the guard passes its budget)
_EVERYWHERE = [(0.0, INF)]
_ABOVE_SLACK = 1e-9  # relative: the maximality proof is "nothing above max_qty·(1 + 1e-9) + 1e-12"


@dataclass(frozen=True, slots=True)
class SolverBudget:
    rlimit: int  # Z3 resource units per check
    timeout_ms: int | None  # wall-clock cap per check as well (costs a timer thread per check)


@dataclass(frozen=True, slots=True)
class LimitsVerdict:
    admissible: bool | None  # at the requested qty; None when not asked
    max_qty: float | None
    upper_bound: float | None
    denials: tuple[str, ...]
    binding: tuple[str, ...]
    core_at_qty: tuple[str, ...]


class LimitsEngine:
    """The guard's Z3 engine (name "z3"). `load` validates and compiles a rules file; on a bad file it
    raises `LimitsFileError` (`file:line:col: message`) and keeps the rule set it had.

    `isolated=True` runs the solver in a child process (`worker.py`): `submit` returns at once and the
    caller does other work while Z3 runs on the other core; `close` stops the child."""

    name = "z3"

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        rlimit: int = DEFAULT_RLIMIT,
        timeout_ms: int | None = None,
        isolated: bool = False,
        stuck_after_s: float = STUCK_AFTER_S,
    ) -> None:
        self._budget = SolverBudget(rlimit, timeout_ms)
        self._lock = threading.Lock()
        self._state: SolverState | None = None  # in-process solver (None when isolated)
        self._ruleset: RuleSet | None = None
        self._limit_values: dict[str, dict[str, float]] = {}
        self._process = SolverProcess(rlimit, timeout_ms, stuck_after_s) if isolated else None
        if path is not None:
            self.load(path)

    @property
    def isolated(self) -> bool:
        return self._process is not None

    @property
    def worker(self) -> SolverProcess | None:
        """The child process's handle when isolated (tests kill it to show the guard fails closed)."""
        return self._process

    def load(self, path: str | Path, weakened: frozenset[str] = frozenset()) -> RuleSet:
        """Read, check and compile `path`; only then replace the active rule set. `weakened` is the
        mutation-testing hook of `compile_ruleset`."""
        ruleset = load_ruleset(path)
        self.install(ruleset, weakened)
        return ruleset

    def install(self, ruleset: RuleSet, weakened: frozenset[str] = frozenset()) -> None:
        with self._lock:
            if self._process is not None:
                self._process.install(ruleset, weakened)  # raises, keeping the old set, if refused
                state = None
            else:
                state = SolverState(compile_ruleset(ruleset, weakened), self._budget)
            self._state, self._ruleset, self._limit_values = state, ruleset, {}

    def close(self) -> None:
        """Stop the solver child, if any (an in-process engine has nothing to release)."""
        if self._process is not None:
            self._process.close()

    @property
    def ruleset(self) -> RuleSet:
        if self._ruleset is None:
            raise LimitsSolverError("limits engine: no rule set loaded")
        return self._ruleset

    @property
    def ruleset_hash(self) -> str:
        """SHA-256 of the rules file's bytes."""
        return self.ruleset.sha256

    def reason_codes(self) -> list[str]:
        """The reason code of every limit, `<layer>.<name>`."""
        return sorted(limit.reason_code for limit in self.ruleset.limits)

    def evaluate(self, intent: Intent, context: DecisionContext, quantity: float) -> EngineResult:
        """Judge an order of `quantity` and find the largest admissible quantity."""
        return self.submit(intent, context, quantity).result()

    def prove_order(
        self, intent: Intent, context: DecisionContext, quantity: float, timeout_s: float = DEFAULT_WAIT_S
    ) -> EngineResult:
        """Re-prove a sized order before it leaves: exactly `quantity` must be admissible, else it is denied
        with the limits it breaks at that quantity. No `max_qty` search."""
        return self.submit(intent, context, quantity, search_max=False).result(timeout_s)

    def submit(
        self, intent: Intent, context: DecisionContext, quantity: float, *, search_max: bool = True
    ) -> LimitsPending:
        """Start judging; the answer is `result()` of what this returns. In process the work is done here;
        isolated, it runs in the child while the caller goes on."""
        if not quantity > 0:
            raise ValueError(f"limits engine: quantity must be > 0, got {quantity}")
        with self._lock:
            ruleset = self.ruleset
            env = decision_constants(intent, context)
            env.update(self._values_for(ruleset, intent.symbol))
            if self._process is not None:
                remote = self._process.submit(env, quantity, search_max)
                return LimitsPending(ruleset.sha256, intent.symbol, quantity, env, remote=remote)
            if self._state is None:
                raise LimitsSolverError("limits engine: no rule set loaded")
            finished = self._state.decide(env, quantity, search_max)
        return LimitsPending(ruleset.sha256, intent.symbol, quantity, env, finished=finished)

    def _values_for(self, ruleset: RuleSet, symbol: str) -> dict[str, float]:
        values = self._limit_values.get(symbol)
        if values is None:
            values = {limit.name: limit.value_for(symbol) for limit in ruleset.limits}
            self._limit_values[symbol] = values
        return values


class LimitsPending:
    """A judgement under way: `result()` waits for it (isolated) and writes its proof."""

    __slots__ = ("_env", "_finished", "_quantity", "_remote", "_ruleset_hash", "_symbol")

    def __init__(
        self,
        ruleset_hash: str,
        symbol: str,
        quantity: float,
        env: dict[str, float],
        *,
        finished: tuple[LimitsVerdict, list[JSON]] | None = None,
        remote: Pending | None = None,
    ) -> None:
        self._ruleset_hash = ruleset_hash
        self._symbol = symbol
        self._quantity = quantity
        self._env = env
        self._finished = finished
        self._remote = remote

    def result(self, timeout_s: float = DEFAULT_WAIT_S) -> EngineResult:
        if self._finished is not None:
            verdict, checks = self._finished
        elif self._remote is not None:
            verdict, checks = self._remote.result(timeout_s)
        else:
            raise LimitsSolverError("limits engine: a judgement with neither an answer nor a worker")
        quantity = self._quantity
        proof: JSON = {
            "ruleset_hash": self._ruleset_hash,
            "symbol": self._symbol,
            "qty": quantity,
            "constants": self._env,
            "checks": checks,
            "result": "sat" if verdict.admissible else "unsat",
            "unsat_core": list(verdict.denials or verdict.core_at_qty),
            "max_qty": verdict.max_qty,
            "max_qty_upper_bound": verdict.upper_bound,
            "binding": list(verdict.binding),
        }
        return EngineResult(
            engine=LimitsEngine.name,
            denials=verdict.denials,
            proof=proof,
            max_qty=verdict.max_qty,
            notes=_notes(verdict, quantity),
        )


def _notes(verdict: LimitsVerdict, quantity: float) -> tuple[str, ...]:
    if verdict.denials:
        return (f"no admissible quantity: {', '.join(verdict.denials)}",)
    if verdict.admissible:
        return (f"qty {quantity:g} admissible; max admissible qty {verdict.max_qty}",)
    return (f"qty {quantity:g} exceeds max admissible qty {verdict.max_qty}, bound by {', '.join(verdict.binding)}",)


class SolverState:
    """A compiled rule set with its solver, probe literals and substitution arrays."""

    def __init__(self, compiled: CompiledRuleSet, budget: SolverBudget) -> None:
        self.compiled = compiled
        self.solver = z3.Solver()
        self.solver.set("rlimit", budget.rlimit)
        if budget.timeout_ms is not None:
            self.solver.set("timeout", budget.timeout_ms)
        self.tracks = [item.track for item in compiled.limits]
        self.codes = {item.track.get_id(): item.limit.reason_code for item in compiled.limits}
        self.names = list(compiled.constants)
        self._everything = _Instance(compiled.conjunction, self.names, compiled.constants, compiled.qty, self.tracks)
        self._ground: z3.BoolRef | None = None  # the asserted instance with this decision's numerals in
        self._ground_instance: _Instance | None = None
        # per limit `track_i ⇒ (guard ⇒ body_i)` and the constants it mentions: `evaluate` asserts only the
        # limits it assumes (a conjunct whose track is never assumed is satisfied by track_i = false, so it
        # changes no answer and no core), which spares the numerals and Z3 work of the others
        implications = compiled.conjunction.children() if z3.is_and(compiled.conjunction) else []
        self._implications: list[z3.BoolRef] | None = None
        self._mentions: list[frozenset[str]] = []
        if len(implications) == len(compiled.limits) and all(z3.is_implies(term) for term in implications):
            self._implications = [z3.BoolRef(term.as_ast(), term.ctx) for term in implications]
            self._mentions = [_mentions(item) for item in compiled.limits]
        self._instances: dict[tuple[int, ...], _Instance] = {}
        self._qty = compiled.qty
        self._qty_dependent = [item for item in compiled.limits if item.body.uses_qty]
        self._assumptions: list[z3.BoolRef] = []
        self._selected: list[int] = []  # indices of the limits in `_assumptions` (bound search)
        self._blocking: list[CompiledLimit] = []  # limits that alone admit no qty > 0 (bound search)
        self._searches = [
            (index, item, item.limit.applies_to == "growth", interval_function(item.body))
            for index, item in enumerate(compiled.limits)
        ]

    def decide(self, env: dict[str, float], quantity: float, search_max: bool) -> tuple[LimitsVerdict, list[JSON]]:
        checks: list[JSON] = []
        if not search_max:
            self.solver.push()
            try:
                self._assert_instance(env, self._everything)
                self._assumptions = list(self.tracks)
                return self._decide_exact(quantity, checks), checks
            finally:
                self.solver.pop()
        self._assumptions = []
        self._selected = []
        self._blocking = []
        supremum = self._supremum(env)
        self.solver.push()
        try:
            self._assert_instance(env, self._instance(tuple(self._selected)))
            return self._decide_with_max(env, quantity, supremum, checks), checks
        finally:
            self.solver.pop()

    def _decide_exact(self, quantity: float, checks: list[JSON]) -> LimitsVerdict:
        admissible, core = self._check("at", "==", quantity, checks)
        return LimitsVerdict(admissible, None, None, () if admissible else core, (), core)

    def _decide_with_max(
        self, env: dict[str, float], quantity: float, supremum: float, checks: list[JSON]
    ) -> LimitsVerdict:
        if supremum <= 0:
            positive, core = self._check("positive", ">", 0.0, checks)
            if positive:
                raise LimitsSolverError("limits engine: Z3 admits a qty > 0 where the bound search found none")
            core = self._minimal_core(core, checks)
            denials = set(core)
            # a core is one sufficient reason; auditors also want every other limit that alone forbids the order
            for item in self._blocking:
                if item.limit.reason_code not in denials:
                    alone, _ = self._check("positive", ">", 0.0, checks, only=item.track)
                    if not alone:
                        denials.add(item.limit.reason_code)
            return LimitsVerdict(False, 0.0, 0.0, tuple(sorted(denials)), (), core)
        if supremum == INF:
            admissible, core = self._check("at", "==", quantity, checks)
            return LimitsVerdict(admissible, None, None, (), (), core)
        candidate = self._confirmed_candidate(env, supremum, checks)
        upper = supremum + abs(supremum) * _ABOVE_SLACK + 1e-12
        above, binding = self._check("above", ">", upper, checks)
        if above:
            raise LimitsSolverError(f"limits engine: Z3 admits a qty above the bound {upper}")
        if quantity > upper:
            return LimitsVerdict(False, candidate, upper, (), binding, binding)
        if quantity == candidate:
            return LimitsVerdict(True, candidate, upper, (), binding, ())
        if quantity < candidate and self._python_admits(env, quantity):
            # Z3 proved the maximum; the order actually sent is proven on its own (`prove_order`)
            return LimitsVerdict(True, candidate, upper, (), binding, ())
        admissible, core = self._check("at", "==", quantity, checks)
        if admissible or quantity > candidate:
            return LimitsVerdict(admissible, candidate, upper, (), binding, core)
        # a hole below max_qty: the requested qty itself breaks the limits in `core`
        return LimitsVerdict(False, candidate, upper, core, binding, core)

    def _supremum(self, env: dict[str, float]) -> float:
        """Sup of the admissible set by the bound search; collects, as the assumptions to check with, the
        limits that are not trivially true here (a limit that holds at every qty cannot be in a core)."""
        reduce_only = env["reduce_only"] == 1.0
        threshold = env["growth_threshold"]
        feasible: list[tuple[float, float]] = [(0.0, INF)]
        for index, item, growth_only, intervals_of in self._searches:
            if growth_only and reduce_only:
                continue
            intervals = intervals_of(env, threshold if growth_only else None)
            if intervals == _EVERYWHERE:
                continue  # holds at every qty: in no core, and intersecting with [0, ∞) changes nothing
            self._assumptions.append(item.track)
            self._selected.append(index)
            if not intervals or intervals[-1][1] <= 0:
                self._blocking.append(item)
            feasible = intersect(feasible, intervals)
        return feasible[-1][1] if feasible else 0.0

    def _confirmed_candidate(self, env: dict[str, float], supremum: float, checks: list[JSON]) -> float:
        """The supremum if it is admissible (it is unless a strict bound or rounding excludes it), else a
        qty just below it; Z3 must confirm."""
        candidates = [supremum, supremum * (1 - 1e-12), supremum * (1 - _ABOVE_SLACK / 2)]
        for candidate in candidates:
            if not self._python_admits(env, candidate):
                continue
            admissible, _ = self._check("candidate", "==", candidate, checks)
            if admissible:
                return candidate
        raise LimitsSolverError(f"limits engine: Z3 could not confirm a max qty near {supremum}")

    def _python_admits(self, env: dict[str, float], qty: float) -> bool:
        grows = env["reduce_only"] != 1.0 and qty > env["growth_threshold"]
        return all(
            holds(item.body, env, qty) for item in self._qty_dependent if grows or item.limit.applies_to == "all"
        )

    def _instance(self, selected: tuple[int, ...]) -> _Instance:
        """The conjunction of the selected limits' implications, with its constants (cached per selection)."""
        if self._implications is None:
            return self._everything
        instance = self._instances.get(selected)
        if instance is None:
            if len(self._instances) > 4_096:
                self._instances.clear()
            mentioned = set().union(*(self._mentions[index] for index in selected))
            names = [name for name in self.names if name in mentioned]
            terms = [self._implications[index] for index in selected]
            formula = z3.And(*terms) if len(terms) != 1 else terms[0]
            tracks = [self.tracks[index] for index in selected]
            instance = _Instance(formula if terms else None, names, self.compiled.constants, self._qty, tracks)
            self._instances[selected] = instance
        return instance

    def _assert_instance(self, env: dict[str, float], instance: _Instance) -> None:
        self._ground_instance = instance
        if instance.formula is None:
            return
        keep = [_numeral(env[name]) for name in instance.names]
        targets = (z3.Ast * len(keep))(*(item.as_ast() for item in keep))
        context = instance.formula.ctx
        formula = instance.formula.as_ast()
        substituted = z3.Z3_substitute(context.ref(), formula, len(keep), instance.sources, targets)
        # no z3.simplify here: Z3's own preprocessing folds the numerals, and simplifying first measured slower
        self._ground = z3.BoolRef(substituted, context)
        self._assert(self._ground)

    def _holds_at(self, qty: float) -> bool | None:
        """Whether the asserted limits, every one assumed, hold at exactly `qty`: `qty` and the assumption
        literals substituted into the ground instance and reduced by Z3's rewriter, in exact rationals.
        The assignment is its own certificate (a model), so a `sat` needs no search. None when the
        rewriter cannot reduce it to true or false (e.g. a division by zero): ask the solver then."""
        instance = self._ground_instance
        if instance is None or instance.formula is None or self._ground is None:
            return True
        context = self.solver.ctx
        reference = context.ref()
        values = (z3.Ast * instance.tracked)(_numeral(qty).as_ast(), *instance.truths)
        substituted = z3.Z3_substitute(reference, self._ground.as_ast(), instance.tracked, instance.probes, values)
        reduced = z3.Z3_simplify(reference, substituted)
        if z3.Z3_is_eq_ast(reference, reduced, instance.true):
            return True
        if z3.Z3_is_eq_ast(reference, reduced, instance.false):
            return False
        return None

    def _assert(self, formula: z3.BoolRef) -> None:
        z3.Z3_solver_assert(formula.ctx.ref(), self.solver.solver, formula.as_ast())

    def _minimal_core(self, core: tuple[str, ...], checks: list[JSON]) -> tuple[str, ...]:
        """Drop every limit the core does not need (deletion-based): Z3's cores need not be minimal,
        and a denial must name only limits that really forbid the order."""
        by_code = {code: track for track in self.tracks if (code := self.codes[track.get_id()]) in core}
        kept = list(core)
        for code in core:
            trial = [by_code[other] for other in kept if other != code]
            if not trial:
                continue
            admissible_without, _ = self._check("minimise", ">", 0.0, checks, subset=trial)
            if not admissible_without:
                kept.remove(code)
        return tuple(kept)

    def _check(
        self,
        purpose: str,
        relation: str,
        qty: float,
        checks: list[JSON],
        only: z3.BoolRef | None = None,
        subset: list[z3.BoolRef] | None = None,
    ) -> tuple[bool, tuple[str, ...]]:
        if relation == "==" and only is None and subset is None:
            holds = self._holds_at(qty)
            # a definite answer at a point settles it, except that an unsat one asked with a purpose that
            # reports a core goes to the solver for that core
            if holds or (holds is False and purpose == "candidate"):
                result = "sat" if holds else "unsat"
                checks.append(
                    {"purpose": purpose, "qty": qty, "relation": relation, "result": result, "by": "evaluation"}
                )
                return holds, ()
        bound = _numeral(qty)
        context = self.solver.ctx
        # the probe atom itself is an assumption: cheaper than asserting `probe ⇒ atom` per check
        make = z3.Z3_mk_eq if relation == "==" else z3.Z3_mk_gt
        literal = z3.BoolRef(make(context.ref(), self._qty.as_ast(), bound.as_ast()), context)
        # the C API directly: Python-level `check(*literals)` re-casts every literal on every call
        tracks = subset if subset is not None else self._assumptions if only is None else [only]
        assumptions = (z3.Ast * (len(tracks) + 1))(*(item.as_ast() for item in tracks), literal.ast)
        result = z3.CheckSatResult(
            z3.Z3_solver_check_assumptions(context.ref(), self.solver.solver, len(assumptions), assumptions)
        )
        if result == z3.unknown:
            raise LimitsSolverError(f"limits engine: Z3 answered unknown ({self.solver.reason_unknown()})")
        core: tuple[str, ...] = ()
        if result == z3.unsat:
            # `unsat_core` holds its elements; read their ids without wrapping each in a Python object
            unsat_core = z3.AstVector(z3.Z3_solver_get_unsat_core(context.ref(), self.solver.solver), context)
            vector = unsat_core.vector
            identities = (
                z3.Z3_get_ast_id(context.ref(), z3.Z3_ast_vector_get(context.ref(), vector, index))
                for index in range(z3.Z3_ast_vector_size(context.ref(), vector))
            )
            core = tuple(sorted(self.codes[identity] for identity in identities if identity in self.codes))
        checks.append(
            {
                "purpose": purpose if only is None else f"{purpose} {self.codes[only.get_id()]} alone",
                "qty": qty,
                "relation": relation,
                "result": str(result),
                "by": "solver",
                "core": list(core),
            }
        )
        return result == z3.sat, core


class _Instance:
    """A formula to assert per decision and the constants to substitute in it."""

    __slots__ = ("_keep", "false", "formula", "names", "probes", "sources", "tracked", "true", "truths")

    def __init__(
        self,
        formula: z3.BoolRef | None,
        names: list[str],
        constants: dict[str, z3.ArithRef],
        qty: z3.ArithRef,
        tracks: list[z3.BoolRef],
    ) -> None:
        self.formula = formula
        self.names = names
        self.sources = (z3.Ast * len(names))(*(constants[name].as_ast() for name in names))
        # what `_holds_at` substitutes: qty, and every assumption literal by true
        self.tracked = len(tracks) + 1
        self.probes = (z3.Ast * self.tracked)(qty.as_ast(), *(track.as_ast() for track in tracks))
        true, false = z3.BoolVal(True, qty.ctx), z3.BoolVal(False, qty.ctx)
        self.truths = [true.as_ast()] * len(tracks)
        self.true, self.false = true.as_ast(), false.as_ast()
        self._keep = (true, false)  # owns the references `true`/`false` point into


def _mentions(item: CompiledLimit) -> frozenset[str]:
    """The constants a limit's implication mentions (its body's, and the growth guard's)."""
    names: set[str] = {"reduce_only", "growth_threshold"} if item.limit.applies_to == "growth" else set()
    pending: list[object] = [item.body]
    while pending:
        node = pending.pop()
        if isinstance(node, ir.Constant):
            names.add(node.name)
        elif isinstance(node, ir.Node):
            pending.extend(getattr(node, field) for field in node.__dataclass_fields__ if field != "uses_qty")
        elif isinstance(node, tuple):
            pending.extend(node)
    return frozenset(names)


_NUMERALS: dict[float, z3.ArithRef] = {}
_REAL_SORT: list[z3.SortRef] = []


def _numeral(number: float) -> z3.ArithRef:
    """A Z3 real numeral equal to the decimal `repr` of `number` (what `reference.py` uses too)."""
    cached = _NUMERALS.get(number)
    if cached is not None:
        return cached
    text = repr(number)
    if "e" in text or "E" in text:
        fraction = Fraction(text)
        text = f"{fraction.numerator}/{fraction.denominator}"
    context = z3.main_ctx()
    if not _REAL_SORT:
        _REAL_SORT.append(z3.RealSort(context))
    numeral = z3.ArithRef(z3.Z3_mk_numeral(context.ref(), text, _REAL_SORT[0].ast), context)
    if len(_NUMERALS) > 50_000:
        _NUMERALS.clear()
    _NUMERALS[number] = numeral
    return numeral
