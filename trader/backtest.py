"""One backtest run: config → data → grid → loop over the simulated exchange → result.

The config is a pydantic model because it is a boundary: it comes from the command line
(and later from files and the API) and everything in it is recorded in the run's report.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.errors import ConfigError
from core.instrument import Instrument
from core.positions import MarginMode
from core.series import MarketData
from core.time import parse_date_ms
from execution.simulator import SimulatedExchange, SimulatorConfig
from market.exchange_rules import instrument_with_saved_rules, load_rules
from market.grid import MarketGrid, build_grid
from market.indicators import compute_indicators
from market.loaders import load_market_data_with_report
from market.quality import RepairPolicy
from market.symbols import to_ccxt_symbol
from market.synthetic import generate_market, synthetic_instrument
from reasoning.guard import Guard, GuardConfig
from reasoning.kill_switch import KillSwitch
from reasoning.rules import RULES_DIR, RuleWatcher, load_ruleset
from trader.baseline import EmaCross
from trader.gate import ExchangeRulesGate, PreTradeGate
from trader.guard_gate import ContextBuilder, GuardGate
from trader.loop import BacktestLoop, garbage_collection_paused
from trader.result import BacktestResult, DataFile
from trader.sizing import FixedNotionalSizer

ProgressFactory = Callable[[int], Callable[[int], None]]


class BacktestConfig(BaseModel):
    """Every option that defines a backtest. Recorded verbatim in `metrics.json`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data: Path | None = None
    synthetic: bool = False
    days: int = Field(30, ge=1)
    seed: int = Field(7, ge=0)
    pairs: list[str] | None = None
    start: str | None = None
    end: str | None = None
    timeframe: str = "1m"
    on_gap: RepairPolicy | None = None
    initial_balance: float = Field(10_000.0, gt=0)
    maker_fee: float = 0.0002
    taker_fee: float = 0.0005
    leverage: float = Field(5.0, ge=1)
    margin_mode: MarginMode = MarginMode.CROSS
    latency_ms: int = Field(0, ge=0)
    slippage_bps: float = Field(0.0, ge=0)
    notional: float = Field(1_000.0, gt=0)
    fast: int = Field(9, ge=1)
    slow: int = Field(21, ge=2)
    stop_atr: float | None = Field(3.0, gt=0)  # the baseline's protective stop, in ATR(14); None: no stop
    # the reasoning guard judges every intent unless `guard` is off (exchange rules only)
    guard: bool = True
    rules: Path = RULES_DIR
    region: str = ""  # the account's jurisdiction (ISO 3166 alpha-2), for the compliance rules
    hot_reload: bool = False  # re-read changed rule files during the run (off: a backtest is reproducible)
    kill_switch: Path | None = None  # a kill-switch file to obey during the run (`POST /v1/kill-switch` writes it)

    @field_validator("pairs")
    @classmethod
    def _normalise_pairs(cls, pairs: list[str] | None) -> list[str] | None:
        if pairs is None:
            return None
        return list(dict.fromkeys(to_ccxt_symbol(pair) for pair in pairs))

    @model_validator(mode="after")
    def _consistent(self) -> BacktestConfig:
        if self.data is None and not self.synthetic:
            raise ValueError("give --data DIR for real data or --synthetic for generated data")
        if self.data is not None and self.synthetic:
            raise ValueError("--data and --synthetic exclude each other")
        if self.fast >= self.slow:
            raise ValueError(f"fast EMA span {self.fast} must be shorter than slow span {self.slow}")
        start, end = self.start_ms, self.end_ms
        if start is not None and end is not None and end <= start:
            raise ValueError(f"end {self.end} is not after start {self.start}")
        return self

    @property
    def start_ms(self) -> int | None:
        return None if self.start is None else parse_date_ms(self.start)

    @property
    def end_ms(self) -> int | None:
        return None if self.end is None else parse_date_ms(self.end)

    def to_record(self) -> dict[str, object]:
        """The config as recorded with the run; generator options only when the generator ran."""
        exclude = None if self.synthetic else {"days", "seed"}
        record: dict[str, object] = json.loads(self.model_dump_json(exclude=exclude))
        return record


def load_data(config: BacktestConfig) -> tuple[MarketData, dict[str, Instrument], tuple[str, ...]]:
    """Market data, instruments and any repairs made, as the config asks."""
    if config.synthetic:
        market = generate_market(config.pairs, config.days, config.seed)
        instruments = {symbol: synthetic_instrument(symbol) for symbol in market.bars}
        if config.start_ms is not None or config.end_ms is not None:
            market = MarketData(
                bars={s: b.between(config.start_ms, config.end_ms) for s, b in market.bars.items()},
                funding=market.funding,
                mark=market.mark,
                synthetic=True,
            )
        return market, instruments, ()
    assert config.data is not None
    loaded = load_market_data_with_report(
        config.data,
        config.pairs,
        timeframe=config.timeframe,
        start_ms=config.start_ms,
        end_ms=config.end_ms,
        repair=config.on_gap,
    )
    saved = load_rules(config.data if config.data.is_dir() else config.data.parent)
    instruments = {symbol: instrument_with_saved_rules(symbol, saved) for symbol in loaded.data.bars}
    return loaded.data, instruments, loaded.repairs


