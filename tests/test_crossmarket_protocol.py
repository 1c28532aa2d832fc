"""The published reporting protocol, element by element: row folds, early stopping on the reported
fold, id codes as features; and the honest default left exactly as it was."""

from dataclasses import replace

import numpy as np
import pytest

from xmrec.crossmarket.candidates import Candidates
from xmrec.crossmarket.features import FeatureTable
from xmrec.crossmarket.protocol import (
    ID_FEATURES,
    PUBLISHED,
    protocol_inputs,
    protocol_table,
    published_ranker,
    with_id_codes,
)
from xmrec.crossmarket.ranker import RankerConfig, TrainingLists, cross_validate, row_fold_assignment

N, K, F = 240, 12, 4
FAST = RankerConfig(n_folds=4, n_estimators=40, train_negatives=None, min_child_samples=5)


@pytest.fixture(scope="module")
def lists():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, K, F)).astype(np.float32)
    positive = rng.integers(0, K, N)
    x[np.arange(N), positive, 0] += 1.0  # one weakly informative feature
    labels = np.zeros((N, K))
    labels[np.arange(N), positive] = 1
    users = np.arange(N) // 2  # two lists per user
    items = rng.integers(0, 500, (N, K))
    return FeatureTable([f"f{j}" for j in range(F)], x), labels, users, items


def test_user_folds_keep_a_users_rows_together_row_folds_split_them(lists):
    _, labels, users, _ = lists
    by_user = row_fold_assignment(labels, users, FAST)
    assert (by_user == by_user[:, :1]).all()  # one fold per list
    assert all(len(set(by_user[users == u, 0])) == 1 for u in np.unique(users))  # and per user
    by_row = row_fold_assignment(labels, users, replace(FAST, row_folds=True))
    spans = np.array([len(set(row)) for row in by_row])
    assert spans.min() > 1  # every list is scored by models that trained on the rest of it
    counts = np.bincount(by_row.ravel(), minlength=FAST.n_folds)
    assert counts.max() - counts.min() <= 1  # rows dealt out evenly


def test_early_stopping_on_the_reported_fold_stops_before_the_cap(lists):
    table, labels, users, _ = lists
    capped = replace(FAST, n_estimators=2000, early_stopping_rounds=20, learning_rate=0.3)
    res = cross_validate(table, labels, users, config=capped)
    assert len(res.rounds) == FAST.n_folds and max(res.rounds) < 2000
    plain = cross_validate(table, labels, users, config=FAST)
    assert plain.rounds == [FAST.n_estimators] * FAST.n_folds


def test_id_codes_are_the_rows_user_and_item(lists):
    table, _, users, items = lists
    out = with_id_codes(table, users, items)
    assert out.names == table.names + list(ID_FEATURES)
    np.testing.assert_array_equal(out.column("id:user"), np.broadcast_to(users[:, None], items.shape))
    np.testing.assert_array_equal(out.column("id:item"), items)
    np.testing.assert_array_equal(out.values[:, :, :F], table.values)


def test_published_inputs_switch_every_element_and_honest_changes_nothing(lists):
    table, labels, users, items = lists
    cands = {"valid": Candidates("valid", "official", users, items, labels.argmax(axis=1))}
    extra = [TrainingLists(table, labels, users + 1000, items)]
    ranker, tables, more = protocol_inputs("honest", FAST, {"valid": table}, cands, extra)
    assert ranker == FAST and tables["valid"] is table and more[0] is extra[0]
    ranker, tables, more = protocol_inputs("published", FAST, {"valid": table}, cands, extra)
    assert (ranker.n_folds, ranker.row_folds, ranker.early_stopping_rounds) == tuple(PUBLISHED.values())
    assert tables["valid"].names[-2:] == list(ID_FEATURES) and more[0].features.names[-2:] == list(ID_FEATURES)
    assert published_ranker(FAST, ("id codes",)) == FAST  # the id element changes features, not the ranker
    with pytest.raises(ValueError, match="protocol must be one of"):
        protocol_inputs("leaky", FAST, {"valid": table}, cands, extra)


def test_protocol_table_summarises_seeds_in_the_settings_order():
    def run(protocol, seed, ndcg, se):
        return {
            "protocol": protocol,
            "elements": "x",
            "leak": False,
            "seed": seed,
            "ndcg@10": ndcg,
            "se_users": se,
            "n_users": 100,
            "rounds": 300.0,
        }

    runs = [
        run("+ row folds", 1, 0.75, 0.01),
        run("honest (the kit's default)", 2, 0.71, 0.02),
        run("honest (the kit's default)", 1, 0.70, 0.02),
        run("+ row folds", 2, 0.77, 0.03),
    ]
    table = protocol_table(runs)
    assert list(table["protocol"]) == ["honest (the kit's default)", "+ row folds"]
    assert table["ndcg@10"].tolist() == pytest.approx([0.705, 0.76])
    assert table["gain"].tolist() == pytest.approx([0.0, 0.055])
    assert table["seed_spread"].tolist() == pytest.approx([0.01, 0.02])
    assert table["se_users"].tolist() == pytest.approx([0.02, 0.02])
    assert table["seeds"].tolist() == [[1, 2], [1, 2]]


def test_ensemble_standardises_each_list_before_averaging():
    from xmrec.crossmarket.ensemble import ensemble_scores, standardise_lists

    a = np.array([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]])
    z = standardise_lists(a)
    np.testing.assert_allclose(z[0], [-1.2247449, 0.0, 1.2247449], rtol=1e-6)
    assert (z[1] == 0).all()  # a constant list carries no order
    big = 1000 * a[:1] + 7  # same order, another scale: the same standardised scores
    np.testing.assert_allclose(standardise_lists(big), z[:1])
    b = np.array([[3.0, 2.0, 1.0]])
    np.testing.assert_allclose(
        ensemble_scores([a[:1] * 100, b]), [[0.0, 0.0, 0.0]], atol=1e-12
    )  # opposite orders cancel
    with pytest.raises(ValueError, match="at least one member"):
        ensemble_scores([])
