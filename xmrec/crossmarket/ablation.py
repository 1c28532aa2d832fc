"""Does a new scorer help? Its figure alone, and the ranker with and without its features.

Used by notebook 05 to ask whether the kit's sequential rankers (base and Ada-Ranker, trained on
the markets' sequences) add anything to the cross-market features. The extra scorers are computed
on the validation view only, so every ranker here is trained on the validation lists alone (no
held-out lists, which would need each extra scorer retrained per held-out view): the baseline
row is the same ranker without the extra features, in the same run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pandas as pd

from .evaluation import candidate_metrics
from .features import FeatureTable, build_features
from .graph import VALID
from .pipeline import CrossMarketResult
from .ranker import RankerConfig, cross_validate
from .scorers.base import Scorer

__all__ = ["added_value", "recorded_protocols"]


def added_value(
    result: CrossMarketResult, scorers: Sequence[Scorer], ranker: RankerConfig | None = None
) -> tuple[pd.DataFrame, FeatureTable]:
    """Rows (method, family, features, ndcg@10, hit@10): each scorer alone, the ranker on the
    pipeline's features, and the ranker plus each scorer's features; and the extra feature table."""
    cfg = result.config
    rcfg = replace(ranker or cfg.ranker, seed=cfg.seed)
    valid, base = result.candidates[VALID], result.features[VALID]
    clash = [s.name for s in scorers if any(n.startswith(f"{s.name}:") for n in base.names)]
    if clash:
        raise ValueError(f"scorer(s) {clash} are already among the pipeline's features; pass new ones")
    extra = build_features(result.data.view(VALID), valid, scorers, progress=cfg.progress)
    rows = []

    def add(method, family, features, scores):
        m = candidate_metrics(scores, valid, result.data, cfg.ties)
        rows.append(
            {
                "method": method,
                "family": family,
                "features": features,
                "ndcg@10": m["ndcg@10"],
                "hit@10": m["hit@10"],
                "ties": cfg.ties,
            }
        )

    for s in scorers:
        add(s.primary, "scorer", "alone", extra.column(s.primary))
    labels, users = valid.labels(), valid.users
    ranker_name = f"lightgbm_{rcfg.objective}"
    add(ranker_name, "ranker", "pipeline features", cross_validate(base, labels, users, config=rcfg).valid_scores)
    for s in scorers:
        own = [n for n in extra.names if n.startswith(f"{s.name}:")]
        table = base.join(extra.select(own))
        add(
            ranker_name,
            "ranker",
            f"pipeline features + {s.name}",
            cross_validate(table, labels, users, config=rcfg).valid_scores,
        )
    return pd.DataFrame(rows), extra


def recorded_protocols(record: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A ``benchmarks/crossmarket_sequential.py`` record as two frames, one row per protocol and row of
    :func:`added_value` (with ``gain``: NDCG@10 over the same ranker without the score), and one per
    protocol and training (with ``ended_by``: the stopping rule, or the epoch cap, i.e. not converged)."""
    tables, trainings = [], []
    for protocol, part in record["protocols"].items():
        table = pd.DataFrame(part["table"]).assign(protocol=protocol)
        alone = table["features"] == "pipeline features"
        with_score = (table["family"] == "ranker") & ~alone
        table["gain"] = (table["ndcg@10"] - table.loc[alone, "ndcg@10"].iloc[0]).where(with_score)
        tables.append(table)
        runs = pd.DataFrame(part["trainings"]).drop(columns="history").assign(protocol=protocol)
        runs["ended_by"] = [
            "the epoch cap" if r.epochs_run == r.epochs else "the stopping rule" for r in runs.itertuples()
        ]
        trainings.append(runs)
    first = ["protocol"]
    results, runs = pd.concat(tables, ignore_index=True), pd.concat(trainings, ignore_index=True)
    return results[first + [c for c in results if c not in first]], runs[first + [c for c in runs if c not in first]]
