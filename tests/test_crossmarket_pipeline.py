"""Cross-market pipeline: leakage safety, candidates, ranker folds, outputs, synthetic and real t1 runs."""

from __future__ import annotations

import json
import zipfile
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from xmrec.cli import main as cli_main
from xmrec.config import markets_dir
from xmrec.crossmarket.augment import heldout_lists
from xmrec.crossmarket.candidates import candidates_for, sample_run
from xmrec.crossmarket.evaluation import combine, list_metrics, score_predictions
from xmrec.crossmarket.features import FeatureTable, build_features
from xmrec.crossmarket.graph import TEST, VALID, CrossMarketData
from xmrec.crossmarket.pipeline import run_target
from xmrec.crossmarket.ranker import RankerConfig, cross_validate, user_folds
from xmrec.crossmarket.settings import CrossMarketConfig, make_scorers
from xmrec.crossmarket.submission import read_predictions, write_predictions, write_submission
from xmrec.crossmarket.synthetic import markets_from_interactions
from xmrec.data.markets import load_market, read_run
from xmrec.data.synthetic import generate_interactions

REAL = markets_dir()
SCORING = CrossMarketConfig(
    itemcf_iuf=("target", "target+each", "all"),
    itemcf_cosine=("all",),
    usercf=("all",),
    swing=("target",),
    ease=("all",),
    word2vec=("all",),
    word2vec_epochs=1,
    lightgcn=("target",),
    lightgcn_epochs=2,
)


@pytest.fixture(scope="module")
def synthetic():
    frame = generate_interactions(12_000, n_markets=3, shift=0.3, seed=5)
    markets, hidden = markets_from_interactions(frame, n_candidates=30, seed=5)
    return markets, hidden


def _features_by_pair(data, cands, table):
    """Feature rows keyed by (userId, itemId) strings: comparable across differently indexed data."""
    users = np.repeat(data.user_ids.to_numpy()[cands.users], cands.items.shape[1])
    items = data.item_ids.to_numpy()[cands.items.ravel()]
    frame = pd.DataFrame(table.values.reshape(-1, len(table.names)), columns=table.names)
    return frame.assign(userId=users, itemId=items).set_index(["userId", "itemId"]).sort_index()


def test_validation_features_never_see_the_target_qrel(synthetic):
    markets, _ = synthetic
    data = CrossMarketData.from_markets(markets, "m1")
    cands = candidates_for(data, VALID, "sampled")
    scorers = make_scorers(SCORING, data)
    with_qrel = build_features(data.view(VALID), cands, scorers)
    # the same markets with the target's validation positives removed from every input
    blind = [replace(m, valid_qrel=None) if m.name == "m1" else m for m in markets]
    blind_data = CrossMarketData.from_markets(blind, "m1")
    blind_cands = candidates_for(blind_data, VALID, "sampled")
    without = build_features(blind_data.view(VALID), blind_cands, scorers)
    a = _features_by_pair(data, cands, with_qrel)
    b = _features_by_pair(blind_data, blind_cands, without)
    pd.testing.assert_frame_equal(a, b)
    # the test view and a deliberately leaky view do see them, and the leak inflates validation
    leaky = build_features(data.view(VALID, leak=True), cands, scorers)
    assert not np.array_equal(leaky.values, with_qrel.values)
    honest = list_metrics(with_qrel.column("itemcf_iuf[m1]:sum"), cands.positive)["ndcg@10"]
    leaked = list_metrics(leaky.column("itemcf_iuf[m1]:sum"), cands.positive)["ndcg@10"]
    assert leaked > honest + 0.05
    with pytest.raises(ValueError, match="valid candidates must be scored with the valid view"):
        build_features(data.view(TEST), cands, scorers[:1])


