"""RFC 8785 (JSON Canonicalization Scheme) bytes of a record.

The `rfc8785` package is the reference. It is pure Python and costs ~200 µs for a 2.4 KB decision record, which
alone would cap the log near 5,000 appends/s, so the bytes are written by `orjson` (C) instead, after a Python
pass over the record that leaves orjson only what it writes exactly as RFC 8785 does:

- orjson writes sorted keys, no whitespace, UTF-8, and escapes strings as RFC 8785 §3.2.2.2 does (`"`, `\\` and
  the control characters below U+0020: `\\b \\t \\n \\f \\r`, others `\\u00xx` in lowercase hex); it refuses lone
  surrogates, and with OPT_STRICT_INTEGER integers outside ±(2^53 − 1), the IEEE-double range RFC 8785 §3.2.2.3
  allows, which the reference refuses too.
- Numbers are ECMAScript Number-to-String (RFC 8785 §3.2.2.3). For a float that is not integral and whose
  magnitude is in [1e-4, 1e16) that is plain notation with the shortest round-trip digits, which is also what
  Python's `repr` and orjson write. Every other float is written by `_ecmascript_number` from Python's shortest
  round-trip digits and handed to orjson as a pre-written `orjson.Fragment`: integral floats (orjson `1.0`,
  `-0.0`, `1e+16`; RFC 8785 `1`, `0`, `10000000000000000`), small magnitudes (orjson `5e-6`, RFC 8785
  `0.000005`) and NaN or infinity, which RFC 8785 has no form for (orjson would write `null`).
- RFC 8785 orders keys by UTF-16 code units, orjson by code points; the two differ only for keys holding
  characters above U+FFFF. A record whose bytes hold such a character anywhere (cheaper to see than in keys
  only), and one holding anything but exact dict, list, tuple, str, int, float, bool or None (an enum, a dict
  subclass, a key that is not a str), is written by the reference, which also decides what it refuses.

`tests/reasoning/prooflog/test_canonical.py` checks the result byte for byte against `rfc8785` on generated
JSON and the floats at every boundary above.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import orjson
import rfc8785

from reasoning.prooflog.errors import CanonicalJsonError

JsonValue: TypeAlias = "bool | int | float | str | Sequence[JsonValue] | Mapping[str, JsonValue] | None"
JsonObject: TypeAlias = Mapping[str, JsonValue]

_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
_OTHER_SCALAR_TYPES = frozenset({int, bool, type(None)})  # str and float are tested first, separately
# where Python's repr, orjson and ECMAScript all write a non-integral float the same way
_PLAIN_NOTATION_MIN = 1e-4
_PLAIN_NOTATION_END = 1e16
_EXACT_INTEGER_END = 2.0**53  # below it, a float's integral values are consecutive
_UTF8_FOUR_BYTE_LEAD = 0xF0  # UTF-8 writes characters above U+FFFF, and only those, in four bytes led by 0xF0-0xF4


class _NeedsReference(Exception):
    """The record holds something only the reference implementation writes (or refuses) correctly."""


class _NotFinite(Exception):
    """The record holds NaN or an infinity."""


def canonical_json(value: JsonValue) -> bytes:
    """The RFC 8785 bytes of `value`; raises `CanonicalJsonError` naming the field for NaN, infinity or non-JSON."""
    try:
        try:
            written = orjson.dumps(_exact_for_orjson(value), option=_ORJSON_OPTIONS)
        except (_NeedsReference, orjson.JSONEncodeError):
            return _reference_canonical_json(value)
        if written.isascii() or max(written) < _UTF8_FOUR_BYTE_LEAD:
            return written
        return _reference_canonical_json(value)  # a character above U+FFFF, perhaps in a key
    except _NotFinite:
        raise CanonicalJsonError(_non_finite_message(value)) from None
    except RecursionError:
        raise CanonicalJsonError("record nests too deeply to canonicalize, or contains itself") from None


def _ecmascript_number(number: float) -> str:
    """ECMAScript Number::toString of a finite float, as RFC 8785 §3.2.2.3 writes numbers.

    The digits are Python's shortest round-trip digits (`repr`), the ones ECMAScript picks; only the notation
    differs: plain for magnitudes in [1e-6, 1e21), otherwise `d.ddde±x` with no leading zeros in the exponent.
    Raises `_NotFinite` for NaN and the infinities.
    """
    if -_EXACT_INTEGER_END < number < _EXACT_INTEGER_END and number.is_integer():
        # every digit is significant, so the shortest digits are the integer's own; -0.0 becomes 0
        return str(int(number))
    if not math.isfinite(number):
        raise _NotFinite
    sign = "-" if number < 0.0 else ""
    mantissa, _, exponent = repr(abs(number)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    padded = whole + fraction
    digits = padded.lstrip("0")
    # number = 0.<digits> × 10^point, ECMAScript's n; its k is len(digits)
    point = len(whole) + int(exponent or "0") - (len(padded) - len(digits))
    digits = digits.rstrip("0")
    if len(digits) <= point <= 21:
        return sign + digits + "0" * (point - len(digits))
    if 0 < point <= 21:
        return sign + digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return sign + "0." + "0" * -point + digits
    power = point - 1
    written_power = ("+" if power > 0 else "-") + str(abs(power))
    if len(digits) == 1:
        return sign + digits + "e" + written_power
    return sign + digits[0] + "." + digits[1:] + "e" + written_power


def _exact_for_orjson(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return _object_for_orjson(value)
    if kind is list or kind is tuple:
        return _array_for_orjson(value)
    if kind is float:
        if _PLAIN_NOTATION_MIN <= abs(value) < _PLAIN_NOTATION_END and not value.is_integer():
            return value
        return orjson.Fragment(_ecmascript_number(value))
    if kind is str or kind in _OTHER_SCALAR_TYPES:
        return value
    raise _NeedsReference


# The two functions below visit every value of every record, so the checks are inlined and a container is copied
# only when something in it is replaced. Values are `Any`: JSON of a type each branch has just checked.


def _object_for_orjson(mapping: dict[Any, Any]) -> dict[Any, Any]:
    """`mapping` itself when orjson writes it exactly, else a copy with its inexact floats as fragments."""
    copy: dict[Any, Any] | None = None
    for key, item in mapping.items():
        kind = type(item)
        if kind is str:
            continue
        if kind is float:
            if _PLAIN_NOTATION_MIN <= abs(item) < _PLAIN_NOTATION_END and not item.is_integer():
                continue
            exact: Any = orjson.Fragment(_ecmascript_number(item))
        elif kind is dict:
            exact = _object_for_orjson(item)
            if exact is item:
                continue
        elif kind is list or kind is tuple:
            exact = _array_for_orjson(item)
            if exact is item:
                continue
        elif kind in _OTHER_SCALAR_TYPES:
            continue
        else:
            raise _NeedsReference
        if copy is None:
            copy = dict(mapping)
        copy[key] = exact
    return mapping if copy is None else copy


def _array_for_orjson(array: list[Any] | tuple[Any, ...]) -> list[Any] | tuple[Any, ...]:
    """`array` itself when orjson writes it exactly, else a list with its inexact floats as fragments.

    A replacement rebuilds the whole array (walking the items before it again): cheaper than tracking positions
    in the common case, where nothing is replaced.
    """
    for item in array:
        kind = type(item)
        if kind is str:
            continue
        if kind is float:
            if _PLAIN_NOTATION_MIN <= abs(item) < _PLAIN_NOTATION_END and not item.is_integer():
                continue
        elif kind is dict:
            if _object_for_orjson(item) is item:
                continue
        elif kind is list or kind is tuple:
            if _array_for_orjson(item) is item:
                continue
        elif kind in _OTHER_SCALAR_TYPES:
            continue
        else:
            raise _NeedsReference
        return [_exact_for_orjson(element) for element in array]
    return array


def _reference_canonical_json(value: JsonValue) -> bytes:
    try:
        return rfc8785.dumps(value)
    except rfc8785.FloatDomainError:
        raise _NotFinite from None
    except rfc8785.IntegerDomainError as exc:
        raise CanonicalJsonError(
            f"record cannot be canonicalized: {exc} (RFC 8785 numbers are IEEE doubles, exact to ±(2^53 − 1)); "
            "log a larger integer as a string"
        ) from None
    except rfc8785.CanonicalizationError as exc:
        raise CanonicalJsonError(
            f"record is not JSON (dicts with string keys, lists, strings, numbers, booleans, null): {exc}"
        ) from None


def _non_finite_message(value: JsonValue) -> str:
    path = _first_non_finite_float(value, "$")
    return f"record field {path} is NaN or infinite; JSON (RFC 8785) has no such number — log null or a string"


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
