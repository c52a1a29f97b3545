from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import ConfigError
from market.symbols import base_asset, binance_id, file_stem, to_ccxt_symbol

bases = st.from_regex(r"[A-Z0-9]{1,12}", fullmatch=True).filter(lambda base: not base.endswith("USDT"))


@pytest.mark.parametrize("pair", ["BTC", "btc", " BTC ", "BTC/USDT:USDT", "BTC_USDT_USDT", "BTCUSDT", "btcusdt"])
def test_every_accepted_spelling_names_the_ccxt_perpetual(pair: str) -> None:
    assert to_ccxt_symbol(pair) == "BTC/USDT:USDT"


def test_spot_style_ccxt_symbol_is_read_as_the_perpetual() -> None:
    assert to_ccxt_symbol("eth/usdt") == "ETH/USDT:USDT"


def test_bases_with_digits_are_kept_whole() -> None:
    assert to_ccxt_symbol("1000PEPEUSDT") == "1000PEPE/USDT:USDT"


def test_ccxt_symbol_maps_to_the_freqtrade_file_stem() -> None:
    assert file_stem("BTC/USDT:USDT") == "BTC_USDT_USDT"


def test_ccxt_symbol_maps_to_the_binance_id() -> None:
    assert binance_id("BTC/USDT:USDT") == "BTCUSDT"
    assert base_asset("BTC/USDT:USDT") == "BTC"


@pytest.mark.parametrize("pair", ["", "USDT", "BTC/EUR", "ETH/USDC:USDC", "BTC-USD!", "BTC/USDT:BUSD", "USDTUSDT"])
def test_names_that_are_not_usdt_perpetuals_are_refused_naming_the_pair(pair: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"pair: {pair!r}")):
        to_ccxt_symbol(pair)


@given(bases)
def test_all_spellings_of_a_base_agree(base: str) -> None:
    symbol = to_ccxt_symbol(base)
    spellings = [base.lower(), f"{base}USDT", f"{base}_USDT_USDT", f"{base}/USDT:USDT", file_stem(symbol)]
    assert {to_ccxt_symbol(spelling) for spelling in spellings} == {symbol}
    assert to_ccxt_symbol(binance_id(symbol)) == symbol
