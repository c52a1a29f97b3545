"""The trading loop: data → strategy → Intent → pre-trade gate → sizing → Venue.

Backtests drive it over a `MarketGrid`, event to event. A row is an *event* for a
symbol when the strategy may propose there (its wake-up rows), an order becomes
active, a funding settlement falls due while a position is open, or a resting order
or liquidation price is reached (found with a vectorised scan of the rows in
between). Rows without events change nothing but the mark, so they are skipped and
the equity curve is rebuilt from the state recorded at each event. This is what makes
a faithful futures simulation run faster than bar-by-bar peers.

Each symbol's next event is kept between events and recomputed only when it may have
moved: the symbol ran, its position or orders changed, or it is the only cross
position (its liquidation price then moves with the wallet). A trigger scan remembers
how far it looked, so a later, longer bound scans only the rows it has not seen.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np

from core.decision import Decision, ReasonCode, Verdict
from core.instrument import Instrument
from core.intent import Intent
from core.orders import OrderRequest, OrderStatus, OrderType
from core.series import FloatArray
from execution.simulator import SimulatedExchange
from market.grid import MarketGrid
from trader.gate import GateContext, PreTradeGate
from trader.sizing import Sizer
from trader.strategy import Strategy

ProgressCallback = Callable[[int], None]


@dataclass(slots=True)
class LoopRecord:
    """What the loop saw and did: decisions, and state at every event row (orders live in the venue)."""

    decisions: list[tuple[Intent, Decision]] = field(default_factory=list)
    event_rows: list[int] = field(default_factory=list)
    wallet: list[float] = field(default_factory=list)
    quantity: list[list[float]] = field(default_factory=list)
    entry_price: list[list[float]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class EquityCurve:
    equity: FloatArray
    wallet: FloatArray
    position_qty: FloatArray  # (symbols, rows)


class _Context:
    """StrategyContext over the simulated exchange at the current decision time."""

    __slots__ = ("_exchange", "_index", "decision_ts")

    def __init__(self, exchange: SimulatedExchange) -> None:
        self._exchange = exchange
        self._index = {symbol: i for i, symbol in enumerate(exchange.symbols)}
        self.decision_ts = 0

    def position_qty(self, symbol: str) -> float:
        return self._exchange.quantity[self._index[symbol]]

    def mark_price(self, symbol: str) -> float:
        return self._exchange.mark[self._index[symbol]]


class BacktestLoop:
    def __init__(
        self,
        grid: MarketGrid,
        instruments: dict[str, Instrument],
        strategy: Strategy,
        gate: PreTradeGate,
        sizer: Sizer,
        exchange: SimulatedExchange,
    ) -> None:
        self.grid = grid
        self.instruments = instruments
        self.strategy = strategy
        self.gate = gate
        self.sizer = sizer
        self.exchange = exchange
        self.record = LoopRecord()
        count = len(grid.symbols)
        # per symbol: next wake-up, funding or activation row; first trigger row found (or
        # `length`), and the row before which the trigger scan found nothing
        self._base_row = [0] * count
        self._trigger_row = [grid.length] * count
        self._scanned_to = [0] * count
        self._stale = set(range(count))
        self._due: list[int] = []
        self._available_balance: float | None = None
        self._protective_stop: dict[int, str] = {}  # symbol → working stop-loss order id

    def run(self, progress: ProgressCallback | None = None) -> LoopRecord:
        with garbage_collection_paused():
            return self._run(progress)

    def _run(self, progress: ProgressCallback | None) -> LoopRecord:
        grid, exchange = self.grid, self.exchange
        length = grid.length
        self.strategy.prepare(grid)
        self._schedule = _Schedule(grid, self.strategy)
        context = _Context(exchange)
        row = self._next_event_row(0)
        while row < length:
            exchange.begin_row(row)
            for i in self._due:
                exchange.process_bar(i, row)
            self._stale.update(self._due)
            exchange.end_of_row(row)
            context.decision_ts = exchange.now_ts
            self._available_balance = None
            for i in self._schedule.proposing_at(row):
                self._decide(self.strategy.on_bar(i, row, context), row)
            self._snapshot(row)
            if progress is not None:
                progress(row)
            row = self._next_event_row(row + 1)
        if progress is not None:
            progress(length - 1)
        return self.record

    def _next_event_row(self, start: int) -> int:
        """The next row at which anything can happen; `self._due` lists the symbols that run there."""
        exchange, schedule = self.exchange, self._schedule
        length = self.grid.length
        base_rows, trigger_rows, scanned_to = self._base_row, self._trigger_row, self._scanned_to
        stale = self._stale
        stale |= exchange.pop_changed_symbols()
        cross = exchange.cross_position_indices()
        if len(cross) == 1:
            stale.add(cross[0])
        for i in stale:
            working = exchange.has_work(i)
            row = schedule.next_wakeup(i, start)
            if working:
                if exchange.quantity[i]:
                    row = min(row, schedule.next_funding(i, start))
                row = min(row, max(exchange.next_activation_row(i), start))
            base_rows[i] = row
            trigger_rows[i] = length
            # with nothing to trigger now, nothing can until the symbol changes or becomes the only cross position
            scanned_to[i] = start if exchange.may_trigger(i) else length
        stale.clear()
        if len(cross) == 1:
            # its liquidation price follows the wallet: the cached scan is valid for this call only
            stale.add(cross[0])
        stop = min(min(base_rows), min(trigger_rows))
        for i, scanned in enumerate(scanned_to):
            bound = min(stop + 1, length)
            if scanned < bound and trigger_rows[i] == length:
                trigger = exchange.first_trigger_row(i, scanned, bound)
                scanned_to[i] = bound
                if trigger < bound:
                    trigger_rows[i] = trigger
                    stop = min(stop, trigger)
        cross_trigger = exchange.first_cross_trigger_row(start, min(stop + 1, length))
        due = [i for i in range(len(base_rows)) if base_rows[i] == stop or trigger_rows[i] == stop]
        if cross_trigger <= stop:
            due = sorted(set(due).union(cross)) if cross_trigger == stop else list(cross)
            stop = cross_trigger
        self._due = due
        return stop

    def _decide(self, intents: list[Intent], row: int) -> None:
        exchange = self.exchange
        released_margin = 0.0
        for intent in intents:
            i = exchange.symbols.index(intent.symbol)
            instrument = self.instruments[intent.symbol]
            mark = exchange.mark[i]
            leverage = exchange.leverage[i]
            if self._available_balance is None:
                # submitting orders changes no balance, so one value serves the whole row's decisions
                self._available_balance = exchange.available_balance()
            context = GateContext(
                mark_price=mark,
                position_qty=exchange.quantity[i],
                available_balance=self._available_balance + released_margin,
                leverage=leverage,
                taker_fee=exchange.config.taker_fee,
                symbol_index=i,
                row=row,
            )
            decision = self.gate.check(intent, context)
            if decision.verdict is not Verdict.DENY:
                position = exchange.quantity[i]
                quantity = self.sizer.size(intent, decision, intent.limit_price or mark, instrument, position)
                refused = (
                    (ReasonCode.STEP_SIZE.value,)
                    if quantity <= 0
                    else self.gate.confirm(intent, context, quantity, decision)
                )
                if refused:
                    decision = replace(decision, verdict=Verdict.DENY, reasons=decision.reasons + refused)
                else:
                    order = exchange.submit(_order_request(intent, quantity))
                    if order.status is OrderStatus.REJECTED:
                        rejected = (order.reject_reason,)
                        decision = replace(decision, verdict=Verdict.DENY, reasons=decision.reasons + rejected)
                    elif intent.reduce_only:
                        released_margin += quantity * mark / leverage
                    elif intent.stop_loss is not None:
                        self._protect(i, intent, quantity - intent.reversed_qty(position), instrument)
            self.record.decisions.append((intent, decision))

    def _protect(self, i: int, intent: Intent, opening_qty: float, instrument: Instrument) -> None:
        """Place the admitted intent's stop-loss as a reduce-only stop-market order for the
        quantity it opens, replacing the symbol's previous protective stop."""
        exchange = self.exchange
        previous = self._protective_stop.pop(i, None)
        if previous is not None:
            exchange.cancel(previous)
        if opening_qty <= 0 or intent.stop_loss is None:
            return
        stop = exchange.submit(
            OrderRequest(
                symbol=intent.symbol,
                side=intent.side.opposite,
                order_type=OrderType.STOP_MARKET,
                quantity=instrument.round_qty_down(opening_qty),
                stop_price=instrument.round_price(intent.stop_loss),
                reduce_only=True,
                client_order_id=f"cs-{intent.intent_id}-stop",
                intent_id=intent.intent_id,
            )
        )
        if stop.status is not OrderStatus.REJECTED:
            self._protective_stop[i] = stop.order_id

    def _snapshot(self, row: int) -> None:
        record, exchange = self.record, self.exchange
        record.event_rows.append(row)
        record.wallet.append(exchange.wallet)
        record.quantity.append(list(exchange.quantity))
        record.entry_price.append(list(exchange.entry_price))

    def equity_curve(self) -> EquityCurve:
        """Per-row equity at each bar's close, from the state recorded at event rows."""
        grid, record = self.grid, self.record
        initial = self.exchange.config.initial_balance
        symbol_count = len(grid.symbols)
        rows = np.asarray(record.event_rows, dtype=np.int64)
        wallet_at_event = np.concatenate([[initial], np.asarray(record.wallet, dtype=np.float64)])
        quantity_at_event = np.vstack([np.zeros(symbol_count), np.asarray(record.quantity).reshape(-1, symbol_count)])
        entry_at_event = np.vstack([np.zeros(symbol_count), np.asarray(record.entry_price).reshape(-1, symbol_count)])
        # position of the last event at or before each row (+1: slot 0 is the state before any event)
        which = np.searchsorted(rows, np.arange(grid.length), side="right")
        wallet = wallet_at_event[which]
        quantity = quantity_at_event[which].T
        entry = entry_at_event[which].T
        marks = np.nan_to_num(grid.close_ffill, nan=0.0)
        unrealized = np.where(quantity != 0.0, quantity * (marks - entry), 0.0).sum(axis=0)
        return EquityCurve(equity=wallet + unrealized, wallet=wallet, position_qty=quantity)


