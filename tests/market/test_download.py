"""`download` against a local stand-in for Binance USDT-M, through the real ccxt client.

The server below answers the public endpoints ccxt's `binanceusdm` calls (`exchangeInfo` for
load_markets, `klines`, `markPriceKlines`, `fundingRate`) from deterministic generated
history, honouring `startTime`, `endTime` and `limit` as Binance does, and logs every
request so tests can say which ranges were fetched.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import ccxt
import pandas as pd
import pytest

from core.errors import DownloadError, UnknownSymbolError
from core.time import DAY_MS, HOUR_MS, MINUTE_MS, parse_date_ms
from market.download import _combine_candles, download
from market.exchange_rules import SavedRules, load_rules

PAIR = "BTC/USDT:USDT"
END_MS = parse_date_ms("2025-06-24T10:32:30+00:00")  # mid-minute, like a real "now"
LISTED_MS = parse_date_ms("2025-06-01")
EIGHT_HOURS_MS = 8 * HOUR_MS
KLINES = "/fapi/v1/klines"
MARK_KLINES = "/fapi/v1/markPriceKlines"
FUNDING = "/fapi/v1/fundingRate"

EXCHANGE_INFO = {
    "timezone": "UTC",
    "serverTime": END_MS,
    "rateLimits": [],
    "exchangeFilters": [],
    "assets": [],
    "symbols": [
        {
            "symbol": "BTCUSDT",
            "pair": "BTCUSDT",
            "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000,
            "onboardDate": LISTED_MS,
            "status": "TRADING",
            "baseAsset": "BTC",
            "quoteAsset": "USDT",
            "marginAsset": "USDT",
            "pricePrecision": 2,
            "quantityPrecision": 3,
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "filters": [
                {"filterType": "PRICE_FILTER", "tickSize": "0.10", "minPrice": "556.80", "maxPrice": "4529764"},
                {"filterType": "LOT_SIZE", "stepSize": "0.001", "minQty": "0.001", "maxQty": "1000"},
                {"filterType": "MIN_NOTIONAL", "notional": "100"},
            ],
        }
    ],
}


def candle_open(ts: int) -> float:
    return 100.0 + (ts // MINUTE_MS) % 50


def mark_open(ts: int) -> float:
    return 200.0 + (ts // EIGHT_HOURS_MS) % 10


def funding_time(settlement: int) -> int:
    """Binance stamps settlements a few ms off the hour; so does the stand-in."""
    return settlement + (settlement // EIGHT_HOURS_MS) % 5


def funding_rate(settlement: int) -> float:
    return (0.0001, 0.0002, 0.0003)[(settlement // EIGHT_HOURS_MS) % 3]


def kline(ts: int, span_ms: int, open_: float, volume: float) -> list[Any]:
    return [ts, str(open_), str(open_ + 1), str(open_ - 1), str(open_ + 0.5), str(volume), ts + span_ms - 1]


@dataclass
class StandIn:
    """What the stand-in serves and what it was asked."""

    now_ms: int = END_MS
    requests: list[tuple[str, dict[str, int]]] = field(default_factory=list)
    failing_path: str | None = None
    successes_before_failure: int = 0
    base_url: str = ""

    def fail(self, path: str, after: int) -> None:
        """Answer `path` with HTTP 500 once it has been answered `after` times."""
        self.failing_path, self.successes_before_failure = path, after

    def heal(self) -> None:
        self.failing_path = None

    def asked(self, path: str) -> list[dict[str, int]]:
        return [query for asked_path, query in self.requests if asked_path == path]

    def answer(self, path: str, query: dict[str, int]) -> tuple[int, Any]:
        self.requests.append((path, query))
        if path == self.failing_path and len(self.asked(path)) > self.successes_before_failure:
            return 500, {"code": -1000, "msg": "An unknown error occurred while processing the request."}
        if path == "/fapi/v1/exchangeInfo":
            return 200, EXCHANGE_INFO
        start = max(query.get("startTime", LISTED_MS), LISTED_MS)
        end = min(query.get("endTime", self.now_ms), self.now_ms)
        if path in (KLINES, MARK_KLINES):
            span = {"1m": MINUTE_MS, "8h": EIGHT_HOURS_MS}[str(query["interval"])]
            limit = min(query.get("limit", 500), 1500)
            first = -(-start // span) * span
            opens = list(range(first, end + 1, span))[:limit]
            if path == KLINES:
                return 200, [kline(ts, span, candle_open(ts), 1.0 + ts // MINUTE_MS % 7) for ts in opens]
            return 200, [kline(ts, span, mark_open(ts), 0.0) for ts in opens]
        if path == FUNDING:
            limit = min(query.get("limit", 100), 1000)
            first = start - start % EIGHT_HOURS_MS
            settlements = range(first, end + 1, EIGHT_HOURS_MS)
            times = [funding_time(s) for s in settlements if start <= funding_time(s) <= end][:limit]
            return 200, [
                {"symbol": "BTCUSDT", "fundingTime": t, "fundingRate": f"{funding_rate(t):.8f}", "markPrice": "1"}
                for t in times
            ]
        return 404, {"code": -1, "msg": f"the stand-in does not serve {path}"}


def handler_for(stand_in: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {key: _number_or_text(values[0]) for key, values in parse_qs(url.query).items()}
            status, body = stand_in.answer(url.path, query)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the test output quiet; the stand-in keeps its own log."""

    return Handler


