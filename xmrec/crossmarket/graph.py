"""All markets as one user-item graph with global integer ids, and leakage-safe views of it.

Users belong to one market; items are shared. ``CrossMarketData`` indexes every user and item
seen in any file (training, qrels, run files) so that each market combination is a row mask of
one matrix. ``view(stage)`` returns the interactions a feature may see at that stage:

- ``"valid"``: every market's training interactions plus the valid_qrel of every market
  EXCEPT the target (the target's validation positives are the labels being predicted);
- ``"test"``: the same plus the target's valid_qrel (the test positives are never released).

Every scorer receives a view, never the raw markets, so validation features cannot see the
target's validation labels by construction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from xmrec.data.markets import Market

__all__ = ["VALID", "TEST", "STAGES", "CrossMarketData", "GraphView"]

VALID, TEST = "valid", "test"
STAGES = (VALID, TEST)


@dataclass
class CrossMarketData:
    """The markets of one experiment indexed together; ``target`` is the market being ranked."""

    target: str
    markets: dict[str, Market]
    user_ids: pd.Index  # global user index -> userId string
    item_ids: pd.Index  # global item index -> itemId string
    user_market: np.ndarray  # int [n_users] position of the user's market in ``market_names``
    market_names: tuple[str, ...]
    interactions: pd.DataFrame  # u, i (global ints), rating, market (code), qrel (bool)

    @classmethod
    def from_markets(cls, markets: Iterable[Market], target: str) -> CrossMarketData:
        """Index the markets; ``target`` must be one of them."""
        markets = {m.name: m for m in markets}
        if target not in markets:
            raise ValueError(f"target market {target!r} is not among the loaded markets {sorted(markets)}")
        names = tuple(sorted(markets))
        parts, user_parts, item_parts = [], [], []
        for code, name in enumerate(names):
            m = markets[name]
            frames = [(m.train, False)] + ([(m.valid_qrel, True)] if m.valid_qrel is not None else [])
            for df, is_qrel in frames:
                rating = df["rating"].to_numpy(float) if "rating" in df else np.ones(len(df))
                parts.append(
                    pd.DataFrame(
                        {
                            "user": df["userId"].to_numpy(),
                            "item": df["itemId"].to_numpy(),
                            "rating": rating,
                            "market": code,
                            "qrel": is_qrel,
                        }
                    )
                )
            user_parts.append(pd.DataFrame({"user": m.train["userId"].to_numpy(), "market": code}))
            for run in (m.valid_run, m.test_run, m.valid_qrel):
                if run is None:
                    continue
                user_parts.append(pd.DataFrame({"user": run["userId"].to_numpy(), "market": code}))
                if "items" in run:
                    item_parts.append(np.concatenate(run["items"].to_numpy()) if len(run) else np.array([]))
        inter = pd.concat(parts, ignore_index=True)
        users = pd.concat(user_parts, ignore_index=True).drop_duplicates()
        clash = users["user"].duplicated()
        if clash.any():
            raise ValueError(
                f"user {users['user'][clash].iat[0]} appears in two markets; XMRec users belong to one market"
            )
        user_ids = pd.Index(users["user"].to_numpy())
        item_ids = pd.Index(pd.unique(np.concatenate([inter["item"].to_numpy()] + item_parts)))
        inter = pd.DataFrame(
            {
                "u": user_ids.get_indexer(inter["user"]),
                "i": item_ids.get_indexer(inter["item"]),
                "rating": inter["rating"].to_numpy(),
                "market": inter["market"].to_numpy(),
                "qrel": inter["qrel"].to_numpy(),
            }
        )
        inter = inter.drop_duplicates(["u", "i"], keep="first").reset_index(drop=True)
        return cls(
            target=target,
            markets=markets,
            user_ids=user_ids,
            item_ids=item_ids,
            user_market=users["market"].to_numpy(np.int64),
            market_names=names,
            interactions=inter,
        )

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def sources(self) -> tuple[str, ...]:
        """Every market except the target."""
        return tuple(n for n in self.market_names if n != self.target)

    def market_code(self, name: str) -> int:
        try:
            return self.market_names.index(name)
        except ValueError:
            raise ValueError(f"unknown market {name!r}; loaded: {self.market_names}") from None

    def users_of(self, user_ids: Sequence[str]) -> np.ndarray:
        """Global indices of userId strings (error naming the first unknown one)."""
        idx = self.user_ids.get_indexer(pd.Index(user_ids))
        if (idx < 0).any():
            raise KeyError(f"unknown user {list(user_ids)[int(np.flatnonzero(idx < 0)[0])]!r}")
        return idx

    def items_of(self, item_ids) -> np.ndarray:
        """Global indices of itemId strings (any shape); unknown items raise KeyError."""
        arr = np.asarray(item_ids, dtype=object)
        idx = self.item_ids.get_indexer(pd.Index(arr.ravel()))
        if (idx < 0).any():
            raise KeyError(f"unknown item {arr.ravel()[int(np.flatnonzero(idx < 0)[0])]!r}")
        return idx.reshape(arr.shape)

    def view(self, stage: str, leak: bool = False, hide: np.ndarray | None = None) -> GraphView:
        """The interactions visible to features at ``stage`` (see the module docstring).

        ``hide``: row numbers of ``interactions`` to withhold as well (held-out training lists).
        ``leak=True`` shows the target's validation positives at the validation stage too: only
        for demonstrating what leakage does to validation figures, never for a real run.
        """
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
        inter = self.interactions
        visible = ~(inter["qrel"].to_numpy() & (inter["market"].to_numpy() == self.market_code(self.target)))
        if stage == TEST or leak:
            visible[:] = True
        if hide is not None:
            visible[np.asarray(hide)] = False
        seen = inter[visible]
        ratings = sp.csr_matrix(
            (seen["rating"].to_numpy(np.float64), (seen["u"].to_numpy(), seen["i"].to_numpy())),
            shape=(self.n_users, self.n_items),
        )
        return GraphView(stage=stage, data=self, ratings=ratings, visible=visible, leaky=leak and stage == VALID)


@dataclass(eq=False)
class GraphView:
    """Interactions visible at one stage as a users x items CSR matrix of ratings."""

    stage: str
    data: CrossMarketData
    ratings: sp.csr_matrix
    visible: np.ndarray  # bool [len(data.interactions)]: rows of the interaction table this view sees
    leaky: bool = False  # True only for a deliberately leaky validation view (demonstrations)
    _cache: dict = field(default_factory=dict, repr=False)

    @cached_property
    def binary(self) -> sp.csr_matrix:
        """1 where a user interacted with an item."""
        b = self.ratings.copy()
        b.data[:] = 1.0
        return b

    def user_mask(self, markets: Sequence[str] | None) -> np.ndarray:
        """Boolean [n_users]: users of the given markets (all markets for None)."""
        if markets is None:
            return np.ones(self.data.n_users, bool)
        codes = [self.data.market_code(m) for m in markets]
        return np.isin(self.data.user_market, codes)

    def restrict(self, markets: Sequence[str] | None, weighted: bool = False) -> sp.csr_matrix:
        """The binary (or rating) matrix with rows of users outside ``markets`` emptied (cached)."""
        key = ("restrict", None if markets is None else tuple(sorted(markets)), weighted)
        if key not in self._cache:
            base = self.ratings if weighted else self.binary
            self._cache[key] = sp.diags(self.user_mask(markets).astype(np.float64)) @ base
            self._cache[key].eliminate_zeros()
        return self._cache[key]

    def histories(self, users: np.ndarray) -> sp.csr_matrix:
        """Binary rows of the given users: their visible history (any market they belong to)."""
        return self.binary[np.asarray(users)]

    def sequences(self, markets: Sequence[str] | None = None) -> list[list[int]]:
        """Each visible user's items in file order (train rows, then qrel), users of ``markets``."""
        inter = self.data.interactions[self.visible]
        inter = inter[self.user_mask(markets)[inter["u"].to_numpy()]]
        return inter.groupby("u", sort=True)["i"].agg(list).tolist()

    def item_counts(self, markets: Sequence[str] | None = None) -> np.ndarray:
        """Interactions per item among users of ``markets``."""
        return np.asarray(self.restrict(markets).sum(axis=0)).ravel()
