"""The API's request and response bodies and query parameters (pydantic): what the OpenAPI schema documents.

Binary values (hashes, signatures) travel as lowercase hex. A record's `canonical` is its RFC 8785 envelope as
text: its UTF-8 bytes are exactly what the log hashed, so a client recomputes the leaf as
SHA-256(0x00 ‖ canonical.encode("utf-8")).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from reasoning.rules import RULE_FILES


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be blank")
    return text


NonBlank = Annotated[str, AfterValidator(_not_blank)]  # free text that must say something


Responses = dict[int | str, dict[str, Any]]  # extra documented responses of a route, for OpenAPI
Hex = Annotated[str, Field(pattern=r"^[0-9a-f]*$", description="lowercase hex")]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256, lowercase hex")]
_TEXT = r"^[A-Za-z0-9_.:/@+-]+$"  # symbols (BTC/USDT:USDT), strategy and model ids, run ids


class Verdict(StrEnum):
    ADMIT = "admit"
    REDUCE = "reduce"
    DENY = "deny"


class Mode(StrEnum):
    BACKTEST = "backtest"
    PAPER = "paper"
    LIVE = "live"


class Problem(BaseModel):
    """An error: what went wrong and what to do."""

    detail: str


BAD_BODY: Responses = {400: {"model": Problem, "description": "The request body is not JSON."}}
AUTH_RESPONSES: Responses = {
    401: {"model": Problem, "description": "No bearer token, or one that is unknown, malformed or revoked."},
    403: {"model": Problem, "description": "The token's role may not use this route."},
    503: {"model": Problem, "description": "The proof log or the rule set cannot be read right now."},
}


# ---------------------------------------------------------------- decisions


class DecisionQuery(BaseModel):
    """Filters of `GET /v1/decisions`; every one optional, all given ones must hold."""

    model_config = ConfigDict(extra="forbid")

    since: datetime | None = Field(None, description="Decided at or after (ISO 8601; UTC when no offset).")
    until: datetime | None = Field(None, description="Decided before (ISO 8601; UTC when no offset).")
    symbol: str | None = Field(None, max_length=64, pattern=_TEXT, examples=["BTC/USDT:USDT"])
    strategy: str | None = Field(None, max_length=128, pattern=_TEXT, description="Strategy id.")
    model: str | None = Field(None, max_length=128, pattern=_TEXT, description="Model id.")
    verdict: Verdict | None = None
    reason: str | None = Field(
        None, max_length=128, pattern=r"^[A-Z][A-Z0-9]*\.[a-z0-9_.]+$", examples=["L3.max_drawdown"]
    )
    layer: str | None = Field(None, pattern=r"^(L[1-7]|GUARD|EX)$", examples=["L3"])
    mode: Mode | None = None
    run_id: str | None = Field(None, max_length=128, pattern=_TEXT)
    order: Literal["asc", "desc"] = Field("asc", description="Log order (oldest first) or reversed.")
    limit: int = Field(50, ge=1, le=500, description="Page size.")
    cursor: str = Field(
        "",
        max_length=200,
        pattern=r"^[A-Za-z0-9_-]*$",
        description="`next_cursor` of the previous page, unchanged; empty or absent for the first page.",
    )

    @model_validator(mode="after")
    def _time_range_is_ordered(self) -> DecisionQuery:
        if self.since is not None and self.until is not None and epoch_ms(self.since) >= epoch_ms(self.until):
            raise ValueError("`since` must be before `until`")
        return self


def epoch_ms(moment: datetime) -> int:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


class DecisionSummary(BaseModel):
    seq: int = Field(description="Sequence number (leaf index) of the record in the proof log.")
    decision_id: str
    created_at: str = Field(description="When the log appended the record (UTC).")
    decided_at_ms: int
    symbol: str
    strategy_id: str
    model_id: str
    model_version: str
    verdict: str
    mode: str
    run_id: str | None
    reasons: list[str]
    layers: list[str]


class DecisionPage(BaseModel):
    items: list[DecisionSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class FillOut(BaseModel):
    seq: int
    client_order_id: str
    side: str
    qty: float
    price: float
    fee: float | None
    liquidity: str | None
    filled_at_ms: int | None


class DecisionDetail(BaseModel):
    seq: int
    decision_id: str
    created_at: str
    leaf_hash: Hex = Field(description="SHA-256(0x00 ‖ canonical bytes).")
    canonical: str = Field(description="The RFC 8785 envelope {created_at, kind, record, seq} the log hashed.")
    record: dict[str, Any] = Field(description="The decision: intent, context, verdict, reasons, proofs, sizing.")
    fills: list[FillOut]
    other_seqs: list[int] = Field(description="Other records with this decision id (a run logged twice), if any.")


class EngineFindingOut(BaseModel):
    engine: str
    title: str
    objected: bool = Field(description="Denied the intent (or, for Z3 on a reduce, limited its quantity).")
    reasons: list[str]
    lines: list[str]


class ExplanationOut(BaseModel):
    decision_id: str
    seq: int
    verdict: str
    summary: str
    traded: bool = Field(description="A fill for it is in the log.")
    findings: list[EngineFindingOut]
    trading: list[str]
    text: str = Field(description="The whole explanation as plain text.")
    rule_files_found: bool = Field(description="The decision's rule files were at hand to quote.")


# ---------------------------------------------------------------- log and proofs


class CheckpointOut(BaseModel):
    tree_size: int
    root_hash: Hex
    signed_at: str
    key_id: str
    signature: Hex = Field(description="Ed25519 over checkpoint.signed_bytes(tree_size, root_hash, signed_at).")


class CheckpointPage(BaseModel):
    checkpoints: list[CheckpointOut]
    next_cursor: str | None


class CheckpointQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(1000, ge=1, le=10_000)
    cursor: str = Field("", max_length=200, pattern=r"^[A-Za-z0-9_-]*$", description="Empty for the first page.")


class InclusionProofOut(BaseModel):
    decision_id: str
    seq: int
    leaf_index: int
    tree_size: int
    leaf_hash: Hex
    audit_path: list[Hex] = Field(description="Sibling hashes, leaf side first (RFC 9162 §2.1.3).")
    checkpoint: CheckpointOut = Field(description="The signed checkpoint whose root the path leads to.")
    canonical: str


class InclusionQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tree_size: int | None = Field(
        None, ge=1, le=2**62, description="Prove against the checkpoint of this size (default: the latest)."
    )


class ConsistencyQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    first: int = Field(ge=0, le=2**62, description="Size of the older tree.")
    second: int = Field(ge=0, le=2**62, description="Size of the newer tree.")

    @model_validator(mode="after")
    def _first_is_not_after_second(self) -> ConsistencyQuery:
        if self.first > self.second:
            raise ValueError("`first` must not exceed `second`")
        return self


class ConsistencyProofOut(BaseModel):
    first: int
    second: int
    path: list[Hex] = Field(description="RFC 9162 §2.1.4 consistency proof.")


class LogInfo(BaseModel):
    size: int = Field(description="Records in the log.")
    latest_checkpoint: CheckpointOut | None
    key_id: str | None = Field(description="Id of the public key the API was configured with.")
    public_key_pem: str | None


# ---------------------------------------------------------------- rules


class RuleFileOut(BaseModel):
    sha256: Sha256Hex
    content: str


class RuleSetOut(BaseModel):
    ruleset_hash: Sha256Hex
    files: dict[str, RuleFileOut]


class ProposalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    files: dict[str, Annotated[str, Field(max_length=1_000_000)]] = Field(
        description=(
            f"New full contents by file name: {', '.join(RULE_FILES.values())} or tests/<name>.yaml (rule test "
            "cases); files not named stay as they are."
        ),
        min_length=1,
        max_length=32,
    )
    description: NonBlank = Field(min_length=1, max_length=4000, description="What the change does and why.")


class ProposalOut(BaseModel):
    id: str
    status: str = Field(description="invalid | pending | approved")
    proposed_by: str
    approved_by: str | None
    description: str
    base_hash: str
    ruleset_hash: str
    files: dict[str, str]
    diff: str
    check_errors: list[str]
    test_failures: list[str]
    warnings: list[str] = Field(description="Rules that can never fire; they do not make a proposal invalid.")
    created_at: str
    decided_at: str | None


class InvalidProposal(BaseModel):
    """A 422 of `POST /v1/rules/proposals`: the stored `invalid` proposal when the rule checks refused it; no
    proposal when the request itself was malformed (then `detail` says what, as for any 422)."""

    detail: str | list[dict[str, Any]]
    proposal: ProposalOut | None = None


# ---------------------------------------------------------------- operations


class KillSwitchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: NonBlank = Field(min_length=1, max_length=1000, description="Why trading must stop (logged).")
    flatten: bool = Field(False, description="Also close every open position.")


class KillSwitchRelease(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: NonBlank = Field(min_length=1, max_length=1000, description="Why trading may resume (logged).")


class KillSwitchOut(BaseModel):
    engaged: bool
    reason: str
    by: str
    at_ms: int
    flatten: bool
    seq: int | None = Field(None, description="Sequence number of the kill_switch record this change appended.")


class Health(BaseModel):
    status: Literal["ok"]
