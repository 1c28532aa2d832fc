"""NDCG@10 and HR@10 of the WSDM Cup 2022 task, per market and combined, under a stated tie rule.

One positive among each user's candidates. Two tie rules (``TIES``):

- ``"mean"`` (the kit's default): ``xmrec.metrics``, a positive tied with other candidates takes
  the mean of the tied ranks (a constant scorer earns no credit from list order);
- ``"trec"``: the official scorer's rule. That scorer calls trec_eval through pytrec_eval, which
  orders tied candidates by their document id (descending), so a tied positive may land anywhere
  in its tie by the accident of its id. Computed by pytrec_eval itself (optional dependency
  ``pytrec-eval-terrier``, the ``trec`` extra), so it needs the lists' item ids.

Without ties both rules give the same numbers; scorers with many ties (popularity, ItemCF with zero
similarity) differ. Every cross-market table says which rule it used. A combined figure is the
user-weighted mean of markets, as the official t1t2 score.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from xmrec.metrics import evaluate, scores_with_positive_first

__all__ = ["list_metrics", "candidate_metrics", "trec_metrics", "combine", "score_predictions", "KEYS", "TIES"]

KEYS = ("ndcg@10", "hit@10")
TIES = ("mean", "trec")


def list_metrics(
    scores: np.ndarray, positive: np.ndarray, *, ties: str = "mean", item_ids: np.ndarray | None = None
) -> dict[str, float]:
    """NDCG@10, HR@10 (and MRR) over the lists whose positive column is known; ``n_users`` counted.

    ``ties="trec"`` needs ``item_ids`` [n_lists, n_candidates], the ids trec_eval breaks ties by.
    """
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
    scores = np.asarray(scores, dtype=np.float64)
    rows = np.flatnonzero(np.asarray(positive) >= 0)
    if len(rows) == 0:
        raise ValueError("no labelled lists to evaluate")
    if ties == "trec":
        if item_ids is None:
            raise ValueError("ties='trec' needs the item ids of every candidate (trec_eval breaks ties by id)")
        return trec_metrics(scores[rows], np.asarray(positive)[rows], np.asarray(item_ids)[rows])
    m = evaluate(scores_with_positive_first(scores[rows], positive[rows]), ks=(10,))
    return {"ndcg@10": m["ndcg@10"], "hit@10": m["hit@10"], "mrr": m["mrr"], "n_users": int(len(rows))}


def candidate_metrics(scores: np.ndarray, cands, data, ties: str = "mean") -> dict[str, float]:
    """:func:`list_metrics` of the labelled lists of ``cands`` (a ``Candidates``; item ids from ``data``)."""
    item_ids = data.item_ids.to_numpy()[cands.items] if ties == "trec" else None
    return list_metrics(scores, cands.positive, ties=ties, item_ids=item_ids)


def trec_metrics(scores: np.ndarray, positive: np.ndarray, item_ids: np.ndarray) -> dict[str, float]:
    """NDCG@10, HR@10 (recall@10 of one positive) and MRR computed by pytrec_eval, as the official scorer."""
    try:
        import pytrec_eval
    except ImportError:
        raise ImportError(
            "ties='trec' uses the official scorer's trec_eval: pip install pytrec-eval-terrier "
            "(or the kit's 'trec' extra)"
        ) from None
    qrel = {str(k): {str(item_ids[k, positive[k]]): 1} for k in range(len(scores))}
    run = {str(k): {str(i): float(v) for i, v in zip(item_ids[k], scores[k])} for k in range(len(scores))}
    result = pytrec_eval.RelevanceEvaluator(qrel, {"ndcg_cut.10", "recall.10", "recip_rank"}).evaluate(run)
    mean = {
        key: float(np.mean([r[key] for r in result.values()])) for key in ("ndcg_cut_10", "recall_10", "recip_rank")
    }
    return {
        "ndcg@10": mean["ndcg_cut_10"],
        "hit@10": mean["recall_10"],
        "mrr": mean["recip_rank"],
        "n_users": int(len(scores)),
    }


def combine(per_market: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """User-weighted mean of each metric over markets (the official combined score)."""
    total = sum(m["n_users"] for m in per_market.values())
    out = {k: sum(m[k] * m["n_users"] for m in per_market.values()) / total for k in KEYS}
    out["n_users"] = int(total)
    return out


def score_predictions(pred: pd.DataFrame, qrel: pd.DataFrame, ties: str = "mean") -> dict[str, float]:
    """Metrics of a prediction table ``userId, itemId, score`` against ``userId, itemId`` positives.

    Every qrel user must have predictions containing its positive, and all users the same number
    of candidates (as in the official runs); errors name the first offending user. ``ties``: the
    tie rule (module docstring).
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
    positive = np.array(
        [
            np.flatnonzero(row == pos_of[u])[0] if (row == pos_of[u]).any() else -2
            for u, row in zip(users[keep], items[keep])
        ]
    )
    if (positive < 0).any():
        raise ValueError(
            f"user {users[keep][np.flatnonzero(positive < 0)[0]]}: the positive is not among the predicted candidates"
        )
    m = list_metrics(scores[keep], positive, ties=ties, item_ids=items[keep])
    return {k: m[k] for k in ("ndcg@10", "hit@10", "n_users")}
