"""Invariants of the simulated exchange over random orders on random OHLC paths.

Each example draws one or two symbols, a price path with gaps and wicks, a leverage and
margin mode per symbol, funding settlements (some between bars) and a sequence of
market, limit, post-only, stop and reduce-only orders sent at bar closes. The exchange
is observed at the moments an invariant must hold: after every row, after every fill
and around every liquidation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.instrument import Instrument
from core.orders import Liquidity, OrderRequest, OrderType, Side
from core.positions import MarginMode
from core.time import MINUTE_MS
from execution.margin import liquidation_price
from execution.simulator import SimulatedExchange, SimulatorConfig, _SimOrder
from market.grid import MarketGrid
from market.instruments import instrument_for
from tests.execution.harness import BTC, ETH, OHLC, START_MS, make_harness

INITIAL_BALANCE = 10_000.0
STARTING_PRICE = {BTC: 50_000.0, ETH: 3_000.0}
# up to ±0.3 % per settlement: thirty times Binance's usual 0.01 %
FUNDING_RATES = st.floats(-0.003, 0.003)
PROPERTY_SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@dataclass(frozen=True, slots=True)
class LiquidationRecord:
    isolated: bool
    margin_before: float  # isolated margin behind the position (isolated) or all isolated margin (cross)
    wallet_before: float
    wallet_after: float
    position_loss: float  # what closing cost: −realised P&L + clearance fee of the liquidation fills
    insurance_cover: float  # what the insurance fund paid for this liquidation

    @property
    def wallet_drop(self) -> float:
        return self.wallet_before - self.wallet_after


@dataclass(slots=True)
class Observations:
    available_after_opening: list[float] = field(default_factory=list)
    reduce_only_moves: list[tuple[float, float]] = field(default_factory=list)  # position before, after
    liquidations: list[LiquidationRecord] = field(default_factory=list)


class ObservedExchange(SimulatedExchange):
    """The simulated exchange, recording state right after each fill and around each liquidation."""

    def __init__(self, grid: MarketGrid, instruments: dict[str, Instrument], config: SimulatorConfig) -> None:
        super().__init__(grid, instruments, config)
        self.observed = Observations()

    def _trade(
        self,
        i: int,
        side: Side,
        quantity: float,
        price: float,
        fee_rate: float,
        liquidity: Liquidity,
        order: _SimOrder | None,
        is_liquidation: bool = False,
    ) -> str | None:
        before = self.quantity[i]
        rejection = super()._trade(i, side, quantity, price, fee_rate, liquidity, order, is_liquidation)
        if rejection is None:
            after = self.quantity[i]
            opened_risk = abs(after) > abs(before) or before * after < 0
            if opened_risk and not is_liquidation:
                self.observed.available_after_opening.append(self.available_balance())
            if order is not None and order.request.reduce_only:
                self.observed.reduce_only_moves.append((before, after))
        return rejection

    def _liquidate(self, i: int, price: float) -> None:
        isolated = self.margin_mode[i] is MarginMode.ISOLATED
        margin = self.isolated_margin[i] if isolated else self._isolated_margin_total()
        wallet_before, cover_before, fill_count = self.wallet, self.insurance_fund_cover, len(self.fills)
        super()._liquidate(i, price)
        loss = math.fsum(fill.fee - fill.realized_pnl for fill in self.fills[fill_count:])
        cover = self.insurance_fund_cover - cover_before
        self.observed.liquidations.append(LiquidationRecord(isolated, margin, wallet_before, self.wallet, loss, cover))


# ------------------------------------------------------------------------- strategies
@dataclass(frozen=True, slots=True)
class PlannedOrder:
    after_row: int  # sent at this row's close
    symbol: str
    side: Side
    order_type: OrderType
    size: float  # share of the position (reduce-only) or of the largest order margin and leverage allow
    offset: float  # limit or stop price relative to the mark
    reduce_only: bool
    post_only: bool


@dataclass(frozen=True, slots=True)
class Scenario:
    bars: dict[str, list[OHLC]]
    leverage: dict[str, float]
    margin_mode: dict[str, MarginMode]
    funding: dict[str, list[tuple[int, float]]]
    orders: list[PlannedOrder]
    latency_ms: int
    slippage_bps: float


@st.composite
def ohlc_path(draw: st.DrawFn, start: float, rows: int) -> list[OHLC]:
    """Bars with gaps between them and wicks beyond the body: low <= min(open, close), high >= max."""
    move = st.floats(-0.03, 0.03)
    wick = st.floats(0.0, 0.02)
    bars: list[OHLC] = []
    close = start
    for _ in range(rows):
        open_ = close * (1.0 + draw(move))
        close = open_ * (1.0 + draw(move))
        high = max(open_, close) * (1.0 + draw(wick))
        low = min(open_, close) * (1.0 - draw(wick))
        bars.append((open_, high, low, close))
    return bars


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    symbols = draw(st.sampled_from([(BTC,), (BTC, ETH)]))
    rows = draw(st.integers(3, 30))
    funding_moments = st.integers(START_MS + 1, START_MS + (rows - 1) * MINUTE_MS)
    order_types = st.sampled_from([OrderType.MARKET, OrderType.LIMIT, OrderType.STOP_MARKET])
    orders = draw(
        st.lists(
            st.builds(
                PlannedOrder,
                after_row=st.integers(0, rows - 2),
                symbol=st.sampled_from(symbols),
                side=st.sampled_from([Side.BUY, Side.SELL]),
                order_type=order_types,
                size=st.one_of(st.floats(0.01, 1.3), st.sampled_from([0.5, 0.9, 0.98, 0.995, 1.0])),
                offset=st.floats(-0.03, 0.03),
                reduce_only=st.sampled_from([False, False, True]),
                post_only=st.sampled_from([False, False, True]),
            ),
            min_size=1,
            max_size=16,
        )
    )
    return Scenario(
        bars={symbol: draw(ohlc_path(STARTING_PRICE[symbol], rows)) for symbol in symbols},
        leverage={symbol: draw(st.sampled_from([1.0, 3.0, 10.0, 20.0, 50.0, 100.0, 125.0])) for symbol in symbols},
        margin_mode={
            symbol: draw(st.sampled_from([MarginMode.CROSS, MarginMode.CROSS, MarginMode.ISOLATED]))
            for symbol in symbols
        },
        funding={
            symbol: sorted(set(draw(st.lists(st.tuples(funding_moments, FUNDING_RATES), max_size=3))))
            for symbol in symbols
        },
        orders=sorted(orders, key=lambda order: order.after_row),
        latency_ms=draw(st.sampled_from([0, 0, 60_000, 90_000])),
        slippage_bps=draw(st.sampled_from([0.0, 2.0])),
    )


def _request(plan: PlannedOrder, exchange: SimulatedExchange, instrument: Instrument) -> OrderRequest:
    i = exchange.symbols.index(plan.symbol)
    mark = exchange.mark[i]
    position = abs(exchange.quantity[i])
    if plan.reduce_only and position:
        quantity = position * plan.size
    else:
        leverage = exchange.leverage[i]
        bracket_cap = max(b.notional_cap for b in instrument.brackets if b.max_leverage >= leverage)
        buying_power = min(max(exchange.available_balance(), 0.0) * leverage, bracket_cap)
        quantity = buying_power * plan.size / mark
    quantity = max(instrument.round_qty_down(quantity), instrument.step_size)
    price = instrument.round_price(mark * (1.0 + plan.offset))
    return OrderRequest(
        plan.symbol,
        plan.side,
        plan.order_type,
        quantity,
        price=price if plan.order_type is OrderType.LIMIT else None,
        stop_price=price if plan.order_type is OrderType.STOP_MARKET else None,
        reduce_only=plan.reduce_only,
        post_only=plan.post_only and plan.order_type is OrderType.LIMIT,
    )


@dataclass(frozen=True, slots=True)
class Snapshot:
    wallet: float
    realized_pnl: float
    fees_paid: float
    funding_paid: float
    insurance_fund_cover: float
    fill_fees: float
    open_isolated_margins: tuple[float, ...]
    isolated_equity_over_maintenance: tuple[float, ...]  # per open isolated position, at current marks
    cross_equity_over_maintenance: float  # cross wallet + cross uPnL − cross maintenance (0 when no cross position)
    reported_vs_formula_liquidation: tuple[tuple[float | None, float | None], ...]  # per open position
    after_row: bool  # False: taken after a submission

    @classmethod
    def of(cls, exchange: SimulatedExchange, after_row: bool) -> Snapshot:
        open_isolated = [i for i in _open_positions(exchange) if exchange.margin_mode[i] is MarginMode.ISOLATED]
        open_cross = [i for i in _open_positions(exchange) if exchange.margin_mode[i] is MarginMode.CROSS]
        cross_wallet = exchange.wallet - sum(exchange.isolated_margin[i] for i in open_isolated)
        return cls(
            wallet=exchange.wallet,
            realized_pnl=exchange.realized_pnl,
            fees_paid=exchange.fees_paid,
            funding_paid=exchange.funding_paid,
            insurance_fund_cover=exchange.insurance_fund_cover,
            fill_fees=math.fsum(fill.fee for fill in exchange.fills),
            open_isolated_margins=tuple(exchange.isolated_margin[i] for i in open_isolated),
            isolated_equity_over_maintenance=tuple(
                exchange.isolated_margin[i] + _pnl_over_maintenance(exchange, i) for i in open_isolated
            ),
            cross_equity_over_maintenance=(
                cross_wallet + sum(_pnl_over_maintenance(exchange, i) for i in open_cross) if open_cross else 0.0
            ),
            reported_vs_formula_liquidation=tuple(
                (
                    position.liquidation_price,
                    _formula_liquidation_price(exchange, exchange.symbols.index(position.symbol)),
                )
                for position in exchange.positions()
            ),
            after_row=after_row,
        )


def _formula_liquidation_price(exchange: SimulatedExchange, i: int) -> float | None:
    """Binance's formula from scratch: isolated margin, or the cross wallet plus the other cross positions'
    unrealised P&L less their maintenance margin, at current marks."""
    if exchange.margin_mode[i] is MarginMode.ISOLATED:
        backing = exchange.isolated_margin[i]
    else:
        positions = _open_positions(exchange)
        backing = exchange.wallet - sum(
            exchange.isolated_margin[j] for j in positions if exchange.margin_mode[j] is MarginMode.ISOLATED
        )
        backing += sum(
            _pnl_over_maintenance(exchange, j)
            for j in positions
            if j != i and exchange.margin_mode[j] is MarginMode.CROSS
        )
    return liquidation_price(exchange.instruments[i], exchange.quantity[i], exchange.entry_price[i], backing)


def _open_positions(exchange: SimulatedExchange) -> list[int]:
    return [i for i, quantity in enumerate(exchange.quantity) if quantity]


def _pnl_over_maintenance(exchange: SimulatedExchange, i: int) -> float:
    """Unrealised P&L less maintenance margin of symbol i's position at its current mark."""
    quantity, mark = exchange.quantity[i], exchange.mark[i]
    maintenance = exchange.instruments[i].maintenance_margin(abs(quantity) * mark)
    return quantity * (mark - exchange.entry_price[i]) - maintenance


