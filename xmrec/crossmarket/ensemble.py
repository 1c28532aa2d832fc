"""Ranker ensembles: several rankers (seeds, objectives) averaged list by list.

Binary log-odds and lambdarank scores live on different scales, so each member's scores are
standardised within each list (mean 0, standard deviation 1) before the mean is taken: NDCG reads
only the order inside a list, and no member outweighs another by its scale.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["standardise_lists", "ensemble_scores"]


def standardise_lists(scores: np.ndarray) -> np.ndarray:
    """Each row of ``scores`` [n_lists, K] shifted to mean 0 and scaled to std 1 (a constant row: 0)."""
    scores = np.asarray(scores, dtype=np.float64)
    centred = scores - scores.mean(axis=1, keepdims=True)
    spread = centred.std(axis=1, keepdims=True)
    return np.divide(centred, spread, out=np.zeros_like(centred), where=spread > 0)


def ensemble_scores(members: Sequence[np.ndarray]) -> np.ndarray:
    """The mean of the members' list-standardised scores."""
    if not members:
        raise ValueError("an ensemble needs at least one member")
    return np.mean([standardise_lists(m) for m in members], axis=0)
