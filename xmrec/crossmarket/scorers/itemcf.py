"""Item-based collaborative filtering over any combination of markets.

Two similarities, each computed only on the block [history items, candidate items]:

- ``iuf``: sim(i, j) = sum over users u of both of 1 / ln(1 + |I_u|), divided by
  sqrt(|U_i| |U_j|): a co-occurrence counts less when it comes from a user with many items
  (inverse user frequency), the WSDM Cup 2022 winners' main scorer;
- ``cosine``: rating-weighted cosine, sim(i, j) = sum_u r_ui r_uj / (||r_i|| ||r_j||);
- ``jaccard``: |U_i & U_j| / |U_i | U_j|, which penalises a popular candidate harder than the
  square root of the other two (on t1 valid the best single ItemCF: 0.686 NDCG@10 over all markets).

Counts |U_i| and |I_u| are taken within the chosen markets, on the visible interactions only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..candidates import Candidates
from ..graph import GraphView
from .base import Scorer, market_label
from .history import HISTORY_STATS, aggregate_history

__all__ = ["ItemCF", "iuf_similarity", "cosine_similarity", "jaccard_similarity", "WEIGHTINGS"]


def _safe_inv(x: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x, dtype=np.float64)
    np.divide(1.0, x, out=out, where=x > 0)
    return out


def iuf_similarity(binary: sp.csr_matrix, H: np.ndarray, J: np.ndarray) -> np.ndarray:
    """Dense ItemCF-IUF block [len(H), len(J)] from a users x items binary matrix."""
    items_per_user = np.asarray(binary.sum(axis=1)).ravel()
    weight = _safe_inv(np.log1p(items_per_user))
    csc = binary.tocsc()
    co = (csc[:, H].T @ sp.diags(weight) @ csc[:, J]).toarray()
    users_per_item = np.asarray(binary.sum(axis=0)).ravel()
    return co * np.sqrt(_safe_inv(users_per_item[H]))[:, None] * np.sqrt(_safe_inv(users_per_item[J]))[None, :]


def cosine_similarity(ratings: sp.csr_matrix, H: np.ndarray, J: np.ndarray) -> np.ndarray:
    """Dense rating-weighted cosine block [len(H), len(J)] from a users x items rating matrix."""
    csc = ratings.tocsc()
    dot = (csc[:, H].T @ csc[:, J]).toarray()
    norms = np.sqrt(np.asarray(csc.multiply(csc).sum(axis=0)).ravel())
    return dot * _safe_inv(norms[H])[:, None] * _safe_inv(norms[J])[None, :]


def jaccard_similarity(binary: sp.csr_matrix, H: np.ndarray, J: np.ndarray) -> np.ndarray:
    """Dense Jaccard block [len(H), len(J)]: shared users over the union of the two items' users."""
    csc = binary.tocsc()
    co = (csc[:, H].T @ csc[:, J]).toarray()
    users_per_item = np.asarray(binary.sum(axis=0)).ravel()
    union = users_per_item[H][:, None] + users_per_item[J][None, :] - co
    return co * _safe_inv(union)


WEIGHTINGS = {"iuf": iuf_similarity, "cosine": cosine_similarity, "jaccard": jaccard_similarity}


@dataclass(frozen=True)
class ItemCF(Scorer):
    """ItemCF on the interactions of ``markets`` (None: every market)."""

    markets: tuple[str, ...] | None = None
    weighting: str = "iuf"  # "iuf", "cosine" or "jaccard"
    stats: tuple[str, ...] = HISTORY_STATS

    def __post_init__(self):
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"ItemCF weighting must be one of {sorted(WEIGHTINGS)}, got {self.weighting!r}")

    @property
    def name(self) -> str:
        return f"itemcf_{self.weighting}[{market_label(self.markets)}]"

    def _features(self, view: GraphView, cands: Candidates) -> dict[str, np.ndarray]:
        matrix = view.restrict(self.markets, weighted=self.weighting == "cosine")
        sim = WEIGHTINGS[self.weighting]
        return aggregate_history(view.histories(cands.users), cands.items, lambda H, J: sim(matrix, H, J), self.stats)
