"""Which mypyc-compiled modules are older than their source.

`pip install -e .` compiles the hot path (see setup.py) into extension modules next to
the sources, and Python imports those before the `.py` files. After an edit or a
`git pull`, an out-of-date extension would silently run the old code, so the test suite
and the command line refuse to start until it is rebuilt.
"""

from __future__ import annotations

from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "execution", "market", "reasoning", "trader")


def stale_compiled_modules(root: Path = ROOT) -> list[str]:
    """Source files (relative to `root`) whose compiled extension is older than they are."""
    stale = []
    for package in PACKAGES:
        for source in sorted((root / package).rglob("*.py")):
            for suffix in EXTENSION_SUFFIXES:
                extension = source.with_name(source.stem + suffix)
                if extension.exists() and extension.stat().st_mtime < source.stat().st_mtime:
                    stale.append(str(source.relative_to(root)))
    return stale


def stale_message(stale: list[str]) -> str:
    return (
        f"compiled modules are older than their sources ({', '.join(stale)}): "
        "run `make install` (or `pip install -e .`) to rebuild them"
    )
