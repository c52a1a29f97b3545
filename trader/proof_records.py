"""A run's decisions, fills and rule changes as records of the tamper-evident proof log.

Every intent the guard judged becomes a `decision` record: the intent, the context it was
judged in (snapshot and hash), the rule set's hash, each engine's proof, the verdict with
its reasons and layers, the sizing (method, inputs, the quantity and Z3's re-proof of it)
and the orders sent for it. Every fill becomes a `fill` record naming its decision, and
every hot reload of the rules a `rule_change` record. Records go in the order they
happened (decision time; a decision before the fills of the same instant).

A backtest writes its log when the run ends (`runs/<id>/prooflog.sqlite3`, signing key
`prooflog.sqlite3.key` beside it, public half `.key.pub`); the records are the ones a live
loop appends as it decides. `cryptoscalp proof verify --db runs/<id>/prooflog.sqlite3`
checks it, and `cryptoscalp serve` answers auditors' questions about it.

The records are plain JSON: enums become their values, tuples lists, and a float that is
not finite (a missing fact, which the guard denies) becomes null, since canonical JSON
(RFC 8785) has no NaN.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Mapping
from enum import Enum
from pathlib import Path
from typing import Any

from core.orders import Fill, Order
from reasoning.engine import layer_of
from reasoning.prooflog.log import CheckpointPolicy, ProofLog
from reasoning.prooflog.records import RecordKind
from reasoning.rules import RuleChange
from trader.decision_log import decision_record
from trader.result import BacktestResult

PROOF_LOG_FILE = "prooflog.sqlite3"
_BATCH = 1_000
# same instant: a rule change takes effect before the decisions it governs, fills follow their decision
_ORDER = {RecordKind.RULE_CHANGE: 0, RecordKind.DECISION: 1, RecordKind.FILL: 2}


def proof_entries(result: BacktestResult, mode: str = "backtest") -> list[tuple[str, dict[str, Any]]]:
    """(kind, record) for everything the run decided and did, in time order."""
    orders: defaultdict[str, list[Order]] = defaultdict(list)
    for order in result.orders:
        orders[order.request.intent_id].append(order)
    client_ids = {order.order_id: order.request.client_order_id for order in result.orders}
    sizing_method = str(result.config.get("sizing", "fixed_notional"))
    default_notional = result.config.get("notional")
    events: list[tuple[int, int, int, str, dict[str, Any]]] = []
    for number, (intent, decision) in enumerate(result.decisions):
        context = result.contexts.get(intent.intent_id)
        decided_at = context.now_ts if context is not None else intent.ts
        record = decision_record(intent, decision, context)
        record.pop("detail", None)
        sized = result.sizings.get(intent.intent_id)
        record |= {
            "decision_id": intent.intent_id,
            "decided_at_ms": decided_at,
            "run_id": result.run_id,
            "mode": mode,
            "symbol": intent.symbol,
            "strategy_id": intent.strategy_id,
            "model_id": intent.model_id,
            "model_version": intent.model_version,
            "layers": sorted({layer_of(reason) for reason in decision.reasons}),
            "sizing": None
            if sized is None
            else {
                "method": sizing_method,
                "inputs": {
                    "default_notional": default_notional,
                    "intent_notional": intent.notional,
                    "intent_quantity": intent.quantity,
                    "max_qty": decision.max_qty,
                },
                "qty": sized[0],
                "proven_denials": list(sized[1]),
            },
            "orders": [_order_record(order) for order in orders.get(intent.intent_id, [])],
        }
        events.append((decided_at, _ORDER[RecordKind.DECISION], number, RecordKind.DECISION.value, _plain(record)))
    for number, fill in enumerate(result.fills):
        events.append(
            (fill.ts, _ORDER[RecordKind.FILL], number, RecordKind.FILL.value, _plain(_fill_record(fill, client_ids)))
        )
    for number, (ts, change) in enumerate(result.rule_changes):
        events.append((ts, _ORDER[RecordKind.RULE_CHANGE], number, RecordKind.RULE_CHANGE.value, _rule_change(change)))
    events.sort(key=lambda event: event[:3])
    return [(kind, record) for _, _, _, kind, record in events]


def write_proof_log(path: Path, entries: list[tuple[str, dict[str, Any]]]) -> int:
    """Append `entries` to the log at `path` (created, with its key, if absent); signed on close. Returns
    the log's size."""
    with ProofLog.open(path, policy=CheckpointPolicy(every_records=10_000), synchronous="NORMAL") as log:
        for batch in _batches(entries):
            log.append_many(batch)
        return log.size


def _batches(entries: list[tuple[str, dict[str, Any]]]) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    for start in range(0, len(entries), _BATCH):
        yield entries[start : start + _BATCH]


def _order_record(order: Order) -> dict[str, Any]:
    request = order.request
    return {
        "client_order_id": request.client_order_id,
        "order_id": order.order_id,
        "symbol": request.symbol,
        "side": request.side.value,
        "type": request.order_type.value,
        "qty": request.quantity,
        "price": request.price,
        "stop_price": request.stop_price,
        "reduce_only": request.reduce_only,
        "post_only": request.post_only,
        "status": order.status.value,
        "reject_reason": order.reject_reason,
    }


def _fill_record(fill: Fill, client_ids: Mapping[str, str]) -> dict[str, Any]:
    return {
        "decision_id": fill.intent_id,
        "client_order_id": client_ids.get(fill.order_id, ""),
        "order_id": fill.order_id,
        "symbol": fill.symbol,
        "side": fill.side.value,
        "qty": fill.quantity,
        "price": fill.price,
        "fee": fill.fee,
        "liquidity": fill.liquidity.value,
        "realized_pnl": fill.realized_pnl,
        "is_liquidation": fill.is_liquidation,
        "filled_at_ms": fill.ts,
    }


def _rule_change(change: RuleChange) -> dict[str, Any]:
    return {
        "accepted": change.accepted,
        "proposal_id": None,
        "proposed_by": None,
        "approved_by": None,
        "previous_hash": change.previous_hash,
        "ruleset_hash": change.ruleset_hash,
        "active_hash": change.active_hash,
        "files_changed": list(change.files_changed),
        "diff": change.diff,
        "error": change.error,
        "source": "hot_reload",
    }


def _plain(value: Any) -> Any:
    """JSON values only: enums by value, tuples as lists, non-finite floats as null, keys as text."""
    if isinstance(value, Enum):
        return _plain(value.value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str | int | bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    raise TypeError(f"proof record: {type(value).__name__} is not JSON: {value!r}")
