"""Extra labelled lists for the ranker, held out from the target's own training interactions.

The target's validation lists are its only labelled lists (2,697 on t1), too few for a ranker
with dozens of features. Each round holds out one random visible target interaction of every
user who has a validation list (and at least ``min_history`` visible target interactions),
among the interactions with an item of the validation lists' item pool, makes it the positive
of a new list whose ``n - 1`` negatives are drawn uniformly from that pool (the official lists
sample from such a pool, and their positives belong to it), never from the user's history, and scores the list on the validation view minus the held-out interactions.
Rounds use different seeds. These lists only ever train the ranker; they see no validation
positive (they derive from the validation view), so the out-of-fold figures stay honest.
On t1 three rounds lift the ranker by about 0.014 NDCG@10.
"""

from __future__ import annotations

import numpy as np

from .candidates import Candidates
from .graph import VALID, CrossMarketData, GraphView

__all__ = ["HELDOUT", "heldout_lists"]

HELDOUT = "heldout"


def heldout_lists(
    data: CrossMarketData, valid: Candidates, rounds: int, seed: int, min_history: int = 3
) -> list[tuple[GraphView, Candidates]]:
    """``rounds`` pairs of (view without the held-out interactions, their labelled lists)."""
    base = data.view(VALID)
    inter = data.interactions
    target_code = data.market_code(data.target)
    rows = np.flatnonzero(
        base.visible & (inter["market"].to_numpy() == target_code) & np.isin(inter["u"].to_numpy(), valid.users)
    )
    users_of_rows = inter["u"].to_numpy()[rows]
    counts = np.bincount(users_of_rows, minlength=data.n_users)
    rows = rows[counts[users_of_rows] >= min_history]
    pool = np.unique(valid.items)
    rows = rows[np.isin(inter["i"].to_numpy()[rows], pool)]  # positives from the pool, as in the real lists
    k = valid.items.shape[1]
    history = base.binary
    out = []
    for r in range(rounds):
        rng = np.random.default_rng([seed, 7919, r])
        order = rows[np.lexsort((rng.random(len(rows)), inter["u"].to_numpy()[rows]))]
        users = inter["u"].to_numpy()[order]
        first = np.r_[True, users[1:] != users[:-1]]
        held = order[first]  # one random interaction per user
        users, positives = users[first], inter["i"].to_numpy()[held]
        if len(pool) < k:
            raise ValueError(f"{data.target}: the candidate pool has {len(pool)} items, fewer than {k}")
        items = np.empty((len(users), k), np.int64)
        slot = rng.integers(k, size=len(users))
        for n, (u, p) in enumerate(zip(users, positives)):
            banned = set(history.indices[history.indptr[u] : history.indptr[u + 1]].tolist())
            draw = pool[rng.choice(len(pool), size=min(len(pool), k - 1 + len(banned)), replace=False)]
            negs = [x for x in draw if x not in banned and x != p][: k - 1]
            if len(negs) < k - 1:
                raise ValueError(f"{data.target}: user {data.user_ids[u]} leaves too few pool items for a list")
            items[n] = np.insert(np.array(negs), slot[n], p)
        cands = Candidates(stage=VALID, kind=HELDOUT, users=users, items=items, positive=slot)
        out.append((data.view(VALID, hide=held), cands))
    return out