def run_backtest(config: BacktestConfig, progress: ProgressFactory | None = None) -> BacktestResult:
    # loading, the loop and the result allocate millions of acyclic objects: no cyclic GC passes over them
    with garbage_collection_paused():
        return _run_backtest(config, progress)


def _run_backtest(config: BacktestConfig, progress: ProgressFactory | None) -> BacktestResult:
    market, instruments, repairs = load_data(config)
    grid = build_grid(market)
    if any(series.ts.size == 0 for series in market.bars.values()):
        empty = [symbol for symbol, series in market.bars.items() if series.ts.size == 0]
        raise ConfigError(f"no bars between {config.start} and {config.end} for {', '.join(empty)}")
    loop = build_loop(config, grid, instruments)
    exchange = loop.exchange
    started = datetime.now(UTC)
    try:
        record = loop.run(progress(grid.length) if progress else None)
    finally:
        if isinstance(loop.gate, GuardGate):
            loop.gate.guard.close()  # stops the Z3 child
    curve = loop.equity_curve()
    run_config = config.to_record() | {
        "funding_sources": {s: grid.funding[i].source for i, s in enumerate(grid.symbols)},
        "repairs": list(repairs),
        "mark_price_model": "bar prices inside bars; mark file at funding settlements when given",
        "ohlc_path": "previous close → open, then O→L→H→C if close >= open else O→H→L→C",
    }
    return BacktestResult(
        run_id=_run_id(started, run_config),
        started_at=started.isoformat(timespec="seconds"),
        config=run_config,
        seed=config.seed if config.synthetic else None,
        synthetic=market.synthetic,
        code_version=code_version(),
        data_files=[DataFile(path, file_sha256(Path(path))) for path in market.files],
        symbols=list(grid.symbols),
        bar_ms=grid.bar_ms,
        initial_balance=config.initial_balance,
        ts=grid.ts,
        equity=curve.equity,
        wallet=curve.wallet,
        position_qty={s: curve.position_qty[i] for i, s in enumerate(grid.symbols)},
        close={s: grid.close_ffill[i] for i, s in enumerate(grid.symbols)},
        orders=exchange.order_history(),
        fills=list(exchange.fills),
        funding=list(exchange.funding_payments),
        decisions=record.decisions,
        contexts=loop.gate.contexts if isinstance(loop.gate, GuardGate) else {},
        sizings=loop.gate.sizings if isinstance(loop.gate, GuardGate) else {},
        rule_changes=loop.gate.rule_changes if isinstance(loop.gate, GuardGate) else [],
        insurance_fund_cover=exchange.insurance_fund_cover,
    )


def build_loop(config: BacktestConfig, grid: MarketGrid, instruments: dict[str, Instrument]) -> BacktestLoop:
    """The baseline strategy, the guard (or the exchange's rules alone) and fixed-notional sizing
    over a fresh simulated exchange."""
    exchange = SimulatedExchange(
        grid,
        instruments,
        SimulatorConfig(
            initial_balance=config.initial_balance,
            maker_fee=config.maker_fee,
            taker_fee=config.taker_fee,
            latency_ms=config.latency_ms,
            slippage_bps=config.slippage_bps,
            default_leverage=config.leverage,
            default_margin_mode=config.margin_mode,
        ),
    )
    exchange_rules = ExchangeRulesGate(instruments)
    gate: PreTradeGate = exchange_rules
    if config.guard:
        ruleset = load_ruleset(config.rules, isolate_limits=True)  # as live runs it: Z3 on the other core
        guard = Guard(ruleset.engines, ruleset.ruleset_hash, GuardConfig())
        indicators = compute_indicators(grid, [instruments[symbol].tick_size for symbol in grid.symbols])
        builder = ContextBuilder(grid, exchange, indicators, region=config.region)
        watcher = RuleWatcher(guard, ruleset) if config.hot_reload else None
        kill_switch = KillSwitch(config.kill_switch) if config.kill_switch is not None else None
        gate = GuardGate(guard, builder, exchange_rules, watcher, kill_switch)
    return BacktestLoop(
        grid,
        instruments,
        EmaCross(fast=config.fast, slow=config.slow, notional=config.notional, stop_atr=config.stop_atr),
        gate,
        FixedNotionalSizer(config.notional),
        exchange,
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def code_version() -> str:
    """The git commit the code ran from (with `-dirty` for uncommitted changes), else the package version."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        from importlib.metadata import version

        return f"cryptoscalp {version('cryptoscalp')}"
    return commit + ("-dirty" if dirty else "")


def _run_id(started: datetime, config: dict[str, object]) -> str:
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{started.strftime('%Y%m%dT%H%M%S')}-{digest}"
