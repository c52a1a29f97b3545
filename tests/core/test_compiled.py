from __future__ import annotations

import os
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

from core.compiled import stale_compiled_modules


def make_module(root: Path, name: str, source_mtime: float, extension_mtime: float | None) -> None:
    package = root / "execution"
    package.mkdir(exist_ok=True)
    source = package / f"{name}.py"
    source.write_text("x = 1\n")
    os.utime(source, (source_mtime, source_mtime))
    if extension_mtime is not None:
        extension = package / f"{name}{EXTENSION_SUFFIXES[0]}"
        extension.write_bytes(b"")
        os.utime(extension, (extension_mtime, extension_mtime))


def test_an_extension_older_than_its_source_is_reported(tmp_path: Path) -> None:
    make_module(tmp_path, "simulator", source_mtime=2_000.0, extension_mtime=1_000.0)

    assert stale_compiled_modules(tmp_path) == ["execution/simulator.py"]


def test_a_fresh_extension_and_a_module_without_one_are_not_reported(tmp_path: Path) -> None:
    make_module(tmp_path, "simulator", source_mtime=1_000.0, extension_mtime=2_000.0)
    make_module(tmp_path, "venue", source_mtime=1_000.0, extension_mtime=None)

    assert stale_compiled_modules(tmp_path) == []
