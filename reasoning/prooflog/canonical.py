"""RFC 8785 (JSON Canonicalization Scheme) bytes of a record.

The `rfc8785` package is the reference. It is pure Python and costs ~300 µs for a 2 KB decision record, which
alone would cap the log near 3,000 appends/s. So the bytes are first produced by the C encoder of the standard
`json` module (sorted keys, no whitespace, UTF-8, no NaN): for JSON made of strings, integers below 2^53 and
non-integral floats between 1e-4 and 1e16 those bytes are exactly the RFC 8785 bytes (same escaping of control
characters, same shortest round-trip float digits). The cases where the two differ — integral floats (`1.0` vs
`1`), exponent notation (`1e-07` vs `1e-7`), integers outside ±2^53, and characters outside the BMP (RFC 8785
sorts keys by UTF-16 code units, Python by code points) — are recognised by conservative checks over the
output and handed to `rfc8785`. A string that merely looks like such a number also takes the slow path, which
costs time, never correctness; `tests/reasoning/prooflog/test_canonical.py` checks the two paths agree on
arbitrary JSON.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import TypeAlias

import rfc8785

from reasoning.prooflog.errors import CanonicalJsonError

JsonValue: TypeAlias = "bool | int | float | str | Sequence[JsonValue] | Mapping[str, JsonValue] | None"
JsonObject: TypeAlias = Mapping[str, JsonValue]

# Cheap tests (substring search, literal-led patterns) for the number tokens the C encoder writes differently
# from RFC 8785 and for characters outside the BMP; a general token regex costs more than the encoding itself.
_INTEGRAL_FLOAT_ENDINGS = (".0,", ".0]", ".0}")  # Python `1.0`, RFC 8785 `1`
_EXPONENT = re.compile(r"e[-+][0-9]")  # Python `1e-07` / `1e+16`, RFC 8785 `1e-7` / `10000000000000000`
_LONG_INTEGER = re.compile(r"[:,\[]-?[0-9]{16}")  # may exceed 2^53, which RFC 8785 cannot represent


def _may_differ_from_rfc8785(text: str) -> bool:
    if not text.isascii() and max(text) > "\uffff":
        return True  # RFC 8785 orders keys by UTF-16 code units, Python by code points
    if text.endswith(".0") or any(ending in text for ending in _INTEGRAL_FLOAT_ENDINGS):
        return True
    if any(text[hit.start() - 1 : hit.start()].isdigit() for hit in _EXPONENT.finditer(text)):
        return True
    return _LONG_INTEGER.search(text) is not None or _LONG_INTEGER.match("," + text[:17]) is not None


def canonical_json(value: JsonValue) -> bytes:
    """The RFC 8785 bytes of `value`; raises `CanonicalJsonError` naming the field for NaN, infinity or non-JSON."""
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (ValueError, TypeError) as exc:
        raise CanonicalJsonError(_describe_unencodable(value, exc)) from None
    if _may_differ_from_rfc8785(text):
        return _reference_canonical_json(value)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise CanonicalJsonError("record holds a lone UTF-16 surrogate in a string; it is not valid Unicode") from None


def _reference_canonical_json(value: JsonValue) -> bytes:
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:
        raise CanonicalJsonError(f"record cannot be canonicalized (RFC 8785): {exc}") from None


def _describe_unencodable(value: JsonValue, exc: Exception) -> str:
    path = _first_non_finite_float(value, "$")
    if path is not None:
        return f"record field {path} is NaN or infinite; JSON (RFC 8785) has no such number — log null or a string"
    return f"record is not JSON (dicts with string keys, lists, strings, numbers, booleans, null): {exc}"


def _first_non_finite_float(value: JsonValue, path: str) -> str | None:
    if isinstance(value, float):
        return None if math.isfinite(value) else path
    if isinstance(value, Mapping):
        for key, item in value.items():
            found = _first_non_finite_float(item, f"{path}.{key}")
            if found is not None:
                return found
    elif isinstance(value, Sequence) and not isinstance(value, str):
        for position, item in enumerate(value):
            found = _first_non_finite_float(item, f"{path}[{position}]")
            if found is not None:
                return found
    return None
