"""The reasoning guard as the loop's pre-trade gate, with the context it judges by.

`GuardGate.check` builds a `DecisionContext` from the simulated exchange (account,
position, portfolio), the market indicators (ATR, volatility, regimes, spread) and the
account's running record (peak equity, the day's P&L, losses in a row, order counts),
asks the guard, then the exchange's own rules, and returns the stricter answer with
the guard's proofs. `confirm` re-proves the sized order with the Z3 limits before it
is sent.

The account record is kept at the moments the loop decides, which is when the guard
needs it: the equity peak and the day's opening equity are sampled at decision rows
(a backtest skips rows where nothing happens, so a peak between them is not seen).
Losses in a row count closing fills whose realised P&L after their fee is negative; the
count, like the day's P&L, starts again at 00:00 UTC, so the losses breaker (L4) holds
for the rest of the day.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace

import numpy as np

from core.decision import Decision, Verdict
from core.intent import Intent
from core.time import DAY_MS
from execution.simulator import SimulatedExchange
from market.grid import MarketGrid
from market.indicators import MARKET_REGIMES, VOLATILITY_REGIMES, MarketIndicators
from reasoning.context import (
    AccountFacts,
    DecisionContext,
    GuardState,
    MarketFacts,
    MarketRegime,
    ModelFacts,
    PortfolioFacts,
    PositionFacts,
    VenueFacts,
    VolatilityRegime,
)
from reasoning.guard import Guard
from reasoning.kill_switch import KillSwitch, KillSwitchState
from reasoning.rules import RuleChange, RuleWatcher
from trader.gate import ExchangeRulesGate, GateContext

CORRELATION_BARS = 240
# Binance USDT-M allows 1,200 orders a minute per account
ORDERS_PER_MINUTE_LIMIT = 1_200


@dataclass(slots=True)
class AccountRecord:
    """What the account did so far, updated at every decision row."""

    peak_equity: float
    day: int = -1
    day_start_equity: float = 0.0
    consecutive_losses: int = 0
    fills_seen: int = 0
    orders_seen: int = 0
    order_times: list[int] = field(default_factory=list)
    trades_today: int = 0


class ContextBuilder:
    def __init__(
        self,
        grid: MarketGrid,
        exchange: SimulatedExchange,
        indicators: MarketIndicators,
        region: str = "",
        venue: str = "simulated",
    ) -> None:
        self.grid = grid
        self.exchange = exchange
        self.indicators = indicators
        self.region = region
        self.venue = venue
        self.record = AccountRecord(peak_equity=exchange.config.initial_balance)
        self._observed_row = -1
        self._funding_rate = [schedule.rate for schedule in grid.funding]
        self._funding_rows = [schedule.grid_index for schedule in grid.funding]

    def build(self, i: int, row: int, now_ts: int, guard: Guard) -> DecisionContext:
        exchange, ind = self.exchange, self.indicators
        equity = exchange.wallet + exchange.unrealized_pnl()
        self._observe(row, now_ts, equity)
        record = self.record
        mark = exchange.mark[i]
        market = MarketFacts(
            symbol=exchange.symbols[i],
            mark_price=mark,
            last_bar_ts=int(self.grid.ts[row]) + self.grid.bar_ms,
            atr=float(ind.atr[i, row]),
            volatility=float(ind.volatility[i, row]),
            volatility_regime=VolatilityRegime(VOLATILITY_REGIMES[int(ind.volatility_regime[i, row])]),
            regime=MarketRegime(MARKET_REGIMES[int(ind.regime[i, row])]),
            spread_bps=float(ind.spread_bps[i, row]),
            spread_widening=bool(ind.spread_widening[i, row]),
            breakout_confirmed=bool(ind.breakout[i, row]),
            price_change_pct=float(ind.price_change[i, row]),
            funding_rate=self._last_funding_rate(i, row),
        )
        held = [(q, m, lev) for q, m, lev in zip(exchange.quantity, exchange.mark, exchange.leverage, strict=True) if q]
        used_margin = sum(abs(q) * m / lev for q, m, lev in held)
        recent = [ts for ts in record.order_times if ts > now_ts - 1_000]
        account = AccountFacts(
            equity=equity,
            wallet_balance=exchange.wallet,
            available_balance=exchange.available_balance(),
            used_margin=used_margin,
            daily_pnl=equity - record.day_start_equity,
            drawdown=max(0.0, 1.0 - equity / record.peak_equity) if record.peak_equity > 0 else 1.0,
            consecutive_losses=record.consecutive_losses,
            open_orders=len(exchange.open_orders()),
            orders_last_second=len(recent),
            orders_today=len(record.order_times),
            trades_today=record.trades_today,
        )
        quantity = exchange.quantity[i]
        position = PositionFacts(
            quantity=quantity,
            entry_price=exchange.entry_price[i],
            leverage=exchange.leverage[i],
            liquidation_price=exchange.liquidation_price_of(i) if quantity else None,
        )
        notionals = [q * m for q, m, _ in held]
        portfolio = PortfolioFacts(
            gross_exposure=sum(abs(n) for n in notionals),
            net_exposure=sum(notionals),
            open_positions=len(notionals),
            max_correlation=self._max_correlation(i, row),
        )
        minute_orders = sum(1 for ts in record.order_times if ts > now_ts - 60_000)
        return DecisionContext(
            now_ts=now_ts,
            guard_state=guard.state,
            market=market,
            account=account,
            position=position,
            portfolio=portfolio,
            model=ModelFacts(model_id="", drift_detected=False, calibration_error=0.0, is_fallback=False),
            venue=VenueFacts(
                venue=self.venue,
                healthy=True,
                error_rate=0.0,
                latency_ms=0.0,
                rate_limit_used=minute_orders / ORDERS_PER_MINUTE_LIMIT,
            ),
            region=self.region,
        )

    def _observe(self, row: int, now_ts: int, equity: float) -> None:
        if row == self._observed_row:
            return
        self._observed_row = row
        record, exchange = self.record, self.exchange
        record.peak_equity = max(record.peak_equity, equity)
        day = now_ts // DAY_MS
        if day != record.day:
            # the day's P&L, trade count and the losses-in-a-row breaker start afresh at 00:00 UTC
            record.day, record.day_start_equity, record.trades_today = day, equity, 0
            record.consecutive_losses = 0
            record.order_times = [ts for ts in record.order_times if ts // DAY_MS == day]
        for fill in exchange.fills[record.fills_seen :]:
            record.trades_today += 1
            if fill.realized_pnl != 0.0:  # the fill closed something: did it lose after its fee?
                net = fill.realized_pnl - fill.fee
                record.consecutive_losses = record.consecutive_losses + 1 if net < 0 else 0
        record.fills_seen = len(exchange.fills)
        # the orders since the last look, newest first: the dict keeps submission order
        new_orders = len(exchange.orders) - record.orders_seen
        record.order_times.extend(
            order.created_ts for order in itertools.islice(reversed(exchange.orders.values()), new_orders)
        )
        record.orders_seen = len(exchange.orders)

    def _last_funding_rate(self, i: int, row: int) -> float:
        """The last settled rate (the next one is not known at decision time)."""
        rows = self._funding_rows[i]
        settled = int(np.searchsorted(rows, row, side="right"))
        return float(self._funding_rate[i][settled - 1]) if settled else 0.0

    def _max_correlation(self, i: int, row: int) -> float:
        exchange = self.exchange
        held = [j for j, q in enumerate(exchange.quantity) if q and j != i]
        if not held or row < 2:
            return 0.0
        start = max(0, row - CORRELATION_BARS + 1)
        returns = self.indicators.log_return
        mine = returns[i, start : row + 1]
        best = 0.0
        for j in held:
            theirs = returns[j, start : row + 1]
            both = ~(np.isnan(mine) | np.isnan(theirs))
            if both.sum() < 3 or np.std(mine[both]) == 0 or np.std(theirs[both]) == 0:
                continue
            correlation = float(np.corrcoef(mine[both], theirs[both])[0, 1])
            if not math.isnan(correlation):
                best = max(best, abs(correlation))
        return best


class GuardGate:
    """Guard first, then the exchange's own rules; the stricter answer, with the guard's proofs."""

    def __init__(
        self,
        guard: Guard,
        builder: ContextBuilder,
        exchange_rules: ExchangeRulesGate,
        watcher: RuleWatcher | None = None,
        kill_switch: KillSwitch | None = None,
    ) -> None:
        self.guard = guard
        self.builder = builder
        self.exchange_rules = exchange_rules
        self.watcher = watcher  # hot reload: the rule files are checked once per decision row
        self.kill_switch = kill_switch  # polled once per decision row: engaged → HALTED, released → ACTIVE
        self.halts: list[tuple[int, KillSwitchState]] = []  # (decision time, state) at each change seen
        self.rule_changes: list[tuple[int, RuleChange]] = []  # (decision time, change), accepted or refused
        self.contexts: dict[str, DecisionContext] = {}  # intent id → the context it was judged in
        # intent id → (sized quantity, Z3's re-proof denials of it): the proof log's sizing result
        self.sizings: dict[str, tuple[float, tuple[str, ...]]] = {}
        self._polled_row = -1

    def check(self, intent: Intent, context: GateContext) -> Decision:
        if context.row != self._polled_row:
            self._polled_row = context.row
            self._poll()
        now_ts = self.builder.exchange.now_ts
        decision_context = self.builder.build(context.symbol_index, context.row, now_ts, self.guard)
        self.contexts[intent.intent_id] = decision_context
        quantity = intent.requested_qty(intent.limit_price or context.mark_price, context.position_qty)
        if quantity <= 0:
            return replace(self.exchange_rules.check(intent, context), context_hash=decision_context.context_hash())
        verdict = self.guard.decide(intent, decision_context, quantity)
        if verdict.verdict is Verdict.DENY:
            return verdict
        venue = self.exchange_rules.check(intent, context)
        max_qty = min(verdict.max_qty or 0.0, venue.max_qty if venue.max_qty is not None else math.inf)
        if venue.verdict is Verdict.DENY:
            return replace(verdict, verdict=Verdict.DENY, reasons=venue.reasons, max_qty=0.0, detail=venue.detail)
        reduced = venue.verdict is Verdict.REDUCE or verdict.verdict is Verdict.REDUCE
        return replace(
            verdict,
            verdict=Verdict.REDUCE if reduced else Verdict.ADMIT,
            reasons=verdict.reasons + venue.reasons,
            max_qty=max_qty,
        )

    def _poll(self) -> None:
        now_ts = self.builder.exchange.now_ts
        if self.watcher is not None:
            change = self.watcher.poll()
            if change is not None:
                self.rule_changes.append((now_ts, change))
        if self.kill_switch is not None:
            switch = self.kill_switch.state()  # an unreadable file reads as engaged: fails closed
            halted = self.guard.state is GuardState.HALTED
            if switch.engaged and not halted:
                self.guard.set_state(GuardState.HALTED, f"kill switch: {switch.reason} (by {switch.by})")
                self.halts.append((now_ts, switch))
            elif not switch.engaged and halted and self.halts and self.halts[-1][1].engaged:
                # only a halt this gate made is lifted by a release; any other stays until its owner clears it
                self.guard.set_state(GuardState.ACTIVE, f"kill switch released (by {switch.by})")
                self.halts.append((now_ts, switch))

    def confirm(self, intent: Intent, context: GateContext, quantity: float, decision: Decision) -> tuple[str, ...]:
        refused = self.exchange_rules.confirm(intent, context, quantity, decision)
        if refused:
            return refused
        decision_context = self.contexts[intent.intent_id]
        denials = self.guard.prove_order(intent, decision_context, quantity)
        self.sizings[intent.intent_id] = (quantity, denials)
        return denials