def _number_or_text(value: str) -> Any:
    return int(value) if value.lstrip("-").isdigit() else value


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    state = StandIn()
    server = HTTPServer(("127.0.0.1", 0), handler_for(state))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{server.server_port}"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def exchange(stand_in: StandIn) -> ccxt.Exchange:
    """The real ccxt client, every API root pointed at the stand-in so nothing leaves the host."""
    client = ccxt.binanceusdm({"enableRateLimit": False, "timeout": 5000})
    client.session.trust_env = False  # no proxy from the environment between client and stand-in
    for name, url in client.urls["api"].items():
        client.urls["api"][name] = stand_in.base_url + urlsplit(url).path
    return client


def fetch(exchange: ccxt.Exchange, out_dir: Path, *, days: int = 1, end_ms: int = END_MS) -> list[Any]:
    return download("binanceusdm", [PAIR], "1m", days, out_dir, end_ms=end_ms, exchange=exchange, show_progress=False)


def ms(frame: pd.DataFrame) -> list[int]:
    return [int(value) for value in frame["date"].dt.as_unit("ms").astype("int64")]


def test_candles_are_written_in_freqtrades_feather_layout(exchange: ccxt.Exchange, tmp_path: Path) -> None:
    fetch(exchange, tmp_path)

    frame = pd.read_feather(tmp_path / "BTC_USDT_USDT-1m-futures.feather")
    assert list(frame.columns) == ["date", "open", "high", "low", "close", "volume"]
    assert str(frame["date"].dtype) == "datetime64[ns, UTC]"
    assert all(str(frame[column].dtype) == "float64" for column in ["open", "high", "low", "close", "volume"])
    # The day before 06-24 10:32:30 starts with the 06-23 10:33 candle; the 06-24 10:32 candle
    # is still open, so 1440 - 1 = 1439 candles, the last one 10:31.
    assert len(frame) == 1439
    assert frame["date"].iloc[0] == pd.Timestamp("2025-06-23T10:33:00Z")
    assert frame["date"].iloc[-1] == pd.Timestamp("2025-06-24T10:31:00Z")
    assert frame["date"].is_monotonic_increasing and frame["date"].is_unique
    first_ts = ms(frame)[0]
    assert frame["open"].iloc[0] == candle_open(first_ts)
    assert frame["close"].iloc[0] == candle_open(first_ts) + 0.5


def test_funding_rate_is_written_in_open_with_zeros_elsewhere(exchange: ccxt.Exchange, tmp_path: Path) -> None:
    fetch(exchange, tmp_path)

    frame = pd.read_feather(tmp_path / "BTC_USDT_USDT-8h-funding_rate.feather")
    assert str(frame["date"].dtype) == "datetime64[ns, UTC]"
    # Settlements in the window: 06-23 16:00 and 06-24 00:00; 06-24 08:00 opens an 8h interval
    # that ends after 10:32:30 and is left out, as in freqtrade's files.
    assert ms(frame) == [
        funding_time(parse_date_ms("2025-06-23T16:00:00+00:00")),
        funding_time(parse_date_ms("2025-06-24T00:00:00+00:00")),
    ]
    assert list(frame["open"]) == [funding_rate(ts) for ts in ms(frame)]
    assert (frame[["high", "low", "close", "volume"]] == 0.0).all().all()


