"""Operations: the kill switch, liveness, and Prometheus metrics.

`/healthz` needs no token (a load balancer probes it) and says nothing but "ok". `/metrics` needs a token of
any role: decision counts by reason describe the desk's trading, so they are not public; give the Prometheus
scraper an auditor token (`authorization: {type: Bearer, credentials: ...}` in its scrape config).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response, status
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.auth import KILL_SWITCH_HOLDERS, READERS, require
from api.log_access import LogWriteUnavailable
from api.metrics import registry_for
from api.schemas import (
    AUTH_RESPONSES,
    BAD_BODY,
    Health,
    KillSwitchIn,
    KillSwitchOut,
    KillSwitchRelease,
    Problem,
    Responses,
)
from api.services import Services, services
from api.tokens import Principal
from reasoning.kill_switch import KillSwitchState
from reasoning.prooflog.canonical import JsonValue
from reasoning.prooflog.records import RecordKind

router = APIRouter(tags=["operations"])
Reader = Annotated[Principal, Depends(require(*READERS))]
Holder = Annotated[Principal, Depends(require(*KILL_SWITCH_HOLDERS))]
Context = Annotated[Services, Depends(services)]
_UNLOGGED: Responses = (
    AUTH_RESPONSES
    | BAD_BODY
    | {503: {"model": Problem, "description": "The switch changed, but the proof log could not record it."}}
)


@router.get("/healthz", response_model=Health, summary="Liveness (no token needed)")
def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/metrics",
    response_class=Response,
    responses=AUTH_RESPONSES | {200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format."}},
    summary="Prometheus metrics (any role)",
)
def metrics(context: Context, _: Reader) -> Response:
    return Response(generate_latest(registry_for(context)), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/v1/kill-switch",
    response_model=KillSwitchOut,
    responses=AUTH_RESPONSES,
    summary="Whether the kill switch is engaged",
)
def kill_switch_state(context: Context, _: Reader) -> KillSwitchOut:
    return _out(context.kill_switch.state(), None)


@router.post(
    "/v1/kill-switch",
    response_model=KillSwitchOut,
    responses=_UNLOGGED,
    summary="Engage the kill switch (operator or risk officer): the trading loop halts",
)
def engage_kill_switch(context: Context, holder: Holder, body: KillSwitchIn) -> KillSwitchOut:
    # halt first: stopping the loop matters more than recording that it was stopped
    state = context.kill_switch.engage(body.reason, holder.label, body.flatten)
    return _out(state, _record(context, "halt", state))


@router.post(
    "/v1/kill-switch/release",
    response_model=KillSwitchOut,
    responses=_UNLOGGED,
    summary="Release the kill switch (operator or risk officer): the trading loop may resume",
)
def release_kill_switch(context: Context, holder: Holder, body: KillSwitchRelease) -> KillSwitchOut:
    state = context.kill_switch.release(holder.label, body.reason)
    return _out(state, _record(context, "resume", state))


def _record(context: Services, action: str, state: KillSwitchState) -> int:
    record: dict[str, JsonValue] = {
        "action": action,
        "reason": state.reason,
        "by": state.by,
        "flatten": state.flatten,
        "at_ms": state.at_ms,
    }
    try:
        return context.log.append(RecordKind.KILL_SWITCH, record)
    except LogWriteUnavailable as exc:
        done = "engaged" if state.engaged else "released"
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"the kill switch is {done}, but the proof log did not record it: {exc}",
        ) from None


def _out(state: KillSwitchState, seq: int | None) -> KillSwitchOut:
    return KillSwitchOut(
        engaged=state.engaged, reason=state.reason, by=state.by, at_ms=state.at_ms, flatten=state.flatten, seq=seq
    )
