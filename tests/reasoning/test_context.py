"""The decision context: its hash, its missing facts, and its round trip through the decision log."""

from __future__ import annotations

import json
from dataclasses import replace

from reasoning.context import context_from_dict
from reasoning.rule_tests import default_context


def test_a_changed_copy_has_its_own_hash_and_an_equal_one_the_same() -> None:
    context = default_context()
    first = context.context_hash()

    changed = replace(context, market=replace(context.market, atr=121.0))

    assert changed.context_hash() != first
    assert default_context().context_hash() == first == context.context_hash()


def test_the_hash_is_of_the_canonical_json_of_every_fact() -> None:
    import hashlib

    context = default_context()
    canonical = json.dumps(context.as_dict(), sort_keys=True, separators=(",", ":"))

    assert context.context_hash() == hashlib.sha256(canonical.encode()).hexdigest()


def test_nan_facts_are_named_as_missing() -> None:
    context = default_context()
    broken = replace(
        context,
        market=replace(context.market, spread_bps=float("nan")),
        account=replace(context.account, equity=float("nan")),
    )

    assert broken.missing_facts() == ["market.spread_bps", "account.equity"]
    assert context.missing_facts() == []


def test_a_context_survives_the_decision_log_round_trip() -> None:
    context = default_context()
    context = replace(context, market=replace(context.market, data_quality_flags=("gap",)))

    restored = context_from_dict(json.loads(json.dumps(context.as_dict())))

    assert restored == context
    assert restored.context_hash() == context.context_hash()
