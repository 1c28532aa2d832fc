"""Seeded multi-market interaction data with categories, timestamps and a controllable shift.

For tests, teaching and scale (10M interactions in seconds). Every draw comes from one
``numpy.random.Generator(seed)`` in a fixed order: same arguments, same frame.

The model, one market at a time (``m`` = 0 .. n_markets-1):

- **Catalogue** (shared): ``n_items`` items; each has a primary category (Zipf-like category
  sizes, every category at least one item) plus 0-2 distinct extra ones, 1-3 in all.
- **Users**: each belongs to one market, market ``m`` with probability proportional to
  ``1/(m+1)`` (a large first market and smaller ones, the source/target setting of XMRec).
  Activity is ``min_user_interactions`` plus a lognormal-weighted share of the rest (heavy
  tail; with the defaults about 95% of users have more than 10 interactions).
- **Shift**: item popularity ``pop_m = (1-shift) * zipf[shared ranking] + shift * zipf[own
  ranking of market m]``; category mix ``mix_m = (1-shift) * shared + shift * own``, both mixes
  Dirichlet draws. ``shift=0``: every market has the same distributions; ``shift=1``: each its
  own popular items and category mix.
- **Interactions**: a user has a favourite category drawn from ``mix_m``; each interaction takes
  it with probability ``user_focus``, otherwise a category from ``mix_m``, then an item of that
  (primary) category with probability proportional to ``pop_m``. Repeats of a (user, item)
  pair can occur, as in logged data.
- **Timestamps**: a start within a year, then gaps of ``1 + Exponential(mean_gap_s)`` seconds:
  strictly increasing per user. Rows come grouped by user, in time order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["SyntheticMarkets", "generate_interactions", "MARKET_COLUMN"]

MARKET_COLUMN = "market"
START_TIME = 1_600_000_000  # 2020-09-13, seconds
_YEAR_S = 365 * 24 * 3600


@dataclass(frozen=True)
class SyntheticMarkets:
    """The compact form of a synthetic dataset: no per-row category lists.

    ``interactions`` has ``user_id, item_id, timestamp, market``; the categories of item ``i``
    are row ``i - 1`` of ``item_categories`` (``item_id``, ``cate_id`` list). The true
    distributions behind the draws come along for teaching and checks.
    """

    interactions: pd.DataFrame
    item_categories: pd.DataFrame  # item_id 1..n_items, cate_id (list of str, primary first)
    item_popularity: np.ndarray  # float64 [n_markets, n_items]: pop_m, each row sums to 1
    category_mix: np.ndarray  # float64 [n_markets, n_categories]: mix_m over primary categories

    def to_raw(self) -> pd.DataFrame:
        """The raw format: ``RAW_COLUMNS + (market,)``, ``cate_id`` lists shared per item."""
        raw = self.interactions.copy(deep=False)  # copy-on-write: the int columns are not copied
        lists = self.item_categories["cate_id"].to_numpy()
        raw.insert(2, "cate_id", lists[raw["item_id"].to_numpy() - 1])
        return raw


def generate_interactions(
    n_interactions: int = 100_000,
    n_users: int | None = None,
    n_items: int | None = None,
    n_categories: int = 20,
    n_markets: int = 3,
    shift: float = 0.5,
    seed: int = 2022,
    *,
    popularity_exponent: float = 0.8,
    category_concentration: float = 1.0,
    user_focus: float = 0.3,
    min_user_interactions: int = 5,
    activity_sigma: float = 1.0,
    mean_gap_s: float = 3600.0,
    as_lists: bool = True,
) -> pd.DataFrame | SyntheticMarkets:
    """Generate ``n_interactions`` rows of multi-market data (see the module docstring).

    n_users: default ``n_interactions // 50``; n_items: default ``n_interactions // 40``
    (at least ``n_categories``). popularity_exponent: Zipf exponent of item popularity.
    category_concentration: Dirichlet concentration of the category mixes (smaller = peakier).
    user_focus: share of a user's interactions in their favourite category. min_user_interactions:
    the floor of every user's activity (lowered when n_interactions is too small for it).
    activity_sigma: lognormal sigma of user activity (larger = heavier tail).

    Returns, with ``as_lists=True``, a DataFrame with ``RAW_COLUMNS + ("market",)``:
    ``user_id``/``item_id`` int64 from 1, ``cate_id`` a list of str (one shared list object per
    item: at 10M rows map categories per item, e.g. via ``drop_duplicates("item_id")``, rather than
    exploding every row), ``timestamp`` int64, ``market`` categorical ``"m0"``, ``"m1"``, ...
    With ``as_lists=False``, a :class:`SyntheticMarkets` (compact: the item->categories table apart).
    """
    n_users = max(1, n_interactions // 50) if n_users is None else n_users
    n_items = max(n_categories, n_interactions // 40) if n_items is None else n_items
    _check_args(n_interactions, n_users, n_items, n_categories, n_markets, shift, user_focus)
    rng = np.random.default_rng(seed)  # the draws below come in a fixed order: keep it

    primary, cate_ptr, cate_idx = _catalogue(rng, n_items, n_categories)
    popularity = _mix(
        rng.permutation(_zipf(n_items, popularity_exponent)),
        [rng.permutation(_zipf(n_items, popularity_exponent)) for _ in range(n_markets)],
        shift,
    )
    category_mix = _mix(
        rng.dirichlet(np.full(n_categories, category_concentration)),
        list(rng.dirichlet(np.full(n_categories, category_concentration), size=n_markets)),
        shift,
    )
    market_share = 1.0 / np.arange(1, n_markets + 1)
    user_market = rng.choice(n_markets, size=n_users, p=market_share / market_share.sum())
    counts = _activity(rng, n_interactions, n_users, min_user_interactions, activity_sigma)
    row_user = np.repeat(np.arange(n_users), counts)
    items = _draw_items(rng, row_user, user_market, primary, popularity, category_mix, user_focus)
    timestamp = _timestamps(rng, counts, row_user, mean_gap_s)

    interactions = pd.DataFrame(
        {
            "user_id": row_user + 1,
            "item_id": items + 1,
            "timestamp": timestamp,
            MARKET_COLUMN: pd.Categorical.from_codes(
                user_market[row_user], categories=_labels("m", n_markets, pad=False)
            ),
        }
    )
    data = SyntheticMarkets(
        interactions=interactions,
        item_categories=_item_categories(cate_ptr, cate_idx, n_categories),
        item_popularity=popularity,
        category_mix=category_mix,
    )
    return data.to_raw() if as_lists else data


def _draw_items(
    rng: np.random.Generator,
    row_user: np.ndarray,
    user_market: np.ndarray,
    primary: np.ndarray,
    popularity: np.ndarray,
    category_mix: np.ndarray,
    user_focus: float,
) -> np.ndarray:
    """The item (0-based) of every row, market by market: a category (the user's favourite with
    probability ``user_focus``, else one drawn from the market's mix), then an item of it."""
    n_users, (n_markets, n_categories) = len(user_market), category_mix.shape
    row_market = user_market[row_user]
    items = np.empty(len(row_user), dtype=np.int64)
    by_category = np.argsort(primary, kind="stable")
    seg_bounds = np.searchsorted(primary[by_category], np.arange(n_categories + 1))
    for m in range(n_markets):
        rows = np.flatnonzero(row_market == m)
        users_m = np.flatnonzero(user_market == m)
        favourite = np.zeros(n_users, dtype=np.int64)
        favourite[users_m] = rng.choice(n_categories, size=len(users_m), p=category_mix[m])
        cats = np.where(
            rng.random(len(rows)) < user_focus,
            favourite[row_user[rows]],
            rng.choice(n_categories, size=len(rows), p=category_mix[m]),
        )
        items[rows] = _draw_within_category(rng, cats, popularity[m][by_category], by_category, seg_bounds)
    return items


def _timestamps(rng: np.random.Generator, counts: np.ndarray, row_user: np.ndarray, mean_gap_s: float) -> np.ndarray:
    """Per user a start within a year, then gaps of ``1 + Exponential(mean_gap_s)`` seconds."""
    gaps = 1 + np.floor(rng.exponential(mean_gap_s, size=len(row_user))).astype(np.int64)
    elapsed = np.cumsum(gaps)
    first_row = np.concatenate([[0], np.cumsum(counts)[:-1]])  # every user has at least one row
    before = elapsed[first_row] - gaps[first_row]
    start = START_TIME + rng.integers(0, _YEAR_S, size=len(counts))
    return start[row_user] + elapsed - before[row_user]


def _item_categories(cate_ptr: np.ndarray, cate_idx: np.ndarray, n_categories: int) -> pd.DataFrame:
    """The ``item_id, cate_id`` table: ids from 1, a list of labels each (primary first)."""
    labels = _labels("c", n_categories)
    n_items = len(cate_ptr) - 1
    item_lists = np.empty(n_items, dtype=object)
    for i in range(n_items):
        item_lists[i] = [labels[c] for c in cate_idx[cate_ptr[i] : cate_ptr[i + 1]]]
    return pd.DataFrame({"item_id": np.arange(1, n_items + 1), "cate_id": item_lists})


def _check_args(n_interactions, n_users, n_items, n_categories, n_markets, shift, user_focus) -> None:
    if n_interactions < 1 or n_markets < 1 or n_categories < 1:
        raise ValueError("n_interactions, n_markets and n_categories must be at least 1")
    if not 1 <= n_users <= n_interactions:
        raise ValueError(f"n_users={n_users} must be between 1 and n_interactions={n_interactions}")
    if n_items < n_categories:
        raise ValueError(f"n_items={n_items} must be at least n_categories={n_categories}")
    if not (0.0 <= shift <= 1.0 and 0.0 <= user_focus <= 1.0):
        raise ValueError(f"shift={shift} and user_focus={user_focus} must lie in [0, 1]")


def _zipf(n: int, exponent: float) -> np.ndarray:
    """Zipf weights of ranks 1..n, normalised."""
    w = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    return w / w.sum()


def _mix(shared: np.ndarray, own: list[np.ndarray], shift: float) -> np.ndarray:
    """Per-market distributions ``(1-shift) * shared + shift * own[m]``, rows normalised."""
    out = (1.0 - shift) * shared[None, :] + shift * np.stack(own)
    return out / out.sum(axis=1, keepdims=True)


def _catalogue(rng: np.random.Generator, n_items: int, n_categories: int):
    """Primary category per item and the CSR item->categories (primary first, 1-3 distinct)."""
    size_weights = _zipf(n_categories, 1.0)
    primary = rng.choice(n_categories, size=n_items, p=size_weights)
    primary[rng.permutation(n_items)[:n_categories]] = np.arange(n_categories)  # none empty
    n_extra = np.minimum(rng.choice(3, size=n_items, p=[0.5, 0.3, 0.2]), n_categories - 1)
    # extra 1: any category but the primary; extra 2: any but both (skip-the-taken trick)
    e1 = (primary + 1 + rng.integers(0, max(n_categories - 1, 1), size=n_items)) % n_categories
    lo, hi = np.minimum(primary, e1), np.maximum(primary, e1)
    e2 = rng.integers(0, max(n_categories - 2, 1), size=n_items)
    e2 = e2 + (e2 >= lo)
    e2 = e2 + (e2 >= hi)
    table = np.stack([primary, e1, e2], axis=1)
    keep = np.arange(3)[None, :] <= n_extra[:, None]
    cate_ptr = np.concatenate([[0], np.cumsum(keep.sum(axis=1))])
    return primary, cate_ptr, table[keep]


def _activity(rng: np.random.Generator, n_interactions: int, n_users: int, floor: int, sigma: float):
    """Interactions per user: a floor plus a lognormal-weighted multinomial share; sums exactly."""
    floor = min(floor, n_interactions // n_users)
    weights = rng.lognormal(0.0, sigma, size=n_users)
    return floor + rng.multinomial(n_interactions - floor * n_users, weights / weights.sum())


def _draw_within_category(
    rng, cats: np.ndarray, weights_sorted: np.ndarray, by_category: np.ndarray, seg_bounds: np.ndarray
) -> np.ndarray:
    """For each row, an item of category ``cats[row]`` drawn proportionally to its weight.

    Items are laid out by category (``by_category``), so a category is one segment of the
    cumulative weights: one uniform and one binary search per row.
    """
    cum = np.cumsum(weights_sorted)
    seg_start = np.concatenate([[0.0], cum])[seg_bounds[:-1]]
    seg_total = np.concatenate([[0.0], cum])[seg_bounds[1:]] - seg_start
    target = seg_start[cats] + rng.random(len(cats)) * seg_total[cats]
    pos = np.searchsorted(cum, target, side="right")
    pos = np.clip(pos, seg_bounds[cats], seg_bounds[cats + 1] - 1)  # float round-off at the edges
    return by_category[pos]


def _labels(prefix: str, n: int, pad: bool = True) -> list[str]:
    width = len(str(n - 1)) if pad else 0
    return [f"{prefix}{k:0{width}d}" for k in range(n)]
