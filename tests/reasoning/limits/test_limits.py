"""Each limit of rules/limits.toml, by hand-computed cases; max_qty, overrides, reductions, fail-closed.

The base case (helpers.make_context / make_intent): BTC mark 50,000, ATR 100, equity 10,000 USDT, flat,
market buy at 10x with a stop 2 ATR below. An order of 0.1 BTC (5,000 USDT) is far from every limit.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from core.orders import Side
from reasoning.context import VolatilityRegime
from reasoning.limits.errors import LimitsContextError, LimitsSolverError
from reasoning.limits.prover import LimitsEngine
from tests.reasoning.limits.helpers import LIMITS_FILE, make_context, make_intent

ENGINE = LimitsEngine(LIMITS_FILE)


def evaluate(qty: float, intent: dict[str, Any] | None = None, **context: Any) -> tuple[tuple[str, ...], float | None]:
    intent_fields = dict(intent or {})
    side = intent_fields.pop("side", Side.BUY)
    symbol = intent_fields.pop("symbol", "BTC/USDT:USDT")
    result = ENGINE.evaluate(make_intent(side, symbol, **intent_fields), make_context(symbol, **context), qty)
    return result.denials, result.max_qty


def test_the_base_case_is_admitted() -> None:
    denials, max_qty = evaluate(0.1)
    assert denials == ()
    # net exposure binds first: 40,000 / 50,000 = 0.8 BTC
    assert max_qty == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("intent", "context", "expected"),
    [
        # leverage 25 > 20
        ({"leverage": 25.0}, {}, ("L1.max_leverage",)),
        # high volatility: 15 > 10 (and 15 <= 20)
        (
            {"leverage": 15.0},
            {"market": {"volatility_regime": VolatilityRegime.HIGH}},
            ("L1.max_leverage_high_volatility",),
        ),
        # extreme volatility: 5 x 1 > 3 (5 <= 10 passes the high-regime limit)
        (
            {"leverage": 5.0},
            {"market": {"volatility_regime": VolatilityRegime.EXTREME}},
            ("L1.max_leverage_extreme_volatility",),
        ),
        ({"stop_loss": None}, {}, ("L1.stop_required",)),
        # stop 20 below: 0.2 ATR < 0.5
        ({"stop_loss": 49_980.0}, {}, ("L1.min_stop_distance_atr",)),
        # stop on the wrong side of a buy: -2 ATR < 0.5
        ({"stop_loss": 50_200.0}, {}, ("L1.min_stop_distance_atr",)),
        # stop 1,000 below: 10 ATR > 6
        ({"stop_loss": 49_000.0}, {}, ("L1.max_stop_distance_atr",)),
        # ATR 1,000 at 20x: 50,000 x (1/20 - 0.004) / 1,000 = 2.3 ATR < 4 (stop 2 ATR below)
        ({"leverage": 20.0, "stop_loss": 48_000.0}, {"market": {"atr": 1_000.0}}, ("L1.min_liquidation_distance_atr",)),
        # gross 60,000 already: any buy adds to it
        ({}, {"portfolio": {"gross_exposure": 60_000.0}}, ("L2.max_gross_exposure",)),
        # net 40,000 long: any buy adds (gross 40,000 + 5,000 stays under 60,000)
        ({}, {"portfolio": {"gross_exposure": 40_000.0, "net_exposure": 40_000.0}}, ("L2.max_net_exposure",)),
        ({}, {"portfolio": {"max_correlation": 0.9}}, ("L2.max_position_correlation",)),
        # 5 positions open, flat here: the order opens a sixth
        ({}, {"portfolio": {"open_positions": 5}}, ("L2.max_open_positions",)),
        ({}, {"account": {"daily_pnl": -301.0}}, ("L3.max_daily_loss",)),
        ({}, {"account": {"drawdown": 0.11}}, ("L3.max_drawdown",)),
        # 5,000 of 10,000 equity in use: 0.5 already, any new margin exceeds it
        ({}, {"account": {"used_margin": 5_000.0}}, ("L3.max_margin_utilisation",)),
        ({}, {"market": {"volatility": 0.011}}, ("L4.max_volatility",)),
        ({}, {"account": {"consecutive_losses": 5}}, ("L4.max_consecutive_losses",)),
        ({}, {"model": {"calibration_error": 0.09}}, ("L5.max_calibration_error",)),
        # fallback model at 10x > 5x
        ({}, {"model": {"is_fallback": True}}, ("L5.fallback_max_leverage",)),
        # newest bar 90,001 ms old > 90,000
        ({}, {"market": {"last_bar_ts": 1_700_000_000_000 - 90_001}}, ("L6.stale_data",)),
        ({}, {"venue": {"rate_limit_used": 0.95}}, ("L6.max_rate_limit_usage",)),
        # limit 51,500: 3 % above mark > 2 % (stop 2 ATR below the limit price)
        ({"limit_price": 51_500.0, "stop_loss": 51_300.0}, {}, ("L7.price_collar",)),
        # 5 orders in the last second, + this one = 6 > 5
        ({}, {"account": {"orders_last_second": 5}}, ("L7.max_orders_per_second",)),
        # (500 + 1) / 10 = 50.1 > 50
        ({}, {"account": {"orders_today": 500, "trades_today": 10}}, ("L7.max_order_to_trade_ratio",)),
        # 20 open + this one = 21 > 20
        ({}, {"account": {"open_orders": 20}}, ("L7.max_open_orders",)),
    ],
)
def test_a_breached_limit_denies_with_its_reason_code(
    intent: dict[str, Any], context: dict[str, Any], expected: tuple[str, ...]
) -> None:
    denials, max_qty = evaluate(0.1, intent, **context)
    assert denials == expected
    assert max_qty == 0.0


def test_a_300k_btc_position_exceeds_max_position_notional_of_250k() -> None:
    # long 6 BTC x 50,000 = 300,000 > 250,000 (BTC override); it also exceeds the 60,000 gross and 40,000 net caps
    denials, _ = evaluate(
        0.1, position={"quantity": 6.0}, portfolio={"gross_exposure": 300_000.0, "net_exposure": 300_000.0}
    )
    assert denials == ("L1.max_position_notional", "L2.max_gross_exposure", "L2.max_net_exposure")


def test_max_qty_is_bound_by_the_default_position_notional_cap() -> None:
    # DOGE at 0.10, long 250,000 (25,000 USDT); default cap 30,000 USDT → 50,000 more DOGE.
    # net 40,000 allows 150,000; gross 60,000 allows 350,000; margin (2,500 used, 5,000 allowed) at 10x
    # allows 250,000; max order qty 100,000.
    intent = {"symbol": "DOGE/USDT:USDT", "stop_loss": 0.0996}
    denials, max_qty = evaluate(
        80_000.0,
        intent,
        market={"mark_price": 0.1, "atr": 0.0002},
        position={"quantity": 250_000.0},
        portfolio={"gross_exposure": 25_000.0, "net_exposure": 25_000.0, "open_positions": 1},
        account={"used_margin": 2_500.0},
    )
    assert denials == ()
    assert max_qty == pytest.approx(50_000.0)


def test_max_qty_is_bound_by_margin_utilisation() -> None:
    # 4,000 of 10,000 in use; 0.5 allows 1,000 more margin = 10,000 USDT at 10x = 0.2 BTC (net allows 0.8)
    result = ENGINE.evaluate(make_intent(), make_context(account={"used_margin": 4_000.0}), 1.0)
    assert result.denials == ()
    assert result.max_qty == pytest.approx(0.2)
    assert result.proof["binding"] == ["L3.max_margin_utilisation"]


def test_a_per_symbol_override_replaces_the_default_value() -> None:
    # reduce-only buys of 25 against a short of 30, both symbols at 3,000: only all-order limits apply.
    # ETH: max_order_value override 60,000 → 20 ETH. An unlisted symbol: default 20,000 → 6.667.
    reduce = {"reduce_only": True, "stop_loss": None}
    context: dict[str, Any] = {"market": {"mark_price": 3_000.0, "atr": 10.0}, "position": {"quantity": -30.0}}
    _, eth_max = evaluate(25.0, {**reduce, "symbol": "ETH/USDT:USDT"}, **context)
    _, other_max = evaluate(25.0, {**reduce, "symbol": "XRP/USDT:USDT"}, **context)
    assert eth_max == pytest.approx(20.0)
    assert other_max == pytest.approx(20_000.0 / 3_000.0)


def test_max_qty_is_bound_by_the_max_order_qty() -> None:
    # DOGE at 0.10, reduce-only buy of 120,000 against a 150,000 short: max order qty 100,000
    # (value 100,000 x 0.1 = 10,000 <= 20,000)
    intent = {"symbol": "DOGE/USDT:USDT", "reduce_only": True, "stop_loss": None}
    result_denials, max_qty = evaluate(
        120_000.0, intent, market={"mark_price": 0.1, "atr": 0.0002}, position={"quantity": -150_000.0}
    )
    assert result_denials == ()
    assert max_qty == pytest.approx(100_000.0)


EVERY_GROWTH_LIMIT_BREACHED: dict[str, Any] = {
    "position": {"quantity": 6.0},  # 300,000 USDT long
    "portfolio": {"gross_exposure": 300_000.0, "net_exposure": 300_000.0, "max_correlation": 0.99, "open_positions": 9},
    "account": {"daily_pnl": -900.0, "drawdown": 0.3, "used_margin": 9_000.0, "consecutive_losses": 9},
    "market": {"volatility": 0.05, "price_change_pct": 0.1, "volatility_regime": VolatilityRegime.EXTREME},
    "model": {"drift_detected": True, "calibration_error": 0.5, "is_fallback": True},
    "venue": {"error_rate": 0.5},
}
SELL_WITHOUT_STOP: dict[str, Any] = {"side": Side.SELL, "stop_loss": None, "leverage": 50.0}


def test_a_reduce_only_order_is_never_denied_by_growth_limits() -> None:
    # only all-order limits bind: max order qty 2 BTC, max order value 100,000 / 50,000 = 2
    denials, max_qty = evaluate(1.0, {**SELL_WITHOUT_STOP, "reduce_only": True}, **EVERY_GROWTH_LIMIT_BREACHED)
    assert denials == ()
    assert max_qty == pytest.approx(2.0)


def test_a_partial_close_is_admitted_with_every_growth_limit_breached() -> None:
    # selling 1 of 6 shrinks the position; max_qty 2 is the order cap (a full close needs 3 orders)
    denials, max_qty = evaluate(1.0, SELL_WITHOUT_STOP, **EVERY_GROWTH_LIMIT_BREACHED)
    assert denials == ()
    assert max_qty == pytest.approx(2.0)


def test_a_full_close_is_admitted_with_every_growth_limit_breached() -> None:
    context = {**EVERY_GROWTH_LIMIT_BREACHED, "position": {"quantity": 1.5}}
    denials, max_qty = evaluate(1.5, SELL_WITHOUT_STOP, **context)
    assert denials == ()
    assert max_qty == pytest.approx(1.5)  # flipping short would grow risk


def test_a_flip_is_reduced_to_the_close_when_growth_limits_are_breached() -> None:
    context = {**EVERY_GROWTH_LIMIT_BREACHED, "position": {"quantity": 1.5}}
    result = ENGINE.evaluate(make_intent(**SELL_WITHOUT_STOP), make_context(**context), 1.8)
    assert result.denials == ()
    assert result.max_qty == 1.5
    assert result.proof["binding"]  # growth-only limits, named by the unsat core of "qty > 1.5"


def test_an_all_orders_limit_still_denies_a_reduction() -> None:
    denials, _ = evaluate(
        0.5, {**SELL_WITHOUT_STOP, "reduce_only": True}, position={"quantity": 1.0}, venue={"rate_limit_used": 0.99}
    )
    assert denials == ("L6.max_rate_limit_usage",)


def test_a_stop_and_reverse_order_is_judged_whole_and_its_closing_part_never_counts_as_growth() -> None:
    # short 1.5 BTC, a reversing buy of 2.5 in all: the venue order is 2.5 > max order qty 2 → at most 2
    portfolio = {"gross_exposure": 75_000.0, "net_exposure": -75_000.0}
    context = make_context(position={"quantity": -1.5}, portfolio=portfolio)
    result = ENGINE.evaluate(make_intent(reverse=True), context, 2.5)
    assert result.denials == ()
    assert result.max_qty == pytest.approx(2.0)
    # 2 BTC x 50,000 = 100,000: the order qty and order value caps bind at the same point
    assert set(result.proof["binding"]) <= {"L7.max_order_qty", "L7.max_order_value"}


def test_a_reversal_blocked_by_a_growth_limit_is_reduced_to_the_close() -> None:
    # after 5 losses in a row no new risk: the reversing buy may only close the 1.5 short
    context = make_context(position={"quantity": -1.5}, account={"consecutive_losses": 5})
    result = ENGINE.evaluate(make_intent(reverse=True), context, 2.5)
    assert result.denials == ()
    assert result.max_qty == pytest.approx(1.5)


def test_prove_order_admits_an_admissible_sized_order() -> None:
    result = ENGINE.prove_order(make_intent(), make_context(), 0.5)
    assert result.denials == ()
    assert result.proof["result"] == "sat"


def test_prove_order_denies_a_sized_order_above_max_qty_naming_the_limit() -> None:
    # 0.9 BTC: net 45,000 > 40,000
    result = ENGINE.prove_order(make_intent(), make_context(), 0.9)
    assert result.denials == ("L2.max_net_exposure",)


def test_the_proof_records_the_ruleset_constants_and_checks() -> None:
    result = ENGINE.evaluate(make_intent(), make_context(), 1.0)
    proof = result.proof
    assert proof["ruleset_hash"] == ENGINE.ruleset_hash
    assert proof["constants"]["mark_price"] == 50_000.0
    assert proof["constants"]["max_position_notional"] == 250_000.0  # BTC override
    assert proof["result"] == "unsat"
    assert proof["max_qty"] == pytest.approx(0.8)
    assert [check["result"] for check in proof["checks"]] == ["sat", "unsat"]


def test_a_missing_fact_raises_instead_of_admitting() -> None:
    with pytest.raises(LimitsContextError, match="mark_price"):
        ENGINE.evaluate(make_intent(), make_context(market={"mark_price": math.nan}), 0.1)


def test_an_exhausted_solver_budget_fails_closed() -> None:
    starved = LimitsEngine(LIMITS_FILE, rlimit=1)
    with pytest.raises(LimitsSolverError, match="unknown"):
        starved.evaluate(make_intent(), make_context(), 0.1)
