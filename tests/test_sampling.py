"""Negative samplers: invariants over every row, mixer structure, pools, seeds, caps.

Real data: MovieLens-100K and the XMRec t1 market (processed once per module).
"""

from __future__ import annotations

import copy
from dataclasses import replace
from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from xmrec.config import DataConfig, SamplerConfig, markets_dir
from xmrec.data.process import process_interactions
from xmrec.data.sampling import CategoryPools, sample_negatives
from xmrec.data.store import SPLITS


def sampled(processed, **cfg):
    """A deep copy of a processed dataset with negatives drawn by ``SamplerConfig(**cfg)``."""
    return sample_negatives(copy.deepcopy(processed), SamplerConfig(**cfg))


def membership(ds) -> np.ndarray:
    """Boolean [n_items + 1, n_cates + 1]: item i belongs to category c."""
    m = np.zeros((ds.n_items + 1, ds.n_cates + 1), bool)
    owner = np.repeat(np.arange(ds.n_items + 1), np.diff(ds.item_cate_ptr))
    m[owner, ds.item_cate_idx] = True
    return m


def check_rows(ds, n_neg: int):
    """Every row of every split: n_neg distinct valid items, never the target, never in the history."""
    for name in SPLITS:
        s = ds.split(name)
        neg = s.neg_items
        assert neg.shape == (len(s), n_neg), name
        assert ((neg >= 1) & (neg <= ds.n_items)).all(), name
        srt = np.sort(neg, axis=1)
        assert (srt[:, 1:] != srt[:, :-1]).all(), f"{name}: a negative repeats within a list"
        assert (neg != s.item[:, None]).all(), f"{name}: a negative equals the target"
        in_hist = (neg[:, :, None] == s.item_seq[:, None, :]).any(axis=2)
        assert not in_hist.any(), f"{name}: a negative is in the history"


def check_mixer_rows(ds, max_extra: int):
    """Every row: a set of at most 1 + max_extra categories holding the anchor covers all negatives."""
    member = membership(ds)
    cats = np.arange(1, ds.n_cates + 1)
    for name in SPLITS:
        s = ds.split(name)
        assert ((s.neg_n_cates >= 1) & (s.neg_n_cates <= 1 + max_extra)).all()
        assert set(np.unique(s.neg_pool)) <= {0, 1}
        neg_member = member[s.neg_items]  # [n, n_neg, n_cates + 1]
        covered = np.zeros(len(s), bool)
        for k in range(max_extra + 1):
            for extra in combinations(cats, k):
                sel = np.zeros((len(s), ds.n_cates + 1), bool)
                sel[np.arange(len(s)), s.cate] = True
                sel[:, list(extra)] = True
                ok = (neg_member & sel[:, None, :]).any(axis=2).all(axis=1)
                covered |= ok
        assert covered.all(), f"{name}: {int((~covered).sum())} lists use over {1 + max_extra} categories"
        # a list that used a single category drew it all from its anchor
        one = s.neg_n_cates == 1
        assert member[s.neg_items[one], s.cate[one, None]].all()


def mean_pop(ds, rows_mask) -> float:
    return float(ds.item_pop[ds.train.neg_items[rows_mask]].mean())


# ------------------------------------------------------------------------------------------------
# MovieLens-100K
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ml100k_processed():
    from xmrec.data.sources import load_movielens

    return process_interactions(load_movielens("ml-100k"), DataConfig(), name="ml-100k").dataset


@pytest.fixture(scope="module")
def ml100k_mixer(ml100k_processed):
    return sampled(ml100k_processed)


def test_mixer_rows_are_valid_on_ml100k(ml100k_mixer):
    check_rows(ml100k_mixer, 19)
    check_mixer_rows(ml100k_mixer, 2)
    counts = np.bincount(ml100k_mixer.train.neg_n_cates, minlength=4)[1:]
    assert (counts > 0.1 * len(ml100k_mixer.train)).all()  # 1, 2 and 3 categories all occur


def test_mixer_pools_differ_in_popularity(ml100k_mixer):
    ds = ml100k_mixer
    pop = ds.train.neg_pool == 1
    n = len(pop)
    assert abs(pop.mean() - 0.5) < 4 * np.sqrt(0.25 / n)  # a fair coin per list
    assert mean_pop(ds, pop) > 1.5 * mean_pop(ds, ~pop)


def test_same_seed_same_negatives_other_seed_differs(ml100k_processed, ml100k_mixer):
    again = sampled(ml100k_processed)
    other = sampled(ml100k_processed, seed=7)
    for name in SPLITS:
        a, b, c = ml100k_mixer.split(name), again.split(name), other.split(name)
        assert np.array_equal(a.neg_items, b.neg_items) and np.array_equal(a.neg_pool, b.neg_pool)
        assert np.array_equal(a.neg_n_cates, b.neg_n_cates)
        assert (a.neg_items != c.neg_items).mean() > 0.5


@pytest.mark.parametrize("kind", ["uniform", "popularity", "category"])
def test_contrast_samplers_on_ml100k(ml100k_processed, ml100k_mixer, kind):
    ds = sampled(ml100k_processed, kind=kind)
    check_rows(ds, 19)
    member = membership(ds)
    all_rows = np.ones(len(ds.train), bool)
    if kind == "category":
        assert member[ds.train.neg_items, ds.train.cate[:, None]].all()
        assert (ds.train.neg_n_cates == 1).all()
    else:
        # whole-catalogue samplers reach categories other than the anchor
        assert not member[ds.train.neg_items, ds.train.cate[:, None]].all()
    if kind == "popularity":
        uniform = sampled(ml100k_processed, kind="uniform")
        assert (ds.train.neg_pool == 1).all()
        assert mean_pop(ds, all_rows) > 2 * mean_pop(uniform, all_rows)
        assert (ds.item_pop[ds.train.neg_items] > 0).all()  # weight 0 is never drawn


