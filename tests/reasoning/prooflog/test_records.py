"""The envelope: the record's canonical bytes spliced into the frame are the canonical bytes of the whole envelope."""

from __future__ import annotations

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from reasoning.prooflog.canonical import JsonValue
from reasoning.prooflog.errors import ProofLogError
from reasoning.prooflog.records import EnvelopeWriter, RecordKind, envelope_frame, format_timestamp
from tests.reasoning.prooflog.test_canonical import any_text, json_values

timestamps = st.integers(0, 4_102_444_800_000_000_000).map(format_timestamp)  # up to 2100-01-01
kinds = st.sampled_from([*RecordKind, *(kind.value for kind in RecordKind)])


@settings(max_examples=300, deadline=None)
@given(timestamps, st.integers(0, 2**53 - 1), kinds, st.dictionaries(any_text, json_values, max_size=6))
def test_an_envelope_is_the_rfc8785_bytes_of_the_whole_envelope(
    created_at: str, seq: int, kind: RecordKind | str, record: dict[str, JsonValue]
) -> None:
    name, written = EnvelopeWriter(created_at).envelope(seq, kind, record)

    assert name == RecordKind(kind).value
    assert written == rfc8785.dumps({"created_at": created_at, "kind": name, "record": record, "seq": seq})


def test_an_envelope_starts_and_ends_with_the_frame_the_verifier_checks() -> None:
    created_at = format_timestamp(1_714_564_800_123_456_000)
    prefix, suffix = envelope_frame(7, "decision", created_at)

    _, written = EnvelopeWriter(created_at).envelope(7, RecordKind.DECISION, {"verdict": "admit"})

    assert written == prefix + b'{"verdict":"admit"}' + suffix
    assert (
        written
        == b'{"created_at":"2024-05-01T12:00:00.123456Z","kind":"decision","record":{"verdict":"admit"},"seq":7}'
    )


def test_an_unknown_kind_is_refused_by_the_envelope_writer() -> None:
    with pytest.raises(ProofLogError, match="unknown record kind 'trade_idea'"):
        EnvelopeWriter(format_timestamp(0)).envelope(0, "trade_idea", {})
