"""Shift statistics against independent oracles (scipy) and hand-computed cases."""

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from xmrec import shift


def test_js_divergence_matches_scipy_squared_distance():
    rng = np.random.default_rng(0)
    p, q = rng.random((5, 12)), rng.random((5, 12))
    q[:, :3] = 0  # disjoint mass somewhere
    ours = shift.js_divergence(p, q)
    oracle = np.array([jensenshannon(a, b, base=2) ** 2 for a, b in zip(p, q)])
    np.testing.assert_allclose(ours, oracle, atol=1e-12)


def test_js_divergence_bounds():
    assert shift.js_divergence([1, 0], [0, 1]) == pytest.approx(1.0)
    assert shift.js_divergence([3, 1], [6, 2]) == pytest.approx(0.0)


def test_category_histograms_match_a_loop():
    # item 1 -> {1}, item 2 -> {1, 2}, item 3 -> {3}, item 4 -> {} (no category)
    ptr = np.array([0, 0, 1, 3, 4, 4])
    idx = np.array([1, 1, 2, 3])
    cand = np.array([[1, 2, 3], [4, 2, 2]])
    hist = shift.category_histograms(cand, ptr, idx, n_cates=3)
    expected = np.zeros((2, 4), dtype=int)
    for r, row in enumerate(cand):
        for it in row:
            for c in idx[ptr[it] : ptr[it + 1]]:
                expected[r, c] += 1
    np.testing.assert_array_equal(hist, expected)


def test_list_divergence_zero_when_list_matches_reference():
    ptr = np.array([0, 0, 1, 2])
    idx = np.array([1, 2])
    cand = np.array([[1, 2], [1, 1]])
    div = shift.list_divergence(cand, [0, 0.5, 0.5], ptr, idx, n_cates=2)
    assert div[0] == pytest.approx(0.0)
    assert div[1] > 0.3


def test_gini_hand_computed():
    assert shift.gini([5, 5, 5, 5]) == pytest.approx(0.0)
    # one item holds everything among n=4: G = (n - 1) / n
    assert shift.gini([0, 0, 0, 8]) == pytest.approx(0.75)


def test_popularity_curve_is_monotone_and_ends_at_one():
    x, y = shift.popularity_curve([1, 10, 0, 3])
    assert len(x) == 3 and y[-1] == pytest.approx(1.0)
    assert y[0] == pytest.approx(10 / 14)
    assert np.all(np.diff(y) > 0)


def test_market_matrices():
    names, jac = shift.jaccard_matrix({"a": {1, 2, 3}, "b": {2, 3, 4}, "c": {9}})
    assert names == ["a", "b", "c"]
    assert jac[0, 1] == pytest.approx(0.5) and jac[0, 2] == 0 and np.allclose(np.diag(jac), 1)
    names, js = shift.popularity_divergence_matrix({"a": {1: 5, 2: 5}, "b": {1: 5, 2: 5}, "c": {3: 1}})
    assert js[0, 1] == pytest.approx(0.0) and js[0, 2] == pytest.approx(1.0)
    np.testing.assert_allclose(js, js.T)


def test_entropy_hand_computed():
    np.testing.assert_allclose(shift.entropy([[1, 1, 1, 1], [5, 0, 0, 0], [0, 0, 0, 0]]), [2.0, 0.0, 0.0])


@pytest.fixture(scope="module")
def small_dataset():
    from xmrec.config import DataConfig, SamplerConfig
    from xmrec.data.process import process_interactions
    from xmrec.data.sampling import sample_negatives
    from xmrec.data.synthetic import generate_interactions

    raw = generate_interactions(6000, n_categories=6, seed=3)
    ds = process_interactions(raw, DataConfig(small_category_max_items=0, max_seq_len=20)).dataset
    return sample_negatives(ds, SamplerConfig(n_neg=9, seed=3))


def test_lists_by_sampler_same_instances_valid_negatives(small_dataset):
    ds = small_dataset
    lists = shift.lists_by_sampler(ds, n_lists=300, seed=5)
    assert list(lists) == ["mixer", "uniform", "popularity", "category"]
    first = lists["mixer"]
    assert len(first) == 300
    for s in lists.values():
        np.testing.assert_array_equal(s.item, first.item)  # the same instances for every sampler
        np.testing.assert_array_equal(s.item_seq, first.item_seq)
        assert s.neg_items.shape == (300, ds.n_neg)
        assert not (s.neg_items == s.item[:, None]).any()
        assert all(len(set(row)) == ds.n_neg for row in s.neg_items)
        for r in range(0, 300, 37):
            assert not set(s.neg_items[r]) & set(s.item_seq[r][s.item_seq[r] > 0])
    assert ds.train.neg_items.shape[1] == ds.n_neg  # the dataset itself is untouched
    again = shift.lists_by_sampler(ds, n_lists=300, seed=5)
    np.testing.assert_array_equal(again["mixer"].neg_items, first.neg_items)
    cat = lists["category"]
    assert all(cat.cate[r] in ds.item_categories(i) for r in range(300) for i in cat.neg_items[r])
    other = shift.lists_by_sampler(ds, kinds=["other-category"], n_lists=300, seed=5)["other-category"]
    np.testing.assert_array_equal(other.item, first.item)  # a test-only sampler: same instances too
    assert not any(other.cate[r] in ds.item_categories(i) for r in range(300) for i in other.neg_items[r])


def test_list_profile_matches_a_loop(small_dataset):
    ds = small_dataset
    lists = shift.lists_by_sampler(ds, kinds=["mixer", "category"], n_lists=50, seed=1)
    prof = shift.list_profile(lists["mixer"], ds)
    s = lists["mixer"]
    ref = np.zeros(ds.n_cates + 1)
    for i in range(1, ds.n_items + 1):
        ref[ds.item_categories(i)] += 1
    for r in (0, 17, 49):
        neg = s.neg_items[r]
        assert prof["positive_pop"][r] == ds.item_pop[s.item[r]]
        assert prof["negative_pop"][r] == np.median(ds.item_pop[neg])
        share = np.mean([s.cate[r] in ds.item_categories(i) for i in neg])
        assert prof["anchor_share"][r] == pytest.approx(share)
        hist = np.zeros(ds.n_cates + 1)
        for i in np.concatenate([[s.item[r]], neg]):
            hist[ds.item_categories(i)] += 1
        assert prof["divergence"][r] == pytest.approx(jensenshannon(hist, ref, base=2) ** 2)
    assert prof["divergence"].between(0, 1).all()
    assert (shift.list_profile(lists["category"], ds)["anchor_share"] == 1).all()
