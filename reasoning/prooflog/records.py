"""What one leaf of the log holds: an envelope of sequence number, kind, time and the record itself.

The envelope, not the bare record, is canonicalized and hashed, so the position, kind and time of a record are
covered by the tree and the signatures: moving a record to another row, or relabelling its kind or time in the
database columns, is detected. Canonical JSON sorts keys, so the bytes always read
`{"created_at":"…","kind":"…","record":{…},"seq":N}`; the verifier checks the columns against that frame without
parsing the whole record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from reasoning.prooflog.canonical import JsonObject, canonical_json
from reasoning.prooflog.errors import ProofLogError


class RecordKind(StrEnum):
    DECISION = "decision"
    RULE_CHANGE = "rule_change"
    KILL_SWITCH = "kill_switch"
    FILL = "fill"


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One row of the log: `canonical` is the hashed envelope; the other fields are copies kept for queries."""

    seq: int
    kind: str
    created_at: str
    canonical: bytes
    leaf_hash: bytes


def record_kind(name: str) -> RecordKind:
    try:
        return RecordKind(name)
    except ValueError:
        known = ", ".join(kind.value for kind in RecordKind)
        raise ProofLogError(f"unknown record kind {name!r}; expected one of {known}") from None


def format_timestamp(unix_ns: int) -> str:
    """UTC, microseconds, `Z` suffix: `2024-05-01T12:00:00.123456Z` (sorts as text in time order)."""
    moment = datetime.fromtimestamp(unix_ns // 1_000_000_000, tz=UTC).replace(microsecond=unix_ns // 1000 % 1_000_000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class EnvelopeWriter:
    """Canonical envelopes `{"created_at", "kind", "record", "seq"}` of records appended at one time.

    Canonical JSON of a value is the same wherever the value sits, so the record's own canonical bytes are spliced
    into the envelope's frame (sorted keys put the record between kind and seq) rather than canonicalizing the
    envelope as one dict: the same bytes, with each kind's prefix built once per `created_at`.
    """

    __slots__ = ("_created_at", "_prefixes")

    def __init__(self, created_at: str) -> None:
        self._created_at = created_at
        self._prefixes: dict[str, tuple[str, bytes]] = {}

    def envelope(self, seq: int, kind: RecordKind | str, record: JsonObject) -> tuple[str, bytes]:
        """The kind's name and the envelope's canonical bytes; `ProofLogError` for an unknown kind."""
        framing = self._prefixes.get(kind)
        if framing is None:
            name = record_kind(kind).value
            framing = self._prefixes[kind] = (name, envelope_prefix(name, self._created_at))
        name, prefix = framing
        return name, prefix + canonical_json(record) + envelope_suffix(seq)


def envelope_prefix(kind: str, created_at: str) -> bytes:
    """`{"created_at":"…","kind":"…","record":`: the canonical envelope up to the record."""
    return canonical_json({"created_at": created_at, "kind": kind})[:-1] + b',"record":'


def envelope_suffix(seq: int) -> bytes:
    """`,"seq":N}`: the canonical envelope after the record."""
    return b',"seq":%d}' % seq


def envelope_frame(seq: int, kind: str, created_at: str) -> tuple[bytes, bytes]:
    """The exact prefix and suffix of the canonical envelope of a row with these columns."""
    return envelope_prefix(kind, created_at), envelope_suffix(seq)
