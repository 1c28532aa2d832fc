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
            for c in idx[ptr[it]:ptr[it + 1]]:
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
