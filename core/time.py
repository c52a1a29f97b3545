"""Time in the product is an integer count of milliseconds since the Unix epoch, UTC."""

from __future__ import annotations

from datetime import UTC, datetime

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
YEAR_MS = 365 * DAY_MS  # crypto trades every day: annualise with 365 days

_TIMEFRAME_UNITS_MS = {"m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS}


def timeframe_ms(timeframe: str) -> int:
    """`1m` → 60000, `8h` → 28800000. Raises ValueError naming the bad timeframe."""
    unit = timeframe[-1:]
    count = timeframe[:-1]
    if unit not in _TIMEFRAME_UNITS_MS or not count.isdigit() or int(count) <= 0:
        raise ValueError(f"unknown timeframe {timeframe!r}: use a count and m, h or d, e.g. 1m, 8h")
    return int(count) * _TIMEFRAME_UNITS_MS[unit]


def to_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def parse_date_ms(text: str) -> int:
    """`2025-06-01` or an ISO datetime (UTC unless it says otherwise) → epoch milliseconds."""
    try:
        return to_ms(datetime.fromisoformat(text))
    except ValueError as exc:
        raise ValueError(f"not a date: {text!r} (use YYYY-MM-DD or an ISO datetime)") from exc


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
