"""A run's artifacts: `runs/<run_id>/` (metrics.json, Parquet tables, report.html) and a row
set in the `runs/runs.sqlite` catalogue. Writing the same run again replaces it in place.
"""

from __future__ import annotations

import html
import json
import math
import re
import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from core.errors import ConfigError
from core.orders import Fill, Order
from core.series import FloatArray, IntArray
from core.time import iso
from trader.decision_log import DECISIONS_FILE, decision_summary, write_decisions
from trader.metrics import Metrics, compute_metrics, drawdown_curve
from trader.proof_records import PROOF_LOG_FILE, proof_entries, write_proof_log
from trader.result import BacktestResult, FundingPayment
from trader.trades import Trade, build_trades

SYNTHETIC_BANNER = "SYNTHETIC DATA — not real market history"
MAX_POINTS_PER_LINE = 5000
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

Row = dict[str, Any]
Column = tuple[str, pa.DataType]

_TRADE_COLUMNS: tuple[Column, ...] = (
    ("symbol", pa.string()), ("side", pa.string()), ("open_ts", pa.int64()), ("close_ts", pa.int64()),
    ("entry_price", pa.float64()), ("exit_price", pa.float64()), ("max_quantity", pa.float64()),
    ("gross_pnl", pa.float64()), ("fees", pa.float64()), ("funding", pa.float64()),
    ("net_pnl", pa.float64()), ("liquidated", pa.bool_()), ("fill_count", pa.int64()),
)  # fmt: skip
_ORDER_COLUMNS: tuple[Column, ...] = (
    ("order_id", pa.string()), ("symbol", pa.string()), ("side", pa.string()),
    ("order_type", pa.string()), ("quantity", pa.float64()), ("price", pa.float64()),
    ("stop_price", pa.float64()), ("reduce_only", pa.bool_()), ("post_only", pa.bool_()),
    ("client_order_id", pa.string()), ("intent_id", pa.string()), ("status", pa.string()),
    ("created_ts", pa.int64()), ("updated_ts", pa.int64()), ("filled_qty", pa.float64()),
    ("average_price", pa.float64()), ("reject_reason", pa.string()),
)  # fmt: skip
_FILL_COLUMNS: tuple[Column, ...] = (
    ("ts", pa.int64()), ("order_id", pa.string()), ("symbol", pa.string()), ("side", pa.string()),
    ("quantity", pa.float64()), ("price", pa.float64()), ("fee", pa.float64()),
    ("liquidity", pa.string()), ("realized_pnl", pa.float64()), ("is_liquidation", pa.bool_()),
    ("intent_id", pa.string()),
)  # fmt: skip
_FUNDING_COLUMNS: tuple[Column, ...] = (
    ("ts", pa.int64()), ("symbol", pa.string()), ("quantity", pa.float64()),
    ("mark_price", pa.float64()), ("rate", pa.float64()), ("amount", pa.float64()),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class RunArtifacts:
    run_dir: Path
    metrics_json: Path
    trades_parquet: Path
    orders_parquet: Path
    fills_parquet: Path
    funding_parquet: Path
    report_html: Path
    database: Path
    metrics: Metrics
    decisions: dict[str, Any]  # verdict and reason counts (`decision_summary`)
    proof_log: Path  # the run's decisions, fills and rule changes, tamper-evident (written when there are any)


def write_report(result: BacktestResult, out_root: Path = Path("runs")) -> RunArtifacts:
    if not _RUN_ID.match(result.run_id):
        raise ConfigError(f"run_id {result.run_id!r} cannot name a directory: use letters, digits, '.', '_' or '-'")
    trades = build_trades(result.fills, result.funding)
    metrics = compute_metrics(result, trades)
    decisions = decision_summary(result.decisions)
    record = run_record(result, metrics, decisions)  # refuses a config JSON cannot hold before anything is written
    run_dir = out_root / result.run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    artifacts = RunArtifacts(
        run_dir=run_dir,
        metrics_json=run_dir / "metrics.json",
        trades_parquet=run_dir / "trades.parquet",
        orders_parquet=run_dir / "orders.parquet",
        fills_parquet=run_dir / "fills.parquet",
        funding_parquet=run_dir / "funding.parquet",
        report_html=run_dir / "report.html",
        database=out_root / "runs.sqlite",
        proof_log=run_dir / PROOF_LOG_FILE,
        metrics=metrics,
        decisions=decisions,
    )
    artifacts.metrics_json.write_text(_to_json(record, indent=2) + "\n")
    _write_parquet(artifacts.trades_parquet, _TRADE_COLUMNS, [_trade_row(t) for t in trades])
    _write_parquet(artifacts.orders_parquet, _ORDER_COLUMNS, [_order_row(o) for o in result.orders])
    _write_parquet(artifacts.fills_parquet, _FILL_COLUMNS, [_fill_row(f) for f in result.fills])
    _write_parquet(artifacts.funding_parquet, _FUNDING_COLUMNS, [_funding_row(p) for p in result.funding])
    write_decisions(run_dir / DECISIONS_FILE, result.decisions, result.contexts)
    if result.decisions:
        write_proof_log(artifacts.proof_log, proof_entries(result))
    artifacts.report_html.write_text(render_html(result, metrics, trades, decisions), encoding="utf-8")
    store_run(artifacts.database, result, metrics)
    return artifacts


def run_record(result: BacktestResult, metrics: Metrics, decisions: dict[str, Any]) -> Row:
    """metrics.json: the numbers plus every input needed to reproduce them."""
    return {
        "run_id": result.run_id,
        "started_at": result.started_at,
        "code_version": result.code_version,
        "seed": result.seed,
        "synthetic": result.synthetic,
        "symbols": list(result.symbols),
        "bar_ms": result.bar_ms,
        "initial_balance": result.initial_balance,
        "data_files": [{"path": f.path, "sha256": f.sha256} for f in result.data_files],
        "config": _plain_json(result.config, "config"),
        "metrics": metrics,
        "decisions": decisions,
    }


def _to_json(value: object, indent: int | None = None) -> str:
    return json.dumps(value, indent=indent, sort_keys=True, allow_nan=False)


def _plain_json(value: object, where: str) -> object:
    """`value` in JSON's own types: paths become strings, enums their values, numpy scalars
    Python numbers. Anything else is refused naming where it sits, e.g. `config.window`."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, dict):
        return {str(key): _plain_json(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_json(item, f"{where}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where} is {value}; JSON has no infinities or NaN, store a finite number or null")
    if value is None or isinstance(value, str | int | float):
        return value
    raise ConfigError(
        f"{where} is a {type(value).__name__} ({value!r}); a run's config may hold only strings, "
        "numbers, booleans, null, lists and dicts"
    )


# --- tables -------------------------------------------------------------------------------


def _trade_row(trade: Trade) -> Row:
    return {
        "symbol": trade.symbol, "side": str(trade.side), "open_ts": trade.open_ts,
        "close_ts": trade.close_ts, "entry_price": trade.entry_price, "exit_price": trade.exit_price,
        "max_quantity": trade.max_quantity, "gross_pnl": trade.gross_pnl, "fees": trade.fees,
        "funding": trade.funding, "net_pnl": trade.net_pnl, "liquidated": trade.liquidated,
        "fill_count": trade.fill_count,
    }  # fmt: skip


def _order_row(order: Order) -> Row:
    request = order.request
    return {
        "order_id": order.order_id, "symbol": request.symbol, "side": str(request.side),
        "order_type": str(request.order_type), "quantity": request.quantity, "price": request.price,
        "stop_price": request.stop_price, "reduce_only": request.reduce_only,
        "post_only": request.post_only, "client_order_id": request.client_order_id,
        "intent_id": request.intent_id, "status": str(order.status), "created_ts": order.created_ts,
        "updated_ts": order.updated_ts, "filled_qty": order.filled_qty,
        "average_price": order.average_price, "reject_reason": order.reject_reason,
    }  # fmt: skip


def _fill_row(fill: Fill) -> Row:
    return {
        "ts": fill.ts, "order_id": fill.order_id, "symbol": fill.symbol, "side": str(fill.side),
        "quantity": fill.quantity, "price": fill.price, "fee": fill.fee,
        "liquidity": str(fill.liquidity), "realized_pnl": fill.realized_pnl,
        "is_liquidation": fill.is_liquidation, "intent_id": fill.intent_id,
    }  # fmt: skip


def _funding_row(payment: FundingPayment) -> Row:
    return {
        "ts": payment.ts, "symbol": payment.symbol, "quantity": payment.quantity,
        "mark_price": payment.mark_price, "rate": payment.rate, "amount": payment.amount,
    }  # fmt: skip


def _write_parquet(path: Path, columns: Sequence[Column], rows: list[Row]) -> None:
    schema = pa.schema(list(columns))
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


# --- SQLite catalogue ---------------------------------------------------------------------

_SQLITE_TYPES = {pa.int64(): "INTEGER", pa.bool_(): "INTEGER", pa.float64(): "REAL", pa.string(): "TEXT"}


def _child_table_ddl(name: str, columns: Sequence[Column]) -> str:
    body = ", ".join(f"{column} {_SQLITE_TYPES[kind]}" for column, kind in columns)
    return (
        f"CREATE TABLE IF NOT EXISTS {name} (run_id TEXT NOT NULL REFERENCES runs(run_id), "
        f"seq INTEGER NOT NULL, {body}, PRIMARY KEY (run_id, seq))"
    )


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, "
    "config_json TEXT NOT NULL, metrics_json TEXT NOT NULL, trades_hash TEXT NOT NULL, "
    "synthetic INTEGER NOT NULL)",
    _child_table_ddl("orders", _ORDER_COLUMNS),
    _child_table_ddl("fills", _FILL_COLUMNS),
)


def store_run(database: Path, result: BacktestResult, metrics: Metrics) -> None:
    """Replace the run's rows in one transaction, so a rerun never leaves duplicates or halves."""
    with closing(sqlite3.connect(database)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA foreign_keys=ON")
        for statement in _SCHEMA:
            connection.execute(statement)
        with connection:
            for table in ("orders", "fills", "runs"):
                connection.execute(f"DELETE FROM {table} WHERE run_id = ?", (result.run_id,))
            connection.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?)",
                (
                    result.run_id,
                    result.started_at,
                    _to_json(_plain_json(result.config, "config")),
                    _to_json(metrics),
                    str(metrics["trades_hash"]),
                    int(result.synthetic),
                ),
            )
            _insert_rows(connection, "orders", _ORDER_COLUMNS, result.run_id, map(_order_row, result.orders))
            _insert_rows(connection, "fills", _FILL_COLUMNS, result.run_id, map(_fill_row, result.fills))


