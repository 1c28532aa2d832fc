"""The kit's sequential rankers as cross-market scorers: leakage-safe, seeded, honest about unknown items."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from xmrec.crossmarket.candidates import Candidates, candidates_for
from xmrec.crossmarket.graph import VALID, CrossMarketData
from xmrec.crossmarket.scorers.sequential import SequentialScorer, view_dataset
from xmrec.crossmarket.synthetic import markets_from_interactions
from xmrec.data.synthetic import generate_interactions
from xmrec.overrides import preset_configs


@pytest.fixture(scope="module")
def markets():
    frame = generate_interactions(12_000, n_markets=3, shift=0.3, seed=5)
    return markets_from_interactions(frame, n_candidates=30, seed=5)[0]


def _by_pair(data, cands, scores):
    users = np.repeat(data.user_ids.to_numpy()[cands.users], cands.items.shape[1])
    items = data.item_ids.to_numpy()[cands.items.ravel()]
    return pd.Series(scores.ravel(), index=pd.MultiIndex.from_arrays([users, items])).sort_index()


def test_view_dataset_follows_the_view(markets):
    data = CrossMarketData.from_markets(markets, "m1")
    view = data.view(VALID)
    ds = view_dataset(view, ("m1",), max_seq_len=10, n_targets=4, n_neg=9, seed=1)
    m1_users = set(markets[1].train["userId"])
    assert set(ds.user_raw_ids[1:]) <= m1_users
    # categories are the markets where an item is visible: only m1 here
    assert ds.n_cates == 1
    # every kept user has at least three visible interactions, so one train, valid and test target each
    assert len(ds.valid) == len(ds.test) == ds.n_users
    assert ds.train.neg_items.shape[1] == 9
    # the target's validation positives are not in any history or target
    qrel = set(zip(markets[1].valid_qrel["userId"], markets[1].valid_qrel["itemId"]))
    for split in (ds.train, ds.valid, ds.test):
        users = ds.user_raw_ids[split.user]
        targets = ds.item_raw_ids[split.item]
        assert not qrel & set(zip(users, targets))


def test_scores_never_see_the_target_qrel_and_repeat_with_the_seed(markets):
    scorer = SequentialScorer(
        ("m1",), ada=True, sets=("train.epochs=2", "data.max_seq_len=10"), n_targets=4, device="cpu"
    )
    data = CrossMarketData.from_markets(markets, "m1")
    cands = candidates_for(data, VALID, "sampled")
    first = scorer.features(data.view(VALID), cands)[scorer.primary]
    again = scorer.features(data.view(VALID), cands)[scorer.primary]
    np.testing.assert_array_equal(first, again)
    blind = [replace(m, valid_qrel=None) if m.name == "m1" else m for m in markets]
    blind_data = CrossMarketData.from_markets(blind, "m1")
    blind_cands = candidates_for(blind_data, VALID, "sampled")
    without = scorer.features(blind_data.view(VALID), blind_cands)[scorer.primary]
    pd.testing.assert_series_equal(_by_pair(data, cands, first), _by_pair(blind_data, blind_cands, without))
    # the leaky view does change them
    leaky = scorer.features(data.view(VALID, leak=True), cands)[scorer.primary]
    assert not np.allclose(leaky, first)
    assert len(scorer.trainings) == 4  # every training is recorded, with what convergence checks need
    patience = preset_configs("scorer", "ada")["train"].patience  # the preset's, under the epochs set here
    for t in scorer.trainings:
        assert t["view"] == VALID and t["epochs"] == 2 and t["patience"] == patience
        assert 1 <= t["best_epoch"] <= t["epochs_run"] <= 2


def test_unknown_candidates_rank_last(markets):
    data = CrossMarketData.from_markets(markets, "m1")
    cands = candidates_for(data, VALID, "sampled")
    # items nobody in m1 ever interacted with: unknown to a model trained on m1 alone
    m1_items = set(data.interactions.loc[data.user_market[data.interactions["u"]] == data.market_code("m1"), "i"])
    foreign = np.array([i for i in range(data.n_items) if i not in m1_items][:3])
    assert len(foreign) == 3
    items = cands.items[:5].copy()
    items[:, -3:] = foreign
    probe = Candidates(VALID, "sampled", cands.users[:5], items, np.full(5, -1))
    scorer = SequentialScorer(
        ("m1",), ada=False, sets=("train.epochs=1", "data.max_seq_len=10"), n_targets=4, device="cpu"
    )
    scores = scorer.features(data.view(VALID), probe)[scorer.primary]
    assert np.isfinite(scores).all()
    np.testing.assert_allclose(scores[:, -3:], np.repeat(scores[:, :-3].min(axis=1, keepdims=True) - 1.0, 3, axis=1))
