"""Load market data files into column arrays: freqtrade feather/parquet, Binance public CSV/zip.

Recognised file names (in a directory, searched recursively, or given one by one):

- freqtrade futures layout, `.feather` or `.parquet`: `BTC_USDT_USDT-1m-futures` (bars),
  `BTC_USDT_USDT-8h-funding_rate` (the rate in column `open`), `BTC_USDT_USDT-8h-mark`
  (8h mark candles; the `open` at a settlement time is the mark price);
- Binance public data (data.binance.vision, USDT-M), `.csv` or `.zip`:
  `BTCUSDT-1m-2025-06` / `BTCUSDT-1m-2025-06-01` (klines) and `BTCUSDT-fundingRate-2025-06`.

When a symbol has data in several formats, one is used: feather, else parquet, else Binance.
Binance monthly/daily files of one symbol are concatenated; a `.csv` beside its `.zip` is
read instead of it. Rows are numbered from 0 in each file, header lines not counted.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from core.errors import ConfigError, DataError, DataQualityError, UnknownSymbolError
from core.series import BarSeries, FloatArray, FundingSeries, IntArray, MarketData, MarkSeries
from core.time import MINUTE_MS, iso, timeframe_ms
from market.quality import (
    BAR_COLUMNS,
    IssueKind,
    QualityIssue,
    RepairPolicy,
    check_bars,
    check_observations,
    epoch_ms,
    repair_bars,
    repair_observations,
)
from market.symbols import to_ccxt_symbol

logger = logging.getLogger(__name__)

KLINE_COLUMNS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
)
FUNDING_RATE_COLUMNS = ("calc_time", "funding_interval_hours", "last_funding_rate")

_FREQTRADE_NAME = re.compile(
    r"^(?P<base>[A-Z0-9]+)_USDT_USDT-(?P<timeframe>\d+[mhd])-(?P<kind>futures|funding_rate|mark)"
    r"\.(?P<ext>feather|parquet)$"
)
_BINANCE_KLINES_NAME = re.compile(
    r"^(?P<base>[A-Z0-9]+)USDT-(?P<timeframe>\d+[mhd])-\d{4}-\d{2}(-\d{2})?\.(?P<ext>csv|zip)$"
)
_BINANCE_FUNDING_NAME = re.compile(r"^(?P<base>[A-Z0-9]+)USDT-fundingRate-\d{4}-\d{2}\.(?P<ext>csv|zip)$")
_NAME_EXAMPLES = (
    "BTC_USDT_USDT-1m-futures.feather, BTC_USDT_USDT-8h-funding_rate.feather, "
    "BTC_USDT_USDT-8h-mark.parquet, BTCUSDT-1m-2025-06.zip, BTCUSDT-fundingRate-2025-06.csv"
)


class FileKind(StrEnum):
    BARS = "bars"
    FUNDING = "funding"
    MARK = "mark"


class FileFormat(StrEnum):
    """In order of preference when a symbol has data in several formats."""

    FEATHER = "feather"
    PARQUET = "parquet"
    BINANCE_CSV = "binance-csv"  # .csv or .zip holding one .csv


_FORMAT_PREFERENCE = tuple(FileFormat)
_FREQTRADE_KINDS = {"futures": FileKind.BARS, "funding_rate": FileKind.FUNDING, "mark": FileKind.MARK}


@dataclass(frozen=True, slots=True)
class MarketFile:
    """A data file recognised by its name."""

    path: Path  # absolute
    symbol: str  # ccxt symbol
    kind: FileKind
    format: FileFormat
    timeframe: str | None  # "1m", "8h"; None for Binance funding files (no candle timeframe)

    @property
    def timeframe_ms(self) -> int | None:
        return None if self.timeframe is None else timeframe_ms(self.timeframe)


class UnreadableFileError(DataError):
    """A file could not be parsed; `problem` says why, without the file name."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


@dataclass(frozen=True, slots=True)
class LoadResult:
    data: MarketData
    repairs: tuple[str, ...]  # one line per repair made under the RepairPolicy
    issues: tuple[QualityIssue, ...]  # what the quality checks found before repair


