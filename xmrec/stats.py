"""Statistics over seeds and lists for the results tables of :mod:`xmrec.experiments` and the benchmarks.

Means with their spread over seeds (:func:`summarize`, :func:`mean_spread`), differences paired by
seed (:func:`seed_gains`) or by seed and list (:func:`paired_difference`), quantile bins of a list
feature (:func:`divergence_bins`) and a linear probe of a latent (:func:`latent_probe`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["METRICS", "summarize", "mean_spread", "seed_gains", "paired_difference", "divergence_bins", "latent_probe"]

METRICS = ("gauc", "ndcg@10", "hit@10", "mrr")  # the four headline metrics of the notebooks


def summarize(table: pd.DataFrame, metrics: Sequence[str] = METRICS, by: Sequence[str] = ("label",)) -> pd.DataFrame:
    """Mean, std and count over seeds of each metric, plus a ``"mean ± std"`` text column each."""
    by = list(by)
    grouped = table.groupby(by, sort=False, observed=True)[list(metrics)]
    mean, std, n = grouped.mean(), grouped.std(ddof=1).fillna(0.0), grouped.size()
    out = pd.DataFrame(index=mean.index)
    out["n_seeds"] = n
    for m in metrics:
        out[f"{m}_mean"], out[f"{m}_std"] = mean[m], std[m]
        out[m] = [mean_spread(a, b if k > 1 else float("nan")) for a, b, k in zip(mean[m], std[m], n)]
    return out.reset_index()


def mean_spread(mean: float, std: float, signed: bool = False) -> str:
    """``"0.8123 ± 0.0040"`` (``"+0.0123 ± ..."`` when ``signed``); the mean alone when std is NaN (one seed)."""
    text = f"{mean:+.4f}" if signed else f"{mean:.4f}"
    return text if np.isnan(std) else f"{text} ± {std:.4f}"


def seed_differences(table: pd.DataFrame, metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Each Ada-Ranker variant minus the base run of the same model and seed: one row per
    (``label``, ``seed``) with ``model`` and a column per metric. Pairing by seed removes what the
    two runs of a seed share (data, initialisation seed)."""
    keys = ["model", "seed"]
    base = table[table["mode"] == "base"].set_index(keys)[list(metrics)]
    parts = []
    for label, g in table[table["mode"] != "base"].groupby("label", sort=False):
        g = g.set_index(keys)
        both = g.index.intersection(base.index)
        parts.append((g.loc[both, list(metrics)] - base.loc[both]).reset_index().assign(label=label))
    columns = ["label", *keys, *metrics]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


def seed_gains(table: pd.DataFrame, metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """:func:`seed_differences` over seeds: one row per non-base ``label`` with ``model``,
    ``n_seeds`` (seeds with both runs), ``<metric>_gain`` and ``<metric>_gain_std`` (mean and std
    of the per-seed differences; std NaN for one seed) and ``wins`` (seeds where the variant's first
    metric is ahead)."""
    rows = []
    for label, diff in seed_differences(table, metrics).groupby("label", sort=False):
        row = {"label": label, "model": diff["model"].iloc[0], "n_seeds": len(diff)}
        for m in metrics:
            row[f"{m}_gain"] = diff[m].mean()
            row[f"{m}_gain_std"] = diff[m].std(ddof=1) if len(diff) > 1 else float("nan")
        row["wins"] = int((diff[metrics[0]] > 0).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def paired_difference(per_list: pd.DataFrame, treatment: str, control: str, metric: str = "gauc") -> pd.DataFrame:
    """Per-list ``metric`` of ``treatment`` minus ``control`` (labels), paired by seed and list.

    Keeps the list features (``pool``, ``n_cates``, ``divergence``); the column ``diff`` holds the
    difference. Raises if either label is missing.
    """
    labels = set(per_list["label"])
    for name in (treatment, control):
        if name not in labels:
            raise KeyError(f"no per-list results for {name!r}; labels: {sorted(labels)}")
    keys = ["seed", "list"]
    t = per_list[per_list["label"] == treatment]
    c = per_list[per_list["label"] == control][keys + [metric]]
    paired = t.merge(c, on=keys, suffixes=("", "_control"))
    paired["diff"] = paired[metric] - paired[f"{metric}_control"]
    paired["treatment"], paired["control"] = treatment, control
    return paired[keys + ["treatment", "control", "pool", "n_cates", "divergence", metric, f"{metric}_control", "diff"]]


def divergence_bins(values, n_bins: int = 4) -> pd.Categorical:
    """Quantile bins of a divergence, labelled by their range in bits (e.g. ``"0.12-0.25"``).

    Fewer bins come back when values repeat (one bin when they are all equal).
    """
    values = np.asarray(values, dtype=np.float64)
    edges = np.unique(np.quantile(values, np.linspace(0, 1, n_bins + 1))) if len(values) else np.zeros(1)
    if len(edges) < 2:
        return pd.Categorical([f"{edges[0]:.2f}"] * len(values), ordered=True)
    codes = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
    names = [f"{a:.2f}-{b:.2f}" for a, b in zip(edges[:-1], edges[1:])]
    return pd.Categorical.from_codes(codes, categories=names, ordered=True)


def latent_probe(latent: np.ndarray, labels, *, folds: int = 5, seed: int = 0) -> dict[str, float]:
    """How much a linear model can read ``labels`` off the latent: cross-validated accuracy of a
    logistic regression, beside the accuracy of always guessing the most common label."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(labels)
    _, counts = np.unique(y, return_counts=True)
    folds = int(min(folds, counts.min()))
    majority = float(counts.max() / counts.sum())
    if len(counts) < 2 or folds < 2:
        return {"accuracy": float("nan"), "majority": majority}
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return {"accuracy": float(cross_val_score(model, latent, y, cv=cv).mean()), "majority": majority}
