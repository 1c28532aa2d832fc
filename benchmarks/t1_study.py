"""What the t1 studies of ``benchmarks/`` share: the default pipeline on real t1, and one rule for
whether a gain over the same-run baseline beats noise."""

from __future__ import annotations

import sys
import time

from xmrec.config import markets_dir
from xmrec.crossmarket.pipeline import CrossMarketResult, run_target
from xmrec.crossmarket.settings import CrossMarketConfig


def default_t1() -> tuple[CrossMarketResult, float]:
    """The default pipeline on the real t1 data and its wall seconds; exits 2 without the data."""
    if markets_dir() is None:
        print("XMRec data not found: set XMREC_MARKETS_DIR", file=sys.stderr)
        raise SystemExit(2)
    start = time.perf_counter()
    result = run_target("t1", config=CrossMarketConfig())
    return result, time.perf_counter() - start


def verdict(gains: list[float], noise: float) -> str:
    """A gain counts when it has the same sign in every repetition and exceeds twice ``noise``
    (the baseline's spread between repetitions) in each."""
    beats = min(gains) > 2 * noise or max(gains) < -2 * noise
    return "beats noise" if beats else "within noise"
