from __future__ import annotations

from pathlib import Path

import pytest

from core.compiled import stale_compiled_modules, stale_message

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance-usdm"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real Binance USDT-M samples beside the repo; tests that need them skip without them."""
    if not (SHARED_DATA / "BTC_USDT_USDT-1m-futures.feather").exists():
        pytest.skip(f"real data not present at {SHARED_DATA}")
    return SHARED_DATA


def pytest_sessionstart(session: pytest.Session) -> None:
    stale = stale_compiled_modules()
    if stale:
        pytest.exit(stale_message(stale), returncode=2)
