"""The `cryptoscalp` command line.

Every failure the product anticipates (bad data, bad options, exchange errors) ends in
one line on stderr naming the problem and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from api.cli import serve, tokens_app
from core.compiled import stale_compiled_modules, stale_message
from core.errors import CryptoScalpError
from core.positions import MarginMode
from market.quality import RepairPolicy
from reasoning.datalog.cli import datalog_app
from reasoning.prooflog.cli import proof_app
from trader.rules_cli import rules_app

app = typer.Typer(add_completion=False, no_args_is_help=True, help="CryptoScalp: USDT-M perpetual futures scalping.")
data_app = typer.Typer(no_args_is_help=True, help="Inspect market data.")
app.add_typer(data_app, name="data")
app.add_typer(datalog_app, name="datalog")
app.add_typer(rules_app, name="rules")
app.add_typer(proof_app, name="proof")
app.add_typer(tokens_app, name="tokens")
app.command("serve")(serve)

console = Console()
error_console = Console(stderr=True)

# options that take several values after one flag, as in `--pairs BTC ETH SOL`
_MULTI_VALUE_OPTIONS = ("--pairs",)


@app.command()
def backtest(
    data: Annotated[Path | None, typer.Option(help="Market data: freqtrade feather, Binance CSV/zip, Parquet.")] = None,
    synthetic: Annotated[bool, typer.Option(help="Use the seeded synthetic market instead of files.")] = False,
    pairs: Annotated[list[str] | None, typer.Option(help="Pairs, e.g. BTC ETH SOL (default: all).")] = None,
    start: Annotated[str | None, typer.Option(help="First day (UTC), e.g. 2025-06-01.")] = None,
    end: Annotated[str | None, typer.Option(help="End (exclusive, UTC), e.g. 2025-06-15.")] = None,
    days: Annotated[int, typer.Option(help="Length of the synthetic market.")] = 30,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic market.")] = 7,
    on_gap: Annotated[RepairPolicy | None, typer.Option(help="Repair bad data instead of refusing it.")] = None,
    balance: Annotated[float, typer.Option(help="Initial USDT balance.")] = 10_000.0,
    leverage: Annotated[float, typer.Option(help="Leverage per symbol.")] = 5.0,
    margin_mode: Annotated[MarginMode, typer.Option(help="Margin mode for every symbol.")] = MarginMode.CROSS,
    notional: Annotated[float, typer.Option(help="USDT notional per trade of the baseline strategy.")] = 1_000.0,
    latency_ms: Annotated[int, typer.Option(help="Order latency; orders act no earlier than the next bar.")] = 0,
    slippage_bps: Annotated[float, typer.Option(help="Slippage on taker fills, basis points.")] = 0.0,
    maker_fee: Annotated[float, typer.Option(help="Maker fee rate.")] = 0.0002,
    taker_fee: Annotated[float, typer.Option(help="Taker fee rate.")] = 0.0005,
    out: Annotated[Path, typer.Option(help="Directory for run reports.")] = Path("runs"),
    guard: Annotated[
        bool, typer.Option(help="Judge intents with the reasoning guard (else exchange rules only).")
    ] = True,
    rules: Annotated[Path | None, typer.Option(help="Rule set directory (default: the repository's rules/).")] = None,
    region: Annotated[str, typer.Option(help="Account jurisdiction (ISO 3166 alpha-2) for compliance rules.")] = "",
    stop_atr: Annotated[float | None, typer.Option(help="Protective stop distance in ATR(14); 0 for none.")] = 3.0,
    hot_reload: Annotated[bool, typer.Option(help="Reload changed rule files during the run.")] = False,
    kill_switch: Annotated[
        Path | None, typer.Option(help="Kill-switch file to obey (the API's POST /v1/kill-switch writes it).")
    ] = None,
) -> None:
    """Backtest the baseline EMA 9/21 stop-and-reverse strategy on the simulated USDT-M exchange."""
    from trader.backtest import BacktestConfig, run_backtest
    from trader.report import print_summary, write_report

    config = _validated(
        BacktestConfig,
        data=data,
        synthetic=synthetic,
        days=days,
        seed=seed,
        pairs=pairs,
        start=start,
        end=end,
        on_gap=on_gap,
        initial_balance=balance,
        leverage=leverage,
        margin_mode=margin_mode,
        notional=notional,
        latency_ms=latency_ms,
        slippage_bps=slippage_bps,
        maker_fee=maker_fee,
        taker_fee=taker_fee,
        guard=guard,
        region=region,
        stop_atr=stop_atr or None,
        hot_reload=hot_reload,
        kill_switch=kill_switch,
        **({"rules": rules} if rules is not None else {}),
    )
    with _progress("backtest") as progress:
        result = run_backtest(config, progress)
    artifacts = write_report(result, out)
    print_summary(artifacts.metrics, console, artifacts.run_dir, artifacts.decisions if config.guard else None)


@data_app.command("check")
def data_check(path: Annotated[Path, typer.Argument(help="Directory or file of market data.")]) -> None:
    """Report gaps, NaNs, bad prices, duplicates and out-of-order rows, per file."""
    from market.loaders import check_path

    if not path.exists():
        raise CryptoScalpError(f"{path}: no such file or directory")
    report = check_path(path)
    if not report:
        raise CryptoScalpError(f"{path}: no market data files recognised")
    table = Table(title=f"Data quality: {path}")
    table.add_column("file")
    table.add_column("issues", justify="right")
    table.add_column("first issues")
    total = 0
    for file, issues in sorted(report.items()):
        total += len(issues)
        shown = "\n".join(issue.message for issue in issues[:5]) + ("\n…" if len(issues) > 5 else "")
        table.add_row(Path(file).name, str(len(issues)), shown or "ok")
    console.print(table)
    console.print(f"{len(report)} files, {total} issues")
    if total:
        raise typer.Exit(1)


@app.command()
def download(
    exchange: Annotated[str, typer.Option(help="ccxt exchange id: binanceusdm, okx or bybit.")] = "binanceusdm",
    pairs: Annotated[list[str] | None, typer.Option(help="ccxt symbols, e.g. BTC/USDT:USDT.")] = None,
    timeframe: Annotated[str, typer.Option(help="Candle timeframe.")] = "1m",
    days: Annotated[int, typer.Option(help="How many days back from now.")] = 30,
    out: Annotated[Path, typer.Option(help="Output directory (freqtrade feather layout).")] = Path("data"),
) -> None:
    """Fetch OHLCV, funding and mark history through ccxt; resumes an earlier download."""
    from market.download import download as fetch

    if not pairs:
        raise CryptoScalpError("give at least one pair, e.g. --pairs BTC/USDT:USDT")
    files = fetch(exchange, pairs, timeframe, days, out)
    table = Table(title=f"Downloaded to {out}")
    for column in ("file", "kind", "rows added", "rows total"):
        table.add_column(column)
    for file in files:
        table.add_row(Path(file.path).name, file.kind, str(file.rows_added), str(file.rows_total))
    console.print(table)


def _validated(model: type, **values: object):  # type: ignore[no-untyped-def]
    try:
        return model(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'options'}: {error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors()
        )
        raise CryptoScalpError(problems) from None


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int], Callable[[int], None]]]:
    """A rich progress bar that appears only once the work starts (errors before it print alone)."""
    columns = (
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("bars"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    progress = Progress(*columns, console=error_console)

    def start(total: int) -> Callable[[int], None]:
        progress.start()
        task = progress.add_task(label, total=total)
        last = [0]

        def advance(row: int) -> None:
            if row - last[0] >= 2_000 or row >= total - 1:
                progress.update(task, completed=row + 1)
                last[0] = row

        return advance

    try:
        yield start
    finally:
        # rich's stop() prints a blank line on a non-interactive console even if never started
        if progress.live.is_started:
            progress.stop()


def _expand_multi_value_options(argv: list[str]) -> list[str]:
    """`--pairs A B C` → `--pairs A --pairs B --pairs C` (click takes one value per flag)."""
    expanded: list[str] = []
    current: str | None = None
    for arg in argv:
        if arg in _MULTI_VALUE_OPTIONS:
            current = arg
            expanded.append(arg)
            continue
        if current is not None and not arg.startswith("-") and expanded[-1] != current:
            expanded.append(current)
        elif arg.startswith("-"):
            current = None
        expanded.append(arg)
    return expanded


def main() -> None:
    stale = stale_compiled_modules()
    if stale:
        error_console.print(f"[red]error:[/red] {stale_message(stale)}", highlight=False, soft_wrap=True)
        sys.exit(2)
    argv = _expand_multi_value_options(sys.argv[1:])
    try:
        # standalone: typer reports usage errors itself (one message, exit code 2)
        app(argv, prog_name="cryptoscalp")
    except (CryptoScalpError, OSError, ValueError) as exc:
        error_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