def load_market_data(
    path: Path,
    pairs: Sequence[str] | None = None,
    *,
    timeframe: str = "1m",
    start_ms: int | None = None,
    end_ms: int | None = None,
    repair: RepairPolicy | None = None,
) -> MarketData:
    """Bars (and funding and mark, when present) of `pairs` (None: every pair found) from a
    directory or one file, trimmed to start <= ts < end. Repairs are logged as warnings;
    use `load_market_data_with_report` to get them as values."""
    result = load_market_data_with_report(
        path, pairs, timeframe=timeframe, start_ms=start_ms, end_ms=end_ms, repair=repair
    )
    for line in result.repairs:
        logger.warning("repaired %s", line)
    return result.data


def load_market_data_with_report(
    path: Path,
    pairs: Sequence[str] | None = None,
    *,
    timeframe: str = "1m",
    start_ms: int | None = None,
    end_ms: int | None = None,
    repair: RepairPolicy | None = None,
) -> LoadResult:
    """As `load_market_data`, also returning the issues found and the repairs made.

    Raises DataQualityError when issues are found and `repair` is None, UnknownSymbolError
    for a requested pair without bars, DataError for unreadable files, ConfigError for bad
    arguments.
    """
    bar_ms = _parse_timeframe(timeframe)
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise ConfigError(f"end {iso(end_ms)} is not after start {iso(start_ms)}")
    root = Path(path).absolute()
    chosen = _choose_files(root, _requested_symbols(pairs), timeframe)

    files_read: list[str] = []
    issues: list[QualityIssue] = []
    repairs: list[str] = []
    bars: dict[str, BarSeries] = {}
    funding: dict[str, FundingSeries] = {}
    mark: dict[str, MarkSeries] = {}
    frames: dict[tuple[str, FileKind], pd.DataFrame] = {}
    for (symbol, kind), market_files in chosen.items():
        frame = _trim(_read_all(market_files), start_ms, end_ms)
        files_read += [str(market_file.path) for market_file in market_files]
        if kind is FileKind.BARS and frame.empty:
            raise DataError(f"{symbol}: no {timeframe} bars {_window(start_ms, end_ms)} in {_names(market_files)}")
        issues += _check(frame, kind, bar_ms)
        frames[(symbol, kind)] = frame

    if issues and repair is None:
        raise DataQualityError(_refusal(issues, root))
    for (symbol, kind), frame in frames.items():
        source = ", ".join(str(market_file.path) for market_file in chosen[(symbol, kind)])
        clean = frame
        if repair is not None:
            clean, lines = _repair(frame, kind, repair, bar_ms)
            repairs += [f"{symbol}: {line}" for line in lines]
        if kind is FileKind.BARS:
            bars[symbol] = _bar_series(symbol, bar_ms, clean, source)
        elif kind is FileKind.FUNDING:
            funding[symbol] = FundingSeries(symbol, _ints(clean["ts"]), _floats(clean["rate"]), source)
        else:
            mark[symbol] = MarkSeries(symbol, _ints(clean["ts"]), _floats(clean["price"]), source)
    data = MarketData(bars=bars, funding=funding, mark=mark, synthetic=False, files=tuple(files_read))
    return LoadResult(data, tuple(repairs), tuple(issues))


def recognise(path: Path) -> MarketFile | None:
    """The MarketFile a file name denotes, or None when the name is not a data file's."""
    name = path.name
    absolute = path.absolute()
    try:
        match = _FREQTRADE_NAME.match(name)
        if match is not None:
            file_format = FileFormat.FEATHER if match["ext"] == "feather" else FileFormat.PARQUET
            symbol = to_ccxt_symbol(match["base"])
            return MarketFile(absolute, symbol, _FREQTRADE_KINDS[match["kind"]], file_format, match["timeframe"])
        match = _BINANCE_KLINES_NAME.match(name)
        if match is not None:
            symbol = to_ccxt_symbol(match["base"])
            return MarketFile(absolute, symbol, FileKind.BARS, FileFormat.BINANCE_CSV, match["timeframe"])
        match = _BINANCE_FUNDING_NAME.match(name)
        if match is not None:
            symbol = to_ccxt_symbol(match["base"])
            return MarketFile(absolute, symbol, FileKind.FUNDING, FileFormat.BINANCE_CSV, None)
    except ConfigError:  # shaped like a data file, but no USDT pair (e.g. USDT_USDT_USDT-…)
        return None
    return None