class _Schedule:
    """Per-symbol wake-up and funding rows, walked forward with pointers (rows only increase)."""

    def __init__(self, grid: MarketGrid, strategy: Strategy) -> None:
        self.length = grid.length
        count = len(grid.symbols)
        wakeups = [strategy.wakeup_rows(i) for i in range(count)]
        self.every_row = [rows is None for rows in wakeups]
        self.wakeups = [[] if rows is None else rows.tolist() for rows in wakeups]
        self.funding = [schedule.grid_index.tolist() for schedule in grid.funding]
        self.present = grid.present
        self._wake_pointer = [0] * count
        self._funding_pointer = [0] * count
        self._next_wake = [-1] * count
        self._next_funding = [-1] * count

    def next_wakeup(self, i: int, start: int) -> int:
        if self.every_row[i]:
            return start
        row = self._next_wake[i]
        if row < start:
            row = self._next_wake[i] = _advance(self.wakeups[i], self._wake_pointer, i, start, self.length)
        return row

    def next_funding(self, i: int, start: int) -> int:
        row = self._next_funding[i]
        if row < start:
            row = self._next_funding[i] = _advance(self.funding[i], self._funding_pointer, i, start, self.length)
        return row

    def proposing_at(self, row: int) -> list[int]:
        return [
            i
            for i in range(len(self.wakeups))
            if self.present[i, row] and (self.every_row[i] or self.next_wakeup(i, row) == row)
        ]


@contextmanager
def garbage_collection_paused() -> Iterator[None]:
    """The loop allocates many small acyclic objects (intents, orders, fills); the cyclic
    collector's passes over them took a sixth of the run time and freed nothing. Reference
    counting still frees them; any cycles are collected once the loop ends."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _advance(rows: list[int], pointers: list[int], i: int, start: int, default: int) -> int:
    pointer = pointers[i]
    while pointer < len(rows) and rows[pointer] < start:
        pointer += 1
    pointers[i] = pointer
    return rows[pointer] if pointer < len(rows) else default


def _order_request(intent: Intent, quantity: float) -> OrderRequest:
    return OrderRequest(
        symbol=intent.symbol,
        side=intent.side,
        order_type=intent.order_type,
        quantity=quantity,
        price=intent.limit_price,
        reduce_only=intent.reduce_only,
        client_order_id=f"cs-{intent.intent_id}",
        intent_id=intent.intent_id,
    )
