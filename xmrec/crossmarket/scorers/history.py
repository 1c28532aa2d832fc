"""Score a candidate against a user's history through an item-item similarity.

Item-based scorers all share one shape: s(u, j) = agg over history items i of sim(i, j). Only
the block sim[H, J] is ever computed, H = items in the histories of the users being ranked and
J = their candidate items, then each (list, candidate) pair gathers its history column and
reduces it (sum, max, mean, and ``hits``: how many history items have a
non-zero similarity). Nothing outside the candidate pairs is scored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp

__all__ = ["HISTORY_STATS", "needed_items", "aggregate_history"]

HISTORY_STATS = ("sum", "max", "mean", "hits")
_CHUNK_CELLS = 4_000_000  # gathered (list, history, candidate) cells per chunk: bounds memory


def needed_items(hist: sp.csr_matrix, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique history items H and candidate items J."""
    return np.unique(hist.indices), np.unique(cand)


def aggregate_history(
    hist: sp.csr_matrix,
    cand: np.ndarray,
    similarity: Callable[[np.ndarray, np.ndarray], np.ndarray],
    stats: Sequence[str] = HISTORY_STATS,
) -> dict[str, np.ndarray]:
    """Statistics over the history of sim(i, j) for every candidate j of every list.

    ``hist`` holds one binary row per list (the list's user history over global items), ``cand``
    the candidates [n, K]; ``similarity(H, J)`` returns the dense block [|H|, |J|]. Lists with an
    empty history get 0 for every statistic.
    """
    unknown = set(stats) - set(HISTORY_STATS)
    if unknown:
        raise ValueError(f"unknown history statistics {sorted(unknown)}; choose from {HISTORY_STATS}")
    H, J = needed_items(hist, cand)
    block = np.asarray(similarity(H, J), dtype=np.float64)
    if block.shape != (len(H), len(J)):
        raise ValueError(f"similarity returned shape {block.shape}, expected {(len(H), len(J))}")
    block = np.vstack([block, np.zeros((1, len(J)))])  # row len(H): padding, similarity 0
    n, k = cand.shape
    lengths = np.diff(hist.indptr)
    width = max(int(lengths.max(initial=0)), 1)
    pad = np.full((n, width), len(H), dtype=np.int64)
    rows = np.repeat(np.arange(n), lengths)
    cols = np.arange(len(hist.indices)) - np.repeat(hist.indptr[:-1], lengths)
    pad[rows, cols] = np.searchsorted(H, hist.indices)
    cpos = np.searchsorted(J, cand)
    out = {s: np.zeros((n, k)) for s in stats}
    step = max(1, _CHUNK_CELLS // (width * k))
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        vals = block[pad[lo:hi, :, None], cpos[lo:hi, None, :]]  # [chunk, width, K]
        if "sum" in out or "mean" in out:
            total = vals.sum(axis=1)
            if "sum" in out:
                out["sum"][lo:hi] = total
            if "mean" in out:
                out["mean"][lo:hi] = total / np.maximum(lengths[lo:hi, None], 1)
        if "hits" in out:
            out["hits"][lo:hi] = (vals != 0).sum(axis=1)
        if "max" in out:
            masked = np.where(pad[lo:hi, :, None] < len(H), vals, -np.inf)
            out["max"][lo:hi] = np.where(lengths[lo:hi, None] > 0, masked.max(axis=1), 0.0)
    return out
