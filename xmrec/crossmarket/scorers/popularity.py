"""Popularity and count features: how often each candidate was chosen, where, and how rated.

Per candidate item: interaction count in the target, in each other market and in all markets
(log1p), the number of markets it appears in, the target's share of its interactions, and its
mean rating in the target (0 when unseen; 5-core rows carry rating 1). Per list: the length of
the user's visible history. Counts come from the view, so validation counts exclude the target's
validation positives. Primary feature: the target count (the popularity baseline).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..candidates import Candidates
from ..graph import GraphView
from .base import Scorer

__all__ = ["Popularity"]


@dataclass(frozen=True)
class Popularity(Scorer):
    """Count features of candidate items and the history length of the user."""

    per_market: bool = True  # also one count per non-target market
    primary_feature: str = "count_target"

    @property
    def name(self) -> str:
        return "pop"

    def _features(self, view: GraphView, cands: Candidates) -> dict[str, np.ndarray]:
        data = view.data
        target = (data.target,)
        count_target = view.item_counts(target)
        count_all = view.item_counts(None)
        ratings = view.restrict(target, weighted=True)
        rating_sum = np.asarray(ratings.sum(axis=0)).ravel()
        mean_rating = np.divide(rating_sum, count_target, out=np.zeros_like(rating_sum), where=count_target > 0)
        per_market = {m: view.item_counts((m,)) for m in data.sources}
        n_markets = np.sum([count_target > 0] + [c > 0 for c in per_market.values()], axis=0)
        items = cands.items
        hist_len = np.diff(view.histories(cands.users).indptr).astype(np.float64)
        feats = {
            "count_target": np.log1p(count_target[items]),
            "count_all": np.log1p(count_all[items]),
            "target_share": np.divide(count_target, count_all, out=np.zeros_like(count_all), where=count_all > 0)[
                items
            ],
            "n_markets": n_markets[items].astype(np.float64),
            "mean_rating_target": mean_rating[items],
            "user_history": np.broadcast_to(hist_len[:, None], items.shape).copy(),
        }
        if self.per_market:
            feats.update({f"count_{m}": np.log1p(c[items]) for m, c in per_market.items()})
        return feats
