"""What each reporting choice of the published winner adds to the printed validation number.

The kit's honest protocol reports the out-of-fold NDCG@10 of a ranker whose folds are grouped by
user, trained for fixed rounds, on scorer features only. The first-place team's public code
(opdai, WSDM Cup 2022, ``train_main.py``) reports differently, element by element:

- ``row folds``: ``KFold(n_splits=10, shuffle=True, random_state=2022)`` over candidate *rows*,
  so one user's 100 rows fall into different folds and a list is scored by models that saw the
  rest of it (its positive included);
- ``early stopping on the reported fold``: each fold stops (200 rounds of patience) on the very
  fold it then reports as out-of-fold;
- ``id codes``: ``userId`` and ``itemId`` mapped to integer codes are numeric features.

:func:`settings` turns them on one at a time from the honest default, then all together;
:func:`protocol_run` measures one setting for one seed and :func:`protocol_table` summarises them
(``benchmarks/crossmarket_protocol.py`` records the table).
Validation features that contain the target's validation positives are the leak of notebook 05;
the winners did not report with it (they used the positives for test features only, as the kit
does), so it appears only as an upper bound, in a row of its own.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from xmrec.metrics import per_list, scores_with_positive_first

from .features import FeatureTable
from .graph import VALID
from .ranker import RankerConfig, TrainingLists, cross_validate

__all__ = [
    "ID_FEATURES",
    "PROTOCOLS",
    "ELEMENTS",
    "with_id_codes",
    "with_elements",
    "protocol_inputs",
    "published_ranker",
    "protocol_table",
]

ID_FEATURES = ("id:user", "id:item")
PROTOCOLS = ("honest", "published")
ELEMENTS = ("row folds", "early stopping on the reported fold", "id codes")
PUBLISHED = {"n_folds": 10, "row_folds": True, "early_stopping_rounds": 200}  # the winners' KFold and stopping
MAX_ROUNDS = 3000  # boosting rounds allowed when early stopping decides


def with_id_codes(table: FeatureTable, users: np.ndarray, items: np.ndarray) -> FeatureTable:
    """``table`` plus the user and item integer codes (global indices) of each candidate row."""
    codes = np.stack([np.broadcast_to(users[:, None], items.shape), items], axis=2).astype(table.values.dtype)
    return table.join(FeatureTable(list(ID_FEATURES), codes))


def with_elements(elements, ranker: RankerConfig, tables: dict, cands: dict, extra):
    """The ranker config, feature tables ({stage: table}) and extra lists with ``elements`` switched on."""
    if "id codes" in elements:
        tables = {stage: with_id_codes(t, cands[stage].users, cands[stage].items) for stage, t in tables.items()}
        extra = [TrainingLists(with_id_codes(e.features, e.users, e.items), e.labels, e.users, e.items) for e in extra]
    return published_ranker(ranker, elements), tables, list(extra)


def protocol_inputs(protocol: str, ranker: RankerConfig, tables: dict, cands: dict, extra):
    """The ranker config, feature tables ({stage: table}) and extra lists that ``protocol`` ranks with."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    return with_elements(ELEMENTS if protocol == "published" else (), ranker, tables, cands, extra)


def published_ranker(ranker: RankerConfig, elements=ELEMENTS) -> RankerConfig:
    """``ranker`` with the published protocol's fold and stopping ``elements`` switched on."""
    changes = {}
    if "row folds" in elements:
        changes.update(n_folds=PUBLISHED["n_folds"], row_folds=True)
    if "early stopping on the reported fold" in elements:
        changes.update(early_stopping_rounds=PUBLISHED["early_stopping_rounds"], n_estimators=MAX_ROUNDS)
    return replace(ranker, **changes)


def _per_user_ndcg(scores: np.ndarray, cands) -> np.ndarray:
    rows = np.flatnonzero(cands.labelled)
    return per_list(scores_with_positive_first(scores[rows], cands.positive[rows]), ks=(10,))["ndcg@10"]


def settings() -> list[tuple[str, tuple[str, ...], bool]]:
    """(label, elements switched on, leaky validation features) of every row of the table, in order."""
    rows = [("honest (the kit's default)", (), False)]
    rows += [(f"+ {e}", (e,), False) for e in ELEMENTS]
    rows += [("all three (the published protocol)", ELEMENTS, False)]
    rows += [("all three + validation positives in the features (leak, upper bound)", ELEMENTS, True)]
    return rows


def protocol_run(result, elements, seed: int, leaky: FeatureTable | None = None, progress: bool = False) -> dict:
    """One ranker under ``elements`` (leaky validation features when ``leaky`` is given): its NDCG@10 on
    the validation lists, the standard error over users and the mean boosting rounds per fold model."""
    cfg, valid = result.config, result.candidates[VALID]
    table = leaky if leaky is not None else result.features[VALID]
    ranker = replace(cfg.ranker, objective=cfg.objectives[0], seed=seed)
    rcfg, tables, extra = with_elements(elements, ranker, {VALID: table}, {VALID: valid}, result.heldout)
    res = cross_validate(tables[VALID], valid.labels(), valid.users, None, rcfg, extra=extra, progress=progress)
    ndcg = _per_user_ndcg(res.valid_scores, valid)
    return {
        "seed": seed,
        "ndcg@10": float(ndcg.mean()),
        "se_users": float(ndcg.std(ddof=1) / np.sqrt(len(ndcg))),
        "n_users": int(len(ndcg)),
        "rounds": float(np.mean(res.rounds)),
    }


def protocol_table(runs: list[dict]) -> pd.DataFrame:
    """One row per protocol from ``runs`` (dicts with ``protocol``, ``elements``, ``leak`` and the keys
    of :func:`protocol_run`): NDCG@10 mean over seeds, standard error over users (mean over seeds),
    seed spread (max - min), gain over the honest row, seeds."""
    frame = pd.DataFrame(runs)
    order = [label for label, _, _ in settings() if label in set(frame["protocol"])]
    grouped = frame.groupby("protocol", sort=False)
    out = pd.DataFrame(
        {
            "elements": grouped["elements"].first(),
            "leak": grouped["leak"].first(),
            "ndcg@10": grouped["ndcg@10"].mean(),
            "se_users": grouped["se_users"].mean(),
            "seed_spread": grouped["ndcg@10"].agg(np.ptp),
            "seeds": grouped["seed"].agg(lambda x: sorted(x)),
            "rounds": grouped["rounds"].mean(),
        }
    ).loc[order]
    out.insert(3, "gain", out["ndcg@10"] - out["ndcg@10"].iloc[0])
    out["ties"] = "mean"
    return out.reset_index()
