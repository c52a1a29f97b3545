"""`/v1/log`: the log's size and key, its signed checkpoints, and consistency proofs between tree sizes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status

from api.auth import READERS, require
from api.pagination import CursorError, decode_cursor, encode_cursor
from api.routes.decisions import checkpoint_out
from api.schemas import (
    AUTH_RESPONSES,
    CheckpointPage,
    CheckpointQuery,
    ConsistencyProofOut,
    ConsistencyQuery,
    LogInfo,
    Problem,
)
from api.services import Services, services
from api.tokens import Principal
from reasoning.prooflog.errors import KeyFileError
from reasoning.prooflog.keys import key_id, public_key_pem
from reasoning.prooflog.proofs import build_consistency_proof

router = APIRouter(prefix="/v1/log", tags=["log"], responses=AUTH_RESPONSES)
Reader = Annotated[Principal, Depends(require(*READERS))]
Context = Annotated[Services, Depends(services)]
_LIST = "checkpoints"


@router.get("", response_model=LogInfo, summary="Size, latest signed checkpoint and public key of the log")
def log_info(context: Context, _: Reader) -> LogInfo:
    store = context.log.store()
    latest = store.latest_checkpoint()
    try:
        public_key = context.log.public_key()
    except KeyFileError:
        public_key = None
    return LogInfo(
        size=store.record_count(),
        latest_checkpoint=checkpoint_out(latest) if latest is not None else None,
        key_id=key_id(public_key) if public_key is not None else None,
        public_key_pem=public_key_pem(public_key).decode("ascii") if public_key is not None else None,
    )


@router.get("/checkpoints", response_model=CheckpointPage, summary="Signed checkpoints, by tree size")
def checkpoints(context: Context, _: Reader, query: Annotated[CheckpointQuery, Query()]) -> CheckpointPage:
    after = 0
    if query.cursor:  # an empty cursor is the first page
        try:
            after = decode_cursor(_LIST, query.cursor)
        except CursorError as exc:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                detail=[{"loc": ["query", "cursor"], "msg": str(exc), "type": "value_error"}],
            ) from None
    found = [checkpoint for checkpoint in context.log.store().checkpoints() if checkpoint.tree_size > after]
    page = found[: query.limit]
    more = len(found) > query.limit
    return CheckpointPage(
        checkpoints=[checkpoint_out(checkpoint) for checkpoint in page],
        next_cursor=encode_cursor(_LIST, page[-1].tree_size) if more else None,
    )


@router.get(
    "/consistency",
    response_model=ConsistencyProofOut,
    responses={404: {"model": Problem, "description": "A size is beyond the log."}},
    summary="Proof that the tree of `first` records is a prefix of the tree of `second` records",
)
def consistency(context: Context, _: Reader, query: Annotated[ConsistencyQuery, Query()]) -> ConsistencyProofOut:
    store = context.log.store()
    size = store.record_count()
    if query.second > size:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"the log holds {size} records; no tree of {query.second} records"
        )
    proof = build_consistency_proof(store, query.first, query.second)
    return ConsistencyProofOut(first=query.first, second=query.second, path=[node.hex() for node in proof.path])
