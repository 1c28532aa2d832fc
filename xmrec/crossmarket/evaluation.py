"""NDCG@10 and HR@10 as the official WSDM Cup 2022 scorer computes them, per market and combined.

One positive among each user's candidates; the metric functions are ``xmrec.metrics`` (ties
count as the mean of the tied ranks). A combined figure is the user-weighted mean of markets,
as the official t1t2 score.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from xmrec.metrics import evaluate, per_list, scores_with_positive_first

__all__ = ["list_metrics", "combine", "score_predictions", "KEYS"]

KEYS = ("ndcg@10", "hit@10")


def list_metrics(scores: np.ndarray, positive: np.ndarray) -> dict[str, float]:
    """NDCG@10, HR@10 (and MRR) over the lists whose positive column is known; ``n_users`` counted."""
    scores = np.asarray(scores, dtype=np.float64)
    rows = np.flatnonzero(np.asarray(positive) >= 0)
    if len(rows) == 0:
        raise ValueError("no labelled lists to evaluate")
    m = evaluate(scores_with_positive_first(scores[rows], positive[rows]), ks=(10,))
    return {"ndcg@10": m["ndcg@10"], "hit@10": m["hit@10"], "mrr": m["mrr"], "n_users": int(len(rows))}


def combine(per_market: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """User-weighted mean of each metric over markets (the official combined score)."""
    total = sum(m["n_users"] for m in per_market.values())
    out = {k: sum(m[k] * m["n_users"] for m in per_market.values()) / total for k in KEYS}
    out["n_users"] = int(total)
    return out


def score_predictions(pred: pd.DataFrame, qrel: pd.DataFrame) -> dict[str, float]:
    """Metrics of a prediction table ``userId, itemId, score`` against ``userId, itemId`` positives.

    Every qrel user must have predictions containing its positive, and all users the same number
    of candidates (as in the official runs); errors name the first offending user.
    """
    sizes = pred.groupby("userId", sort=False).size()
    if sizes.nunique() != 1:
        raise ValueError(f"users have different numbers of candidates: {sorted(sizes.unique())[:5]}")
    k = int(sizes.iloc[0])
    pred = pred.sort_values("userId", kind="stable")
    users = pred["userId"].to_numpy()[::k]
    items = pred["itemId"].to_numpy().reshape(-1, k)
    scores = pred["score"].to_numpy(np.float64).reshape(-1, k)
    pos_of = dict(zip(qrel["userId"], qrel["itemId"]))
    missing = [u for u in pos_of if u not in set(users)]
    if missing:
        raise ValueError(f"user {missing[0]} of the qrel has no predictions")
    keep = np.array([u in pos_of for u in users])
    positive = np.array([np.flatnonzero(row == pos_of[u])[0] if (row == pos_of[u]).any() else -2
                         for u, row in zip(users[keep], items[keep])])
    if (positive < 0).any():
        raise ValueError(f"user {users[keep][np.flatnonzero(positive < 0)[0]]}: the positive is not among "
                         "the predicted candidates")
    lists = per_list(scores_with_positive_first(scores[keep], positive), ks=(10,))
    return {"ndcg@10": float(lists["ndcg@10"].mean()), "hit@10": float(lists["hit@10"].mean()),
            "n_users": int(keep.sum())}
