"""A simulated Binance-style USDT-M linear perpetual exchange (one-way position mode).

Written by hand because no maintained Python library models perpetual futures with
funding, mark-price margin, brackets and in-bar liquidation (backtesting.py and
vectorbt model spot-like margin only; nautilus_trader needs its own data catalogue).

What it models
--------------
* Fees: maker / taker rates on every fill's notional; the liquidation clearance fee.
* Funding at each settlement of the symbol's `FundingSchedule`: the account pays
  `position_qty * mark_price * rate` (longs pay shorts when the rate is positive). The
  mark is taken from the mark file at the settlement time, else the bar's open.
* Mark price: the bar prices stand in for the mark inside a bar (no 1-minute mark file
  exists in the data); margin, unrealised P&L and liquidation use it.
* Isolated and cross margin, leverage per symbol, maintenance-margin brackets
  (`execution.margin`). An order that would leave the account unable to post initial
  margin is rejected with `EX.insufficient_margin`; one above the bracket's leverage
  with `EX.max_leverage`.
* Orders: market, limit (GTC), post-only limit (GTX: expires if it would cross),
  stop-market, reduce-only (clipped, never flips a position); tick size, step size
  and minimum notional checked on submission.
* Latency: an order submitted at time `ts` becomes active at the first bar whose open
  time is >= ts + latency. Decisions are made at a bar's close, so they act no earlier
  than the next bar's open.

The OHLC path assumption (inside one bar)
-----------------------------------------
Price moves from the previous mark to the open (the *gap*), then open → low → high →
close when the bar closed at or above its open, else open → high → low → close. Every
trigger (resting limit, stop, liquidation price) is taken in the order the path meets
it. A resting limit fills at its own price as maker and needs the price to trade
*through* it (touching is not enough: queue position is unknown). In the gap, stops and
liquidations execute at the open (no trading happened in between); limits at their own
price. Newly active orders meet the open first: a market order fills at the open, a
limit that would cross fills at the open as taker (or expires if post-only).

Liquidation
-----------
When a position's equity falls to its maintenance margin (isolated: its margin plus
unrealised P&L; cross: the cross wallet plus all cross unrealised P&L against their
total maintenance margin), the position is closed at the liquidation price (or the
open, if the gap jumped past it) and charged the clearance fee, capped at what equity
remains. Equity below zero after that is covered by the exchange's insurance fund and
recorded as `insurance_fund_cover`, so a liquidation never takes more than the margin
behind the position.
"""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass, field

import numpy as np
from mypy_extensions import mypyc_attr

from core.decision import ReasonCode
from core.errors import OrderRejected, UnknownSymbolError
from core.instrument import Instrument
from core.orders import Fill, Liquidity, Order, OrderRequest, OrderStatus, OrderType, Side
from core.positions import Balance, FundingPayment, MarginMode, Position
from execution.margin import initial_margin, liquidation_price
from market.grid import MarketGrid

_EPS = 1e-12
_SCAN_WITH_NUMPY_FROM = 48  # rows; below this a Python loop over lists beats numpy's call overhead


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    initial_balance: float = 10_000.0
    maker_fee: float = 0.0002  # Binance USDT-M regular tier: 0.02% maker
    taker_fee: float = 0.0005  # and 0.05% taker
    latency_ms: int = 0
    slippage_bps: float = 0.0  # added against the taker on market, stop and marketable fills
    default_leverage: float = 5.0
    default_margin_mode: MarginMode = MarginMode.CROSS
    leverage: dict[str, float] = field(default_factory=dict)  # per-symbol overrides
    margin_mode: dict[str, MarginMode] = field(default_factory=dict)


@dataclass(slots=True)
class _SimOrder:
    order_id: str
    request: OrderRequest
    symbol_index: int
    created_ts: int
    active_row: int
    status: OrderStatus = OrderStatus.NEW
    resting: bool = False
    filled_qty: float = 0.0
    average_price: float = 0.0
    reject_reason: str = ""
    updated_ts: int = 0
    trigger: _TriggerLevel | None = None  # for limit and stop orders, set once validated

    def snapshot(self) -> Order:
        return Order(
            order_id=self.order_id,
            request=self.request,
            status=self.status,
            created_ts=self.created_ts,
            filled_qty=self.filled_qty,
            average_price=self.average_price,
            reject_reason=self.reject_reason,
            updated_ts=self.updated_ts,
        )


