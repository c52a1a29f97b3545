"""What a finished run hands to metrics and reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.decision import Decision
from core.intent import Intent
from core.orders import Fill, Order
from core.positions import FundingPayment
from core.series import FloatArray, IntArray
from reasoning.context import DecisionContext
from reasoning.rules import RuleChange

__all__ = ["BacktestResult", "DataFile", "FundingPayment"]


@dataclass(frozen=True, slots=True)
class DataFile:
    path: str
    sha256: str


@dataclass(slots=True)
class BacktestResult:
    run_id: str
    started_at: str  # ISO time the run was made
    config: dict[str, Any]  # every option that defines the run
    seed: int | None
    synthetic: bool
    code_version: str
    data_files: list[DataFile]
    symbols: list[str]
    bar_ms: int  # bar length; Sharpe/Sortino annualise with it
    initial_balance: float
    # one row per bar of the union time grid
    ts: IntArray
    equity: FloatArray  # wallet + unrealised P&L at each bar's close
    wallet: FloatArray
    # per symbol, aligned with `ts`: signed position quantity and mark at each bar's close
    position_qty: dict[str, FloatArray]
    close: dict[str, FloatArray]
    orders: list[Order] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    funding: list[FundingPayment] = field(default_factory=list)
    decisions: list[tuple[Intent, Decision]] = field(default_factory=list)
    contexts: dict[str, DecisionContext] = field(default_factory=dict)  # intent id → what the guard saw
    # intent id → (sized quantity, Z3's re-proof denials of it), for intents the guard let through to sizing
    sizings: dict[str, tuple[float, tuple[str, ...]]] = field(default_factory=dict)
    rule_changes: list[tuple[int, RuleChange]] = field(default_factory=list)  # (time, hot reload), in order
    insurance_fund_cover: float = 0.0  # losses beyond margin absorbed by the exchange

    @property
    def final_equity(self) -> float:
        return float(self.equity[-1]) if self.equity.size else self.initial_balance

    def exposure_notional(self) -> dict[str, FloatArray]:
        return {s: np.abs(self.position_qty[s]) * self.close[s] for s in self.symbols}
