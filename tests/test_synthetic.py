"""The synthetic multi-market generator: shape, invariants, determinism, and a measurable shift."""

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon

from xmrec.data.sources import RAW_COLUMNS
from xmrec.data.synthetic import SyntheticMarkets, generate_interactions


@pytest.fixture(scope="module")
def big() -> pd.DataFrame:
    return generate_interactions(200_000, n_markets=3, seed=7)


def test_200k_rows_in_the_raw_format_plus_market(big):
    assert len(big) == 200_000
    assert list(big.columns) == [*RAW_COLUMNS, "market"]
    for col in ("user_id", "item_id", "timestamp"):
        assert big[col].dtype == np.int64
    assert big["user_id"].min() >= 1 and big["item_id"].min() >= 1
    assert set(big["market"].astype(str)) == {"m0", "m1", "m2"}


def test_users_items_and_time_invariants(big):
    assert (big.groupby("user_id")["market"].nunique() == 1).all()
    steps = big.groupby("user_id")["timestamp"].diff().dropna()
    assert (steps > 0).all()
    per_item = big.drop_duplicates("item_id")["cate_id"]
    n_cats = per_item.map(len)
    assert n_cats.between(1, 3).all() and set(n_cats) == {1, 2, 3}
    assert (per_item.map(lambda c: len(set(c))) == n_cats).all()  # distinct labels
    # one item always carries the same categories
    assert big.groupby("item_id")["cate_id"].agg(lambda s: len({tuple(c) for c in s})).max() == 1


def test_activity_is_heavy_tailed_and_mostly_passes_the_filter(big):
    activity = big.groupby("user_id").size()
    assert (activity > 10).mean() > 0.85
    assert activity.max() > 5 * activity.median()


def test_same_seed_same_frame_other_seed_differs():
    a = generate_interactions(20_000, seed=3)
    pd.testing.assert_frame_equal(a, generate_interactions(20_000, seed=3))
    b = generate_interactions(20_000, seed=4)
    assert not a["item_id"].equals(b["item_id"])


def test_compact_form_matches_the_list_form():
    compact = generate_interactions(20_000, seed=5, as_lists=False)
    assert isinstance(compact, SyntheticMarkets)
    assert "cate_id" not in compact.interactions.columns
    pd.testing.assert_frame_equal(compact.to_raw(), generate_interactions(20_000, seed=5))
    np.testing.assert_allclose(compact.item_popularity.sum(axis=1), 1.0)
    np.testing.assert_allclose(compact.category_mix.sum(axis=1), 1.0)


def _market_distributions(df: pd.DataFrame):
    """Per market: item histogram and primary-category histogram (observed, not the generator's)."""
    n_items = df["item_id"].max() + 1
    primary = df["cate_id"].map(lambda c: c[0])
    labels = sorted(primary.unique())
    items, cats = [], []
    for _, g in df.groupby("market", observed=True):
        items.append(np.bincount(g["item_id"], minlength=n_items))
        cats.append(primary[g.index].value_counts().reindex(labels, fill_value=0).to_numpy())
    return items, cats


def _mean_pairwise_js(hists) -> float:
    return float(
        np.mean(
            [
                jensenshannon(hists[a], hists[b], base=2) ** 2
                for a in range(len(hists))
                for b in range(a + 1, len(hists))
            ]
        )
    )


def test_shift_moves_market_popularity_and_category_mix_apart():
    js = {}
    for shift in (0.0, 0.5, 1.0):
        items, cats = _market_distributions(generate_interactions(60_000, shift=shift, seed=11))
        js[shift] = (_mean_pairwise_js(items), _mean_pairwise_js(cats))
    for k in (0, 1):  # item popularity, category mix
        assert js[0.0][k] < js[0.5][k] < js[1.0][k]
        assert js[1.0][k] > 5 * js[0.0][k]


def test_shift_zero_shares_one_true_distribution():
    same = generate_interactions(5_000, shift=0.0, seed=2, as_lists=False)
    np.testing.assert_allclose(same.item_popularity, same.item_popularity[[0]].repeat(3, axis=0))
    np.testing.assert_allclose(same.category_mix, same.category_mix[[0]].repeat(3, axis=0))
    apart = generate_interactions(5_000, shift=1.0, seed=2, as_lists=False)
    assert not np.allclose(apart.item_popularity[0], apart.item_popularity[1])


def test_full_focus_keeps_each_user_in_one_category():
    df = generate_interactions(10_000, user_focus=1.0, seed=1)
    assert (df["cate_id"].map(lambda c: c[0]).groupby(df["user_id"]).nunique() == 1).all()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"shift": 1.5},
        {"n_items": 5, "n_categories": 20},
        {"n_users": 0},
        {"n_interactions": 0},
    ],
)
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        generate_interactions(**{"n_interactions": 1000, **kwargs})
