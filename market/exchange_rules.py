"""Trading rules saved beside downloaded data: `instruments.json`.

`cryptoscalp download` records each pair's tick size, step size and minimum notional as
the exchange itself publishes them (ccxt's unified market structure), so a backtest of
that data uses the exchange's rules, also for symbols outside the built-in table.
Margin brackets need a private endpoint, so they come from the built-in table for the
known symbols and Binance's small-alt brackets otherwise.

The file maps ccxt symbols to {"tick_size", "step_size", "min_notional", "source"}.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.errors import DataError
from core.instrument import Instrument
from market.instruments import KNOWN_RULES, generic_alt_instrument, instrument_for
from market.symbols import base_asset

RULES_FILE = "instruments.json"


@dataclass(frozen=True, slots=True)
class SavedRules:
    tick_size: float
    step_size: float
    min_notional: float
    source: str  # where the values came from, e.g. "binanceusdm markets"


def rules_from_ccxt_market(market: Mapping[str, Any], source: str) -> SavedRules:
    """Tick, step (in base units) and minimum notional from a ccxt market (TICK_SIZE precision mode).

    OKX and Bybit count amounts in contracts: the step is then precision.amount ×
    contractSize, in base units as the simulator counts them.
    """
    symbol = market.get("symbol", "?")
    precision = market.get("precision") or {}
    tick, amount = precision.get("price"), precision.get("amount")
    if not tick or not amount:
        raise DataError(f"{source}: market {symbol} publishes no price/amount precision")
    contract_size = float(market.get("contractSize") or 1.0)
    cost_limits = (market.get("limits") or {}).get("cost") or {}
    min_notional = float(cost_limits.get("min") or 0.0)
    return SavedRules(float(tick), float(amount) * contract_size, min_notional, source)


def save_rules(directory: Path, rules: Mapping[str, SavedRules]) -> Path:
    """Merge `rules` into `directory/instruments.json`, written atomically."""
    path = directory / RULES_FILE
    merged = {symbol: asdict(saved) for symbol, saved in load_rules(directory).items()}
    merged.update({symbol: asdict(saved) for symbol, saved in rules.items()})
    handle, temp_name = tempfile.mkstemp(dir=directory, prefix=".instruments-", suffix=".json")
    with os.fdopen(handle, "w") as out:
        json.dump(merged, out, indent=2, sort_keys=True)
    os.replace(temp_name, path)
    return path


def load_rules(directory: Path) -> dict[str, SavedRules]:
    """The rules saved in `directory`, or {} when there is no rules file."""
    path = directory / RULES_FILE
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not readable as JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected an object mapping symbols to rules")
    rules: dict[str, SavedRules] = {}
    for symbol, fields in raw.items():
        try:
            saved = SavedRules(
                float(fields["tick_size"]),
                float(fields["step_size"]),
                float(fields["min_notional"]),
                str(fields.get("source", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{path}: {symbol}: needs numeric tick_size, step_size, min_notional ({exc})") from None
        for name in ("tick_size", "step_size"):
            value = getattr(saved, name)
            if not (value > 0 and math.isfinite(value)):
                raise DataError(f"{path}: {symbol}: {name} must be a positive number, got {value}")
        if not (saved.min_notional >= 0 and math.isfinite(saved.min_notional)):
            raise DataError(f"{path}: {symbol}: min_notional must not be negative, got {saved.min_notional}")
        rules[symbol] = saved
    return rules


def instrument_with_saved_rules(symbol: str, saved: Mapping[str, SavedRules]) -> Instrument:
    """The exchange's saved rules when present (brackets from the built-in table), else the built-in rules."""
    rules = saved.get(symbol)
    if rules is None:
        return instrument_for(symbol)
    if base_asset(symbol) not in KNOWN_RULES:
        return generic_alt_instrument(symbol, rules.tick_size, rules.step_size, min_notional=rules.min_notional)
    return instrument_for(symbol, tick_size=rules.tick_size, step_size=rules.step_size, min_notional=rules.min_notional)