def test_synthetic_markets_and_sampled_candidates(synthetic):
    markets, hidden = synthetic
    assert [m.name for m in markets] == ["m0", "m1", "m2"]
    for m in markets:
        seen = m.train.groupby("userId")["itemId"].agg(set)
        qrel = dict(zip(m.valid_qrel.userId, m.valid_qrel.itemId))
        for user, items in zip(m.valid_run.userId, m.valid_run["items"]):
            assert len(items) == 30 and len(set(items)) == 30 and qrel[user] in items
            assert not (set(items) - {qrel[user]}) & seen.get(user, set())
        assert m.run_kind == "sampled" and m.name in set(hidden.market)
    again, _ = markets_from_interactions(
        generate_interactions(12_000, n_markets=3, shift=0.3, seed=5), n_candidates=30, seed=5
    )
    assert again[1].valid_run.equals(markets[1].valid_run)
    run = sample_run(markets[0], n_candidates=20, seed=1)
    assert run.equals(sample_run(markets[0], n_candidates=20, seed=1))
    assert not run.equals(sample_run(markets[0], n_candidates=20, seed=2))
    with pytest.raises(ValueError, match="lower n_candidates"):
        sample_run(markets[2], n_candidates=10_000)


def test_feature_tables_join_column_wise_and_refuse_clashes():
    rng = np.random.default_rng(0)
    a = FeatureTable(["x", "y"], rng.random((4, 5, 2)).astype(np.float32))
    b = FeatureTable(["z"], rng.random((4, 5, 1)).astype(np.float32))
    joined = a.join(b)
    assert joined.names == ["x", "y", "z"]
    np.testing.assert_array_equal(joined.column("y"), a.column("y"))
    np.testing.assert_array_equal(joined.column("z"), b.column("z"))
    with pytest.raises(ValueError, match=r"both tables have the features \['x'\]"):
        a.join(a.select(["x"]))
    with pytest.raises(ValueError, match="cannot join"):
        a.join(FeatureTable(["z"], np.zeros((3, 5, 1), np.float32)))


def test_heldout_lists_hide_their_positive(synthetic):
    markets, _ = synthetic
    data = CrossMarketData.from_markets(markets, "m0")
    valid = candidates_for(data, VALID, "sampled")
    ((view, lists),) = heldout_lists(data, valid, rounds=1, seed=3)
    full = data.view(VALID).binary
    pos_items = lists.items[np.arange(len(lists)), lists.positive]
    assert full[lists.users, pos_items].all()  # a real interaction of the user ...
    assert not view.binary[lists.users, pos_items].any()  # ... hidden from the view that scores it
    negatives = np.delete(lists.items, lists.positive + lists.items.shape[1] * np.arange(len(lists)))
    assert not full[np.repeat(lists.users, lists.items.shape[1] - 1), negatives].any()
    assert set(np.unique(lists.items)) <= set(np.unique(valid.items)) | set(pos_items)


def test_user_folds_group_users_and_balance():
    users = np.array([5, 5, 9, 1, 1, 1, 7, 3, 3, 8])
    folds = user_folds(users, 3, seed=0)
    for u in np.unique(users):
        assert len(set(folds[users == u])) == 1
    per_fold_users = [len(np.unique(users[folds == f])) for f in range(3)]
    assert max(per_fold_users) - min(per_fold_users) <= 1
    with pytest.raises(ValueError, match="cannot fill"):
        user_folds(users, 7, seed=0)


def test_ranker_out_of_fold_scores_are_honest():
    rng = np.random.default_rng(0)
    n, k = 60, 10
    labels = np.zeros((n, k))
    positive = rng.integers(k, size=n)
    labels[np.arange(n), positive] = 1
    informative = labels + rng.normal(0, 0.3, size=(n, k))
    noise = rng.normal(size=(n, k))
    table = FeatureTable(["signal", "noise"], np.stack([informative, noise], axis=2).astype(np.float32))
    cfg = RankerConfig(n_folds=3, n_estimators=30, min_child_samples=5, train_negatives=None)
    res = cross_validate(table, labels, np.arange(n), table, cfg)
    assert list_metrics(res.valid_scores, positive)["ndcg@10"] > 0.9
    assert res.importance.iloc[0]["feature"] == "signal" and res.test_scores.shape == (n, k)
    only_noise = cross_validate(table.select(["noise"]), labels, np.arange(n), None, cfg)
    assert list_metrics(only_noise.valid_scores, positive)["ndcg@10"] < 0.7  # nothing memorised across folds
    lam = cross_validate(table, labels, np.arange(n), None, replace(cfg, objective="lambdarank"))
    assert list_metrics(lam.valid_scores, positive)["ndcg@10"] > 0.9


