"""Record bytes are RFC 8785: the fast path agrees with the `rfc8785` reference on arbitrary JSON."""

from __future__ import annotations

import math

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from reasoning.prooflog.canonical import JsonValue, canonical_json
from reasoning.prooflog.errors import CanonicalJsonError

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1.0, -0.0, 1e-7, 1e-5, 1e16, 1e21, 123456789.0, 0.1, 5e-324])
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_canonical_bytes_equal_the_rfc8785_reference(value: JsonValue) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


def test_keys_are_sorted_and_whitespace_removed() -> None:
    assert canonical_json({"b": [1, 2.5, True, None], "a": "é"}) == '{"a":"é","b":[1,2.5,true,null]}'.encode()


def test_integral_and_tiny_floats_are_written_as_ecmascript_numbers() -> None:
    assert canonical_json({"qty": 2.0, "eps": 1e-7}) == b'{"eps":1e-7,"qty":2}'


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_refused_naming_the_field(bad: float) -> None:
    with pytest.raises(CanonicalJsonError, match=r"\$\.intent\.prices\[1\] is NaN or infinite"):
        canonical_json({"intent": {"prices": [1.0, bad]}})


def test_a_non_json_value_is_refused() -> None:
    with pytest.raises(CanonicalJsonError, match="not JSON"):
        canonical_json({"when": object()})  # type: ignore[dict-item]
