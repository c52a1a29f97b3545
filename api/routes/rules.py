"""`/v1/rules`: the active rule set, any past one by hash, and four-eyes rule-change proposals.

A risk officer proposes; `reasoning.proposals.ProposalService` checks the change as `rules check` and `rules
test` do and stores it `pending` (201) or `invalid` (422, with every error). A *different* risk officer approves
it, which writes the files, logs a `rule_change` record and lets the running loop hot-reload them. The proposer
and approver are the names the tokens were issued to.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, status
from fastapi.responses import JSONResponse

from api.auth import READERS, RULE_EDITORS, require
from api.log_access import LogWriteUnavailable
from api.schemas import (
    AUTH_RESPONSES,
    BAD_BODY,
    InvalidProposal,
    Problem,
    ProposalIn,
    ProposalOut,
    Responses,
    RuleFileOut,
    RuleSetOut,
)
from api.services import Services, services
from api.tokens import Principal
from reasoning.proposals import (
    FourEyesError,
    Proposal,
    ProposalError,
    ProposalInputError,
    ProposalNotFoundError,
    ProposalStateError,
    ProposalValidationError,
    RuleSetSnapshot,
    StaleProposalError,
)

router = APIRouter(prefix="/v1/rules", tags=["rules"], responses=AUTH_RESPONSES)
Reader = Annotated[Principal, Depends(require(*READERS))]
RiskOfficer = Annotated[Principal, Depends(require(*RULE_EDITORS))]
Context = Annotated[Services, Depends(services)]
ProposalId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
RuleSetHash = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="A rule set's ruleset_hash.")]
_PROBLEMS: Responses = {
    403: {"model": Problem, "description": "Wrong role, or the proposer tried to approve (four eyes)."},
    404: {"model": Problem, "description": "No such proposal."},
    409: {"model": Problem, "description": "Not pending, the active rules changed, or it no longer passes."},
}


@router.get("", response_model=RuleSetOut, summary="The active rule set")
def active_rules(context: Context, _: Reader) -> RuleSetOut:
    return _rule_set(context.proposals.current())


@router.get("/proposals", response_model=list[ProposalOut], summary="Rule-change proposals, newest first")
def list_proposals(context: Context, _: Reader) -> list[ProposalOut]:
    return [_proposal_out(proposal) for proposal in context.proposals.list()]


@router.get("/proposals/{proposal_id}", response_model=ProposalOut, responses=_PROBLEMS, summary="One proposal")
def get_proposal(context: Context, _: Reader, proposal_id: ProposalId) -> ProposalOut:
    proposal = context.proposals.get(proposal_id)
    if proposal is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no rule-change proposal {proposal_id!r}")
    return _proposal_out(proposal)


@router.post(
    "/proposals",
    response_model=ProposalOut,
    status_code=status.HTTP_201_CREATED,
    responses=BAD_BODY
    | {422: {"model": InvalidProposal, "description": "The change fails `rules check` or `rules test`."}},
    summary="Propose a rule change (risk officer); it is checked and tested before it can be approved",
)
def propose(context: Context, officer: RiskOfficer, body: ProposalIn) -> ProposalOut | JSONResponse:
    try:
        proposal = context.proposals.propose(body.files, officer.name, body.description)
    except ProposalInputError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None
    if proposal.status == "invalid":
        problems = [*proposal.check_errors, *proposal.test_failures]
        invalid = InvalidProposal(
            detail=f"the proposed rules fail their checks: {'; '.join(problems)}", proposal=_proposal_out(proposal)
        )
        return JSONResponse(invalid.model_dump(mode="json"), status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
    return _proposal_out(proposal)


@router.post(
    "/proposals/{proposal_id}/approve",
    response_model=ProposalOut,
    responses=_PROBLEMS,
    summary="Approve a pending proposal (a different risk officer): activates it and logs the change",
)
def approve(context: Context, officer: RiskOfficer, proposal_id: ProposalId) -> ProposalOut:
    try:
        return _proposal_out(context.proposals.approve(proposal_id, officer.name))
    except ProposalNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    except FourEyesError as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=str(exc)) from None
    except (ProposalStateError, StaleProposalError, ProposalValidationError) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
    except ProposalInputError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None
    except (ProposalError, LogWriteUnavailable) as exc:
        # the service put the previous rule files back: nothing changed
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=f"the change was not applied: {exc}") from None


@router.get(
    "/{ruleset_hash}",
    response_model=RuleSetOut,
    responses={404: {"model": Problem, "description": "No rule set with this hash was recorded."}},
    summary="A rule set, active now or in the past, by its hash",
)
def rule_set(context: Context, _: Reader, ruleset_hash: RuleSetHash) -> RuleSetOut:
    snapshot = context.proposals.snapshot(ruleset_hash)
    if snapshot is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no recorded rule set {ruleset_hash}")
    return _rule_set(snapshot)


def _rule_set(snapshot: RuleSetSnapshot) -> RuleSetOut:
    return RuleSetOut(
        ruleset_hash=snapshot.ruleset_hash,
        files={
            name: RuleFileOut(sha256=snapshot.file_hashes[name], content=content)
            for name, content in sorted(snapshot.files.items())
        },
    )


def _proposal_out(proposal: Proposal) -> ProposalOut:
    return ProposalOut.model_validate(proposal, from_attributes=True)
