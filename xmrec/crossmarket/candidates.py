"""Candidate lists to rank: the official run files, a given run file, or seeded samples.

A market without an official ``valid_run.tsv`` (t2 and the sources in the public copy) gets
sampled lists, built the way the official ones look: for each user of ``valid_qrel``, the
positive plus ``n - 1`` negatives drawn uniformly without replacement (numpy Generator, seeded)
from the items of that market's training interactions, never an item of the user's own
training history nor the positive. Every result table carries the candidate ``kind``
(``official``, ``given`` or ``sampled``; ``heldout`` for the ranker's extra training lists) so sampled figures are never mistaken for official ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from xmrec.data.markets import RUN_LENGTH, Market

from .graph import CrossMarketData

__all__ = ["Candidates", "sample_lists", "sample_run", "with_runs", "candidates_for"]

OFFICIAL, GIVEN, SAMPLED = "official", "given", "sampled"


@dataclass
class Candidates:
    """Candidate lists of one stage; row k is user ``users[k]`` with items ``items[k]``."""

    stage: str  # "valid" or "test": which graph view scores them
    kind: str  # "official", "given" or "sampled"
    users: np.ndarray  # int [n] global user indices
    items: np.ndarray  # int [n, K] global item indices
    positive: np.ndarray  # int [n] column of the known positive, -1 when unlabelled

    def __len__(self) -> int:
        return len(self.users)

    @property
    def labelled(self) -> np.ndarray:
        """Boolean [n]: lists whose positive is known."""
        return self.positive >= 0

    def labels(self) -> np.ndarray:
        """Float [n, K]: 1 at each known positive, else 0."""
        y = np.zeros(self.items.shape)
        rows = np.flatnonzero(self.labelled)
        y[rows, self.positive[rows]] = 1.0
        return y


def sample_lists(
    pool: np.ndarray,
    seen: Mapping[str, set],
    positives: Sequence[tuple[str, str]],
    n_candidates: int,
    rng: np.random.Generator,
    what: str = "market",
) -> pd.DataFrame:
    """``userId, items`` lists: each positive plus ``n_candidates - 1`` distinct negatives drawn
    uniformly from ``pool``, none of them in the user's ``seen`` set; the positive at a random slot."""
    in_pool = set(pool)
    need = n_candidates - 1
    rows = []
    for user, pos in positives:
        banned = seen.get(user, set()) | {pos}
        size = need + len(banned & in_pool)  # enough distinct draws to keep ``need`` after rejection
        if size > len(pool):
            raise ValueError(
                f"{what}: user {user} leaves {len(pool) - size + need} items to sample "
                f"{need} negatives from; lower n_candidates"
            )
        draw = pool[rng.choice(len(pool), size=size, replace=False)]
        items = [x for x in draw if x not in banned][:need]
        items.insert(int(rng.integers(n_candidates)), pos)
        rows.append((user, items))
    return pd.DataFrame(rows, columns=["userId", "items"])


def sample_run(market: Market, n_candidates: int = RUN_LENGTH, seed: int = 2022) -> pd.DataFrame:
    """Sampled validation lists for the users of ``market.valid_qrel`` (see the module docstring)."""
    if market.valid_qrel is None:
        raise ValueError(f"market {market.name!r} has no valid_qrel: cannot build labelled candidate lists")
    seen = market.train.groupby("userId")["itemId"].agg(set)
    return sample_lists(
        market.train["itemId"].unique(),
        seen,
        list(zip(market.valid_qrel["userId"], market.valid_qrel["itemId"])),
        n_candidates,
        np.random.default_rng(seed),
        f"market {market.name!r}",
    )


def with_runs(
    market: Market,
    valid_run: pd.DataFrame | None = None,
    test_run: pd.DataFrame | None = None,
    n_candidates: int = RUN_LENGTH,
    seed: int = 2022,
) -> tuple[Market, dict[str, str]]:
    """The market with its runs overridden (given) or sampled when absent, and each stage's kind."""
    kinds = {
        "valid": GIVEN if valid_run is not None else market.run_kind,
        "test": GIVEN if test_run is not None else market.run_kind,
    }
    if valid_run is None:
        valid_run = market.valid_run
        if valid_run is None:
            valid_run, kinds["valid"] = sample_run(market, n_candidates, seed), SAMPLED
    if test_run is None:
        test_run = market.test_run
    if kinds["valid"] != SAMPLED:
        check_user_sets(market.name, valid_run, market.valid_qrel, kinds["valid"])
    return replace(market, valid_run=valid_run, test_run=test_run), kinds


def check_user_sets(market: str, run: pd.DataFrame, qrel: pd.DataFrame | None, kind: str) -> None:
    """Refuse a validation run whose users are not exactly valid_qrel's: a user without a list would
    leave the figure over fewer users than it claims, and a list without a label would train the
    ranker on lists nobody can score."""
    if qrel is None:
        return
    run_name = f"the {kind} valid_run"
    users = {run_name: set(run["userId"]), "valid_qrel": set(qrel["userId"])}
    for there, here in (("valid_qrel", run_name), (run_name, "valid_qrel")):
        missing = users[there] - users[here]
        if missing:
            raise ValueError(
                f"market {market!r}: {len(missing)} of the {len(users[there])} users of {there} are not in {here} "
                f"(first: {sorted(missing)[0]}); the two files must list the same users"
            )


def candidates_for(data: CrossMarketData, stage: str, kind: str) -> Candidates | None:
    """The target's candidate lists for ``stage`` (valid: labelled from valid_qrel; test: unlabelled)."""
    market = data.markets[data.target]
    run = market.valid_run if stage == "valid" else market.test_run
    if run is None:
        return None
    items_lists = run["items"].tolist()
    width = {len(x) for x in items_lists}
    if len(width) != 1:
        raise ValueError(f"{data.target} {stage} run: candidate lists of different lengths {sorted(width)}")
    items = data.items_of(np.array(items_lists, dtype=object))
    users = data.users_of(run["userId"].tolist())
    positive = np.full(len(run), -1, dtype=np.int64)
    if stage == "valid" and market.valid_qrel is not None:
        pos_of = dict(zip(market.valid_qrel["userId"], market.valid_qrel["itemId"]))
        missing = []
        for k, (user, cands) in enumerate(zip(run["userId"], items_lists)):
            p = pos_of.get(user)
            if p is not None and p in cands:
                positive[k] = cands.index(p)
            elif p is not None:
                missing.append((user, p))
        if missing:  # dropping these users would print a figure over the lists that happen to be right
            raise ValueError(
                f"{data.target} valid_run: {len(missing)} of {len(run)} users' valid_qrel positive is "
                f"not in their candidate list (first: user {missing[0][0]}, item {missing[0][1]}); "
                "every labelled list must contain its positive"
            )
    return Candidates(stage=stage, kind=kind, users=users, items=items, positive=positive)