def recognised_files(path: Path) -> list[MarketFile]:
    """Every recognised data file under a directory (recursively), or the one file given."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"market data path {path.absolute()} does not exist")
    if path.is_file():
        market_file = recognise(path)
        if market_file is None:
            raise DataError(f"{path.absolute()}: not a recognised market data file name (e.g. {_NAME_EXAMPLES})")
        return [market_file]
    found = [recognise(candidate) for candidate in sorted(path.rglob("*")) if candidate.is_file()]
    return _without_zip_beside_csv([market_file for market_file in found if market_file is not None])


def read_market_file(market_file: MarketFile) -> pd.DataFrame:
    """One file → a frame with `ts` (epoch ms UTC), the value columns (bars: OHLCV; funding:
    `rate`; mark: `price`), `source` and `row`. Raises UnreadableFileError."""
    if market_file.format is FileFormat.BINANCE_CSV:
        return _read_binance(market_file)
    table = _read_arrow_table(market_file.path, market_file.format)
    if "date" not in table.columns and table.index.name == "date":
        table = table.reset_index()
    if market_file.kind is FileKind.BARS:
        needed: tuple[str, ...] = BAR_COLUMNS
    else:
        needed = ("open",)
    _require_columns(market_file.path, table.columns, ("date", *needed))
    ts = _timestamps(table["date"], market_file.path)
    if market_file.kind is FileKind.BARS:
        values = {name: _numbers(table[name]) for name in BAR_COLUMNS}
    elif market_file.kind is FileKind.FUNDING:
        ts = _snap_to_minute(ts)
        values = {"rate": _numbers(table["open"])}
    else:
        values = {"price": _numbers(table["open"])}
    return _frame(market_file.path, ts, values)


def _parse_timeframe(timeframe: str) -> int:
    try:
        return timeframe_ms(timeframe)
    except ValueError as error:
        raise ConfigError(str(error)) from error


def _requested_symbols(pairs: Sequence[str] | None) -> dict[str, str] | None:
    """ccxt symbol → the name the user wrote, in the order given; None for all pairs."""
    if pairs is None:
        return None
    if not pairs:
        raise ConfigError("no pairs requested: give at least one pair, or none to load every pair found")
    requested: dict[str, str] = {}
    for pair in pairs:
        requested.setdefault(to_ccxt_symbol(pair), pair)
    return requested


def _choose_files(
    root: Path, requested: dict[str, str] | None, timeframe: str
) -> dict[tuple[str, FileKind], list[MarketFile]]:
    """(symbol, kind) → the files to read, bars first for each symbol."""
    found = recognised_files(root)
    if root.is_file():
        only = found[0]
        if only.kind is not FileKind.BARS:
            raise DataError(f"{only.path} holds {only.kind} data, not bars: point at a bars file or a directory")
        if only.timeframe != timeframe:
            raise ConfigError(f"{only.path} holds {only.timeframe} bars but timeframe {timeframe} was requested")
    bar_files = [f for f in found if f.kind is FileKind.BARS and f.timeframe == timeframe]
    available = sorted({f.symbol for f in bar_files})
    if requested is None:
        if not available:
            raise DataError(_nothing_found(root, found, timeframe))
        symbols = available
    else:
        for symbol, pair in requested.items():
            if symbol not in available:
                raise UnknownSymbolError(
                    f"no {timeframe} bars for pair {pair!r} ({symbol}) in {root}; "
                    f"available: {', '.join(available) if available else 'none'}"
                    + ("" if available else f" ({_nothing_found(root, found, timeframe)})")
                )
        symbols = list(requested)
    chosen: dict[tuple[str, FileKind], list[MarketFile]] = {}
    for symbol in symbols:
        chosen[(symbol, FileKind.BARS)] = _preferred([f for f in bar_files if f.symbol == symbol], "bars")
        for kind in (FileKind.FUNDING, FileKind.MARK):
            candidates = [f for f in found if f.symbol == symbol and f.kind is kind]
            if candidates:
                chosen[(symbol, kind)] = _preferred(candidates, f"{kind} data")
    return chosen


def _preferred(candidates: list[MarketFile], what: str) -> list[MarketFile]:
    """The files of the most preferred format; freqtrade formats must have exactly one."""
    for file_format in _FORMAT_PREFERENCE:
        files = [f for f in candidates if f.format is file_format]
        if not files:
            continue
        if file_format is not FileFormat.BINANCE_CSV and len(files) > 1:
            raise DataError(
                f"{files[0].symbol}: several {file_format} files hold {what}: "
                f"{', '.join(str(f.path) for f in files)}; keep one"
            )
        return files
    raise AssertionError("_preferred called without candidates")


def _without_zip_beside_csv(files: list[MarketFile]) -> list[MarketFile]:
    csv_stems = {f.path.with_suffix("") for f in files if f.path.suffix == ".csv"}
    return [f for f in files if not (f.path.suffix == ".zip" and f.path.with_suffix("") in csv_stems)]


def _nothing_found(root: Path, found: list[MarketFile], timeframe: str) -> str:
    if not found:
        return f"no market data files in {root} (names like {_NAME_EXAMPLES})"
    timeframes = sorted({f.timeframe for f in found if f.kind is FileKind.BARS and f.timeframe})
    return f"no {timeframe} bar files in {root}; bar timeframes present: {', '.join(timeframes) or 'none'}"


def _read_all(market_files: list[MarketFile]) -> pd.DataFrame:
    frames = [read_market_file(market_file) for market_file in market_files]
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _trim(frame: pd.DataFrame, start_ms: int | None, end_ms: int | None) -> pd.DataFrame:
    keep = np.ones(len(frame), dtype=bool)
    ts = frame["ts"].to_numpy(dtype=np.int64)
    if start_ms is not None:
        keep &= ts >= start_ms
    if end_ms is not None:
        keep &= ts < end_ms
    return frame if keep.all() else frame.loc[keep].reset_index(drop=True)


def _check(frame: pd.DataFrame, kind: FileKind, bar_ms: int) -> list[QualityIssue]:
    if kind is FileKind.BARS:
        return check_bars(frame, timeframe_ms=bar_ms)
    if kind is FileKind.FUNDING:
        return check_observations(frame, "rate", positive=False)
    return check_observations(frame, "price", positive=True)


def _repair(frame: pd.DataFrame, kind: FileKind, policy: RepairPolicy, bar_ms: int) -> tuple[pd.DataFrame, list[str]]:
    if kind is FileKind.BARS:
        return repair_bars(frame, policy, bar_ms)
    if kind is FileKind.FUNDING:
        return repair_observations(frame, "rate", positive=False)
    return repair_observations(frame, "price", positive=True)


def _refusal(issues: list[QualityIssue], root: Path) -> str:
    others = len(issues) - 1
    files = len({issue.file for issue in issues})
    more = f" and {others} other issue(s) in {files} file(s)" if others else ""
    return (
        f"market data fails quality checks: {issues[0].message}{more}; "
        f"list them with `cryptoscalp data check {root}`, or load anyway with --on-gap skip "
        "(drop bad rows, leave gaps) or --on-gap ffill (also fill gaps with flat bars)"
    )


def _bar_series(symbol: str, bar_ms: int, frame: pd.DataFrame, source: str) -> BarSeries:
    return BarSeries(
        symbol=symbol,
        timeframe_ms=bar_ms,
        ts=_ints(frame["ts"]),
        open=_floats(frame["open"]),
        high=_floats(frame["high"]),
        low=_floats(frame["low"]),
        close=_floats(frame["close"]),
        volume=_floats(frame["volume"]),
        source=source,
    )


def _ints(column: pd.Series) -> IntArray:
    return np.ascontiguousarray(column.to_numpy(dtype=np.int64))


def _floats(column: pd.Series) -> FloatArray:
    return np.ascontiguousarray(column.to_numpy(dtype=np.float64))


def _window(start_ms: int | None, end_ms: int | None) -> str:
    start = "the beginning" if start_ms is None else iso(start_ms)
    end = "the end" if end_ms is None else iso(end_ms)
    return f"from {start} to {end}"


def _names(market_files: Iterable[MarketFile]) -> str:
    return ", ".join(str(market_file.path) for market_file in market_files)


def _read_arrow_table(path: Path, file_format: FileFormat) -> pd.DataFrame:
    try:
        if file_format is FileFormat.FEATHER:
            return pd.read_feather(path)
        return pd.read_parquet(path)
    except (OSError, ValueError, TypeError, pa.ArrowException) as error:
        raise UnreadableFileError(path, f"cannot read as {file_format}: {_one_line(error)}") from error


def _read_binance(market_file: MarketFile) -> pd.DataFrame:
    path = market_file.path
    columns = KLINE_COLUMNS if market_file.kind is FileKind.BARS else FUNDING_RATE_COLUMNS
    content = _binance_csv_bytes(path)
    first_line = content.split(b"\n", 1)[0].strip()
    if not first_line:
        raise UnreadableFileError(path, "empty file")
    fields = first_line.split(b",")
    if len(fields) != len(columns):
        raise UnreadableFileError(path, f"expected {len(columns)} columns ({', '.join(columns)}), found {len(fields)}")
    has_header = not _is_number(fields[0])
    try:
        table = pd.read_csv(io.BytesIO(content), header=None, names=list(columns), skiprows=1 if has_header else 0)
    except (ValueError, UnicodeDecodeError) as error:
        raise UnreadableFileError(path, f"cannot parse CSV: {_one_line(error)}") from error
    if market_file.kind is FileKind.BARS:
        ts = _timestamps(table["open_time"], path)
        return _frame(path, ts, {name: _numbers(table[name]) for name in BAR_COLUMNS})
    ts = _snap_to_minute(_timestamps(table["calc_time"], path))
    return _frame(path, ts, {"rate": _numbers(table["last_funding_rate"])})


def _binance_csv_bytes(path: Path) -> bytes:
    try:
        if path.suffix != ".zip":
            return path.read_bytes()
        with zipfile.ZipFile(path) as archive:
            members = [name for name in archive.namelist() if name.endswith(".csv")]
            if len(members) != 1:
                raise UnreadableFileError(path, f"expected one .csv inside the zip, found {len(members)}")
            return archive.read(members[0])
    except (OSError, zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise UnreadableFileError(path, f"cannot read: {_one_line(error)}") from error


def _is_number(text: bytes) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _timestamps(column: pd.Series, path: Path) -> IntArray:
    try:
        return epoch_ms(column, str(path))
    except DataError as error:
        raise UnreadableFileError(path, str(error).removeprefix(f"{path}: ")) from error


def _snap_to_minute(ts: IntArray) -> IntArray:
    # Binance stamps funding a few milliseconds after the settlement (16:00:00.013); snapping
    # to the minute lines funding up with the bar grid and the mark series.
    return (ts + MINUTE_MS // 2) // MINUTE_MS * MINUTE_MS


def _numbers(column: pd.Series) -> FloatArray:
    # Unparseable values become NaN, which the quality checks then report with their row.
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _frame(path: Path, ts: IntArray, values: dict[str, FloatArray]) -> pd.DataFrame:
    frame = pd.DataFrame({"ts": ts, **values})
    frame["source"] = str(path)
    frame["row"] = np.arange(len(frame), dtype=np.int64)
    return frame


def _require_columns(path: Path, present: Iterable[object], needed: Iterable[str]) -> None:
    names = {str(name) for name in present}
    missing = [name for name in needed if name not in names]
    if missing:
        raise UnreadableFileError(
            path, f"missing column(s) {', '.join(missing)} (has: {', '.join(sorted(names)) or 'none'})"
        )


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def check_path(path: Path) -> dict[str, list[QualityIssue]]:
    """Check every recognised market data file in a directory (recursively) or one file:
    file path → its issues (empty when clean). Unreadable files yield one `unreadable` issue."""
    results: dict[str, list[QualityIssue]] = {}
    for market_file in recognised_files(Path(path)):
        key = str(market_file.path)
        try:
            frame = read_market_file(market_file)
        except UnreadableFileError as error:
            results[key] = [QualityIssue(IssueKind.UNREADABLE, key, None, None, error.problem)]
            continue
        if market_file.kind is FileKind.BARS:
            results[key] = check_bars(frame, key, timeframe_ms=market_file.timeframe_ms)
        elif market_file.kind is FileKind.FUNDING:
            results[key] = check_observations(frame, "rate", positive=False)
        else:
            results[key] = check_observations(frame, "price", positive=True)
    return results
