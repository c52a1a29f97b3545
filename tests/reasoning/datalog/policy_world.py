"""A seeded trading world for `data/trading_policy.mg`: a few thousand base facts and a stream of intents.

Shared by the incremental tests and `bench/datalog.py`, so the bench measures the policy the tests check.
"""

from __future__ import annotations

import random
from pathlib import Path

from reasoning.datalog.ast import Constant

POLICY = Path(__file__).parent / "data" / "trading_policy.mg"
SECTORS = ("/layer1", "/defi", "/meme", "/exchange", "/ai")
REGIMES = ("/calm", "/trending", "/volatile", "/crisis")
MODELS = tuple(f"/model/m{i}" for i in range(12))
VENUES = ("/binance/usdm", "/okx/swap", "/bybit/linear")

Facts = dict[str, list[tuple[Constant, ...]]]


def name(value: str) -> Constant:
    return Constant("name", value)


def integer(value: int) -> Constant:
    return Constant("int", value)


def real(value: float) -> Constant:
    return Constant("float", value)


def symbol_name(index: int) -> str:
    return f"/sym/s{index}"


def base_facts(symbols: int = 300, seed: int = 7) -> Facts:
    """About 10 facts per symbol plus limits: 300 symbols give some 3,000 facts."""
    rng = random.Random(seed)
    facts: Facts = {}

    def add(predicate: str, *args: Constant) -> None:
        facts.setdefault(predicate, []).append(args)

    for index in range(symbols):
        symbol = symbol_name(index)
        add("symbol", name(symbol), name(rng.choice(SECTORS)))
        add("mark_price", name(symbol), real(round(rng.uniform(0.05, 60_000.0), 4)))
        add("regime", name(symbol), name(rng.choices(REGIMES, weights=(6, 3, 2, 1))[0]))
        add("volatility", name(symbol), real(round(rng.uniform(0.1, 2.0), 3)))
        add("data_age_ms", name(symbol), integer(rng.choice((200, 800, 1500, 9000))))
        add("listed", name(symbol), name(rng.choice(VENUES)))
        add("leverage_setting", name(symbol), integer(rng.choice((2, 3, 5, 10))))
        add("max_notional", name(symbol), real(rng.choice((25_000.0, 50_000.0, 100_000.0))))
        if rng.random() < 0.4:
            add("position", name(symbol), integer(rng.randint(-50, 50)))
        if rng.random() < 0.03:
            add("restricted", name(symbol))
        for _ in range(2):
            add("correlated", name(symbol), name(symbol_name(rng.randrange(symbols))))
    for venue in VENUES[:2]:
        add("venue_healthy", name(venue))
    for model in MODELS:
        add("model", name(model))
        add("model_drift", name(model), real(round(rng.uniform(0.0, 0.5), 3)))
    for regime, leverage, vol in zip(REGIMES, (10, 5, 3, 1), (1.8, 1.5, 1.2, 0.8), strict=True):
        add("max_leverage", name(regime), integer(leverage))
        add("vol_limit", name(regime), real(vol))
    for sector in SECTORS:
        add("sector_limit", name(sector), real(2.5e7))
    scalars = {
        "equity": real(1_000_000.0),
        "gross_limit": real(1.0e8),
        "max_data_age_ms": integer(5000),
        "max_model_drift": real(0.35),
        "max_margin_use": real(0.8),
        "daily_pnl": real(-1_200.0),
        "daily_loss_limit": real(-50_000.0),
        "max_cluster_positions": integer(12),
        "collar": real(0.05),
    }
    for predicate, value in scalars.items():
        add(predicate, value)
    add("kill_switch", name("/off"))
    return facts


def intent_facts(number: int, symbols: int = 300, seed: int = 11) -> list[Facts]:
    """`number` intents, each the facts one proposal adds (some with a limit price, some for unknown symbols)."""
    rng = random.Random(seed)
    intents: list[Facts] = []
    for index in range(number):
        intent = name(f"/intent/i{index}")
        symbol = symbol_name(rng.randrange(symbols + symbols // 50))
        side = name(rng.choice(("/buy", "/sell")))
        facts: Facts = {
            "intent": [
                (intent, name(symbol), side, integer(rng.randint(1, 40)), integer(rng.choice((1, 3, 5, 10, 20))),
                 name(rng.choice(MODELS)))
            ]
        }  # fmt: skip
        if rng.random() < 0.5:
            facts["intent_limit_price"] = [(intent, real(round(rng.uniform(0.05, 60_000.0), 2)))]
        intents.append(facts)
    return intents
