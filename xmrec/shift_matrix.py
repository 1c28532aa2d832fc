"""The shift matrix: train a ranker on lists from one sampler, test it under every sampler.

Every test set holds the same users, targets and histories (the dataset's test instances); only
the negatives change (:func:`xmrec.shift.lists_by_sampler`). The test set drawn by the training
sampler itself is the *matched* one; the drop from it is what the shift costs the ranker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from xmrec.data.sampling import ALL_SAMPLERS
from xmrec.data.store import ProcessedDataset, Split
from xmrec.shift import list_profile, lists_by_sampler

__all__ = [
    "TEST_SEED",
    "shift_test_sets",
    "evaluate_under_shift",
    "score_runs",
    "per_list_under_shift",
    "paired_runs",
    "summarize",
]

TEST_SEED = 2022  # seed of the test lists: every model, whatever it trained on, meets the same lists


def shift_test_sets(
    ds: ProcessedDataset, kinds: Sequence[str] = ALL_SAMPLERS, seed: int = TEST_SEED
) -> dict[str, Split]:
    """The test instances of ``ds`` with negatives from each sampler in ``kinds`` (same targets, same histories)."""
    return lists_by_sampler(ds, kinds, split="test", seed=seed)


def evaluate_under_shift(evaluate: Callable[[Split], dict], lists: dict[str, Split]) -> list[dict]:
    """One row per test sampler: ``test_sampler`` and the metrics ``evaluate`` returns on its lists."""
    return [{"test_sampler": kind, **evaluate(split)} for kind, split in lists.items()]


def score_runs(results: Sequence, sets: dict[str, Split]) -> pd.DataFrame:
    """Trained runs (:class:`xmrec.experiments.RunResult`) scored on every test set: one row per
    run and test sampler, the input of :func:`summarize`. Scoring is seeded by the run's seed."""
    from xmrec.metrics import evaluate
    from xmrec.training import score

    rows = []
    for r in results:
        run = {
            "model": r.variant.model.name,
            "mode": r.variant.mode,
            "train_sampler": r.variant.sampler.kind,
            "seed": r.seed,
            "best_epoch": r.best_epoch,
            "epochs_run": len(r.history),
        }
        scored = evaluate_under_shift(lambda split, r=r: evaluate(score(r.model, split, seed=r.seed)), sets)
        rows += [{**run, **row} for row in scored]
    return pd.DataFrame(rows)


def per_list_under_shift(results: Sequence, sets: dict[str, Split], ds: ProcessedDataset) -> pd.DataFrame:
    """Every trained run (:class:`xmrec.experiments.RunResult`) on every list of every test set: one
    row per run, test sampler and list, with its per-list ``gauc`` and the list's ``divergence``
    (JS in bits of its category mix from the catalogue's, :func:`xmrec.shift.list_profile`). Scoring
    is seeded by the run's seed. What :func:`summarize` averages, kept list by list."""
    from xmrec.metrics import per_list
    from xmrec.training import score

    divergence = {kind: list_profile(split, ds)["divergence"].to_numpy() for kind, split in sets.items()}
    parts = []
    for r in results:
        for kind, split in sets.items():
            gauc = per_list(score(r.model, split, seed=r.seed))["gauc"]
            parts.append(
                pd.DataFrame(
                    {
                        "label": r.variant.label,
                        "model": r.variant.model.name,
                        "mode": r.variant.mode,
                        "seed": r.seed,
                        "test_sampler": kind,
                        "list": np.arange(len(gauc)),
                        "gauc": gauc,
                        "divergence": divergence[kind],
                    }
                )
            )
    return pd.concat(parts, ignore_index=True)


def paired_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The rows whose (model, train sampler, seed) has every mode recorded: base and Ada compared on
    the same seeds only (a benchmark in progress may hold one without its twin)."""
    both = runs.groupby(["model", "train_sampler", "seed"])["mode"].transform("nunique") == runs["mode"].nunique()
    return runs[both]


def summarize(runs: pd.DataFrame, metric: str = "gauc") -> pd.DataFrame:
    """Per (model, train sampler, test sampler): base and Ada mean and std over seeds, the paired
    Ada - base difference, and each mode's drop from its matched test set (paired by seed).

    ``runs`` has one row per trained model and test sampler: ``model``, ``mode`` ("base"/"ada"),
    ``train_sampler``, ``test_sampler``, ``seed`` and ``metric``; only :func:`paired_runs` count.
    Drops are positive when the shifted test set scores lower than the matched one.
    """
    keys = ["model", "train_sampler", "test_sampler", "seed"]
    runs = paired_runs(runs)
    wide = runs.pivot_table(index=keys, columns="mode", values=metric).reset_index()
    matched = wide[wide.test_sampler == wide.train_sampler].drop(columns="test_sampler")
    wide = wide.merge(matched, on=["model", "train_sampler", "seed"], suffixes=("", "_matched"), how="left")
    for mode in ("base", "ada"):
        if mode not in wide:
            wide[mode] = wide[f"{mode}_matched"] = np.nan
        wide[f"{mode}_drop"] = wide[f"{mode}_matched"] - wide[mode]
    wide["diff"] = wide["ada"] - wide["base"]
    values = ["base", "ada", "diff", "base_drop", "ada_drop"]
    grouped = wide.groupby(keys[:-1], sort=False)[values]
    out = grouped.mean().add_suffix("_mean").join(grouped.std(ddof=1).add_suffix("_std"))
    out["n_seeds"] = grouped.size()
    out["ada_ahead"] = wide.assign(ahead=wide["diff"] > 0).groupby(keys[:-1], sort=False)["ahead"].sum()
    out = out.reset_index()
    order = {kind: k for k, kind in enumerate(ALL_SAMPLERS)}
    rank = out.test_sampler.map(order) - 100 * (out.test_sampler == out.train_sampler)  # matched first
    return (
        out.assign(_t=out.train_sampler.map(order), _r=rank)
        .sort_values(["model", "_t", "_r"])
        .drop(columns=["_t", "_r"])
        .reset_index(drop=True)
    )
