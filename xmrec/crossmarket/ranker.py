"""LightGBM ranker over candidate lists with user-grouped cross-validation.

The only labelled lists of a target are its validation lists, so the ranker is trained with
K-fold cross-validation on them, folds grouped by user (a user's list never straddles train and
held-out): each validation list is scored by the fold model that did not see it (out-of-fold,
the honest validation figure) and test lists by the mean of the fold models. The first-place
team's reporting differs in two switches, off by default: folds over candidate *rows*
(``row_folds``: a user's list is scored by models that saw the rest of that list) and early
stopping on the very fold that is then reported (``early_stopping_rounds``). Objectives:
``binary`` (pointwise log-loss) or ``lambdarank`` (listwise, NDCG). Fixed rounds, seeded,
deterministic LightGBM. Training lists keep their positive and a seeded sample of
``train_negatives`` negatives (about 3x fewer rows, same ranking quality on t1); held-out and
test lists are always scored in full.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .features import FeatureTable

__all__ = ["RankerConfig", "RankerResult", "TrainingLists", "user_folds", "row_fold_assignment", "cross_validate"]


@dataclass(frozen=True)
class RankerConfig:
    """LightGBM settings; defaults tuned on t1 validation with user-grouped CV."""

    objective: str = "binary"  # "binary" or "lambdarank"
    n_folds: int = 5  # user-grouped folds (the winners used 10; 5 halves the time, same figure on t1)
    train_negatives: int | None = 30  # negatives per list kept for training (seeded sample); None: all
    n_estimators: int = 300  # boosting rounds (no early stopping: no labelled data is left for it)
    learning_rate: float = 0.05  # shrinkage
    num_leaves: int = 31  # leaves per tree
    min_child_samples: int = 50  # minimum rows in a leaf
    feature_fraction: float = 0.8  # columns sampled per tree
    bagging_fraction: float = 0.8  # rows sampled per round
    lambda_l2: float = 1.0  # L2 penalty on leaf values
    num_threads: int = 1  # LightGBM threads; 1 is deterministic and, on 2 shared cores, often fastest
    seed: int = 2022  # fold assignment and LightGBM seeds
    row_folds: bool = False  # published protocol: folds over candidate rows, so one user's list spans folds
    early_stopping_rounds: int | None = None  # published protocol: each fold early-stops on the fold it reports


@dataclass
class RankerResult:
    """Out-of-fold validation scores, fold-mean test scores and gain importances."""

    valid_scores: np.ndarray  # [n_valid, K]; unlabelled lists get the fold-mean score
    test_scores: np.ndarray | None  # [n_test, K]
    importance: pd.DataFrame  # feature, gain (mean over folds), split
    folds: np.ndarray  # int [n_valid, K]: fold of each candidate row, -1 for unlabelled lists
    config: RankerConfig
    rounds: list[int]  # boosting rounds of each fold model (fewer than n_estimators after early stopping)


def user_folds(users: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Fold index per list; all lists of one user share a fold; folds differ in size by at most one user."""
    unique = np.unique(users)
    if len(unique) < n_folds:
        raise ValueError(f"{len(unique)} labelled users cannot fill {n_folds} folds")
    perm = np.random.default_rng(seed).permutation(len(unique))
    fold_of_user = np.empty(len(unique), np.int64)
    fold_of_user[perm] = np.arange(len(unique)) % n_folds
    return fold_of_user[np.searchsorted(unique, users)]


def _training_columns(labels: np.ndarray, n_neg: int | None, seed: int) -> np.ndarray:
    """Per list, the candidate columns used for training: the positive first, then ``n_neg`` negatives."""
    n, k = labels.shape
    if n_neg is None or n_neg >= k - 1:
        return np.tile(np.arange(k), (n, 1))
    noise = np.random.default_rng(seed + 1).random((n, k))
    order = np.argsort(np.where(labels > 0, -1.0, noise), axis=1, kind="stable")  # positive sorts first
    return order[:, : n_neg + 1]


def _params(cfg: RankerConfig) -> dict:
    p = {
        "objective": cfg.objective,
        "learning_rate": cfg.learning_rate,
        "num_leaves": cfg.num_leaves,
        "min_child_samples": cfg.min_child_samples,
        "feature_fraction": cfg.feature_fraction,
        "bagging_fraction": cfg.bagging_fraction,
        "bagging_freq": 1,
        "lambda_l2": cfg.lambda_l2,
        "num_threads": cfg.num_threads,
        "seed": cfg.seed,
        "deterministic": True,
        "force_row_wise": True,
        "verbosity": -1,
    }
    if cfg.objective == "lambdarank":
        p.update({"lambdarank_truncation_level": 20, "eval_at": [10]})
    elif cfg.objective != "binary":
        raise ValueError(f"objective must be 'binary' or 'lambdarank', got {cfg.objective!r}")
    return p


@dataclass
class TrainingLists:
    """Extra labelled lists that only train (e.g. ``augment.heldout_lists``)."""

    features: FeatureTable
    labels: np.ndarray  # [n, K], one 1 per list
    users: np.ndarray  # [n] global user index: lists of a held-out fold's users are left out
    items: np.ndarray | None = None  # [n, K] global item indices (for id-code features)


