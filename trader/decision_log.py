"""A run's decisions: counts by verdict, reason code and layer, and the full records with proofs.

`runs/<id>/decisions.jsonl.gz` holds one JSON object per line and intent, in decision
order: the intent, the verdict with its reasons, the requested and maximum quantity,
each engine's proof, the hashes of the context and of the rule set, and the context
itself, so `cryptoscalp rules what-if` can replay the run's intents under other rules.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from core.decision import Decision, Verdict
from core.intent import Intent
from reasoning.context import DecisionContext
from reasoning.engine import layer_of

DECISIONS_FILE = "decisions.jsonl.gz"


def decision_summary(decisions: Sequence[tuple[Intent, Decision]]) -> dict[str, Any]:
    """Admitted / reduced / denied counts, and how often each reason code and layer was given."""
    verdicts = Counter(decision.verdict.value for _, decision in decisions)
    reasons = Counter(reason for _, decision in decisions for reason in decision.reasons)
    layers = Counter(layer_of(reason) for _, decision in decisions for reason in decision.reasons)
    return {
        "intents": len(decisions),
        "admitted": verdicts.get(Verdict.ADMIT.value, 0),
        "reduced": verdicts.get(Verdict.REDUCE.value, 0),
        "denied": verdicts.get(Verdict.DENY.value, 0),
        "by_reason": dict(sorted(reasons.items())),
        "by_layer": dict(sorted(layers.items())),
        "ruleset_hashes": sorted({d.ruleset_hash for _, d in decisions if d.ruleset_hash}),
    }


def decision_record(intent: Intent, decision: Decision, context: DecisionContext | None) -> dict[str, Any]:
    intent_fields = asdict(intent)
    intent_fields["rationale"] = [list(pair) for pair in intent.rationale]
    return {
        "intent": intent_fields,
        "verdict": decision.verdict.value,
        "reasons": list(decision.reasons),
        "requested_qty": decision.requested_qty,
        "max_qty": decision.max_qty,
        "detail": decision.detail,
        "proofs": decision.proofs,
        "context_hash": decision.context_hash,
        "ruleset_hash": decision.ruleset_hash,
        "context": context.as_dict() if context is not None else None,
    }


def write_decisions(
    path: Path, decisions: Sequence[tuple[Intent, Decision]], contexts: dict[str, DecisionContext]
) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for intent, decision in decisions:
            record = decision_record(intent, decision, contexts.get(intent.intent_id))
            handle.write(json.dumps(record, sort_keys=True, default=str) + "\n")


def read_decisions(path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}:{exc.colno}: not a JSON decision record: {exc.msg}") from None