@dataclass(frozen=True, slots=True)
class _TriggerLevel:
    """Where a resting order triggers: the price level, the direction the price must move, strictness.

    A resting limit needs the price to trade *through* its level (strict); a stop triggers on
    touching it (inclusive). Buy limits and sell stops trigger on the way down, the others up.
    """

    price: float
    falling: bool
    strict: bool

    @classmethod
    def of(cls, request: OrderRequest) -> _TriggerLevel | None:
        if request.order_type is OrderType.LIMIT:
            assert request.price is not None
            return cls(request.price, request.side is Side.BUY, strict=True)
        if request.order_type is OrderType.STOP_MARKET:
            assert request.stop_price is not None
            return cls(request.stop_price, request.side is Side.SELL, strict=False)
        return None

    def crossed(self, start: float, end: float) -> bool:
        """Whether the straight price move start → end meets this level."""
        if self.falling:
            return end < start and (end < self.price if self.strict else end <= self.price) and self.price <= start
        return start < end and start <= self.price and (self.price < end if self.strict else self.price <= end)


# tests observe fills and liquidations from an interpreted subclass
@mypyc_attr(allow_interpreted_subclasses=True)
class SimulatedExchange:
    """Implements `execution.venue.Venue` over a `MarketGrid`, driven row by row by the loop."""

    def __init__(self, grid: MarketGrid, instruments: dict[str, Instrument], config: SimulatorConfig) -> None:
        missing = [symbol for symbol in grid.symbols if symbol not in instruments]
        if missing:
            raise UnknownSymbolError(f"no instrument definition for {', '.join(missing)}")
        self.grid = grid
        self.config = config
        self.symbols = grid.symbols
        self._index = {symbol: i for i, symbol in enumerate(grid.symbols)}
        self.instruments = [instruments[symbol] for symbol in grid.symbols]
        count = len(grid.symbols)
        self.quantity = [0.0] * count
        self.entry_price = [0.0] * count
        self.isolated_margin = [0.0] * count
        self.mark = [float(grid.close_ffill[i, 0]) if grid.present[i, 0] else float("nan") for i in range(count)]
        self.leverage = [float(config.leverage.get(s, config.default_leverage)) for s in grid.symbols]
        self.margin_mode = [config.margin_mode.get(s, config.default_margin_mode) for s in grid.symbols]
        self.liquidation = [float("nan")] * count
        # any change of positions, wallet or marks bumps the generation; caches keyed on it
        self._generation = 0
        self._liquidation_generation = [-1] * count
        self._cross_generation = -1
        self._position_generation = 0  # bumped when positions open, close or change mode
        self._cross_indices_generation = -1
        self._cross_indices: list[int] = []
        self._cross_safe_key: tuple[int, float] = (-1, 0.0)
        self._cross_safe = False
        self._cross_terms: dict[int, float] = {}
        self._cross_backing = 0.0
        lists = grid.lists()
        self._open = lists.open
        self._high = lists.high
        self._low = lists.low
        self._close_by_row = lists.close_by_row
        self._ts = lists.ts
        self._funding_rows = [schedule.grid_index.tolist() for schedule in grid.funding]
        self._brackets = [_BracketTable.of(instrument) for instrument in self.instruments]
        self._history_low = lists.lowest
        self._history_high = lists.highest
        self.wallet = config.initial_balance
        self.realized_pnl = 0.0
        self.fees_paid = 0.0
        self.funding_paid = 0.0
        self.insurance_fund_cover = 0.0
        self.fills: list[Fill] = []
        self.funding_payments: list[FundingPayment] = []
        self.orders: dict[str, _SimOrder] = {}
        self._working: list[list[_SimOrder]] = [[] for _ in range(count)]
        self._funding_pointer = [0] * count
        self._order_ids = itertools.count(1)
        # symbols whose position or orders changed since the driver last asked (`pop_changed_symbols`)
        self._changed_symbols: set[int] = set()
        self.now_ts = int(grid.ts[0])
        for i, leverage in enumerate(self.leverage):
            self._check_leverage_setting(i, leverage)

    # ----------------------------------------------------------------- Venue interface
    def submit(self, request: OrderRequest) -> Order:
        symbol_index = self._symbol_index(request.symbol)
        order_id = f"sim-{next(self._order_ids)}"
        activation_ts = self.now_ts + self.config.latency_ms
        first_row = bisect.bisect_left(self._ts, activation_ts)
        order = _SimOrder(
            order_id=order_id,
            request=request,
            symbol_index=symbol_index,
            created_ts=self.now_ts,
            active_row=self._next_present(symbol_index, first_row),
            updated_ts=self.now_ts,
        )
        self.orders[order_id] = order
        try:
            self._validate(request, symbol_index)
        except OrderRejected as rejection:
            order.status = OrderStatus.REJECTED
            order.reject_reason = rejection.reason
            return order.snapshot()
        order.trigger = _TriggerLevel.of(request)
        self._working[symbol_index].append(order)
        self._changed_symbols.add(symbol_index)
        return order.snapshot()

    def cancel(self, order_id: str) -> Order:
        order = self.orders.get(order_id)
        if order is None:
            raise OrderRejected(ReasonCode.INVALID_ORDER, f"unknown order id {order_id!r}")
        if order.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED):
            self._close_order(order, OrderStatus.CANCELED, "")
        return order.snapshot()

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        rows = range(len(self.symbols)) if symbol is None else [self._symbol_index(symbol)]
        return [order.snapshot() for i in rows for order in self._working[i]]

    def positions(self) -> list[Position]:
        result = []
        for i, symbol in enumerate(self.symbols):
            quantity = self.quantity[i]
            if quantity == 0.0:
                continue
            mark = self.mark[i]
            notional = abs(quantity) * mark
            liquidation = self._liquidation_of(i, reachable_only=False)
            result.append(
                Position(
                    symbol=symbol,
                    quantity=quantity,
                    entry_price=self.entry_price[i],
                    mark_price=mark,
                    leverage=self.leverage[i],
                    margin_mode=self.margin_mode[i],
                    isolated_margin=self.isolated_margin[i],
                    liquidation_price=None if math.isnan(liquidation) else liquidation,
                    unrealized_pnl=quantity * (mark - self.entry_price[i]),
                    maintenance_margin=self.instruments[i].maintenance_margin(notional),
                )
            )
        return result

    def balances(self) -> list[Balance]:
        return [Balance("USDT", self.wallet, self.unrealized_pnl(), self.available_balance())]

    # ------------------------------------------------------------------- account state
    def set_leverage(self, symbol: str, leverage: float) -> None:
        index = self._symbol_index(symbol)
        self._check_leverage_setting(index, leverage)
        self.leverage[index] = leverage
        self._generation += 1

    def set_margin_mode(self, symbol: str, mode: MarginMode) -> None:
        index = self._symbol_index(symbol)
        if self.quantity[index] != 0.0 or self._working[index]:
            raise OrderRejected(
                ReasonCode.INVALID_ORDER, f"{symbol}: margin mode cannot change with an open position or orders"
            )
        self.margin_mode[index] = mode
        self._position_generation += 1

    def liquidation_price_of(self, symbol_index: int) -> float | None:
        """The position's liquidation price at current marks; None when flat or out of reach."""
        price = self._liquidation_of(symbol_index, reachable_only=False)
        return None if math.isnan(price) else price

    def unrealized_pnl(self) -> float:
        return sum(q * (m - e) for q, m, e in zip(self.quantity, self.mark, self.entry_price, strict=True) if q)

    def available_balance(self) -> float:
        """Cross wallet + cross unrealised P&L - cross initial margin - isolated margins."""
        available = self.wallet
        isolated_mode = MarginMode.ISOLATED
        # `initial_margin` written out: this runs for every intent and every opening fill
        for quantity, mode, mark, entry, leverage, isolated in zip(
            self.quantity,
            self.margin_mode,
            self.mark,
            self.entry_price,
            self.leverage,
            self.isolated_margin,
            strict=True,
        ):
            if quantity == 0.0:
                continue
            if mode is isolated_mode:
                available -= isolated
            else:
                available += quantity * (mark - entry) - abs(quantity) * mark / leverage
        return available

    def has_work(self, symbol_index: int) -> bool:
        return self.quantity[symbol_index] != 0.0 or bool(self._working[symbol_index])

    def pop_changed_symbols(self) -> set[int]:
        """Symbols whose position or orders changed since the last call (their next events may have moved)."""
        changed, self._changed_symbols = self._changed_symbols, set()
        return changed

    def order_history(self) -> list[Order]:
        return [order.snapshot() for order in self.orders.values()]

    # ---------------------------------------------------------------- driving the sim
    def process_bar(self, i: int, row: int) -> None:
        """Run one symbol's bar at grid `row`: funding, the gap, new orders, the in-bar path."""
        open_ = self._open[i][row]
        if open_ != open_:  # NaN: the symbol has no bar in this row
            return
        high = self._high[i][row]
        low = self._low[i][row]
        close = self._close_by_row[row][i]  # the symbol has a bar here, so its forward-filled close is its own
        self._changed_symbols.add(i)
        self._settle_funding(i, row, open_)
        self._check_liquidation_at(i, self.mark[i], open_)
        self._walk_gap(i, open_)
        self._activate_orders(i, row, open_)
        first, second = (low, high) if close >= open_ else (high, low)  # the path: open → first → second → close
        self._walk_segment(i, open_, first)
        self._walk_segment(i, first, second)
        self._walk_segment(i, second, close)
        self.mark[i] = close
        # the mark moved along the bar without bumping the generation; other cross
        # positions' liquidation prices depend on it, so their cached values are stale
        self._generation += 1

    def begin_row(self, row: int) -> None:
        """Before a row runs: every mark is the last close before it, so cross margin sees current prices."""
        if row > 0:
            self._set_marks(self._close_by_row[row - 1])
        self.now_ts = self._ts[row]

    def end_of_row(self, row: int) -> None:
        """After the row ran: all marks are the row's closes and the clock is at its close."""
        self._set_marks(self._close_by_row[row])
        self.now_ts = self._ts[row] + self.grid.bar_ms

    def _set_marks(self, closes: list[float]) -> None:
        marks = self.mark
        for i, close in enumerate(closes):
            if close == close and marks[i] != close:
                marks[i] = close
                self._generation += 1

    def next_activation_row(self, i: int) -> int:
        if not self._working[i]:
            return self.grid.length
        rows = [order.active_row for order in self._working[i] if not order.resting]
        return min(rows) if rows else self.grid.length

    def may_trigger(self, i: int) -> bool:
        """Whether `first_trigger_row` has anything to look for: orders, or a liquidation price of its own.

        A cross position sharing the wallet with others has none (`first_cross_trigger_row`
        covers it); the answer changes only with symbol i's orders or the open positions.
        """
        return bool(self._working[i]) or self._has_own_liquidation_level(i)

    def _has_own_liquidation_level(self, i: int) -> bool:
        """An open position whose liquidation is a price level of its own (isolated, or the only cross one)."""
        if not self.quantity[i]:
            return False
        return self.margin_mode[i] is MarginMode.ISOLATED or len(self.cross_position_indices()) < 2

    def first_trigger_row(self, i: int, start: int, stop: int) -> int:
        """First row in [start, stop) where a resting order or the liquidation price could trigger.

        Liquidation of cross positions is left to `first_cross_trigger_row` when two or
        more cross positions share the wallet.
        """
        if start >= stop or not self.may_trigger(i):
            return stop
        quantity = self.quantity[i]
        working = self._working[i]
        below: list[float] = []  # trigger when low <= level
        above: list[float] = []  # trigger when high >= level
        strictly_below: list[float] = []  # resting buy limit: low < level
        strictly_above: list[float] = []  # resting sell limit: high > level
        if self._has_own_liquidation_level(i):
            liquidation = self._liquidation_of(i)
            if liquidation == liquidation:
                (below if quantity > 0 else above).append(liquidation)
        for order in working:
            trigger = order.trigger
            if not order.resting or trigger is None:
                continue
            if trigger.falling:
                (strictly_below if trigger.strict else below).append(trigger.price)
            else:
                (strictly_above if trigger.strict else above).append(trigger.price)
        if not (below or above or strictly_below or strictly_above):
            return stop
        low_level = max(below) if below else float("-inf")
        high_level = min(above) if above else float("inf")
        strict_low = max(strictly_below) if strictly_below else float("-inf")
        strict_high = min(strictly_above) if strictly_above else float("inf")
        if stop - start > _SCAN_WITH_NUMPY_FROM:
            span_low = self.grid.low[i, start:stop]
            span_high = self.grid.high[i, start:stop]
            hits = (
                (span_low <= low_level)
                | (span_high >= high_level)
                | (span_low < strict_low)
                | (span_high > strict_high)
            )
            return start + int(np.argmax(hits)) if hits.any() else stop
        lows, highs = self._low[i], self._high[i]
        for row in range(start, stop):
            low, high = lows[row], highs[row]
            if low <= low_level or high >= high_level or low < strict_low or high > strict_high:
                return row
        return stop

    def _next_present(self, i: int, row: int) -> int:
        opens, length = self._open[i], self.grid.length
        while row < length and opens[row] != opens[row]:
            row += 1
        return row

    def cross_position_indices(self) -> list[int]:
        if self._cross_indices_generation != self._position_generation:
            self._cross_indices_generation = self._position_generation
            self._cross_indices = [
                i for i, q in enumerate(self.quantity) if q and self.margin_mode[i] is MarginMode.CROSS
            ]
        return self._cross_indices

    def first_cross_trigger_row(self, start: int, stop: int) -> int:
        """First row in [start, stop) where cross equity could reach cross maintenance margin.

        Conservative across symbols: each symbol's adverse extreme of the bar (or its
        previous close, if worse) is taken at the same moment, so this never misses a
        liquidation the exact walk would find. A cheaper bound over the whole span comes
        first: equity minus maintenance margin rises with a long's price and falls with a
        short's, so the span's per-symbol extremes give its lowest possible value.
        """
        cross = self.cross_position_indices()
        if start >= stop or len(cross) < 2:
            return stop
        if self._cross_book_safe():
            return stop
        cross_wallet = self.wallet - self._isolated_margin_total()
        worst = cross_wallet
        for i in cross:
            quantity = self.quantity[i]
            previous = self._close_by_row[start - 1][i] if start > 0 else self._close_by_row[0][i]
            extreme = self._span_extreme(i, start, stop, low=quantity > 0)
            adverse = min(extreme, previous) if quantity > 0 else max(extreme, previous)
            worst += quantity * (adverse - self.entry_price[i])
            worst -= self.instruments[i].maintenance_margin(abs(quantity) * adverse)
        if worst > 0:
            return stop
        equity = np.full(stop - start, cross_wallet)
        maintenance = np.zeros(stop - start)
        for i in cross:
            quantity = self.quantity[i]
            previous_close = self.grid.close_ffill[i, max(start - 1, 0) : stop - 1]
            if start == 0:
                previous_close = np.concatenate([self.grid.close_ffill[i, :1], previous_close])
            if quantity > 0:
                adverse_path = np.fmin(self.grid.low[i, start:stop], previous_close)
            else:
                adverse_path = np.fmax(self.grid.high[i, start:stop], previous_close)
            equity += quantity * (adverse_path - self.entry_price[i])
            maintenance += self._brackets[i].maintenance_margin(np.abs(quantity) * adverse_path)
        hits = equity <= maintenance
        return start + int(np.argmax(hits)) if hits.any() else stop

    def _cross_book_safe(self) -> bool:
        """`_cross_safe_over_whole_history` for the current book, cached on positions and wallet."""
        key = (self._position_generation, self.wallet)
        if self._cross_safe_key != key:
            self._cross_safe_key = key
            self._cross_safe = self._cross_safe_over_whole_history(
                self.cross_position_indices(), self.wallet - self._isolated_margin_total()
            )
        return self._cross_safe

    def _cross_safe_over_whole_history(self, cross: list[int], cross_wallet: float) -> bool:
        """True when even every symbol's lowest low / highest high of the data cannot liquidate."""
        worst = cross_wallet
        for i in cross:
            quantity = self.quantity[i]
            adverse = self._history_low[i] if quantity > 0 else self._history_high[i]
            worst += quantity * (adverse - self.entry_price[i])
            worst -= self.instruments[i].maintenance_margin(abs(quantity) * adverse)
        return worst > 0

    def _span_extreme(self, i: int, start: int, stop: int, low: bool) -> float:
        """Lowest low (or highest high) of symbol i over rows [start, stop), ignoring gaps."""
        if stop - start > _SCAN_WITH_NUMPY_FROM:
            values = self.grid.low[i, start:stop] if low else self.grid.high[i, start:stop]
            return float(np.nanmin(values) if low else np.nanmax(values)) if values.size else float("nan")
        span: list[float] = [x for x in (self._low[i] if low else self._high[i])[start:stop] if x == x]
        if not span:
            return float("nan")
        return min(span) if low else max(span)

    # ------------------------------------------------------------------------ internals
    def _symbol_index(self, symbol: str) -> int:
        index = self._index.get(symbol)
        if index is None:
            raise UnknownSymbolError(f"unknown symbol {symbol!r}; the venue lists {', '.join(self.symbols)}")
        return index

    def _check_leverage_setting(self, i: int, leverage: float) -> None:
        instrument = self.instruments[i]
        if not 1.0 <= leverage <= instrument.max_leverage:
            raise OrderRejected(
                ReasonCode.MAX_LEVERAGE,
                f"{instrument.symbol}: leverage {leverage} outside 1..{instrument.max_leverage}",
            )

    def _validate(self, request: OrderRequest, i: int) -> None:
        instrument = self.instruments[i]
        if request.quantity <= 0:
            raise OrderRejected(ReasonCode.INVALID_ORDER, f"{request.symbol}: quantity must be positive")
        if not instrument.is_on_step(request.quantity):
            raise OrderRejected(
                ReasonCode.STEP_SIZE,
                f"{request.symbol}: quantity {request.quantity} is not a multiple of step {instrument.step_size}",
            )
        if request.order_type is OrderType.LIMIT and request.price is None:
            raise OrderRejected(ReasonCode.INVALID_ORDER, f"{request.symbol}: a limit order needs a price")
        if request.order_type is OrderType.STOP_MARKET and request.stop_price is None:
            raise OrderRejected(ReasonCode.INVALID_ORDER, f"{request.symbol}: a stop-market order needs a stop price")
        if request.post_only and request.order_type is not OrderType.LIMIT:
            raise OrderRejected(ReasonCode.INVALID_ORDER, f"{request.symbol}: post-only applies to limit orders")
        for price in (request.price, request.stop_price):
            if price is not None and (price <= 0 or not instrument.is_on_tick(price)):
                raise OrderRejected(
                    ReasonCode.TICK_SIZE,
                    f"{request.symbol}: price {price} is not a positive multiple of tick {instrument.tick_size}",
                )
        reference = request.price or request.stop_price or self.mark[i]
        if math.isnan(reference):
            raise OrderRejected(ReasonCode.NO_PRICE, f"{request.symbol}: no price yet to value the order")
        if request.reduce_only:
            if self.quantity[i] * request.side.sign >= 0:
                raise OrderRejected(
                    ReasonCode.REDUCE_ONLY_NOTHING_TO_REDUCE,
                    f"{request.symbol}: reduce-only {request.side} with position {self.quantity[i]}",
                )
        elif request.quantity * reference < instrument.min_notional:
            raise OrderRejected(
                ReasonCode.MIN_NOTIONAL,
                f"{request.symbol}: notional {request.quantity * reference:.4f} below minimum "
                f"{instrument.min_notional}",
            )

    def _settle_funding(self, i: int, row: int, open_: float) -> None:
        schedule = self.grid.funding[i]
        settlement_rows = self._funding_rows[i]
        pointer = self._funding_pointer[i]
        while pointer < len(settlement_rows) and settlement_rows[pointer] <= row:
            quantity = self.quantity[i]
            if quantity != 0.0:
                mark = float(schedule.mark_price[pointer])
                if math.isnan(mark):
                    mark = open_
                rate = float(schedule.rate[pointer])
                amount = quantity * mark * rate
                self.wallet -= amount
                self.funding_paid += amount
                if self.margin_mode[i] is MarginMode.ISOLATED:
                    self.isolated_margin[i] -= amount
                self.funding_payments.append(
                    FundingPayment(int(schedule.ts[pointer]), self.symbols[i], quantity, mark, rate, amount)
                )
                self._generation += 1
            pointer += 1
        self._funding_pointer[i] = pointer

    def _walk_gap(self, i: int, open_: float) -> None:
        """Triggers crossed between the previous mark and this open: stops and liquidations at the open."""
        previous = self.mark[i]
        if math.isnan(previous) or previous == open_:
            self.mark[i] = open_
            self._check_liquidation_at(i, open_, open_)
            return
        self._walk_segment(i, previous, open_, gap=True)
        self.mark[i] = open_

    def _activate_orders(self, i: int, row: int, open_: float) -> None:
        for order in [o for o in self._working[i] if not o.resting and o.active_row <= row]:
            request = order.request
            if request.order_type is OrderType.MARKET:
                self._execute(order, self._with_slippage(open_, request.side), Liquidity.TAKER)
            elif request.order_type is OrderType.LIMIT:
                assert request.price is not None
                crosses = open_ <= request.price if request.side is Side.BUY else open_ >= request.price
                if crosses and request.post_only:
                    self._close_order(order, OrderStatus.EXPIRED, ReasonCode.POST_ONLY_WOULD_CROSS)
                elif crosses:
                    self._execute(order, open_, Liquidity.TAKER)
                else:
                    order.resting = True
            else:
                assert request.stop_price is not None
                triggered = open_ >= request.stop_price if request.side is Side.BUY else open_ <= request.stop_price
                if triggered:
                    self._execute(order, self._with_slippage(open_, request.side), Liquidity.TAKER)
                else:
                    order.resting = True

    def _walk_segment(self, i: int, start: float, end: float, gap: bool = False) -> None:
        position = start
        while True:
            trigger = self._next_trigger(i, position, end)
            if trigger is None:
                return
            price, order = trigger
            self.mark[i] = price
            if order is None:
                self._liquidate(i, end if gap else price)
            elif order.request.order_type is OrderType.LIMIT:
                self._execute(order, price, Liquidity.MAKER)
            else:
                fill_price = end if gap else price
                self._execute(order, self._with_slippage(fill_price, order.request.side), Liquidity.TAKER)
            position = price

    def _next_trigger(self, i: int, start: float, end: float) -> tuple[float, _SimOrder | None] | None:
        """The trigger the path start → end meets first: (price, order) or (price, None) for liquidation."""
        quantity = self.quantity[i]
        if start == end or not (quantity or self._working[i]):
            return None
        down = end < start
        best: tuple[float, _SimOrder | None] | None = None
        best_distance = float("inf")
        liquidation = self._liquidation_of(i) if quantity else float("nan")
        liquidation_on_path = (end <= liquidation <= start) if down else (start <= liquidation <= end)
        if quantity != 0.0 and (quantity > 0) == down and liquidation_on_path:
            best, best_distance = (liquidation, None), abs(start - liquidation)
        for order in self._working[i]:
            trigger = order.trigger
            if not order.resting or trigger is None:
                continue
            level = trigger.price
            hit = trigger.crossed(start, end)
            if hit and abs(start - level) < best_distance:
                best, best_distance = (level, order), abs(start - level)
        return best

    def _with_slippage(self, price: float, side: Side) -> float:
        if not self.config.slippage_bps:
            return price
        return price * (1.0 + side.sign * self.config.slippage_bps / 10_000.0)

    def _close_order(self, order: _SimOrder, status: OrderStatus, reason: str) -> None:
        order.status = status
        order.reject_reason = reason
        order.updated_ts = self.now_ts
        working = self._working[order.symbol_index]
        if order in working:
            working.remove(order)
            self._changed_symbols.add(order.symbol_index)

    def _execute(self, order: _SimOrder, price: float, liquidity: Liquidity) -> None:
        request = order.request
        i = order.symbol_index
        quantity = request.quantity - order.filled_qty
        position = self.quantity[i]
        if request.reduce_only:
            if position * request.side.sign >= 0:
                self._close_order(order, OrderStatus.EXPIRED, ReasonCode.REDUCE_ONLY_NOTHING_TO_REDUCE)
                return
            quantity = min(quantity, abs(position))
        rate = self.config.maker_fee if liquidity is Liquidity.MAKER else self.config.taker_fee
        rejection = self._trade(i, request.side, quantity, price, rate, liquidity, order)
        if rejection is not None:
            self._close_order(order, OrderStatus.REJECTED, rejection)
            return
        total = order.filled_qty + quantity
        order.average_price = (order.average_price * order.filled_qty + price * quantity) / total
        order.filled_qty = total
        # a reduce-only order clipped to the position is done: the rest could only flip it
        self._close_order(order, OrderStatus.FILLED, "")

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
        """Apply a fill to position, margin and wallet. Returns a reason code when margin forbids it."""
        saved = (self.quantity[i], self.entry_price[i], self.isolated_margin[i], self.wallet, self.realized_pnl)
        position = self.quantity[i]
        entry = self.entry_price[i]
        signed = side.sign * quantity
        closing = min(quantity, abs(position)) if position * signed < 0 else 0.0
        opening = quantity - closing
        realized = closing * (price - entry) * (1.0 if position > 0 else -1.0) if closing else 0.0
        fee = quantity * price * fee_rate
        isolated = self.margin_mode[i] is MarginMode.ISOLATED
        if closing:
            if isolated:
                self.isolated_margin[i] -= self.isolated_margin[i] * closing / abs(position)
            position += side.sign * closing
            if abs(position) < _EPS:
                position = 0.0
        if opening:
            new_position = position + side.sign * opening
            entry = price if position == 0.0 else (entry * abs(position) + price * opening) / abs(new_position)
            position = new_position
            if isolated:
                self.isolated_margin[i] += initial_margin(opening, price, self.leverage[i])
        self.quantity[i] = position
        self._position_generation += 1
        self._changed_symbols.add(i)
        self.entry_price[i] = entry if position else 0.0
        if not position:
            self.isolated_margin[i] = 0.0
        self.wallet += realized - fee
        self.realized_pnl += realized
        if opening and not is_liquidation:
            reason = self._margin_violation(i, price)
            if reason is not None:
                (self.quantity[i], self.entry_price[i], self.isolated_margin[i], self.wallet, self.realized_pnl) = saved
                self._position_generation += 1
                return reason
        self.fees_paid += fee
        self.fills.append(
            Fill(
                order_id=order.order_id if order else f"liquidation-{len(self.fills) + 1}",
                symbol=self.symbols[i],
                side=side,
                quantity=quantity,
                price=price,
                fee=fee,
                liquidity=liquidity,
                ts=self.now_ts,
                realized_pnl=realized,
                is_liquidation=is_liquidation,
                intent_id=order.request.intent_id if order else "",
            )
        )
        self._generation += 1
        return None

    def _margin_violation(self, i: int, price: float) -> str | None:
        instrument = self.instruments[i]
        notional = abs(self.quantity[i]) * price
        if instrument.max_leverage_for(notional) < self.leverage[i]:
            return ReasonCode.MAX_LEVERAGE
        if self.available_balance() < -_EPS:
            return ReasonCode.INSUFFICIENT_MARGIN
        return None

    def _isolated_margin_total(self) -> float:
        return sum(
            m
            for m, mode, q in zip(self.isolated_margin, self.margin_mode, self.quantity, strict=True)
            if q and mode is MarginMode.ISOLATED
        )

    def _refresh_cross_terms(self) -> None:
        if self._cross_generation == self._generation:
            return
        self._cross_generation = self._generation
        terms = {}
        for j in self.cross_position_indices():
            quantity, mark = self.quantity[j], self.mark[j]
            maintenance = self.instruments[j].maintenance_margin(abs(quantity) * mark)
            terms[j] = quantity * (mark - self.entry_price[j]) - maintenance
        self._cross_terms = terms
        self._cross_backing = self.wallet - self._isolated_margin_total() + sum(terms.values())

    def _liquidation_of(self, i: int, reachable_only: bool = True) -> float:
        """Liquidation price of symbol i's position at current marks (NaN when none).

        With `reachable_only`, NaN also when no price in the data could liquidate the
        cross book (the triggers then need not compute it).
        """
        if self._liquidation_generation[i] == self._generation:
            return self.liquidation[i]
        quantity = self.quantity[i]
        if reachable_only and quantity and self.margin_mode[i] is MarginMode.CROSS and self._cross_book_safe():
            return float("nan")
        price: float | None = None
        if quantity:
            if self.margin_mode[i] is MarginMode.ISOLATED:
                backing = self.isolated_margin[i]
            else:
                self._refresh_cross_terms()
                backing = self._cross_backing - self._cross_terms[i]
            price = liquidation_price(self.instruments[i], quantity, self.entry_price[i], backing)
        self.liquidation[i] = float("nan") if price is None else price
        self._liquidation_generation[i] = self._generation
        return self.liquidation[i]

    def _check_liquidation_at(self, i: int, price: float, fill_price: float) -> None:
        quantity = self.quantity[i]
        if not quantity:
            return
        liquidation = self._liquidation_of(i)
        if math.isnan(liquidation):
            return
        if (quantity > 0 and price <= liquidation) or (quantity < 0 and price >= liquidation):
            self._liquidate(i, fill_price)

    def _liquidate(self, i: int, price: float) -> None:
        """Close at `price` with the clearance fee capped by remaining equity; cross takes all cross positions."""
        self.mark[i] = price
        if self.margin_mode[i] is MarginMode.ISOLATED:
            remaining = self.isolated_margin[i] + self.quantity[i] * (price - self.entry_price[i])
            remaining -= self._force_close(i, price, remaining)
        else:
            cross = self.cross_position_indices()
            remaining = (
                self.wallet
                - self._isolated_margin_total()
                + sum(self.quantity[j] * (self.mark[j] - self.entry_price[j]) for j in cross)
            )
            for j in cross:
                remaining -= self._force_close(j, self.mark[j], remaining)
        if remaining < 0:
            # the insurance fund absorbs losses beyond the margin behind the position(s)
            self.wallet -= remaining
            self.insurance_fund_cover -= remaining
        self._generation += 1

    def _force_close(self, i: int, price: float, equity_left: float) -> float:
        """Close symbol i at `price`; returns the clearance fee charged (capped at `equity_left`)."""
        quantity = self.quantity[i]
        notional = abs(quantity) * price
        clearance = min(self.instruments[i].liquidation_fee_rate * notional, max(equity_left, 0.0))
        fee_rate = clearance / notional if notional else 0.0
        side = Side.SELL if quantity > 0 else Side.BUY
        self._trade(i, side, abs(quantity), price, fee_rate, Liquidity.TAKER, None, is_liquidation=True)
        for order in list(self._working[i]):
            if order.request.reduce_only:
                self._close_order(order, OrderStatus.CANCELED, "liquidated")
        return clearance


@dataclass(frozen=True, slots=True)
class _BracketTable:
    """An instrument's brackets as arrays, to value many notionals at once."""

    caps: np.ndarray
    rates: np.ndarray
    amounts: np.ndarray

    @classmethod
    def of(cls, instrument: Instrument) -> _BracketTable:
        return cls(
            caps=np.array([b.notional_cap for b in instrument.brackets]),
            rates=np.array([b.maintenance_rate for b in instrument.brackets]),
            amounts=np.array([b.maintenance_amount for b in instrument.brackets]),
        )

    def maintenance_margin(self, notional: np.ndarray) -> np.ndarray:
        index = np.minimum(np.searchsorted(self.caps, notional, side="left"), self.caps.shape[0] - 1)
        margin: np.ndarray = notional * self.rates[index] - self.amounts[index]
        return margin
