"""Turn synthetic multi-market interactions into XMRec-style markets (no real data needed).

Input: a frame with ``user_id, item_id, timestamp, market`` (``xmrec.data.synthetic.
generate_interactions``; ``cate_id`` is ignored). Per market, each user's interactions are
sorted by time and de-duplicated (first occurrence kept); a user with at least three distinct
items gives the last one as the hidden test positive and the one before as ``valid_qrel``; the
rest is ``train`` (rating 1). ``valid_run`` and ``test_run`` are sampled like the official ones
(``candidates.sample_lists``: the positive plus uniform negatives from the market's training
items, none from the user's history), seeded. Ids follow the XMRec style: ``<market>U<user>`` and
``P<item>``. The test positives are returned apart, as the real ones were never released.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from xmrec.data.markets import Market

from .candidates import sample_lists

__all__ = ["markets_from_interactions"]

REQUIRED = ("user_id", "item_id", "timestamp", "market")


def markets_from_interactions(
    frame: pd.DataFrame, n_candidates: int = 100, seed: int = 2022
) -> tuple[list[Market], pd.DataFrame]:
    """Markets built from ``frame`` (module docstring) and the hidden test positives
    (``market, userId, itemId``)."""
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(f"synthetic interactions lack columns {missing}; need {list(REQUIRED)}")
    if frame.empty:
        raise ValueError("synthetic interactions are empty")
    rng = np.random.default_rng(seed)
    markets, hidden = [], []
    for name in sorted(frame["market"].astype(str).unique()):
        df = frame[frame["market"].astype(str) == name]
        df = df.sort_values(["user_id", "timestamp"], kind="stable").drop_duplicates(["user_id", "item_id"])
        df = pd.DataFrame({"userId": f"{name}U" + df["user_id"].astype(str), "itemId": "P" + df["item_id"].astype(str)})
        n = df.groupby("userId", sort=False)["itemId"].transform("size").to_numpy()
        pos = df.groupby("userId", sort=False).cumcount().to_numpy()
        eligible = n >= 3
        test = df[eligible & (pos == n - 1)]
        valid = df[eligible & (pos == n - 2)]
        train = df[~(eligible & (pos >= n - 2))].assign(rating=1.0).reset_index(drop=True)
        pool = train["itemId"].unique()
        seen = train.groupby("userId")["itemId"].agg(set)
        valid_run = sample_lists(
            pool, seen, list(zip(valid["userId"], valid["itemId"])), n_candidates, rng, f"synthetic market {name!r}"
        )
        seen_test = {u: seen.get(u, set()) | {v} for u, v in zip(valid["userId"], valid["itemId"])}
        test_run = sample_lists(
            pool, seen_test, list(zip(test["userId"], test["itemId"])), n_candidates, rng, f"synthetic market {name!r}"
        )
        markets.append(
            Market(
                name=name,
                train=train,
                train_raw=train,
                train_5core=None,
                valid_qrel=valid.reset_index(drop=True),
                valid_run=valid_run,
                test_run=test_run,
                run_kind="sampled",
            )
        )
        hidden.append(test.assign(market=name)[["market", "userId", "itemId"]])
    return markets, pd.concat(hidden, ignore_index=True)