def test_mark_file_holds_the_closed_8h_mark_candles(exchange: ccxt.Exchange, tmp_path: Path) -> None:
    fetch(exchange, tmp_path)

    frame = pd.read_feather(tmp_path / "BTC_USDT_USDT-8h-mark.feather")
    assert ms(frame) == [parse_date_ms("2025-06-23T16:00:00+00:00"), parse_date_ms("2025-06-24T00:00:00+00:00")]
    assert list(frame["open"]) == [mark_open(ts) for ts in ms(frame)]
    assert list(frame["volume"]) == [0.0, 0.0]


def test_download_reports_each_file_it_wrote(exchange: ccxt.Exchange, tmp_path: Path) -> None:
    files = fetch(exchange, tmp_path)

    assert [(f.kind, f.path.name, f.rows_added, f.rows_total) for f in files] == [
        ("candles", "BTC_USDT_USDT-1m-futures.feather", 1439, 1439),
        ("funding", "BTC_USDT_USDT-8h-funding_rate.feather", 2, 2),
        ("mark", "BTC_USDT_USDT-8h-mark.feather", 2, 2),
    ]
    assert files[0].first_ts == parse_date_ms("2025-06-23T10:33:00+00:00")
    assert files[0].last_ts == parse_date_ms("2025-06-24T10:31:00+00:00")


def test_candles_are_fetched_page_by_page_each_page_starting_after_the_last(
    stand_in: StandIn, exchange: ccxt.Exchange, tmp_path: Path
) -> None:
    fetch(exchange, tmp_path, days=3)

    # 3 days of minutes less the open one: 4320 - 1 = 4319 candles, pages of 1000 → 5 requests.
    starts = [query["startTime"] for query in stand_in.asked(KLINES)]
    first = parse_date_ms("2025-06-21T10:33:00+00:00")
    assert starts == [first + page * 1000 * MINUTE_MS for page in range(5)]
    assert len(pd.read_feather(tmp_path / "BTC_USDT_USDT-1m-futures.feather")) == 4319


def test_a_second_download_fetches_only_rows_after_the_last_saved_one(
    stand_in: StandIn, exchange: ccxt.Exchange, tmp_path: Path
) -> None:
    fetch(exchange, tmp_path, days=1, end_ms=END_MS - DAY_MS)
    saved = pd.read_feather(tmp_path / "BTC_USDT_USDT-1m-futures.feather")
    saved_funding = pd.read_feather(tmp_path / "BTC_USDT_USDT-8h-funding_rate.feather")
    stand_in.requests.clear()

    fetch(exchange, tmp_path, days=2, end_ms=END_MS)

    # The same window start with a day more at the end: 1440 new candles, two pages.
    assert [query["startTime"] for query in stand_in.asked(KLINES)] == [
        ms(saved)[-1] + MINUTE_MS,
        ms(saved)[-1] + MINUTE_MS + 1000 * MINUTE_MS,
    ]
    assert stand_in.asked(FUNDING)[0]["startTime"] == ms(saved_funding)[-1] + 1


def test_a_resumed_download_equals_a_one_shot_download(exchange: ccxt.Exchange, tmp_path: Path) -> None:
    fetch(exchange, tmp_path / "resumed", days=1, end_ms=END_MS - DAY_MS)
    fetch(exchange, tmp_path / "resumed", days=2, end_ms=END_MS)
    fetch(exchange, tmp_path / "one-shot", days=2, end_ms=END_MS)

    for name in ["1m-futures", "8h-funding_rate", "8h-mark"]:
        resumed = pd.read_feather(tmp_path / "resumed" / f"BTC_USDT_USDT-{name}.feather")
        one_shot = pd.read_feather(tmp_path / "one-shot" / f"BTC_USDT_USDT-{name}.feather")
        pd.testing.assert_frame_equal(resumed, one_shot)


def test_an_up_to_date_download_adds_no_rows_and_requests_no_candles(
    stand_in: StandIn, exchange: ccxt.Exchange, tmp_path: Path
) -> None:
    fetch(exchange, tmp_path)
    stand_in.requests.clear()

    files = fetch(exchange, tmp_path)

    # Funding is still asked once: a symbol settling every hour could have a newer final row.
    assert stand_in.asked(KLINES) == stand_in.asked(MARK_KLINES) == []
    assert [f.rows_added for f in files] == [0, 0, 0]