def run(scenario: Scenario) -> tuple[ObservedExchange, list[Snapshot]]:
    """Play the scenario row by row; a snapshot follows every row and every submission."""
    harness = make_harness(
        scenario.bars,
        funding=scenario.funding,
        exchange_class=ObservedExchange,
        initial_balance=INITIAL_BALANCE,
        leverage=scenario.leverage,
        margin_mode=scenario.margin_mode,
        latency_ms=scenario.latency_ms,
        slippage_bps=scenario.slippage_bps,
    )
    exchange = harness.exchange
    assert isinstance(exchange, ObservedExchange)
    instruments = {symbol: instrument_for(symbol) for symbol in scenario.bars}
    snapshots: list[Snapshot] = []
    pending = list(scenario.orders)
    for row in range(harness.grid.length):
        harness.step()
        snapshots.append(Snapshot.of(exchange, after_row=True))
        while pending and pending[0].after_row == row:
            plan = pending.pop(0)
            harness.submit(_request(plan, exchange, instruments[plan.symbol]))
            snapshots.append(Snapshot.of(exchange, after_row=False))
    return exchange, snapshots


# ------------------------------------------------------------------------- properties
@PROPERTY_SETTINGS
@given(scenarios())
def test_wallet_is_deposit_plus_realised_pnl_minus_fees_and_funding_plus_insurance_cover(scenario: Scenario) -> None:
    for snapshot in run(scenario)[1]:
        expected = (
            INITIAL_BALANCE
            + snapshot.realized_pnl
            - snapshot.fees_paid
            - snapshot.funding_paid
            + snapshot.insurance_fund_cover
        )
        assert snapshot.wallet == pytest.approx(expected, abs=1e-6)


