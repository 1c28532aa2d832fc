"""xmrec.metrics against scikit-learn and hand-computed cases, ties included."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import ndcg_score, roc_auc_score

from xmrec.metrics import evaluate, per_list, pooled_auc, positive_rank, scores_with_positive_first


@pytest.fixture(scope="module")
def scores() -> np.ndarray:
    """Continuous scores (no ties) for 300 lists of 20 candidates, positive mildly favoured."""
    rng = np.random.default_rng(0)
    s = rng.normal(size=(300, 20))
    s[:, 0] += 1.0
    return s


def labels(shape) -> np.ndarray:
    y = np.zeros(shape)
    y[:, 0] = 1
    return y


def test_gauc_is_the_mean_per_list_roc_auc(scores):
    expected = np.mean([roc_auc_score(y, s) for y, s in zip(labels(scores.shape), scores)])
    assert evaluate(scores)["gauc"] == pytest.approx(expected, abs=1e-12)


def test_pooled_auc_matches_sklearn(scores):
    expected = roc_auc_score(labels(scores.shape).ravel(), scores.ravel())
    assert evaluate(scores)["auc"] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("k", [1, 3, 5, 10])
def test_ndcg_at_k_matches_sklearn(scores, k):
    expected = ndcg_score(labels(scores.shape), scores, k=k)
    assert evaluate(scores)[f"ndcg@{k}"] == pytest.approx(expected, abs=1e-12)


def test_rank_metrics_by_hand_without_ties():
    s = np.array(
        [
            [0.9, 0.1, 0.2, 0.3],  # positive first: r = 1
            [0.5, 0.9, 0.1, 0.8],  # r = 3
            [0.0, 0.1, 0.2, 0.3],
        ]
    )  # last: r = 4
    np.testing.assert_array_equal(positive_rank(s), [1, 3, 4])
    m = evaluate(s, ks=(1, 3))
    assert m["gauc"] == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert m["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 4) / 3)
    assert m["hit@1"] == pytest.approx(1 / 3) and m["hit@3"] == pytest.approx(2 / 3)
    assert m["ndcg@1"] == pytest.approx(1 / 3)
    assert m["ndcg@3"] == pytest.approx((1 + 1 / np.log2(4)) / 3)


def test_ties_count_half_and_take_the_mean_rank():
    s = np.array(
        [
            [0.5, 0.5, 0.1, 0.9],  # one above, one tie: r = 1 + 1 + 1/2 = 2.5
            [1.0, 1.0, 1.0, 1.0],
        ]
    )  # constant scorer: r = 1 + 3/2 = 2.5
    np.testing.assert_array_equal(positive_rank(s), [2.5, 2.5])
    lists = per_list(s, ks=(2, 3))
    np.testing.assert_allclose(lists["gauc"], [0.5, 0.5])  # (N - r) / (N - 1) = 1.5 / 3
    np.testing.assert_allclose(lists["gauc"][0], roc_auc_score([1, 0, 0, 0], s[0]))  # sklearn agrees on ties
    np.testing.assert_array_equal(lists["hit@2"], [0, 0])  # 2.5 > 2: a tie does not buy a hit
    np.testing.assert_array_equal(lists["hit@3"], [1, 1])
    np.testing.assert_allclose(lists["ndcg@3"], 1 / np.log2(3.5))
    np.testing.assert_allclose(lists["mrr"], 1 / 2.5)
    assert evaluate(s)["auc"] == pytest.approx(roc_auc_score(labels(s.shape).ravel(), s.ravel()))


def test_constant_scores_give_chance_auc():
    m = evaluate(np.zeros((5, 20)))
    assert m["gauc"] == pytest.approx(0.5) and m["auc"] == pytest.approx(0.5)


def test_torch_input_and_bad_input():
    s = torch.tensor([[2.0, 1.0], [0.0, 1.0]])
    assert evaluate(s)["gauc"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="NaN"):
        evaluate(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="shape"):
        evaluate(np.zeros(5))


def test_reordering_puts_the_positive_first():
    s = np.array([[0.1, 0.9, 0.3], [0.7, 0.2, 0.5]])
    out = scores_with_positive_first(s, [1, 2])
    np.testing.assert_array_equal(out, [[0.9, 0.1, 0.3], [0.5, 0.7, 0.2]])
    assert pooled_auc(out) == pytest.approx(roc_auc_score([1, 0, 0, 1, 0, 0], out.ravel()))


@pytest.mark.parametrize("cols", [[-1, 2], [1, 3], [0.0, 1.0], [0]])
def test_scores_with_positive_first_refuses_a_bad_column(cols):
    with pytest.raises(ValueError, match="positive_col"):
        scores_with_positive_first(np.zeros((2, 3)), np.asarray(cols))