def test_tie_rules_differ_on_a_hand_made_tied_list():
    """Positive tied with one negative at the top. Mean rule: rank 1.5 whatever the ids. trec_eval
    (the official scorer) orders ties by item id, descending: 'b' before 'a'."""
    pred = pd.DataFrame(
        {"userId": ["u1"] * 3 + ["u2"] * 3, "itemId": ["a", "b", "c"] * 2, "score": [1.0, 1.0, 0.5] * 2}
    )
    qrel = pd.DataFrame({"userId": ["u1", "u2"], "itemId": ["a", "b"]})
    mean = score_predictions(pred, qrel)
    trec = score_predictions(pred, qrel, ties="trec")
    assert mean["ndcg@10"] == pytest.approx(1 / np.log2(2.5))  # r = 1.5 for both users
    assert trec["ndcg@10"] == pytest.approx((1 / np.log2(3) + 1.0) / 2)  # u1: 'a' second; u2: 'b' first
    assert mean["hit@10"] == trec["hit@10"] == 1.0
    with pytest.raises(ValueError, match="needs the item ids"):
        list_metrics(np.ones((1, 3)), np.array([0]), ties="trec")


def test_without_ties_both_rules_match_pytrec_eval():
    rng = np.random.default_rng(3)
    scores, positive = rng.normal(size=(40, 100)), rng.integers(0, 100, 40)
    ids = np.array([[f"i{j}" for j in rng.permutation(100)] for _ in range(40)])
    mean, trec = list_metrics(scores, positive), list_metrics(scores, positive, ties="trec", item_ids=ids)
    for key in ("ndcg@10", "hit@10", "mrr"):
        assert mean[key] == pytest.approx(trec[key], abs=1e-9), key


def test_score_predictions_and_combine_match_hand_values():
    pred = pd.DataFrame(
        {
            "userId": ["a"] * 3 + ["b"] * 3,
            "itemId": ["x", "y", "z", "x", "y", "z"],
            "score": [0.9, 0.5, 0.1, 0.2, 0.3, 0.8],
        }
    )
    qrel = pd.DataFrame({"userId": ["a", "b"], "itemId": ["y", "y"]})
    got = score_predictions(pred, qrel)
    assert got["ndcg@10"] == pytest.approx((1 / np.log2(3) + 1 / np.log2(3)) / 2)
    assert got["hit@10"] == 1.0 and got["n_users"] == 2
    both = combine(
        {"t1": {"ndcg@10": 0.5, "hit@10": 1.0, "n_users": 1}, "t2": {"ndcg@10": 0.8, "hit@10": 0.0, "n_users": 3}}
    )
    assert both["ndcg@10"] == pytest.approx(0.725) and both["hit@10"] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="not among the predicted"):
        score_predictions(pred, pd.DataFrame({"userId": ["a"], "itemId": ["q"]}))


def test_submission_zip_layout(tmp_path):
    pred = pd.DataFrame({"userId": ["u"], "itemId": ["i"], "score": [0.5]})
    for market in ("t1", "t2"):
        for name in ("valid_pred.tsv", "test_pred.tsv"):
            write_predictions(pred, tmp_path / "out" / market / name)
    members = write_submission(tmp_path / "out", tmp_path / "sub.zip")
    with zipfile.ZipFile(tmp_path / "sub.zip") as zf:
        assert (
            sorted(zf.namelist())
            == sorted(members)
            == ["t1/test_pred.tsv", "t1/valid_pred.tsv", "t2/test_pred.tsv", "t2/valid_pred.tsv"]
        )
        assert zf.read("t1/valid_pred.tsv").decode().splitlines()[0] == "userId\titemId\tscore"
    assert read_predictions(tmp_path / "out" / "t2" / "test_pred.tsv").equals(pred)
    (tmp_path / "out" / "t2" / "test_pred.tsv").unlink()
    with pytest.raises(FileNotFoundError, match="t2/test_pred.tsv"):
        write_submission(tmp_path / "out", tmp_path / "sub2.zip")
    assert len(write_submission(tmp_path / "out", tmp_path / "sub3.zip", strict=False)) == 3


