"""Pair names: what users type → the ccxt unified symbol of a USDT-margined perpetual.

Users write `BTC`, `btc`, `BTCUSDT` (Binance id), `BTC_USDT_USDT` (freqtrade file stem) or
`BTC/USDT:USDT` (ccxt); the product keys everything by the ccxt symbol and names files by
the freqtrade stem.
"""

from __future__ import annotations

import re

from core.errors import ConfigError

QUOTE = "USDT"

_BASE = r"([A-Z0-9]{1,20})"
_FORMS = (
    re.compile(rf"^{_BASE}/USDT:USDT$"),  # ccxt unified perpetual
    re.compile(rf"^{_BASE}/USDT$"),  # ccxt spot-style, read as the perpetual
    re.compile(rf"^{_BASE}_USDT_USDT$"),  # freqtrade futures file stem
    re.compile(rf"^{_BASE}_USDT$"),
    re.compile(rf"^{_BASE}USDT$"),  # Binance id
    re.compile(rf"^{_BASE}$"),  # bare base asset
)


def to_ccxt_symbol(pair: str) -> str:
    """`BTC`, `btc`, `BTCUSDT`, `BTC_USDT_USDT`, `BTC/USDT:USDT` → `BTC/USDT:USDT`.

    Raises ConfigError naming the pair when it is not a USDT-margined pair name.
    """
    text = pair.strip().upper()
    for form in _FORMS:
        match = form.match(text)
        if match is not None and not match.group(1).endswith(QUOTE):
            return f"{match.group(1)}/{QUOTE}:{QUOTE}"
    raise ConfigError(
        f"not a USDT-margined perpetual pair: {pair!r} "
        "(write a base asset such as BTC, a Binance id such as BTCUSDT, "
        "or a ccxt symbol such as BTC/USDT:USDT)"
    )


def base_asset(symbol: str) -> str:
    """`BTC/USDT:USDT` (or any accepted pair name) → `BTC`."""
    return to_ccxt_symbol(symbol).split("/", 1)[0]


def file_stem(symbol: str) -> str:
    """`BTC/USDT:USDT` → `BTC_USDT_USDT`: the character replacement freqtrade applies to name data files."""
    for character in ("/", " ", ".", "@", "$", "+", ":"):
        symbol = symbol.replace(character, "_")
    return symbol


def binance_id(symbol: str) -> str:
    """`BTC/USDT:USDT` → `BTCUSDT`, the name Binance's public data files start with."""
    return f"{base_asset(symbol)}{QUOTE}"
