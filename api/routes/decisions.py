"""`/v1/decisions`: list and filter decisions, read one with its proofs, explain it, prove it is in the log."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status

from api.auth import READERS, require
from api.explain import RuleTexts, explain
from api.index import DecisionFilter, IndexedDecision
from api.pagination import CursorError, decode_cursor, encode_cursor
from api.schemas import (
    AUTH_RESPONSES,
    CheckpointOut,
    DecisionDetail,
    DecisionPage,
    DecisionQuery,
    DecisionSummary,
    EngineFindingOut,
    ExplanationOut,
    FillOut,
    InclusionProofOut,
    InclusionQuery,
    Problem,
    Responses,
    epoch_ms,
)
from api.services import Services, services
from api.tokens import Principal
from reasoning.prooflog.checkpoint import Checkpoint
from reasoning.prooflog.proofs import build_inclusion_proof
from reasoning.prooflog.records import StoredRecord
from reasoning.rules import RULE_FILES

router = APIRouter(prefix="/v1/decisions", tags=["decisions"], responses=AUTH_RESPONSES)
Reader = Annotated[Principal, Depends(require(*READERS))]
Context = Annotated[Services, Depends(services)]
DecisionId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,128}$", description="The intent's id.")]
_NOT_FOUND: Responses = {404: {"model": Problem, "description": "No decision with this id in the log."}}
_LIST = "decisions"


@router.get("", response_model=DecisionPage, summary="List decisions, filtered, a page at a time")
def list_decisions(context: Context, _: Reader, query: Annotated[DecisionQuery, Query()]) -> DecisionPage:
    after: int | None = None
    if query.cursor:  # an empty cursor is the first page
        try:
            after = decode_cursor(f"{_LIST}-{query.order}", query.cursor)
        except CursorError as exc:
            raise _invalid("cursor", str(exc)) from None
    context.index.catch_up()
    conditions = DecisionFilter(
        since_ms=epoch_ms(query.since) if query.since is not None else None,
        until_ms=epoch_ms(query.until) if query.until is not None else None,
        symbol=query.symbol,
        strategy_id=query.strategy,
        model_id=query.model,
        verdict=query.verdict.value if query.verdict is not None else None,
        reason=query.reason,
        layer=query.layer,
        mode=query.mode.value if query.mode is not None else None,
        run_id=query.run_id,
    )
    found = context.index.page(conditions, after, query.limit + 1, descending=query.order == "desc")
    items = found[: query.limit]
    more = len(found) > query.limit
    return DecisionPage(
        items=[DecisionSummary.model_validate(item, from_attributes=True) for item in items],
        next_cursor=encode_cursor(f"{_LIST}-{query.order}", items[-1].seq) if more else None,
    )


@router.get("/{decision_id}", response_model=DecisionDetail, responses=_NOT_FOUND, summary="One decision, in full")
def get_decision(context: Context, _: Reader, decision_id: DecisionId) -> DecisionDetail:
    indexed, others = _locate(context, decision_id)
    stored = _stored(context, indexed)
    return DecisionDetail(
        seq=stored.seq,
        decision_id=indexed.decision_id,
        created_at=stored.created_at,
        leaf_hash=stored.leaf_hash.hex(),
        canonical=_text(stored.canonical),
        record=_record_of(stored),
        fills=[FillOut.model_validate(fill, from_attributes=True) for fill in context.index.fills(decision_id)],
        other_seqs=others,
    )


@router.get(
    "/{decision_id}/explain",
    response_model=ExplanationOut,
    responses=_NOT_FOUND,
    summary="Why it was admitted, reduced or denied, in plain language",
)
def explain_decision(context: Context, _: Reader, decision_id: DecisionId) -> ExplanationOut:
    indexed, _others = _locate(context, decision_id)
    record = _record_of(_stored(context, indexed))
    texts = _rule_texts(context, record.get("ruleset_hash"))
    explanation = explain(record, context.index.fills(decision_id), texts)
    return ExplanationOut(
        decision_id=indexed.decision_id,
        seq=indexed.seq,
        verdict=explanation.verdict,
        summary=explanation.summary,
        traded=explanation.traded,
        findings=[
            EngineFindingOut(
                engine=finding.engine,
                title=finding.title,
                objected=finding.objected,
                reasons=list(finding.reasons),
                lines=list(finding.lines),
            )
            for finding in explanation.findings
        ],
        trading=list(explanation.trading),
        text=explanation.text,
        rule_files_found=bool(texts.by_sha256),
    )


@router.get(
    "/{decision_id}/inclusion-proof",
    response_model=InclusionProofOut,
    responses={
        **_NOT_FOUND,
        409: {"model": Problem, "description": "No signed checkpoint covers the record yet."},
    },
    summary="Merkle audit path from the record to a signed checkpoint",
)
def inclusion_proof(
    context: Context, _: Reader, decision_id: DecisionId, query: Annotated[InclusionQuery, Query()]
) -> InclusionProofOut:
    indexed, _others = _locate(context, decision_id)
    store = context.log.store()
    checkpoint = _covering_checkpoint(context, indexed.seq, query.tree_size)
    stored = _stored(context, indexed)
    proof = build_inclusion_proof(store, indexed.seq, checkpoint.tree_size)
    return InclusionProofOut(
        decision_id=indexed.decision_id,
        seq=indexed.seq,
        leaf_index=proof.leaf_index,
        tree_size=proof.tree_size,
        leaf_hash=proof.leaf_hash.hex(),
        audit_path=[node.hex() for node in proof.audit_path],
        checkpoint=checkpoint_out(checkpoint),
        canonical=_text(stored.canonical),
    )


def checkpoint_out(checkpoint: Checkpoint) -> CheckpointOut:
    return CheckpointOut(
        tree_size=checkpoint.tree_size,
        root_hash=checkpoint.root_hash.hex(),
        signed_at=checkpoint.signed_at,
        key_id=checkpoint.key_id,
        signature=checkpoint.signature.hex(),
    )


def _covering_checkpoint(context: Services, seq: int, tree_size: int | None) -> Checkpoint:
    store = context.log.store()
    if tree_size is None:
        latest = store.latest_checkpoint()
        if latest is None or latest.tree_size <= seq:
            covered = latest.tree_size if latest is not None else 0
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                detail=f"record {seq} is not yet covered by a signed checkpoint (the latest signs {covered} records); "
                "ask again after the next checkpoint",
            )
        return latest
    if tree_size <= seq:
        raise _invalid("tree_size", f"a tree of {tree_size} records does not hold record {seq}")
    for checkpoint in store.checkpoints():
        if checkpoint.tree_size == tree_size:
            return checkpoint
    raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no signed checkpoint of tree size {tree_size}")


def _locate(context: Services, decision_id: str) -> tuple[IndexedDecision, list[int]]:
    """The latest record of the decision, and the sequence numbers of any others with its id."""
    context.index.catch_up()
    found = context.index.find(decision_id)
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no decision {decision_id!r} in the proof log")
    return found[-1], [item.seq for item in found[:-1]]


def _stored(context: Services, indexed: IndexedDecision) -> StoredRecord:
    stored = context.log.store().record(indexed.seq)
    if stored is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"record {indexed.seq} is no longer in the proof log")
    return stored


def _record_of(stored: StoredRecord) -> dict[str, Any]:
    try:
        envelope = json.loads(stored.canonical)
    except ValueError:
        envelope = None
    record = envelope.get("record") if isinstance(envelope, dict) else None
    if not isinstance(record, dict):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"record {stored.seq} of the log is not a decision envelope: the log may have been tampered with; "
            "check it with `cryptoscalp proof verify`",
        )
    return record


def _rule_texts(context: Services, ruleset_hash: object) -> RuleTexts:
    """The decision's rule files: the active ones and, when the service recorded it, the decision's rule set."""
    texts = [
        (context.settings.rules_dir / name).read_bytes().decode("utf-8", errors="replace")
        for name in RULE_FILES.values()
        if (context.settings.rules_dir / name).is_file()
    ]
    if isinstance(ruleset_hash, str):
        snapshot = context.proposals.snapshot(ruleset_hash)
        if snapshot is not None:
            texts += snapshot.files.values()
    return RuleTexts.of(texts)


def _invalid(field: str, message: str) -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors, naming the query parameter."""
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=[{"loc": ["query", field], "msg": message, "type": "value_error"}],
    )


def _text(canonical: bytes) -> str:
    """The envelope as text. The writer only stores UTF-8; bytes that are not were altered, and the replacement
    characters make the client's hash differ, so the alteration shows."""
    return canonical.decode("utf-8", errors="replace")
