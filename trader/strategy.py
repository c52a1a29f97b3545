"""The strategy interface of the trading loop.

A strategy *proposes* `Intent`s; it never submits orders. For backtests it may
precompute its indicators over the whole history in `prepare` — only causally, so the
value at a row depends on rows up to and including it — and tell the loop at which rows
it could possibly propose (`wakeup_rows`); the loop then skips the rows in between. A
strategy that returns None is called on every row.
"""

from __future__ import annotations

from typing import Protocol

from core.intent import Intent
from core.series import IntArray
from market.grid import MarketGrid


class StrategyContext(Protocol):
    """What a strategy may see when it decides, at the close of a bar."""

    @property
    def decision_ts(self) -> int: ...

    def position_qty(self, symbol: str) -> float: ...

    def mark_price(self, symbol: str) -> float: ...


class Strategy(Protocol):
    strategy_id: str

    def prepare(self, grid: MarketGrid) -> None: ...

    def wakeup_rows(self, symbol_index: int) -> IntArray | None: ...

    def on_bar(self, symbol_index: int, row: int, context: StrategyContext) -> list[Intent]: ...
