"""Swing item similarity (Yang et al., 2020), as used by the WSDM Cup 2022 winners.

sim(i, j) = sum over unordered pairs of distinct users {u, v} who both interacted with i and j
of 1 / (alpha + |I_u & I_v|): two items are close when several users who otherwise have little
in common share them, so one heavy user or one clique counts little. Computed per history item
i on the users of i only (their overlap matrix is |U_i| x |U_i|), for the candidate items J.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from ..candidates import Candidates
from ..graph import GraphView
from .base import Scorer, market_label
from .history import HISTORY_STATS, aggregate_history

__all__ = ["Swing", "swing_similarity"]


def swing_similarity(
    binary: sp.csr_matrix, H: np.ndarray, J: np.ndarray, alpha: float = 0.01, progress: bool = False
) -> np.ndarray:
    """Dense Swing block [len(H), len(J)] from a users x items binary matrix."""
    binary = sp.csr_matrix(binary)
    csc = binary.tocsc()
    to_j = csc[:, J].tocsr()  # users x |J|
    useful = np.asarray(to_j.sum(axis=1)).ravel() > 0  # a user without a candidate item adds nothing
    out = np.zeros((len(H), len(J)))
    for row, i in enumerate(tqdm(H, desc="swing", disable=not progress, leave=False)):
        users = csc.indices[csc.indptr[i] : csc.indptr[i + 1]]
        users = users[useful[users]]
        if len(users) < 2:
            continue
        sub = binary[users]
        overlap = (sub @ sub.T).toarray()
        weight = 1.0 / (alpha + overlap)
        np.fill_diagonal(weight, 0.0)
        bj = to_j[users]
        # sum_{u != v} w_uv b_uj b_vj = sum_u b_uj (W b_j)_u ; halved for unordered pairs
        out[row] = 0.5 * np.asarray(bj.multiply(weight @ bj.toarray()).sum(axis=0)).ravel()
    jpos = np.searchsorted(J, H)  # an item is not its own neighbour
    hit = (jpos < len(J)) & (J[np.minimum(jpos, len(J) - 1)] == H)
    out[np.flatnonzero(hit), jpos[hit]] = 0.0
    return out


@dataclass(frozen=True)
class Swing(Scorer):
    """Swing on the interactions of ``markets`` (None: every market)."""

    markets: tuple[str, ...] | None = None
    alpha: float = 0.01
    stats: tuple[str, ...] = HISTORY_STATS
    progress: bool = False

    @property
    def name(self) -> str:
        return f"swing[{market_label(self.markets)}]"

    def _features(self, view: GraphView, cands: Candidates) -> dict[str, np.ndarray]:
        matrix = view.restrict(self.markets)
        return aggregate_history(
            view.histories(cands.users),
            cands.items,
            lambda H, J: swing_similarity(matrix, H, J, self.alpha, self.progress),
            self.stats,
        )