@PROPERTY_SETTINGS
@given(scenarios())
def test_fees_paid_is_the_sum_of_every_fills_fee(scenario: Scenario) -> None:
    for snapshot in run(scenario)[1]:
        assert snapshot.fees_paid == pytest.approx(snapshot.fill_fees, abs=1e-6)


@PROPERTY_SETTINGS
@given(scenarios())
def test_no_fill_that_opens_risk_leaves_available_balance_negative(scenario: Scenario) -> None:
    exchange, _ = run(scenario)

    assert all(available >= -1e-9 for available in exchange.observed.available_after_opening)


@PROPERTY_SETTINGS
@given(scenarios())
def test_isolated_margin_of_an_open_position_never_goes_negative(scenario: Scenario) -> None:
    for snapshot in run(scenario)[1]:
        assert all(margin >= 0.0 for margin in snapshot.open_isolated_margins)


@PROPERTY_SETTINGS
@given(scenarios())
def test_no_position_ends_a_row_at_or_below_its_maintenance_margin(scenario: Scenario) -> None:
    # the in-bar walk must have liquidated any position whose equity reached maintenance on the way to the close
    for snapshot in run(scenario)[1]:
        if snapshot.after_row:
            assert all(excess > -1e-6 for excess in snapshot.isolated_equity_over_maintenance)
            assert snapshot.cross_equity_over_maintenance > -1e-6


