"""Record bytes are RFC 8785: byte for byte what the `rfc8785` reference writes, and the RFC's own examples."""

from __future__ import annotations

import math
import struct
from enum import IntEnum, StrEnum
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from reasoning.prooflog.canonical import JsonValue, canonical_json
from reasoning.prooflog.errors import CanonicalJsonError

SAFE_INTEGER = 2**53 - 1

# where a float's written form changes in RFC 8785 (1e-6, 1e21), in Python's repr (1e-4, 1e16) or in orjson's (1e-5),
# and where integral floats stop being consecutive (2^53)
NOTATION_BOUNDARIES = [1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1.0, 1e15, 1e16, 1e17, 1e20, 1e21, 1e22, float(2**53)]


def _with_neighbours(number: float) -> list[float]:
    below, above = math.nextafter(number, 0.0), math.nextafter(number, math.inf)
    return [value for magnitude in (below, number, above) for value in (magnitude, -magnitude)]


BOUNDARY_FLOATS = sorted({value for boundary in NOTATION_BOUNDARIES for value in _with_neighbours(boundary)})

EXTREME_FLOATS = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 0.1, 123456789.0]
interesting_floats = st.sampled_from([*EXTREME_FLOATS, *BOUNDARY_FLOATS])
any_finite_float = st.floats(allow_nan=False, allow_infinity=False) | interesting_floats
# all of Unicode but lone surrogates, with control characters, quotes, backslashes and astral characters made common
any_text = st.text(
    st.characters(exclude_categories=["Cs"])
    | st.sampled_from(["\x00", "\x1f", "\x7f", '"', "\\", "/", "\b", "\f", "\n", "\r", "\t", "\u2028", "é", "€"])
    | st.sampled_from(["\U0001f600", "\U00010000", "\U0010ffff", "\ufb33", "\uffff", "\ue000"]),
    max_size=12,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-SAFE_INTEGER, SAFE_INTEGER) | any_finite_float | any_text,
    lambda children: (
        st.lists(children, max_size=5)
        | st.lists(children, max_size=3).map(tuple)
        | st.dictionaries(any_text, children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=2000, deadline=None)
@given(json_values)
def test_canonical_bytes_equal_the_rfc8785_reference(value: JsonValue) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@settings(max_examples=2500, deadline=None)
@given(st.lists(any_finite_float, min_size=1, max_size=8))
def test_every_finite_float_is_written_as_the_reference_writes_it(numbers: list[float]) -> None:
    assert canonical_json(numbers) == rfc8785.dumps(numbers)


@settings(max_examples=2000, deadline=None)
@given(st.integers(0, 2**64 - 1))
def test_a_float_of_any_bit_pattern_is_written_as_the_reference_writes_it(bits: int) -> None:
    (number,) = struct.unpack(">d", bits.to_bytes(8, "big"))
    if not math.isfinite(number):
        return
    assert canonical_json({"x": number}) == rfc8785.dumps({"x": number})


@pytest.mark.parametrize("number", BOUNDARY_FLOATS)
def test_floats_next_to_a_change_of_notation_are_written_as_the_reference_writes_them(number: float) -> None:
    assert canonical_json([number]) == rfc8785.dumps([number])


# RFC 8785 Appendix B: IEEE 754 bit patterns and their canonical text
@pytest.mark.parametrize(
    ("ieee_hex", "expected"),
    [
        ("0000000000000000", "0"),
        ("8000000000000000", "0"),
        ("0000000000000001", "5e-324"),
        ("8000000000000001", "-5e-324"),
        ("7fefffffffffffff", "1.7976931348623157e+308"),
        ("ffefffffffffffff", "-1.7976931348623157e+308"),
        ("4340000000000000", "9007199254740992"),
        ("c340000000000000", "-9007199254740992"),
        ("4430000000000000", "295147905179352830000"),
        ("44b52d02c7e14af5", "9.999999999999997e+22"),
        ("44b52d02c7e14af6", "1e+23"),
        ("44b52d02c7e14af7", "1.0000000000000001e+23"),
        ("444b1ae4d6e2ef4e", "999999999999999700000"),
        ("444b1ae4d6e2ef4f", "999999999999999900000"),
        ("444b1ae4d6e2ef50", "1e+21"),
        ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
        ("3eb0c6f7a0b5ed8d", "0.000001"),
        ("41b3de4355555553", "333333333.3333332"),
        ("41b3de4355555554", "333333333.33333325"),
        ("41b3de4355555555", "333333333.3333333"),
        ("41b3de4355555556", "333333333.3333334"),
        ("41b3de4355555557", "333333333.33333343"),
        ("becbf647612f3696", "-0.0000033333333333333333"),
        ("43143ff3c1cb0959", "1424953923781206.2"),
    ],
)
def test_rfc8785_appendix_b_numbers(ieee_hex: str, expected: str) -> None:
    (number,) = struct.unpack(">d", bytes.fromhex(ieee_hex))
    assert canonical_json(number) == expected.encode()


def test_rfc8785_section_3_2_2_example() -> None:
    value: JsonValue = {
        "numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/",
        "literals": [None, True, False],
    }
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )

    assert canonical_json(value) == expected.encode()


