"""The guard inside the trading loop: every intent judged, stops placed, rules hot-reloaded."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from core.decision import Verdict
from core.orders import OrderType
from market.grid import MarketGrid, build_grid
from reasoning.rules import RULES_DIR
from trader.backtest import BacktestConfig, build_loop, load_data
from trader.guard_gate import GuardGate
from trader.loop import BacktestLoop


def synthetic_loop(rules: Path, **changes: Any) -> tuple[BacktestLoop, MarketGrid]:
    config = BacktestConfig(synthetic=True, days=1, seed=3, pairs=["BTC", "ETH"], rules=rules, **changes)
    market, instruments, _ = load_data(config)
    grid = build_grid(market)
    return build_loop(config, grid, instruments), grid


def test_every_intent_is_judged_by_the_guard_and_carries_its_proofs() -> None:
    loop, _ = synthetic_loop(RULES_DIR)
    record = loop.run()

    assert isinstance(loop.gate, GuardGate)
    assert record.decisions
    for intent, decision in record.decisions:
        assert decision.ruleset_hash and decision.context_hash
        assert {"guard", "datalog", "clips", "prolog", "z3"} <= set(decision.proofs) or decision.verdict is Verdict.DENY
        assert loop.gate.contexts[intent.intent_id].context_hash() == decision.context_hash


def test_an_admitted_stop_loss_becomes_a_reduce_only_stop_order_for_the_opened_quantity() -> None:
    loop, _ = synthetic_loop(RULES_DIR)
    loop.run()

    orders = loop.exchange.order_history()
    stops = [o for o in orders if o.request.order_type is OrderType.STOP_MARKET]
    entries = {o.request.intent_id: o for o in orders if o.request.order_type is OrderType.MARKET}
    assert stops
    for stop in stops:
        entry = entries[stop.request.intent_id]
        assert stop.request.reduce_only and stop.request.side is entry.request.side.opposite
        assert stop.request.quantity <= entry.request.quantity


def test_a_running_loop_hot_reloads_a_changed_rule_file(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules)
    loop, grid = synthetic_loop(rules, hot_reload=True)
    halfway = grid.length // 2
    policy = rules / "policy.mg"
    changed = []

    def restrict_btc_halfway(row: int) -> None:
        if row >= halfway and not changed:
            policy.write_text(policy.read_text().replace('"FTT/USDT:USDT"', '"BTC/USDT:USDT"'))
            changed.append(row)

    record = loop.run(restrict_btc_halfway)

    assert isinstance(loop.gate, GuardGate)
    ((_, change),) = loop.gate.rule_changes
    assert change.accepted and change.files_changed == ("policy.mg",)
    after = [d for i, d in record.decisions if i.symbol == "BTC/USDT:USDT" and d.ruleset_hash == change.ruleset_hash]
    before = [d for i, d in record.decisions if i.symbol == "BTC/USDT:USDT" and d.ruleset_hash != change.ruleset_hash]
    assert before and after
    assert all("L7.restricted_symbol" in d.reasons for d in after if not d.proofs["guard"]["risk_reducing"])


def test_an_engaged_kill_switch_halts_the_loop_and_a_release_resumes_it(tmp_path: Path) -> None:
    from reasoning.context import GuardState
    from reasoning.kill_switch import KillSwitch

    switch = KillSwitch(tmp_path / "kill_switch.json")
    loop, grid = synthetic_loop(RULES_DIR, kill_switch=switch.path)
    third, two_thirds = grid.length // 3, 2 * grid.length // 3

    done: list[str] = []

    def operator(row: int) -> None:  # called between rows, with the row reached
        if row >= third and not done:
            switch.engage("venue incident", "ops (operator)")
            done.append("engaged")
        elif row >= two_thirds and done == ["engaged"]:
            switch.release("ops (operator)")
            done.append("released")

    record = loop.run(operator)

    assert isinstance(loop.gate, GuardGate)
    assert [state.engaged for _, state in loop.gate.halts] == [True, False]
    (halted_at, _), (released_at, _) = loop.gate.halts
    during = [d for i, d in record.decisions if halted_at <= loop.gate.contexts[i.intent_id].now_ts < released_at]
    after = [d for i, d in record.decisions if loop.gate.contexts[i.intent_id].now_ts >= released_at]
    assert during and all(d.reasons == ("L4.kill_switch",) for d in during)
    assert after and not any("L4.kill_switch" in d.reasons for d in after)
    assert loop.gate.guard.state is GuardState.ACTIVE


def test_an_unreadable_kill_switch_file_halts(tmp_path: Path) -> None:
    path = tmp_path / "kill_switch.json"
    path.write_text("{not json")
    loop, _ = synthetic_loop(RULES_DIR, kill_switch=path)

    record = loop.run()

    assert record.decisions and all(d.reasons == ("L4.kill_switch",) for _, d in record.decisions)
