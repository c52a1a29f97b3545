from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import DataError, UnknownSymbolError
from market.exchange_rules import (
    RULES_FILE,
    SavedRules,
    instrument_with_saved_rules,
    load_rules,
    rules_from_ccxt_market,
    save_rules,
)
from market.instruments import ALT_BRACKETS, instrument_for


def test_rules_of_a_contract_market_count_the_step_in_base_units() -> None:
    # OKX style: amounts in contracts of 0.01 BTC, one contract step → 0.01 BTC
    market = {
        "symbol": "BTC/USDT:USDT",
        "precision": {"price": 0.1, "amount": 1.0},
        "contractSize": 0.01,
        "limits": {"cost": {"min": None}},
    }

    rules = rules_from_ccxt_market(market, "okx markets")

    assert rules == SavedRules(0.1, 0.01, 0.0, "okx markets")


def test_a_market_without_precision_is_refused_naming_it() -> None:
    with pytest.raises(DataError, match=r"okx markets: market ABC/USDT:USDT publishes no price/amount precision"):
        rules_from_ccxt_market({"symbol": "ABC/USDT:USDT", "precision": {}}, "okx markets")


def test_saving_merges_with_rules_saved_before(tmp_path: Path) -> None:
    save_rules(tmp_path, {"BTC/USDT:USDT": SavedRules(0.1, 0.001, 100.0, "first")})
    save_rules(tmp_path, {"AVAX/USDT:USDT": SavedRules(0.001, 1.0, 5.0, "second")})

    assert load_rules(tmp_path) == {
        "BTC/USDT:USDT": SavedRules(0.1, 0.001, 100.0, "first"),
        "AVAX/USDT:USDT": SavedRules(0.001, 1.0, 5.0, "second"),
    }


def test_saved_rules_give_an_instrument_for_a_symbol_outside_the_builtin_table() -> None:
    saved = {"AVAX/USDT:USDT": SavedRules(0.001, 1.0, 5.0, "binanceusdm markets")}

    instrument = instrument_with_saved_rules("AVAX/USDT:USDT", saved)

    assert (instrument.tick_size, instrument.step_size, instrument.min_notional) == (0.001, 1.0, 5.0)
    assert instrument.brackets == instrument_for("ADA/USDT:USDT", brackets=ALT_BRACKETS).brackets


def test_saved_rules_replace_the_builtin_tick_and_keep_the_builtin_brackets() -> None:
    saved = {"BTC/USDT:USDT": SavedRules(0.5, 0.002, 50.0, "binanceusdm markets")}

    instrument = instrument_with_saved_rules("BTC/USDT:USDT", saved)

    assert (instrument.tick_size, instrument.step_size, instrument.min_notional) == (0.5, 0.002, 50.0)
    assert instrument.brackets == instrument_for("BTC/USDT:USDT").brackets


def test_a_symbol_with_neither_saved_nor_builtin_rules_is_refused() -> None:
    with pytest.raises(UnknownSymbolError, match=r"no trading rules for AVAX/USDT:USDT.*instruments\.json"):
        instrument_with_saved_rules("AVAX/USDT:USDT", {})


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"tick_size": 0.1, "step_size": 0.001}, "needs numeric tick_size, step_size, min_notional"),
        ({"tick_size": "x", "step_size": 0.001, "min_notional": 5}, "needs numeric"),
        ({"tick_size": 0.0, "step_size": 0.001, "min_notional": 5}, "tick_size must be a positive number"),
        ({"tick_size": 0.1, "step_size": 0.001, "min_notional": -1}, "min_notional must not be negative"),
    ],
)
def test_a_rules_file_with_a_bad_field_is_refused_naming_the_file_and_symbol(
    tmp_path: Path, fields: dict[str, object], complaint: str
) -> None:
    (tmp_path / RULES_FILE).write_text(json.dumps({"BTC/USDT:USDT": fields}))

    with pytest.raises(DataError, match=rf"{RULES_FILE}: BTC/USDT:USDT: {complaint}"):
        load_rules(tmp_path)


def test_a_rules_file_that_is_not_json_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / RULES_FILE).write_text("{not json")

    with pytest.raises(DataError, match=rf"{RULES_FILE}: not readable as JSON"):
        load_rules(tmp_path)
