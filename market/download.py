"""Download perpetual-futures history through ccxt into freqtrade's feather layout.

For each pair three files are kept in `out_dir`, named and shaped like freqtrade's so the
same directory serves both tools (see /work/shared/data/binance-usdm):

- `BTC_USDT_USDT-1m-futures.feather`: candles of the requested timeframe;
- `BTC_USDT_USDT-8h-funding_rate.feather`: one row per funding settlement, the rate in
  `open` and 0.0 in the other price/volume columns;
- `BTC_USDT_USDT-8h-mark.feather`: 8h mark-price candles (OKX and Bybit have no 8h candles:
  there each is built from two 4h ones).

Every file has the columns `date` (datetime64[ns, UTC]) and `open`, `high`, `low`, `close`,
`volume` (float64), sorted by date with no duplicate dates. A file with no rows is not created.

Design:

- The time window is the `days` before `end_ms` (default: now). Only final rows are kept: a
  candle once its close time has passed; a funding settlement, like in freqtrade's files,
  once the 8h interval it opens has passed, so funding and mark files end at the same row.
- Resuming is the normal case, not a special mode: the rows already on disk are read first
  and only the ranges around them are fetched (after the last row, and before the first one
  when the window reaches further back than the file).
- Pagination walks fixed windows that can never hold more rows than one page. That makes the
  result independent of whether an endpoint answers a range with its oldest rows (Binance) or
  its newest (OKX, Bybit): every window comes back whole.
- Rows fetched so far are merged with the file and written atomically (temp file in the same
  directory + `os.replace`) when the download of a file ends for any reason, including a
  network failure or Ctrl-C; an interrupted run never leaves a corrupt file and the next run
  continues where it stopped.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import ccxt
import numpy as np
import numpy.typing as npt
import pandas as pd
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from core.errors import ConfigError, DataError, DownloadError, UnknownSymbolError
from core.time import DAY_MS, HOUR_MS, iso, timeframe_ms
from market.exchange_rules import rules_from_ccxt_market, save_rules
from market.symbols import file_stem

SUPPORTED_EXCHANGES = ("binanceusdm", "okx", "bybit")

FileKind = Literal["candles", "funding", "mark"]
Row = tuple[int, float, float, float, float, float]  # ts (epoch ms), open, high, low, close, volume

COLUMNS = ("date", "open", "high", "low", "close", "volume")
FUNDING_TIMEFRAME = "8h"  # the name freqtrade gives the funding file, whatever the real interval
MARK_TIMEFRAME = "8h"
_MARK_FALLBACK_TIMEFRAME = "4h"
# Funding settles every 8h on most perpetuals but every 4h, 2h or 1h on some; sizing funding
# windows by the shortest interval keeps each window within one page.
_SHORTEST_FUNDING_INTERVAL_MS = HOUR_MS


@dataclass(frozen=True, slots=True)
class _PageLimits:
    candles: int  # also the limit of mark-price candles
    funding: int


# The largest page each endpoint really returns; asking for more is silently capped by the
# exchange, which with newest-first endpoints would drop the oldest rows of a window.
_PAGE_LIMITS = {
    "binanceusdm": _PageLimits(candles=1000, funding=1000),
    "okx": _PageLimits(candles=100, funding=100),
    "bybit": _PageLimits(candles=1000, funding=200),
}

# Only perpetual markets are needed; loading spot and options markets too costs requests.
_CLIENT_OPTIONS: dict[str, dict[str, Any]] = {
    "binanceusdm": {},
    "okx": {"defaultType": "swap", "fetchMarkets": {"types": ["swap"]}},
    "bybit": {"defaultType": "swap", "fetchMarkets": {"types": ["linear"]}},
}


@dataclass(frozen=True, slots=True)
class DownloadedFile:
    """One feather file after a download: what it holds and how much this run added."""

    path: Path
    symbol: str
    kind: FileKind
    rows_added: int
    rows_total: int
    first_ts: int | None  # epoch ms of the first row; None when the file has no rows
    last_ts: int | None


@dataclass(frozen=True, slots=True)
class _Series:
    """One file to bring up to date and how to page through its endpoint."""

    kind: FileKind
    symbol: str
    path: Path
    interval_ms: int  # candle length, or the usual time between two funding settlements
    grid_ms: int  # rows fall on multiples of this: the candle length, 1 ms for funding
    window_spacing_ms: int  # the least time between two rows; sizes the windows
    page_limit: int  # rows per window
    fetch_page: Callable[[int, int], list[Row]]  # (window start, window end exclusive) -> rows


def download(
    exchange_id: str,
    pairs: list[str],
    timeframe: str,
    days: int,
    out_dir: Path,
    *,
    end_ms: int | None = None,
    exchange: ccxt.Exchange | None = None,
    show_progress: bool = True,
) -> list[DownloadedFile]:
    """Bring candles, funding and mark files of `pairs` up to date for the `days` before `end_ms`.

    `exchange` replaces the client this function would create (tests point one at a local
    server). Returns one `DownloadedFile` per pair and kind, in the order candles, funding, mark.
    """
    if exchange_id not in SUPPORTED_EXCHANGES:
        raise DownloadError(
            f"unknown exchange {exchange_id!r}: supported exchanges are {', '.join(SUPPORTED_EXCHANGES)}"
        )
    if days <= 0:
        raise ConfigError(f"--days must be a positive number of days, got {days}")
    try:
        candle_ms = timeframe_ms(timeframe)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    client = exchange if exchange is not None else _create_client(exchange_id)
    if client.id != exchange_id:
        raise DownloadError(f"the exchange client given is {client.id!r}, not {exchange_id!r}")
    _load_markets(client, exchange_id)
    if timeframe not in client.timeframes:
        raise ConfigError(f"{exchange_id} has no {timeframe!r} candles; it offers {', '.join(client.timeframes)}")
    symbols = list(dict.fromkeys(pairs))
    for symbol in symbols:
        _require_perpetual(client, exchange_id, symbol)
    end = end_ms if end_ms is not None else int(client.milliseconds())
    start = end - days * DAY_MS
    out_dir.mkdir(parents=True, exist_ok=True)
    save_rules(
        out_dir, {symbol: rules_from_ccxt_market(client.market(symbol), f"{exchange_id} markets") for symbol in symbols}
    )
    downloaded: list[DownloadedFile] = []
    with _progress_bar(show_progress) as progress:
        for symbol in symbols:
            for series in _series_of(client, exchange_id, symbol, timeframe, candle_ms, out_dir):
                downloaded.append(_bring_up_to_date(series, exchange_id, client, start, end, progress))
    return downloaded


def _create_client(exchange_id: str) -> ccxt.Exchange:
    client_class = getattr(ccxt, exchange_id)
    return client_class({"enableRateLimit": True, "options": _CLIENT_OPTIONS[exchange_id]})


def _load_markets(client: ccxt.Exchange, exchange_id: str) -> None:
    try:
        client.load_markets()
    except ccxt.BaseError as exc:  # network, exchange and rate-limit errors alike
        raise DownloadError(
            f"{exchange_id}: loading the market list failed ({_describe(exc, client)}); "
            "check the network connection and run the command again"
        ) from exc


def _require_perpetual(client: ccxt.Exchange, exchange_id: str, pair: str) -> None:
    markets: dict[str, dict[str, Any]] = client.markets
    market = markets.get(pair)
    if market is None:
        near = sorted(symbol for symbol in markets if symbol.startswith(f"{pair}:"))
        hint = f"; did you mean {' or '.join(near)}?" if near else "; perpetuals are written like BTC/USDT:USDT"
        raise UnknownSymbolError(f"{exchange_id} has no market {pair!r}{hint}")
    if not (market.get("swap") and market.get("linear")):
        raise UnknownSymbolError(
            f"{pair!r} on {exchange_id} is not a linear perpetual swap; write perpetuals like BTC/USDT:USDT"
        )


def _series_of(
    client: ccxt.Exchange, exchange_id: str, symbol: str, timeframe: str, candle_ms: int, out_dir: Path
) -> list[_Series]:
    limits = _PAGE_LIMITS[exchange_id]
    stem = file_stem(symbol)
    mark_ms = timeframe_ms(MARK_TIMEFRAME)
    # OKX and Bybit have no 8h candles: their 8h mark candles are built from pairs of 4h ones.
    mark_source = MARK_TIMEFRAME if MARK_TIMEFRAME in client.timeframes else _MARK_FALLBACK_TIMEFRAME
    mark_parts = mark_ms // timeframe_ms(mark_source)

    def fetch_candles(since: int, window_end: int) -> list[Row]:
        params = _upper_bound_params(exchange_id, "candles", window_end)
        raw = client.fetch_ohlcv(symbol, timeframe, since=since, limit=limits.candles, params=params)
        return [_candle_row(candle, volume_missing=float("nan")) for candle in raw]

    def fetch_funding(since: int, window_end: int) -> list[Row]:
        params = _upper_bound_params(exchange_id, "funding", window_end)
        raw = client.fetch_funding_rate_history(symbol, since=since, limit=limits.funding, params=params)
        return [(int(entry["timestamp"]), float(entry["fundingRate"]), 0.0, 0.0, 0.0, 0.0) for entry in raw]

    def fetch_mark(since: int, window_end: int) -> list[Row]:
        bucket_end = -(-window_end // mark_ms) * mark_ms  # the last 8h candle of the window, whole
        params = {**_upper_bound_params(exchange_id, "mark", bucket_end), "price": "mark"}
        raw = client.fetch_ohlcv(symbol, mark_source, since=since, limit=limits.candles, params=params)
        rows = [_candle_row(candle, volume_missing=0.0) for candle in raw]  # a mark price has no volume
        return rows if mark_parts == 1 else _combine_candles(rows, mark_ms, mark_parts)

    return [
        _Series(
            "candles",
            symbol,
            out_dir / f"{stem}-{timeframe}-futures.feather",
            interval_ms=candle_ms,
            grid_ms=candle_ms,
            window_spacing_ms=candle_ms,
            page_limit=limits.candles,
            fetch_page=fetch_candles,
        ),
        _Series(
            "funding",
            symbol,
            out_dir / f"{stem}-{FUNDING_TIMEFRAME}-funding_rate.feather",
            interval_ms=timeframe_ms(FUNDING_TIMEFRAME),
            grid_ms=1,  # settlements land a few ms either side of the hour
            window_spacing_ms=_SHORTEST_FUNDING_INTERVAL_MS,
            page_limit=limits.funding,
            fetch_page=fetch_funding,
        ),
        _Series(
            "mark",
            symbol,
            out_dir / f"{stem}-{MARK_TIMEFRAME}-mark.feather",
            interval_ms=mark_ms,
            grid_ms=mark_ms,
            window_spacing_ms=mark_ms,
            page_limit=limits.candles // mark_parts,
            fetch_page=fetch_mark,
        ),
    ]


def _combine_candles(rows: list[Row], span_ms: int, parts: int) -> list[Row]:
    """Merge consecutive candles into candles `span_ms` long; a bucket missing a part is dropped."""
    buckets: dict[int, list[Row]] = {}
    for row in sorted(rows):
        buckets.setdefault(row[0] - row[0] % span_ms, []).append(row)
    return [
        (
            start,
            parts_of[0][1],
            max(part[2] for part in parts_of),
            min(part[3] for part in parts_of),
            parts_of[-1][4],
            sum(part[5] for part in parts_of),
        )
        for start, parts_of in buckets.items()
        if len(parts_of) == parts
    ]


def _upper_bound_params(exchange_id: str, kind: FileKind, window_end: int) -> dict[str, Any]:
    if exchange_id == "okx":
        # OKX's `after` is exclusive ("older than"); ccxt sends `until` as `after` for candles
        # but ignores `until` for funding history, so funding gets `after` directly.
        return {"after": window_end} if kind == "funding" else {"until": window_end}
    return {"until": window_end - 1}  # Binance's and Bybit's endTime is inclusive


def _candle_row(candle: list[Any], volume_missing: float) -> Row:
    ts, open_, high, low, close, volume = candle[:6]
    return (
        int(ts),
        float(open_),
        float(high),
        float(low),
        float(close),
        volume_missing if volume is None else float(volume),
    )


def _bring_up_to_date(
    series: _Series, exchange_id: str, client: ccxt.Exchange, start: int, end: int, progress: Progress
) -> DownloadedFile:
    existing = _read_existing(series.path)
    first_wanted = -(-start // series.grid_ms) * series.grid_ms
    # A row is kept once its interval has ended: a candle at its close time. Funding rows are
    # treated as 8h candles too, as freqtrade does, so funding and mark files end together.
    stop = end - series.interval_ms + 1
    ranges = _missing_ranges(series, existing, first_wanted, stop)
    span = max(1, sum(high - low for low, high in ranges))
    task = progress.add_task(f"{series.symbol} {series.kind}", total=span)
    fetched: list[Row] = []
    failure: ccxt.BaseError | None = None
    try:
        for low, high in ranges:
            _fetch_range(series, low, high, fetched, lambda done: progress.advance(task, done))
    except ccxt.BaseError as exc:  # network, exchange and rate-limit errors alike
        failure = exc
    finally:
        merged = _merge_and_save(series.path, existing, fetched)
    progress.update(task, completed=span)
    if failure is not None:
        saved = (
            f"{len(merged)} rows up to {iso(int(_ts(merged)[-1]))} are saved in {series.path}"
            if len(merged)
            else f"nothing was saved to {series.path}"
        )
        raise DownloadError(
            f"{exchange_id}: fetching {series.kind} of {series.symbol} failed ({_describe(failure, client)}); "
            f"{saved}; run the same command again to resume"
        ) from failure
    timestamps = _ts(merged)
    return DownloadedFile(
        path=series.path,
        symbol=series.symbol,
        kind=series.kind,
        rows_added=len(merged) - (0 if existing is None else len(existing)),
        rows_total=len(merged),
        first_ts=int(timestamps[0]) if len(timestamps) else None,
        last_ts=int(timestamps[-1]) if len(timestamps) else None,
    )


def _missing_ranges(
    series: _Series, existing: pd.DataFrame | None, first_wanted: int, stop: int
) -> list[tuple[int, int]]:
    """Half-open [low, high) ranges of row times to fetch, given the rows already on disk."""
    if existing is None or existing.empty:
        return [(first_wanted, stop)] if first_wanted < stop else []
    timestamps = _ts(existing)
    first, last = int(timestamps.min()), int(timestamps.max())
    ranges = []
    # Some of the window lies before the file (e.g. --days was raised): fetch that part too.
    if first - series.interval_ms >= first_wanted:
        ranges.append((first_wanted, first))
    # Continue right after the last row even when it is older than the window: no gap is left.
    resume = last + series.grid_ms
    if resume < stop:
        ranges.append((resume, stop))
    return ranges


def _fetch_range(series: _Series, low: int, high: int, into: list[Row], advance: Callable[[int], None]) -> None:
    """Fetch rows with low <= ts < high window by window, each window no more than one page."""
    cursor = low
    while cursor < high:
        window_end = min(high, cursor + series.page_limit * series.window_spacing_ms)
        rows = [row for row in series.fetch_page(cursor, window_end) if cursor <= row[0] < window_end]
        into.extend(rows)
        # Rows may stop short of the window's end (a gap, or a page cut by the exchange):
        # continue after the last row rather than skip what a shorter page left out.
        next_cursor = max(row[0] for row in rows) + series.grid_ms if rows else window_end
        advance(next_cursor - cursor)
        cursor = next_cursor


def _read_existing(path: Path) -> pd.DataFrame | None:
    if not path.exists():
        return None
    try:
        frame = pd.read_feather(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the existing file ({exc}); delete it to download again") from exc
    if tuple(frame.columns) != COLUMNS:
        raise DataError(
            f"{path}: columns are {list(frame.columns)}, expected {list(COLUMNS)}; delete it to download again"
        )
    return frame


def _merge_and_save(path: Path, existing: pd.DataFrame | None, fetched: list[Row]) -> pd.DataFrame:
    """Existing rows plus fetched ones, sorted and unique by date; written only if rows were added."""
    if not fetched:
        return existing if existing is not None else _frame([])
    parts = [_frame(fetched)] if existing is None else [existing, _frame(fetched)]
    merged = (
        pd.concat(parts, ignore_index=True)
        .drop_duplicates(subset="date", keep="last")
        .sort_values("date")
        .reset_index(drop=True)
    )
    _write_atomically(merged, path)
    return merged


def _frame(rows: list[Row]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(COLUMNS), dtype="float64")
    frame["date"] = pd.to_datetime(pd.Series([row[0] for row in rows], dtype="int64"), unit="ms", utc=True).astype(
        "datetime64[ns, UTC]"
    )
    return frame


def _write_atomically(frame: pd.DataFrame, path: Path) -> None:
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        frame.to_feather(temp_name)
        os.replace(temp_name, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temp_name)  # left only when writing failed


def _ts(frame: pd.DataFrame) -> npt.NDArray[np.int64]:
    return np.asarray(frame["date"].dt.as_unit("ms").astype("int64"), dtype=np.int64)


def _describe(exc: ccxt.BaseError, client: ccxt.Exchange) -> str:
    """The ccxt error as one short line, with any credential of the client blanked out."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    for secret in (client.apiKey, client.secret, client.password, client.uid):
        if isinstance(secret, str) and secret:
            text = text.replace(secret, "***")
    return text if len(text) <= 300 else text[:297] + "..."


def _progress_bar(show: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        disable=not show,
    )