@PROPERTY_SETTINGS
@given(scenarios())
def test_reported_liquidation_prices_follow_the_margin_formula_at_current_marks(scenario: Scenario) -> None:
    for snapshot in run(scenario)[1]:
        for reported, formula in snapshot.reported_vs_formula_liquidation:
            assert (reported is None) == (formula is None)
            if reported is not None:
                assert reported == pytest.approx(formula, rel=1e-9)


@PROPERTY_SETTINGS
@given(scenarios())
def test_an_isolated_liquidation_costs_the_wallet_at_most_the_positions_margin(scenario: Scenario) -> None:
    exchange, _ = run(scenario)

    for liquidation in exchange.observed.liquidations:
        if liquidation.isolated:
            assert liquidation.wallet_drop <= liquidation.margin_before + 1e-6


@PROPERTY_SETTINGS
@given(scenarios())
def test_the_insurance_fund_pays_what_an_isolated_margin_cannot(scenario: Scenario) -> None:
    exchange, _ = run(scenario)

    for liquidation in exchange.observed.liquidations:
        if liquidation.isolated:
            shortfall = max(liquidation.position_loss - liquidation.margin_before, 0.0)
            assert liquidation.insurance_cover == pytest.approx(shortfall, abs=1e-6)
            assert liquidation.wallet_drop + liquidation.insurance_cover == pytest.approx(
                liquidation.position_loss, abs=1e-6
            )


@PROPERTY_SETTINGS
@given(scenarios())
def test_a_cross_liquidation_never_takes_isolated_margin(scenario: Scenario) -> None:
    exchange, _ = run(scenario)

    for liquidation in exchange.observed.liquidations:
        if not liquidation.isolated:
            assert liquidation.wallet_after >= liquidation.margin_before - 1e-6


@PROPERTY_SETTINGS
@given(scenarios())
def test_reduce_only_orders_never_change_a_positions_sign(scenario: Scenario) -> None:
    exchange, _ = run(scenario)

    for before, after in exchange.observed.reduce_only_moves:
        assert before * after >= 0.0
        assert abs(after) < abs(before)
