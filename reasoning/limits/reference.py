"""An independent plain-Python evaluator of `limits.toml`, the oracle of the property tests.

It shares nothing with the Z3 path but the facts: it reads the file with tomllib, interprets each
constraint's Python `ast` directly, computes the qty-dependent vocabulary by its own formulas (not the
definitions in `vocabulary.DERIVED`), decides risk growth from its definition (|position after| >
|position| or a flip), and calculates in exact fractions of the facts' decimal `repr` — the same numbers
Z3 is given — so a boundary is judged the same way by both.
"""

from __future__ import annotations

import ast
import tomllib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from core.intent import Intent
from reasoning.context import DecisionContext
from reasoning.limits.vocabulary import decision_constants


@dataclass(frozen=True, slots=True)
class ReferenceLimit:
    code: str
    name: str
    value: float
    overrides: dict[str, float]
    growth_only: bool
    expression: ast.expr


class ReferenceEvaluator:
    def __init__(self, path: str | Path) -> None:
        document = tomllib.loads(Path(path).read_text())
        self.limits = tuple(
            ReferenceLimit(
                code=f"{table['layer']}.{name}",
                name=name,
                value=float(table["value"]),
                overrides={symbol: float(value) for symbol, value in table.get("overrides", {}).items()},
                growth_only=table["applies_to"] == "growth",
                expression=ast.parse(f"({table['constraint']}\n)", mode="eval").body,
            )
            for name, table in document["limits"].items()
        )

    def violations(self, intent: Intent, context: DecisionContext, qty: float) -> list[str]:
        """Reason codes of every limit that applies to an order of `qty` and is broken by it."""
        env = self.environment(intent, context, qty)
        grows = _grows(env)
        return [
            limit.code
            for limit in self.limits
            if (grows or not limit.growth_only) and not _truth(_evaluate(limit.expression, env))
        ]

    def environment(self, intent: Intent, context: DecisionContext, qty: float) -> dict[str, Fraction]:
        env = {name: _exact(value) for name, value in decision_constants(intent, context).items()}
        for limit in self.limits:
            env[limit.name] = _exact(limit.overrides.get(intent.symbol, limit.value))
        q = _exact(qty)
        env["qty"] = q
        order_qty = env["close_qty"] + q
        position, after = env["position"], env["position"] + env["side"] * order_qty
        env["order_qty"] = order_qty
        env["position_after"] = after
        env["order_notional"] = order_qty * env["order_price"]
        env["notional_after"] = abs(after) * env["mark_price"]
        env["gross_exposure_after"] = env["gross_exposure"] + (abs(after) - abs(position)) * env["mark_price"]
        env["net_exposure_after"] = env["net_exposure"] + env["side"] * order_qty * env["mark_price"]
        env["open_positions_after"] = env["open_positions"] - (position != 0) + (after != 0)
        margin_change = (abs(after) - abs(position)) * env["order_price"] / env["leverage"]
        env["margin_ratio_after"] = (env["used_margin"] + margin_change) / env["equity"]
        return env


def _grows(env: dict[str, Fraction]) -> bool:
    if env["reduce_only"] == 1:
        return False
    before, after = env["position"], env["position_after"]
    return abs(after) > abs(before) or after * before < 0


def _exact(number: float) -> Fraction:
    return Fraction(repr(float(number)))


Value = Fraction | bool


def _truth(value: Value) -> bool:
    return bool(value)


def _evaluate(node: ast.expr, env: dict[str, Fraction]) -> Value:
    match node:
        case ast.Name(id=name):
            return env[name]
        case ast.Constant(value=bool() as truth):
            return truth
        case ast.Constant(value=int() | float() as number):
            return _exact(number)
        case ast.UnaryOp(op=ast.Not(), operand=operand):
            return not _truth(_evaluate(operand, env))
        case ast.UnaryOp(op=ast.USub(), operand=operand):
            return -Fraction(_evaluate(operand, env))
        case ast.UnaryOp(op=ast.UAdd(), operand=operand):
            return _evaluate(operand, env)
        case ast.BinOp(left=left, op=op, right=right):
            first, second = Fraction(_evaluate(left, env)), Fraction(_evaluate(right, env))
            if isinstance(op, ast.Add):
                return first + second
            if isinstance(op, ast.Sub):
                return first - second
            if isinstance(op, ast.Mult):
                return first * second
            return first / second
        case ast.BoolOp(op=ast.And(), values=values):
            return all(_truth(_evaluate(item, env)) for item in values)
        case ast.BoolOp(values=values):
            return any(_truth(_evaluate(item, env)) for item in values)
        case ast.Compare(left=left, ops=ops, comparators=comparators):
            current = _evaluate(left, env)
            for comparison, right in zip(ops, comparators, strict=True):
                following = _evaluate(right, env)
                if not _compare(comparison, Fraction(current), Fraction(following)):
                    return False
                current = following
            return True
        case ast.IfExp(test=test, body=body, orelse=orelse):
            return _evaluate(body if _truth(_evaluate(test, env)) else orelse, env)
        case ast.Call(func=ast.Name(id="abs"), args=[argument]):
            return abs(Fraction(_evaluate(argument, env)))
        case ast.Call(func=ast.Name(id="min"), args=arguments):
            return min(Fraction(_evaluate(item, env)) for item in arguments)
        case ast.Call(func=ast.Name(id="max"), args=arguments):
            return max(Fraction(_evaluate(item, env)) for item in arguments)
    raise ValueError(f"reference evaluator: unsupported expression {ast.dump(node)}")


def _compare(op: ast.cmpop, first: Fraction, second: Fraction) -> bool:
    match op:
        case ast.Lt():
            return first < second
        case ast.LtE():
            return first <= second
        case ast.Gt():
            return first > second
        case ast.GtE():
            return first >= second
        case ast.Eq():
            return first == second
        case ast.NotEq():
            return first != second
    raise ValueError(f"reference evaluator: unsupported comparison {ast.dump(op)}")
