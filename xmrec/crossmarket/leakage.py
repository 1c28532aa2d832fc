"""The cost of leakage, measured on purpose (notebook 05).

The trap of the WSDM Cup 2022 task: features for the validation lists computed on a graph that
contains the target's ``valid_qrel`` already hold the answer (the positive is in the user's
history), so every validation figure goes up, and a ranker trained on such features learns to
trust exactly the signal that is absent at test time (no feature can see a test positive). This
module rebuilds the validation features on the deliberately leaky view
(``CrossMarketData.view(VALID, leak=True)``) and reports, next to the honest figures:

- each scorer ranking alone on leaky features (the inflated validation figure);
- the ranker trained and validated on leaky features (what a leaky pipeline would report);
- that same leak-trained ranker scoring honest features of its held-out users: what it actually
  delivers on lists whose positive no feature can see, as on the test lists.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from .evaluation import candidate_metrics
from .features import FeatureTable, build_features
from .graph import VALID
from .pipeline import CrossMarketResult
from .ranker import cross_validate
from .settings import make_scorers

__all__ = ["leaky_features", "leakage_cost"]


def leaky_features(result: CrossMarketResult, progress: bool = False) -> FeatureTable:
    """The validation features computed on the view that holds the target's validation positives."""
    cfg, data = result.config, result.data
    return build_features(
        data.view(VALID, leak=True), result.candidates[VALID], make_scorers(cfg, data), progress=progress
    )


def leakage_cost(result: CrossMarketResult, objective: str | None = None) -> pd.DataFrame:
    """Honest vs leaky NDCG@10 / HR@10 of every scorer and of the ranker (module docstring).

    Columns: method, family, setting ("honest", "leaky", or "leak-trained, honest features"),
    ndcg@10, hit@10. The ranker is retrained without held-out lists on both sides, so the
    comparison isolates the leak.
    """
    cfg = result.config
    objective = objective or cfg.objectives[0]
    valid, honest = result.candidates[VALID], result.features[VALID]
    leaky = leaky_features(result, progress=cfg.progress)
    if leaky.names != honest.names:
        raise ValueError(
            "leaky and honest feature tables differ in columns; was the result built with another configuration?"
        )
    rows = []

    def add(method, family, setting, scores):
        m = candidate_metrics(scores, valid, result.data, cfg.ties)
        rows.append(
            {
                "method": method,
                "family": family,
                "setting": setting,
                "ndcg@10": m["ndcg@10"],
                "hit@10": m["hit@10"],
                "ties": cfg.ties,
            }
        )

    for name in result.metrics.loc[result.metrics["family"] == "scorer", "method"]:
        add(name, "scorer", "honest", honest.column(name))
        add(name, "scorer", "leaky", leaky.column(name))
    rcfg = replace(cfg.ranker, objective=objective, seed=cfg.seed)
    labels, users = valid.labels(), valid.users
    ranker = f"lightgbm_{objective}"
    add(ranker, "ranker", "honest", cross_validate(honest, labels, users, config=rcfg).valid_scores)
    add(ranker, "ranker", "leaky", cross_validate(leaky, labels, users, config=rcfg).valid_scores)
    add(
        ranker,
        "ranker",
        "leak-trained, honest features",
        cross_validate(leaky, labels, users, config=rcfg, score_with=honest).valid_scores,
    )
    return pd.DataFrame(rows)
