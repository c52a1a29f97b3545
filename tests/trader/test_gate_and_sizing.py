"""The exchange-rules gate and fixed-notional sizing, including stop-and-reverse intents."""

from __future__ import annotations

import pytest

from core.decision import ReasonCode, Verdict
from core.intent import Intent
from core.orders import Side
from market.instruments import instrument_for
from trader.gate import ExchangeRulesGate, GateContext
from trader.sizing import FixedNotionalSizer

BTC = instrument_for("BTC")  # step 0.001, min notional 100 USDT
GATE = ExchangeRulesGate({BTC.symbol: BTC})
SIZER = FixedNotionalSizer()
PRICE = 50_000.0
FEE = 0.0005


def buy(notional: float, *, reverse: bool = False) -> Intent:
    return Intent(ts=0, symbol=BTC.symbol, side=Side.BUY, strategy_id="test", notional=notional, reverse=reverse)


def context(position_qty: float, available: float, leverage: float = 5.0) -> GateContext:
    return GateContext(
        mark_price=PRICE, position_qty=position_qty, available_balance=available, leverage=leverage, taker_fee=FEE
    )


def test_a_reversing_buy_while_short_is_one_order_closing_the_short_and_opening_the_long() -> None:
    intent, ctx = buy(1_000.0, reverse=True), context(position_qty=-0.03, available=10_000.0)

    decision = GATE.check(intent, ctx)
    quantity = SIZER.size(intent, decision, PRICE, BTC, ctx.position_qty)

    # 0.03 closes the short; 1000 / 50000 = 0.02 opens the long
    assert decision.verdict is Verdict.ADMIT
    assert quantity == pytest.approx(0.05, abs=1e-12)


def test_closing_the_opposite_position_frees_its_margin_for_the_new_one() -> None:
    # the short's initial margin at 5x: 0.03 * 50000 / 5 = 300 USDT comes back;
    # opening 0.02 needs 0.02 * 50000 * (1/5 + 0.0005) = 200.5, which only 50 + 300 covers
    intent, ctx = buy(1_000.0, reverse=True), context(position_qty=-0.03, available=50.0)

    decision = GATE.check(intent, ctx)

    assert decision.verdict is Verdict.ADMIT
    # affordable new exposure: 350 / (50000 * 0.2005) = 0.0349 → 0.034 on step, plus the 0.03 closed
    assert decision.max_qty == pytest.approx(0.064, abs=1e-12)


def test_a_reversal_that_cannot_afford_the_new_position_is_reduced_to_the_close() -> None:
    # a tiny short frees 0.001 * 50000 / 5 = 10 USDT: 10 + 1 cannot post margin for 100 USDT of BTC
    intent, ctx = buy(1_000.0, reverse=True), context(position_qty=-0.001, available=1.0)

    decision = GATE.check(intent, ctx)
    quantity = SIZER.size(intent, decision, PRICE, BTC, ctx.position_qty)

    assert decision.verdict is Verdict.REDUCE
    assert decision.reasons == (ReasonCode.INSUFFICIENT_MARGIN.value,)
    assert quantity == pytest.approx(0.001, abs=1e-12)


def test_the_same_unaffordable_intent_without_a_position_to_close_is_denied() -> None:
    decision = GATE.check(buy(1_000.0, reverse=True), context(position_qty=0.0, available=1.0))

    assert decision.verdict is Verdict.DENY
    assert decision.reasons == (ReasonCode.INSUFFICIENT_MARGIN.value,)


def test_a_reversing_intent_on_the_side_already_held_only_adds_its_own_size() -> None:
    intent, ctx = buy(1_000.0, reverse=True), context(position_qty=0.03, available=10_000.0)

    decision = GATE.check(intent, ctx)

    assert SIZER.size(intent, decision, PRICE, BTC, ctx.position_qty) == pytest.approx(0.02, abs=1e-12)


def test_a_new_position_below_the_minimum_notional_is_denied() -> None:
    decision = GATE.check(buy(50.0), context(position_qty=0.0, available=10_000.0))

    assert decision.verdict is Verdict.DENY
    assert decision.reasons == (ReasonCode.MIN_NOTIONAL.value,)


def test_sizing_never_exceeds_the_gates_max_qty() -> None:
    intent, ctx = buy(1_000.0), context(position_qty=0.0, available=150.0)

    decision = GATE.check(intent, ctx)
    quantity = SIZER.size(intent, decision, PRICE, BTC, ctx.position_qty)

    # 150 / (50000 * 0.2005) = 0.01496 → 0.014 on step: the 0.02 wanted is reduced
    assert decision.verdict is Verdict.REDUCE
    assert quantity == pytest.approx(0.014, abs=1e-12)


def test_closing_a_position_with_float_noise_is_not_mistaken_for_a_tiny_new_one() -> None:
    # 0.1 + 0.2 - 0.3 style noise: the short is 0.0069999999999999, the close-only order 0.007
    intent = buy(1_000.0, reverse=True)
    ctx = context(position_qty=-0.0069999999999999, available=10_000.0)
    decision = GATE.check(intent, ctx)

    assert GATE.confirm(intent, ctx, 0.007, decision) == ()
