"""Rank metrics over ``[n_lists, n_candidates]`` score matrices with the positive in column 0.

Everything follows from the 1-based rank r of the positive in its list. Ties are explicit: a
negative scored equal to the positive counts as half a win (GAUC/AUC), and r is the mean of the
tied ranks (r = 1 + #higher + #tied / 2), so a constant scorer gets GAUC 0.5 and no credit from
list order. Averages are over lists, never over batches.

- GAUC (per list) = (N - r) / (N - 1), the AUC of the positive against its own negatives.
- AUC: pooled over every (positive, negative) pair of all lists (scikit-learn's ``roc_auc_score``).
- HR@k = [r <= k]; NDCG@k = 1 / log2(r + 1) if r <= k else 0; MRR = 1 / r.

The consequence of the mean tie rank: with ties, HR@k and NDCG@k are *not* their expected values
under a random order of the tied candidates. A positive tied with four negatives over ranks 8..12
gets r = 10, so HR@10 = 1, while a random order puts it in the top 10 with probability 3/5; tied
over ranks 9..13 it gets r = 11 and HR@10 = 0 against 2/5. trec_eval, which the WSDM Cup's official
scorer calls, orders ties by document id instead: ``xmrec.crossmarket.evaluation`` offers that rule
(``ties="trec"``) where the item ids are known.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

DEFAULT_KS = (1, 3, 5, 10)


def _as_numpy(scores) -> np.ndarray:
    if hasattr(scores, "detach"):  # torch tensor, without importing torch here
        scores = scores.detach().float().cpu().numpy()
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise ValueError(f"scores must be [n_lists, n_candidates >= 2], got shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinity")
    return scores


def positive_rank(scores) -> np.ndarray:
    """1-based rank of column 0 within each row; ties take the mean of the tied ranks."""
    s = _as_numpy(scores)
    pos = s[:, :1]
    higher = (s[:, 1:] > pos).sum(axis=1)
    tied = (s[:, 1:] == pos).sum(axis=1)
    return 1.0 + higher + tied / 2.0


def per_list(scores, ks=DEFAULT_KS) -> dict[str, np.ndarray]:
    """Each metric for each list (arrays of length n_lists), for per-list analysis."""
    s = _as_numpy(scores)
    n = s.shape[1]
    r = positive_rank(s)
    out = {"rank": r, "gauc": (n - r) / (n - 1), "mrr": 1.0 / r}
    for k in ks:
        hit = r <= k
        out[f"hit@{k}"] = hit.astype(np.float64)
        out[f"ndcg@{k}"] = np.where(hit, 1.0 / np.log2(r + 1.0), 0.0)
    return out


def pooled_auc(scores) -> float:
    """AUC over all (positive, negative) pairs pooled across lists, ties counted as half."""
    s = _as_numpy(scores)
    flat = s.ravel()
    ranks = rankdata(flat)  # average ranks over ties
    pos_ranks = ranks.reshape(s.shape)[:, 0]
    n_pos, n_neg = s.shape[0], flat.size - s.shape[0]
    return float((pos_ranks.sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def evaluate(scores, ks=DEFAULT_KS) -> dict[str, float]:
    """Mean of each per-list metric plus the pooled AUC: keys ``gauc, auc, mrr, ndcg@k, hit@k``."""
    lists = per_list(scores, ks)
    out = {k: float(v.mean()) for k, v in lists.items() if k != "rank"}
    out["auc"] = pooled_auc(scores)
    return out


def scores_with_positive_first(scores, positive_col) -> np.ndarray:
    """Reorder each row so that its positive (index ``positive_col[i]``) is in column 0.

    Raises ``ValueError`` when a column index is not an integer in ``[0, n_candidates)``: -1 or
    n would otherwise silently make column 0 the positive.
    """
    s = np.asarray(scores)
    col = np.asarray(positive_col)
    n = s.shape[1]
    if col.shape != (s.shape[0],) or not np.issubdtype(col.dtype, np.integer):
        raise ValueError(f"positive_col must hold one integer per list ({s.shape[0]}), got {col.dtype} {col.shape}")
    bad = np.flatnonzero((col < 0) | (col >= n))
    if len(bad):
        raise ValueError(f"positive_col out of range [0, {n}) in {len(bad)} list(s), e.g. list {bad[0]}: {col[bad[0]]}")
    order = np.argsort(np.arange(n)[None, :] != col[:, None], axis=1, kind="stable")
    return np.take_along_axis(s, order, axis=1)
