"""Feature library speed, as JSON (partial bench for issue 7: features only, no signals yet).

Incremental: p50/p99 of one `IncrementalFeatures.update` (the full feature set, one bar,
one symbol) over real 1-minute bars after a warm-up of the longest window. Vectorised:
`compute_features` throughput in bars per second. Run: `python bench/signals.py`.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.series import BarSeries  # noqa: E402
from market.features import DEFAULT_SPEC, IncrementalFeatures, compute_features  # noqa: E402
from market.loaders import load_market_data  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "binance-usdm"
PAIRS = ["BTC/USDT:USDT", "ETH/USDT:USDT"]
TIMED_BARS = 3_000
BATCH_BARS = 20_000


def micros(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1e6, 1)


def time_updates(bars: BarSeries) -> list[float]:
    features = IncrementalFeatures()
    samples = []
    for i in range(min(len(bars), DEFAULT_SPEC.max_window + TIMED_BARS)):
        args = (bars.open[i], bars.high[i], bars.low[i], bars.close[i], bars.volume[i], int(bars.ts[i]))
        start = time.perf_counter()
        features.update(*args)
        elapsed = time.perf_counter() - start
        if i >= DEFAULT_SPEC.max_window:
            samples.append(elapsed)
    return samples


def main() -> int:
    if not (DATA / "BTC_USDT_USDT-1m-futures.feather").exists():
        print(json.dumps({"error": f"real data not found at {DATA}"}))
        return 1
    market = load_market_data(DATA, PAIRS)
    samples: list[float] = []
    batch_bars, batch_seconds = 0, 0.0
    for pair in PAIRS:
        bars = market.bars[pair]
        samples += time_updates(bars)
        window = bars.between(None, int(bars.ts[min(BATCH_BARS, len(bars) - 1)]))
        start = time.perf_counter()
        compute_features(window)
        batch_seconds += time.perf_counter() - start
        batch_bars += len(window)
    report = {
        "bench": "signals (partial, issue 7: feature library only)",
        "features": len(DEFAULT_SPEC.feature_names),
        "symbols": PAIRS,
        "incremental_update": {
            "bars_timed": len(samples),
            "p50_us": micros(samples, 0.50),
            "p99_us": micros(samples, 0.99),
            "mean_us": round(float(np.mean(samples)) * 1e6, 1),
            "goal_p99_us": 1000,
        },
        "vectorised": {"bars": batch_bars, "bars_per_s": round(batch_bars / batch_seconds)},
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