def test_pipeline_runs_on_synthetic_markets(synthetic):
    markets, _ = synthetic
    result = run_target("m0", markets=markets, config=CrossMarketConfig.smoke())
    assert result.kinds == {"valid": "sampled", "test": "sampled"}
    assert set(result.metrics["candidates"]) == {"sampled"}
    n_lists = len(markets[0].valid_run)
    assert len(result.predictions["valid"]) == n_lists * 30
    random_ndcg = sum(1 / np.log2(r + 1) for r in range(1, 11)) / 30  # positive uniformly placed
    assert (result.metrics["ndcg@10"] > random_ndcg + 0.1).all()
    assert result.predictions["test"]["userId"].nunique() == len(markets[0].test_run)
    again = run_target("m0", markets=markets, config=CrossMarketConfig.smoke())  # same seed, same numbers
    pd.testing.assert_frame_equal(again.predictions["valid"], result.predictions["valid"])


@pytest.fixture(scope="module")
def cli_t1(tmp_path_factory):
    if REAL is None:
        pytest.skip("XMRec data absent: set XMREC_MARKETS_DIR or provide ../shared/data/xmrec-wsdm22")
    out = tmp_path_factory.mktemp("cm")
    test_run = read_run(REAL / "t1" / "test_run.tsv").head(40)
    path = out / "new_test_run.tsv"
    path.write_text("".join(f"{u}\t{','.join(items)}\n" for u, items in zip(test_run.userId, test_run["items"])))
    code = cli_main(
        [
            "crossmarket",
            "--target",
            "t1",
            "--data-dir",
            str(REAL),
            "--out",
            str(out / "run"),
            "--test-run",
            str(path),
            "--smoke",
        ]
    )
    return code, out / "run" / "t1", test_run


def test_cli_smoke_on_real_t1_scores_every_candidate(cli_t1):
    code, folder, test_run = cli_t1
    assert code == 0
    valid_run = read_run(REAL / "t1" / "valid_run.tsv")
    pred = read_predictions(folder / "valid_pred.tsv")
    expected = {(u, i) for u, items in zip(valid_run.userId, valid_run["items"]) for i in items}
    assert len(pred) == len(expected) and set(zip(pred.userId, pred.itemId)) == expected
    assert np.isfinite(pred.score).all()
    test_pred = read_predictions(folder / "test_pred.tsv")  # inference on the run file given by path
    assert set(zip(test_pred.userId, test_pred.itemId)) == {
        (u, i) for u, items in zip(test_run.userId, test_run["items"]) for i in items
    }


def test_cli_smoke_on_real_t1_beats_popularity(cli_t1):
    code, folder, _ = cli_t1
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["candidates"] == {"valid": "official", "test": "given"}
    assert summary["ties"] == "mean" and summary["provenance"]["config"]["ties"] == "mean"
    assert summary["provenance"]["config"]["ranker"]["n_folds"] == 3  # the smoke settings, recorded in full
    metrics = pd.read_csv(folder / "metrics.tsv", sep="\t").set_index("method")
    pop = metrics.loc["pop:count_target", "ndcg@10"]
    assert pop == pytest.approx(0.31, abs=0.02)  # the published popularity baseline
    assert metrics.loc["lightgbm_binary", "ndcg@10"] > pop + 0.3
    qrel = load_market("t1", REAL).valid_qrel
    official = score_predictions(read_predictions(folder / "valid_pred.tsv"), qrel)  # the files score as the table says
    assert official["ndcg@10"] == pytest.approx(metrics.loc["lightgbm_binary", "ndcg@10"], abs=1e-6)
