"""`limits.toml` is rejected with `file:line:col: message` for every kind of mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasoning.limits.errors import LimitsFileError
from reasoning.limits.parser import load_ruleset, parse_ruleset
from reasoning.limits.prover import LimitsEngine
from tests.reasoning.limits.helpers import LIMITS_FILE


def limit_file(constraint: str, *, value: str = "1000", unit: str = "usdt", extra: str = "") -> str:
    # line 1 header, 2 layer, 3 description, 4 value, 5 unit, 6 applies_to, 7 constraint
    return (
        "[limits.cap]\n"
        'layer = "L1"\n'
        'description = "a cap"\n'
        f"value = {value}\n"
        f'unit = "{unit}"\n'
        'applies_to = "growth"\n'
        f'constraint = "{constraint}"\n' + extra
    )


CONSTRAINT_COLUMN = len('constraint = "') + 1  # column of the expression's first character


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        (limit_file("notional_after <= capp"), 7, CONSTRAINT_COLUMN + 18, "unknown name 'capp'"),
        (limit_file("sqrt(qty) <= cap"), 7, CONSTRAINT_COLUMN, "unknown function 'sqrt'"),
        (limit_file("drift_detected <= cap"), 7, CONSTRAINT_COLUMN, "mixes a 0/1 indicator with a quantity in USDT"),
        (limit_file("qty <= cap"), 7, CONSTRAINT_COLUMN, "unit mismatch in a comparison: base vs USDT"),
        (limit_file("notional_after <= cap", value="-5"), 4, 9, "has the wrong sign"),
        (limit_file("qty * position_after <= cap"), 7, CONSTRAINT_COLUMN, "nonlinear in qty"),
        (limit_file("mark_price / qty <= cap"), 7, CONSTRAINT_COLUMN, "nonlinear in qty"),
        (limit_file("notional_after ** 2 <= cap"), 7, CONSTRAINT_COLUMN, "operator Pow is not allowed"),
        (limit_file("notional_after <= cap +"), 7, CONSTRAINT_COLUMN + 23, "syntax error"),
        (limit_file("notional_after"), 7, CONSTRAINT_COLUMN, "is used as a condition"),
        (limit_file("(qty > 1) + 1 <= cap"), 7, CONSTRAINT_COLUMN + 1, "a condition (true/false) is used as a number"),
        (limit_file("notional_after <= cap", unit="furlongs"), 5, 8, "unit must be one of"),
        (limit_file("notional_after <= cap").replace('"L1"', '"L9"'), 2, 9, "layer must be one of L1..L7"),
        (limit_file("notional_after <= cap").replace('"growth"', '"sometimes"'), 6, 14, "applies_to must be"),
        (limit_file("notional_after <= cap", extra="colour = 1\n"), 8, 10, "unknown field 'colour'"),
        (
            limit_file("notional_after <= cap", extra='[limits.cap.overrides]\n"BTC/USDT:USDT" = -1\n'),
            9,
            19,
            "override for BTC/USDT:USDT: value -1 has the wrong sign",
        ),
        (limit_file("notional_after <= cap").replace("value = 1000", 'value = "a lot"'), 4, 9, "must be a number"),
        (
            limit_file("notional_after <= cap").replace("[limits.cap]", "[limits.mark_price]"),
            1,
            1,
            "is a vocabulary name",
        ),
        ("[limits.cap\nlayer = 1\n", 1, 12, "TOML syntax"),
    ],
)
def test_a_bad_limits_file_is_rejected_with_its_location(text: str, line: int, column: int, message: str) -> None:
    # Act
    with pytest.raises(LimitsFileError) as raised:
        parse_ruleset(text, "rules/limits.toml")
    # Assert
    error = raised.value
    assert (error.location.line, error.location.column) == (line, column), str(error)
    assert message in error.message
    assert str(error).startswith(f"rules/limits.toml:{line}:{column}: ")


def test_a_missing_field_is_reported_at_the_limit_header() -> None:
    text = limit_file("notional_after <= cap").replace('applies_to = "growth"\n', "")
    with pytest.raises(LimitsFileError, match=r"^f.toml:1:1: limit cap: missing field 'applies_to'"):
        parse_ruleset(text, "f.toml")


def test_the_shipped_limits_file_compiles_with_limits_in_all_seven_layers() -> None:
    ruleset = load_ruleset(LIMITS_FILE)
    assert {limit.layer for limit in ruleset.limits} == {f"L{n}" for n in range(1, 8)}
    assert len(ruleset.limits) >= 22


def test_a_bad_file_keeps_the_last_good_rule_set(tmp_path: Path) -> None:
    # Arrange
    engine = LimitsEngine(LIMITS_FILE)
    good_hash = engine.ruleset_hash
    bad = tmp_path / "limits.toml"
    bad.write_text(limit_file("notional_after <= nonsense"))
    # Act
    with pytest.raises(LimitsFileError, match=r"limits.toml:7:\d+: limit cap: unknown name 'nonsense'"):
        engine.load(bad)
    # Assert
    assert engine.ruleset_hash == good_hash


def test_the_ruleset_hash_is_the_sha256_of_the_file_bytes() -> None:
    import hashlib

    assert LimitsEngine(LIMITS_FILE).ruleset_hash == hashlib.sha256(LIMITS_FILE.read_bytes()).hexdigest()