def test_an_exchange_error_mid_download_raises_download_error_naming_exchange_pair_and_data(
    stand_in: StandIn, exchange: ccxt.Exchange, tmp_path: Path
) -> None:
    stand_in.fail(KLINES, after=2)

    with pytest.raises(DownloadError) as raised:
        fetch(exchange, tmp_path, days=3)

    message = str(raised.value)
    assert "binanceusdm" in message and PAIR in message and "candles" in message
    assert "2000 rows up to 2025-06-22T19:52:00Z" in message  # 10:33 + 1999 min
    assert "run the same command again to resume" in message


def test_an_exchange_error_keeps_the_rows_fetched_so_far_in_a_valid_file(
    stand_in: StandIn, exchange: ccxt.Exchange, tmp_path: Path
) -> None:
    stand_in.fail(KLINES, after=2)

    with pytest.raises(DownloadError):
        fetch(exchange, tmp_path, days=3)

    frame = pd.read_feather(tmp_path / "BTC_USDT_USDT-1m-futures.feather")
    assert len(frame) == 2000  # two pages of 1000
    assert frame["date"].is_monotonic_increasing and frame["date"].is_unique
    # no temp file: only the candles and the trading rules saved before the first request
    assert sorted(path.name for path in tmp_path.iterdir()) == ["BTC_USDT_USDT-1m-futures.feather", "instruments.json"]


def test_a_download_interrupted_by_an_exchange_error_completes_on_the_next_run(
    stand_in: StandIn, exchange: ccxt.Exchange, tmp_path: Path
) -> None:
    stand_in.fail(KLINES, after=2)
    with pytest.raises(DownloadError):
        fetch(exchange, tmp_path / "resumed", days=3)
    stand_in.heal()
    stand_in.requests.clear()

    fetch(exchange, tmp_path / "resumed", days=3)
    fetch(exchange, tmp_path / "one-shot", days=3)

    assert stand_in.asked(KLINES)[0]["startTime"] == parse_date_ms("2025-06-22T19:53:00+00:00")
    name = "BTC_USDT_USDT-1m-futures.feather"
    pd.testing.assert_frame_equal(
        pd.read_feather(tmp_path / "resumed" / name), pd.read_feather(tmp_path / "one-shot" / name)
    )


def test_an_unknown_pair_raises_unknown_symbol_error_naming_it(exchange: ccxt.Exchange, tmp_path: Path) -> None:
    with pytest.raises(UnknownSymbolError, match="DOGE/USDT:USDT"):
        download("binanceusdm", ["DOGE/USDT:USDT"], "1m", 1, tmp_path, end_ms=END_MS, exchange=exchange)


def test_a_pair_written_without_settle_currency_is_answered_with_the_perpetual_symbol(
    exchange: ccxt.Exchange, tmp_path: Path
) -> None:
    with pytest.raises(UnknownSymbolError, match=r"did you mean BTC/USDT:USDT\?"):
        download("binanceusdm", ["BTC/USDT"], "1m", 1, tmp_path, end_ms=END_MS, exchange=exchange)


def test_an_unknown_exchange_raises_download_error_listing_the_supported_ones(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"'kraken'.*binanceusdm, okx, bybit"):
        download("kraken", [PAIR], "1m", 1, tmp_path)


def test_two_4h_mark_candles_make_one_8h_candle_and_a_lone_half_is_dropped() -> None:
    # OKX and Bybit have no 8h candles: 00:00 + 04:00 make the 00:00 8h candle; 08:00 lacks 12:00.
    four_hours = 4 * HOUR_MS
    rows = [
        (0, 10.0, 12.0, 9.0, 11.0, 0.0),
        (four_hours, 11.0, 15.0, 8.0, 14.0, 0.0),
        (2 * four_hours, 14.0, 14.5, 13.0, 13.5, 0.0),
    ]

    combined = _combine_candles(rows, EIGHT_HOURS_MS, 2)

    # open of the first half, max(12, 15) high, min(9, 8) low, close of the second half
    assert combined == [(0, 10.0, 15.0, 8.0, 14.0, 0.0)]


def test_download_saves_the_exchanges_trading_rules_beside_the_data(exchange: ccxt.Exchange, tmp_path: Path) -> None:
    fetch(exchange, tmp_path)

    saved = load_rules(tmp_path)

    # the stand-in's exchangeInfo filters: PRICE_FILTER tickSize 0.10, LOT_SIZE stepSize 0.001, MIN_NOTIONAL 100
    assert saved["BTC/USDT:USDT"] == SavedRules(0.1, 0.001, 100.0, "binanceusdm markets")