def test_shift_samplers_on_ml100k(ml100k_processed):
    """The two test-only samplers: rare items most likely, or only items outside the anchor category."""
    unpop = sampled(ml100k_processed, kind="unpopular")
    other = sampled(ml100k_processed, kind="other-category")
    uniform = sampled(ml100k_processed, kind="uniform")
    for ds in (unpop, other):
        check_rows(ds, 19)
    all_rows = np.ones(len(uniform.train), bool)
    assert mean_pop(unpop, all_rows) < 0.5 * mean_pop(uniform, all_rows)
    assert (unpop.item_pop[unpop.train.neg_items] == 0).mean() > (uniform.item_pop[uniform.train.neg_items] == 0).mean()
    member = membership(other)
    assert not member[other.train.neg_items, other.train.cate[:, None]].any()


def test_inverse_weights_hand_computed():
    from xmrec.data.sampling import _inverse

    # max 9 -> ceil(10 / (pop + 1)): 10, 5, 4, 2, 1
    assert _inverse(np.array([0, 1, 2, 4, 9])).tolist() == [10, 5, 4, 2, 1]


def test_popularity_ignores_valid_and_test_targets():
    # item "hot" is only ever a test target (of users u0..u9): its training count is 0, so a
    # popularity sampler never draws it, while the uniform one does (for the other users)
    rows = []
    for u in range(30):
        items = [f"i{(u + k) % 12}" for k in range(8)] + (["hot"] if u < 10 else [])
        rows += [(f"u{u}", it, ["c"], t) for t, it in enumerate(items)]
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "cate_id", "timestamp"])
    base = process_interactions(df, DataConfig(min_user_interactions=0, n_targets=4)).dataset
    hot = int(np.flatnonzero(base.item_raw_ids == "hot")[0])
    assert base.item_pop[hot] == 0
    for kind, drawn in (("popularity", False), ("uniform", True)):
        ds = sampled(base, kind=kind, n_neg=3)
        check_rows(ds, 3)
        got = np.concatenate([ds.split(s).neg_items.ravel() for s in SPLITS])
        assert (hot in got) == drawn, kind


def test_retry_cap_falls_back_exactly_and_impossible_lists_raise(ml100k_processed):
    small = copy.deepcopy(ml100k_processed)
    for name in SPLITS:  # the heaviest users' lists: many draws hit the history
        s = small.split(name)
        setattr(small, name, s.subset(np.argsort(-s.item_seq_len, kind="stable")[:150]))
    ds = sampled(small, max_rounds=0)  # every invalid slot goes to the exact fallback
    check_rows(ds, 19)
    check_mixer_rows(ds, 2)
    assert sum(f["exact_fallback_slots"] for f in ds.stats["sampling"]["fallback"].values()) > 0
    # a list longer than its category: the rest spills to the whole catalogue, still valid
    rows = [
        (f"u{u}", f"i{(u * 7 + k) % 50}", ["small" if (u * 7 + k) % 50 < 5 else "big"], k)
        for u in range(20)
        for k in range(12)
    ]
    toy = process_interactions(
        pd.DataFrame(rows, columns=["user_id", "item_id", "cate_id", "timestamp"]),
        DataConfig(small_category_max_items=2),
    ).dataset
    spilled = sampled(toy, kind="category", n_neg=8, max_rounds=5)
    check_rows(spilled, 8)
    assert sum(f["spilled_to_catalogue"] for f in spilled.stats["sampling"]["fallback"].values()) > 0
    with pytest.raises(ValueError, match="lower SamplerConfig.n_neg"):  # no catalogue can fill this
        sampled(small, kind="uniform", n_neg=small.n_items, max_rounds=2)
    with pytest.raises(ValueError, match="SamplerConfig.kind must be one of"):  # the config refuses it
        sampled(ml100k_processed, kind="nope")
    with pytest.raises(ValueError, match="unknown sampler kind 'nope'"):  # and the pools, asked directly
        CategoryPools.from_dataset(ml100k_processed, "nope")


# ------------------------------------------------------------------------------------------------
# XMRec t1
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def t1_mixer():
    if markets_dir() is None:
        pytest.skip("XMRec data not found: xmrec.config.markets_dir() is None (set XMREC_MARKETS_DIR)")
    from xmrec.data.pipeline import xmrec_raw

    raw = xmrec_raw("t1")
    base = process_interactions(raw.interactions, DataConfig(), item_categories=raw.item_categories).dataset
    return base, sampled(base)


def test_mixer_rows_are_valid_on_xmrec_t1(t1_mixer):
    base, ds = t1_mixer
    check_rows(ds, 19)
    check_mixer_rows(ds, 2)
    pop = ds.train.neg_pool == 1
    assert mean_pop(ds, pop) > 1.5 * mean_pop(ds, ~pop)
    again = sampled(base)
    assert np.array_equal(again.train.neg_items, ds.train.neg_items)
    assert not np.array_equal(sampled(base, seed=3).train.neg_items, ds.train.neg_items)


def test_sampler_config_is_checked(ml100k_processed):
    with pytest.raises(ValueError, match="SamplerConfig"):
        sample_negatives(copy.deepcopy(ml100k_processed), replace(SamplerConfig(), n_neg=0))