def test_rfc8785_section_3_2_3_keys_sort_by_utf16_code_units() -> None:
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    # U+1F600 is the surrogate pair D83D DE00: in UTF-16 it sorts before U+FB33, by code point after it
    expected = (
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",'
        '"\u20ac":"Euro Sign","\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
    )

    assert canonical_json(value) == expected.encode()


def test_keys_are_sorted_and_whitespace_removed() -> None:
    assert canonical_json({"b": [1, 2.5, True, None], "a": "é"}) == '{"a":"é","b":[1,2.5,true,null]}'.encode()


def test_integral_and_tiny_floats_are_written_as_ecmascript_numbers() -> None:
    assert canonical_json({"qty": 2.0, "eps": 1e-7, "tick": 5e-6, "zero": -0.0}) == (
        b'{"eps":1e-7,"qty":2,"tick":0.000005,"zero":0}'
    )


def test_control_characters_are_escaped_as_json_short_forms_or_lowercase_hex() -> None:
    assert canonical_json("\b\t\n\f\r\x00\x1b\x7f") == b'"\\b\\t\\n\\f\\r\\u0000\\u001b\x7f"'


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_refused_naming_the_field(bad: float) -> None:
    with pytest.raises(CanonicalJsonError, match=r"\$\.intent\.prices\[1\] is NaN or infinite"):
        canonical_json({"intent": {"prices": [1.0, bad]}})


def test_nan_beside_a_value_only_the_reference_writes_is_still_named() -> None:
    class Side(StrEnum):
        BUY = "buy"

    with pytest.raises(CanonicalJsonError, match=r"\$\.qty is NaN or infinite"):
        canonical_json({"side": Side.BUY, "qty": math.nan})


@pytest.mark.parametrize("integer", [SAFE_INTEGER + 1, -SAFE_INTEGER - 1, 2**64, -(2**70)])
def test_integers_beyond_the_exact_range_of_a_double_are_refused(integer: int) -> None:
    # RFC 8785 numbers are IEEE doubles, exact for integers up to ±(2^53 − 1); the reference refuses the rest
    with pytest.raises(CanonicalJsonError, match="log a larger integer as a string"):
        canonical_json({"order_id": integer})


def test_the_largest_exact_integers_are_written_in_full() -> None:
    assert canonical_json([SAFE_INTEGER, -SAFE_INTEGER]) == b"[9007199254740991,-9007199254740991]"


def test_a_non_json_value_is_refused() -> None:
    with pytest.raises(CanonicalJsonError, match="not JSON"):
        canonical_json({"when": object()})  # type: ignore[dict-item]


def test_a_key_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(CanonicalJsonError, match="not JSON"):
        canonical_json({1: "one"})  # type: ignore[dict-item]


def test_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(CanonicalJsonError, match="not JSON"):
        canonical_json({"note": "\ud800"})


def test_a_record_that_contains_itself_is_refused() -> None:
    looped: dict[str, Any] = {}
    looped["self"] = looped
    with pytest.raises(CanonicalJsonError, match="contains itself"):
        canonical_json(looped)


def test_str_and_int_enums_and_dict_subclasses_are_written_as_the_reference_writes_them() -> None:
    class Side(StrEnum):
        BUY = "buy"

    class Layer(IntEnum):
        L1 = 1

    class Facts(dict[str, Any]):
        """A dict subclass, as domain code makes: canonical JSON must write it as a plain object."""

    value = Facts(side=Side.BUY, layer=Layer.L1, qty=1.0, nested=Facts(price=65000.5))

    written = canonical_json(value)

    assert written == rfc8785.dumps(value)
    assert written == b'{"layer":1,"nested":{"price":65000.5},"qty":1,"side":"buy"}'
