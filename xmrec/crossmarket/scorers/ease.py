"""EASE (Steck, WWW 2019): a closed-form item-item linear model, beyond the winners' scorers.

B = argmin ||X - X B||^2 + lambda ||B||^2 with diag(B) = 0 has the closed form
P = (X^T X + lambda I)^-1, B_ij = -P_ij / P_jj. It is fitted on the items that matter for the
target (its training items and the candidates), with the rows of every user of ``markets``
restricted to those items, so source users contribute their co-occurrences on target items.
The score of a candidate j for user u is sum over history items i of B_ij.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from ..candidates import Candidates
from ..graph import GraphView
from .base import Scorer, market_label

__all__ = ["EASE", "ease_weights"]


def ease_weights(gram: np.ndarray, l2: float) -> np.ndarray:
    """The EASE item-item matrix B from the Gram matrix X^T X."""
    g = gram.astype(np.float64, copy=True)
    g[np.diag_indices_from(g)] += l2
    p = scipy.linalg.cho_solve(scipy.linalg.cho_factor(g), np.eye(len(g)))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b


@dataclass(frozen=True)
class EASE(Scorer):
    """EASE scores on the target's items, fitted on the users of ``markets`` (None: all)."""

    markets: tuple[str, ...] | None = None
    l2: float = 200.0
    primary_feature: str = "score"

    @property
    def name(self) -> str:
        return f"ease[{market_label(self.markets)}]"

    def _features(self, view: GraphView, cands: Candidates) -> dict[str, np.ndarray]:
        target_items = view.restrict((view.data.target,)).indices
        items = np.unique(np.concatenate([target_items, cands.items.ravel()]))
        x = view.restrict(self.markets).tocsc()[:, items]
        weights = ease_weights((x.T @ x).toarray(), self.l2)
        hist = view.histories(cands.users).tocsc()[:, items]
        scores = np.asarray(hist @ weights)
        return {"score": np.take_along_axis(scores, np.searchsorted(items, cands.items), axis=1)}