def _insert_rows(
    connection: sqlite3.Connection,
    table: str,
    columns: Sequence[Column],
    run_id: str,
    rows: Iterable[Row],
) -> None:
    names = [name for name, _ in columns]
    placeholders = ", ".join("?" * (len(names) + 2))
    connection.executemany(
        f"INSERT INTO {table} (run_id, seq, {', '.join(names)}) VALUES ({placeholders})",
        ((run_id, seq, *(row[name] for name in names)) for seq, row in enumerate(rows)),
    )


# --- HTML ---------------------------------------------------------------------------------


def downsample_minmax(ts: IntArray, values: FloatArray, max_points: int) -> tuple[IntArray, FloatArray]:
    """At most `max_points` points that keep the first, the last, and each bucket's lowest and
    highest value, so spikes (a liquidation, the drawdown trough) survive the thinning."""
    count = int(values.size)
    if count <= max_points:
        return ts, values
    buckets = max(1, (max_points - 2) // 2)
    width = -(-count // buckets)
    padded = np.concatenate([values, np.full(width * buckets - count, values[-1])]).reshape(buckets, width)
    offsets = np.arange(buckets) * width
    picks = np.concatenate([[0, count - 1], offsets + np.argmin(padded, axis=1), offsets + np.argmax(padded, axis=1)])
    keep = np.unique(np.minimum(picks, count - 1))
    return ts[keep], values[keep]


def _line(ts: IntArray, values: FloatArray, name: str) -> go.Scatter:
    thin_ts, thin_values = downsample_minmax(ts, values, MAX_POINTS_PER_LINE)
    # Epoch milliseconds as float64 travel base64-packed; ISO strings would triple the page size.
    return go.Scatter(x=thin_ts.astype(np.float64), y=thin_values, name=name, mode="lines")


def _figure(traces: list[Any], title: str, y_title: str, y_format: str = "", over_time: bool = True) -> go.Figure:
    figure = go.Figure(traces)
    figure.update_layout(
        title=title, template="plotly_white", height=380, margin={"l": 60, "r": 20, "t": 50, "b": 40},
        yaxis={"title": y_title, "tickformat": y_format}, xaxis={"type": "date"} if over_time else {},
    )  # fmt: skip
    return figure


def _charts(result: BacktestResult, trades: Sequence[Trade], summary: dict[str, Any]) -> list[go.Figure]:
    drawdown = -drawdown_curve(result.equity)
    pnl_by_symbol = {symbol: 0.0 for symbol in result.symbols}
    for trade in trades:
        pnl_by_symbol[trade.symbol] = pnl_by_symbol.get(trade.symbol, 0.0) + trade.net_pnl
    # A symbol without a close on a bar holds nothing there; NaN would break the min/max thinning.
    positions = [
        _line(result.ts, np.nan_to_num(result.position_qty[s] * result.close[s], nan=0.0), s) for s in result.symbols
    ]
    pnl_bar = go.Bar(
        x=list(pnl_by_symbol),
        y=list(pnl_by_symbol.values()),
        marker_color=["#2e7d32" if pnl >= 0 else "#c62828" for pnl in pnl_by_symbol.values()],
    )
    reasons = go.Bar(x=list(summary["by_reason"]), y=list(summary["by_reason"].values()), marker_color="#c62828")
    verdicts = go.Bar(
        x=["admitted", "reduced", "denied"],
        y=[summary["admitted"], summary["reduced"], summary["denied"]],
        marker_color=["#2e7d32", "#d39e00", "#c62828"],
    )
    return [
        _figure([verdicts], "Guard verdicts on the strategy's intents", "intents", over_time=False),
        _figure([reasons], "Reason codes given (an intent may have several)", "intents", over_time=False),
        _figure([_line(result.ts, result.equity, "equity")], "Equity", "USDT"),
        _figure([_line(result.ts, drawdown, "drawdown")], "Drawdown from peak", "", ".1%"),
        _figure([pnl_bar], "Net P&L per symbol (realised trades, after fees and funding)", "USDT", over_time=False),
        _figure(positions, "Position notional per symbol (signed: long > 0, short < 0)", "USDT"),
    ]


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1200px; color: #222; }
.banner { padding: .8rem 1rem; border-radius: 6px; margin-bottom: 1rem; }
.synthetic { background: #fff3cd; border: 2px solid #d39e00; font-weight: 700; font-size: 1.2rem; }
.real { background: #e8f1fb; border: 1px solid #7aa7d6; }
table.metrics { border-collapse: collapse; margin: 1rem 0; }
table.metrics td { border-bottom: 1px solid #ddd; padding: .25rem .8rem; }
table.metrics td:first-child { color: #555; }
code { font-size: .85em; }
"""


def _banner(result: BacktestResult) -> str:
    if result.synthetic:
        return f'<div class="banner synthetic">{html.escape(SYNTHETIC_BANNER)}</div>'
    files = "".join(
        f"<li><code>{html.escape(f.path)}</code> sha256 <code>{html.escape(f.sha256)}</code></li>"
        for f in result.data_files
    )
    return f'<div class="banner real">Market data files:<ul>{files or "<li>none recorded</li>"}</ul></div>'


def _metrics_table(metrics: Metrics) -> str:
    rows = []
    for name, value in metrics.items():
        shown = format_metric(name, value)
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{html.escape(shown)}</td></tr>")
    return f'<table class="metrics">{"".join(rows)}</table>'


def _decisions_table(summary: dict[str, Any]) -> str:
    """Verdict counts, then how often each layer and reason code was given."""
    rows = [
        f"<tr><td>{label}</td><td>{summary[key]}</td></tr>"
        for label, key in (
            ("intents", "intents"),
            ("admitted", "admitted"),
            ("reduced", "reduced"),
            ("denied", "denied"),
        )
    ]
    rows += [
        f"<tr><td>layer {html.escape(layer)}</td><td>{count}</td></tr>" for layer, count in summary["by_layer"].items()
    ]
    rows += [
        f"<tr><td><code>{html.escape(code)}</code></td><td>{count}</td></tr>"
        for code, count in summary["by_reason"].items()
    ]
    hashes = ", ".join(f"<code>{html.escape(h[:16])}</code>" for h in summary["ruleset_hashes"]) or "none (guard off)"
    return f'<h2>Guard decisions</h2><p>rule sets: {hashes}</p><table class="metrics">{"".join(rows)}</table>'


def render_html(result: BacktestResult, metrics: Metrics, trades: Sequence[Trade], decisions: dict[str, Any]) -> str:
    """One self-contained page: plotly.js is inlined with the first chart and reused by the rest."""
    charts = [
        figure.to_html(full_html=False, include_plotlyjs=index == 0)
        for index, figure in enumerate(_charts(result, trades, decisions))
    ]
    title = f"CryptoScalp run {result.run_id}"
    facts = (
        f"started {result.started_at} · code {result.code_version} · seed {result.seed} · "
        f"symbols {', '.join(result.symbols)}"
    )
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>{_banner(result)}<h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(facts)}</p>{_metrics_table(metrics)}{_decisions_table(decisions)}{''.join(charts)}</body></html>"
    )


# --- terminal -----------------------------------------------------------------------------

_PERCENT = {"win_rate", "max_drawdown", "time_in_market"}
_USDT = {
    "net_pnl", "gross_realised_pnl", "fees", "funding", "funding_unattributed", "avg_trade",
    "max_drawdown_usdt", "insurance_fund_cover", "initial_balance", "final_equity",
}  # fmt: skip


def format_metric(name: str, value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return "; ".join(str(item) for item in value) or "—"
    if isinstance(value, int) and name.endswith("_ts"):
        return iso(value)
    if isinstance(value, float):
        if name in _PERCENT:
            return f"{value:.2%}"
        if name in _USDT:
            return f"{value:,.2f} USDT"
        return f"{value:,.3f}"
    return str(value)


_SUMMARY: tuple[tuple[str, str], ...] = (
    ("Net P&L", "net_pnl"), ("Fees", "fees"), ("Funding", "funding"), ("Trades (closed)", "trades"),
    ("Win rate", "win_rate"), ("Profit factor", "profit_factor"), ("Sharpe", "sharpe"),
    ("Sortino", "sortino"), ("Max drawdown", "max_drawdown"), ("Max drawdown USDT", "max_drawdown_usdt"),
    ("Time in market", "time_in_market"), ("Avg gross exposure", "avg_gross_exposure"),
    ("Turnover", "turnover"), ("Liquidations", "liquidations"),
)  # fmt: skip


def print_summary(
    metrics: Metrics, console: Console, run_dir: Path | None = None, decisions: dict[str, Any] | None = None
) -> None:
    synthetic = metrics.get("synthetic") is True
    title = "Backtest summary — SYNTHETIC DATA" if synthetic else "Backtest summary"
    table = Table(title=title, show_header=False, title_style="bold yellow" if synthetic else "bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for label, key in _SUMMARY:
        table.add_row(label, format_metric(key, metrics.get(key)))
    if decisions is not None:
        verdicts = f"{decisions['admitted']} admitted · {decisions['reduced']} reduced · {decisions['denied']} denied"
        table.add_row("Guard verdicts", verdicts)
        top = sorted(decisions["by_reason"].items(), key=lambda item: -item[1])[:3]
        if top:
            table.add_row("Top reasons", ", ".join(f"{reason} ({count})" for reason, count in top))
    table.add_row("Trades hash", str(metrics.get("trades_hash", ""))[:16])
    table.add_row("Synthetic data", format_metric("synthetic", synthetic))
    if run_dir is not None:
        table.add_row("Run directory", str(run_dir))
    console.print(table)
    notes = metrics.get("notes")
    if isinstance(notes, list):
        for note in notes:
            console.print(f"note: {note}", style="dim", markup=False)
