"""Cross-market scorers against hand computations and independent brute-force oracles."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from xmrec.crossmarket.candidates import candidates_for
from xmrec.crossmarket.graph import TEST, VALID, CrossMarketData
from xmrec.crossmarket.scorers.ease import EASE
from xmrec.crossmarket.scorers.embeddings import Word2VecScorer, train_item_vectors
from xmrec.crossmarket.scorers.history import aggregate_history
from xmrec.crossmarket.scorers.itemcf import ItemCF
from xmrec.crossmarket.scorers.lightgcn import LightGCN
from xmrec.crossmarket.scorers.popularity import Popularity
from xmrec.crossmarket.scorers.swing import Swing
from xmrec.crossmarket.scorers.usercf import UserCF
from xmrec.data.markets import Market, merge_train


def make_market(name, train, qrel=(), run=None, test_run=None):
    """A Market from (user, item[, rating]) tuples and {user: [items]} runs."""
    rows = [(u, i, r[0] if r else 1.0) for u, i, *r in train]
    df = pd.DataFrame(rows, columns=["userId", "itemId", "rating"])

    def as_run(d):
        return None if d is None else pd.DataFrame({"userId": list(d), "items": list(d.values())})

    return Market(
        name=name,
        train=merge_train(df, None),
        train_raw=df,
        train_5core=None,
        valid_qrel=pd.DataFrame(list(qrel), columns=["userId", "itemId"]) if qrel else None,
        valid_run=as_run(run),
        test_run=as_run(test_run),
    )


@pytest.fixture(scope="module")
def toy():
    """Target t1: A{1,2}, B{1,2,3}, C{2,3}, D{1} whose validation positive is 2 among [2, 3]."""
    t1 = make_market(
        "t1",
        [
            ("A", "1", 5.0),
            ("A", "2", 3.0),
            ("B", "1", 4.0),
            ("B", "2"),
            ("B", "3", 2.0),
            ("C", "2"),
            ("C", "3"),
            ("D", "1"),
        ],
        qrel=[("D", "2")],
        run={"D": ["2", "3"]},
        test_run={"D": ["3", "1"]},
    )
    s1 = make_market("s1", [("E", "1"), ("E", "3"), ("F", "3")], qrel=[("F", "1")])
    data = CrossMarketData.from_markets([t1, s1], "t1")
    return data, candidates_for(data, VALID, "official")


def test_itemcf_iuf_hand_computed(toy):
    data, cands = toy
    feats = ItemCF(("t1",), "iuf").features(data.view(VALID), cands)
    # |U_1| = 3 (A, B, D), |U_2| = 3, |U_3| = 2; co-users weighted 1/ln(1 + |I_u|)
    sim12 = (1 / math.log(3) + 1 / math.log(4)) / math.sqrt(3 * 3)
    sim13 = (1 / math.log(4)) / math.sqrt(3 * 2)
    assert feats["itemcf_iuf[t1]:sum"][0] == pytest.approx([sim12, sim13])
    assert feats["itemcf_iuf[t1]:max"][0] == pytest.approx([sim12, sim13])
    assert feats["itemcf_iuf[t1]:hits"][0].tolist() == [1, 1]


def test_itemcf_cross_market_and_cosine(toy):
    data, cands = toy
    view = data.view(VALID)
    # all markets: E adds a (1, 3) co-occurrence, F's qrel (source market) adds another; |U_1| = 5, |U_3| = 4
    both = ItemCF(None, "iuf").features(view, cands)["itemcf_iuf[all]:sum"][0]
    sim13 = (1 / math.log(4) + 2 / math.log(3)) / math.sqrt(5 * 4)
    assert both[1] == pytest.approx(sim13)
    cos = ItemCF(("t1",), "cosine").features(view, cands)["itemcf_cosine[t1]:sum"][0]
    r1 = {"A": 5.0, "B": 4.0, "D": 1.0}
    r2 = {"A": 3.0, "B": 1.0, "C": 1.0}
    dot = sum(r1[u] * r2[u] for u in r1 if u in r2)
    norm = math.sqrt(sum(v * v for v in r1.values())) * math.sqrt(sum(v * v for v in r2.values()))
    assert cos[0] == pytest.approx(dot / norm)


def test_itemcf_jaccard_hand_computed(toy):
    data, cands = toy
    feats = ItemCF(("t1",), "jaccard").features(data.view(VALID), cands)
    # U_1 = {A, B, D}, U_2 = {A, B, C}, U_3 = {B, C}: |U_1 & U_2| / |U_1 | U_2| = 2/4, for (1, 3) 1/4
    assert feats["itemcf_jaccard[t1]:sum"][0] == pytest.approx([2 / 4, 1 / 4])
    # all markets: E{1, 3} and F's source qrel {1, 3} join: U_1 = {A, B, D, E, F}, U_3 = {B, C, E, F}
    both = ItemCF(None, "jaccard").features(data.view(VALID), cands)["itemcf_jaccard[all]:sum"][0]
    assert both[1] == pytest.approx(3 / 6)
    with pytest.raises(ValueError, match="weighting"):
        ItemCF(None, "dice")


def test_swing_hand_computed(toy):
    data, cands = toy
    feats = Swing(("t1",), alpha=0.01).features(data.view(VALID), cands)["swing[t1]:sum"][0]
    # (1, 2): users A, B share items {1, 2}: 1 / (0.01 + 2); (1, 3): only B -> no pair
    assert feats == pytest.approx([1 / 2.01, 0.0])


def test_usercf_against_loop(toy):
    data, cands = toy
    view = data.view(VALID)
    got = UserCF(("t1",)).features(view, cands)["usercf[t1]:score"][0]
    items = {"A": {"1", "2"}, "B": {"1", "2", "3"}, "C": {"2", "3"}, "D": {"1"}}
    users_of = {i: {u for u, s in items.items() if i in s} for i in ("1", "2", "3")}

    def sim(u, v):
        shared = items[u] & items[v]
        return sum(1 / math.log(1 + len(users_of[i])) for i in shared) / math.sqrt(len(items[u]) * len(items[v]))

    expected = [sum(sim("D", v) for v in items if v != "D" and j in items[v]) for j in ("2", "3")]
    assert got == pytest.approx(expected)


def test_popularity_counts_exclude_target_qrel_at_validation(toy):
    data, cands = toy
    valid = Popularity().features(data.view(VALID), cands)
    assert np.expm1(valid["pop:count_target"][0]) == pytest.approx([3, 2])
    test_cands = candidates_for(data, TEST, "official")
    test = Popularity().features(data.view(TEST), test_cands)
    assert np.expm1(test["pop:count_target"][0]) == pytest.approx([2, 3])  # D's positive 2 now counts
    assert test["pop:user_history"][0].tolist() == [2, 2]


def test_ease_equals_columnwise_ridge(toy):
    data, cands = toy
    view = data.view(VALID)
    got = EASE(None, l2=0.5).features(view, cands)["ease[all]:score"][0]
    x = view.binary.toarray()
    items = np.unique(np.concatenate([view.restrict(("t1",)).indices, cands.items.ravel()]))
    x = x[:, items]
    hist = view.histories(cands.users).toarray()[0, items]
    for col, item in zip(got, cands.items[0]):
        j = int(np.searchsorted(items, item))
        others = [k for k in range(len(items)) if k != j]
        a = x[:, others]
        b = np.linalg.solve(a.T @ a + 0.5 * np.eye(len(others)), a.T @ x[:, j])
        assert col == pytest.approx(float(hist[others] @ b))


def test_aggregate_history_against_loop():
    rng = np.random.default_rng(0)
    n_items, n_lists, k = 30, 12, 5
    dense = (rng.random((n_lists, n_items)) < 0.15).astype(float)
    dense[3] = 0  # an empty history
    hist = sp.csr_matrix(dense)
    cand = np.array([rng.choice(n_items, k, replace=False) for _ in range(n_lists)])
    full = rng.normal(size=(n_items, n_items))
    got = aggregate_history(hist, cand, lambda H, J: full[np.ix_(H, J)])
    for n in range(n_lists):
        h = np.flatnonzero(dense[n])
        for c in range(k):
            vals = full[h, cand[n, c]]
            assert got["sum"][n, c] == pytest.approx(vals.sum())
            assert got["max"][n, c] == pytest.approx(vals.max() if len(h) else 0.0)
            assert got["mean"][n, c] == pytest.approx(vals.mean() if len(h) else 0.0)
            assert got["hits"][n, c] == np.count_nonzero(vals)
    with pytest.raises(ValueError, match="unknown history statistics"):
        aggregate_history(hist, cand, lambda H, J: full[np.ix_(H, J)], ("median",))


def test_word2vec_is_seeded_and_unseen_items_are_zero():
    sentences = [[0, 1, 2, 3], [1, 2, 4], [0, 2, 3, 4], [5, 1, 2]] * 5
    a = train_item_vectors(sentences, n_items=8, dim=8, epochs=3, seed=3)
    b = train_item_vectors(sentences, n_items=8, dim=8, epochs=3, seed=3)
    c = train_item_vectors(sentences, n_items=8, dim=8, epochs=3, seed=4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.allclose(a[6:], 0) and np.allclose(np.linalg.norm(a[:6], axis=1), 1)


def test_word2vec_and_lightgcn_scorers_run_and_are_deterministic(toy):
    data, cands = toy
    view = data.view(VALID)
    w2v = Word2VecScorer(None, dim=4, epochs=2).features(view, cands)
    assert set(w2v) == {"w2v[all]:sum", "w2v[all]:max", "w2v[all]:mean"}
    lg = LightGCN(None, dim=8, epochs=3, batch_size=4, device="cpu")
    first, second = lg.features(view, cands), lg.features(view, cands)
    assert first["lightgcn[all]:dot"].shape == (1, 2)
    assert np.array_equal(first["lightgcn[all]:dot"], second["lightgcn[all]:dot"])
    assert np.isfinite(first["lightgcn[all]:dot"]).all()