def row_fold_assignment(labels: np.ndarray, users: np.ndarray, config: RankerConfig) -> np.ndarray:
    """Fold of each candidate row ``[n, K]`` of the labelled lists (-1 for unlabelled lists): every
    row of a list shares its user's fold, or (``row_folds``) rows are shuffled into folds one by one."""
    n, k = labels.shape
    labelled = labels.sum(axis=1) > 0
    folds = np.full((n, k), -1, np.int64)
    if config.row_folds:
        n_rows = int(labelled.sum()) * k
        folds[labelled] = (np.random.default_rng(config.seed).permutation(n_rows) % config.n_folds).reshape(-1, k)
    else:
        folds[labelled] = user_folds(users[labelled], config.n_folds, config.seed)[:, None]
    return folds


def _fold_training_set(sources, keeps, folds, users, fold: int, row_folds: bool):
    """Rows that train the model of ``fold``: kept candidate columns outside the fold; extra lists
    of the fold's held-out users are left out (user folds only)."""
    held_users = np.array([]) if row_folds else users[(folds == fold).any(axis=1)]
    xs, ys = [], []
    for j, ((x_all, y_all, u_all, ok), keep) in enumerate(zip(sources, keeps)):
        if j == 0:  # list by list, each in its kept-column order
            rows = np.flatnonzero(ok & (folds != fold).any(axis=1))
            outside = np.take_along_axis(folds[rows], keep[rows], axis=1) != fold
            xs.append(np.take_along_axis(x_all[rows], keep[rows, :, None], axis=1)[outside])
            ys.append(np.take_along_axis(y_all[rows], keep[rows], axis=1)[outside])
        else:
            rows = np.flatnonzero(ok & ~np.isin(u_all, held_users))
            xs.append(np.take_along_axis(x_all[rows], keep[rows, :, None], axis=1).reshape(-1, x_all.shape[2]))
            ys.append(np.take_along_axis(y_all[rows], keep[rows], axis=1).reshape(-1))
    return np.concatenate(xs), np.concatenate(ys)


def _fit_fold(params, x, y, names, width: int, config: RankerConfig, held=None):
    """One LightGBM model; with ``early_stopping_rounds`` it stops on ``held`` = (x, y) of the reported fold."""
    import lightgbm as lgb

    grouped = config.objective == "lambdarank" and not config.row_folds
    data = lgb.Dataset(
        x, y, group=np.full(len(x) // width, width) if grouped else None, feature_name=names, free_raw_data=True
    )
    if not config.early_stopping_rounds:
        return lgb.train(params, data, num_boost_round=config.n_estimators)
    check = lgb.Dataset(held[0], held[1], reference=data)
    stop = lgb.early_stopping(config.early_stopping_rounds, first_metric_only=True, verbose=False)
    metric = {"metric": "auc" if config.objective == "binary" else "ndcg"}
    return lgb.train({**params, **metric}, data, config.n_estimators, valid_sets=[check], callbacks=[stop])


def cross_validate(
    valid: FeatureTable,
    labels: np.ndarray,
    users: np.ndarray,
    test: FeatureTable | None = None,
    config: RankerConfig = RankerConfig(),
    extra: Sequence[TrainingLists] = (),
    progress: bool = False,
    score_with: FeatureTable | None = None,
) -> RankerResult:
    """Train one model per fold on the labelled validation lists (module docstring).

    ``labels`` is ``[n_valid, K]`` with one 1 per labelled list and all zeros for unlabelled ones.
    ``extra`` lists join every fold's training set, except those of the fold's held-out users.
    ``score_with``: other features of the same lists to score the held-out folds with (default
    ``valid``); ``leakage`` trains on leaky features and scores honest ones.
    """
    scoring = valid if score_with is None else score_with
    for other in [test, scoring] + [e.features for e in extra]:
        if other is not None and other.names != valid.names:
            raise ValueError("validation, test, scoring or extra feature tables have different columns")
    n, k, f = valid.values.shape
    labelled = labels.sum(axis=1) > 0
    folds = row_fold_assignment(labels, users, config)
    sources = [(valid.values, labels, users, labelled)] + [
        (e.features.values, e.labels, e.users, e.labels.sum(axis=1) > 0) for e in extra
    ]
    keeps = [_training_columns(y, config.train_negatives, config.seed + j) for j, (_, y, _, _) in enumerate(sources)]
    valid_scores, gain, split, rounds = np.zeros((n, k)), np.zeros(f), np.zeros(f), []
    test_scores = None if test is None else np.zeros(test.values.shape[:2])
    params, names, unl = _params(config), [_safe(nm) for nm in valid.names], np.flatnonzero(~labelled)
    for fold in tqdm(range(config.n_folds), desc="ranker folds", disable=not progress, leave=False):
        x, y = _fold_training_set(sources, keeps, folds, users, fold, config.row_folds)
        held = folds == fold
        model = _fit_fold(params, x, y, names, keeps[0].shape[1], config, (valid.values[held], labels[held]))
        valid_scores[held] = model.predict(scoring.values[held])
        if len(unl):
            valid_scores[unl] += model.predict(scoring.values[unl].reshape(-1, f)).reshape(-1, k) / config.n_folds
        if test is not None:
            test_scores += model.predict(test.values.reshape(-1, f)).reshape(-1, k) / config.n_folds
        gain += model.feature_importance("gain") / config.n_folds
        split += model.feature_importance("split") / config.n_folds
        rounds.append(model.best_iteration or model.current_iteration())
    importance = pd.DataFrame({"feature": valid.names, "gain": gain, "split": split})
    importance = importance.sort_values("gain", ascending=False, ignore_index=True)
    return RankerResult(valid_scores, test_scores, importance, folds, config, rounds)


def _safe(name: str) -> str:
    """LightGBM rejects some characters in feature names; keep them readable."""
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in name)
