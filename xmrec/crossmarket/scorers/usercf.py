"""User-based collaborative filtering across markets, beyond the winners' scorers.

sim(u, v) = sum over shared items i of 1 / ln(1 + |U_i|), divided by sqrt(|I_u| |I_v|) (inverse
item frequency: sharing a niche item says more than sharing a best-seller); the score of
candidate j is the summed similarity of the users v (any market of the combination) who chose
j. Only the rows of the users being ranked and the columns of their candidates are computed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..candidates import Candidates
from ..graph import GraphView
from .base import Scorer, market_label

__all__ = ["UserCF"]


def _inv(x: np.ndarray) -> np.ndarray:
    out = np.zeros(len(x))
    np.divide(1.0, x, out=out, where=x > 0)
    return out


@dataclass(frozen=True)
class UserCF(Scorer):
    """UserCF with inverse item frequency on the users of ``markets`` (None: every market)."""

    markets: tuple[str, ...] | None = None
    primary_feature: str = "score"

    @property
    def name(self) -> str:
        return f"usercf[{market_label(self.markets)}]"

    def _features(self, view: GraphView, cands: Candidates) -> dict[str, np.ndarray]:
        x = view.restrict(self.markets)
        users_per_item = np.asarray(x.sum(axis=0)).ravel()
        items_per_user = np.asarray(x.sum(axis=1)).ravel()
        hist = view.histories(cands.users)
        own = np.asarray(hist.sum(axis=1)).ravel()
        sim = hist @ sp.diags(_inv(np.log1p(users_per_item))) @ x.T  # ranked users x all users
        sim = sp.diags(np.sqrt(_inv(own))) @ sim @ sp.diags(np.sqrt(_inv(items_per_user)))
        sim = sp.csr_matrix(sim)
        sim[np.arange(len(cands)), cands.users] = 0.0  # a user is not their own neighbour
        sim.eliminate_zeros()
        J = np.unique(cands.items)
        block = np.asarray((sim @ x.tocsc()[:, J]).todense())
        return {"score": np.take_along_axis(block, np.searchsorted(J, cands.items), axis=1)}
