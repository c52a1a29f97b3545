"""`cryptoscalp rules check` on a rule set whose Prolog or CLIPS file would run code when loaded: the
command refuses it in one line naming the file, line and column, and nothing of the file ran."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from reasoning.rules import RULES_DIR
from trader.cli import main


@pytest.mark.parametrize(
    ("file_name", "attack"),
    [
        ("strategies.pl", ":- shell('touch {marker}'), halt."),
        ("expert.clp", '(defglobal ?*pwned* = (system "touch {marker}"))'),
    ],
)
def test_rules_check_prints_the_refusal_of_a_file_that_would_run_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], file_name: str, attack: str
) -> None:
    marker = tmp_path / "pwned"
    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules)
    path = rules / file_name
    line = path.read_text().count("\n") + 2  # the attack is on the line after a blank one, at the end
    path.write_text(path.read_text() + "\n" + attack.format(marker=marker) + "\n")
    monkeypatch.setattr(sys, "argv", ["cryptoscalp", "rules", "check", str(rules)])

    with pytest.raises(SystemExit) as exited:
        main()

    errors = capsys.readouterr().err.splitlines()
    assert exited.value.code == 2
    assert len(errors) == 1
    assert errors[0].startswith(f"error: {path}:{line}:")
    assert "is not allowed" in errors[0] or "are not allowed" in errors[0]
    assert not marker.exists()
