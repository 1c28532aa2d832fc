"""Notebook 05's studies: the cost of leakage, the value of an extra scorer, market coverage."""

import numpy as np
import pytest

from xmrec.crossmarket import CrossMarketConfig, run_target
from xmrec.crossmarket.ablation import added_value, recorded_protocols
from xmrec.crossmarket.evaluation import list_metrics
from xmrec.crossmarket.graph import VALID
from xmrec.crossmarket.leakage import leakage_cost
from xmrec.crossmarket.overlap import market_coverage
from xmrec.crossmarket.ranker import RankerConfig, cross_validate
from xmrec.crossmarket.scorers.itemcf import ItemCF
from xmrec.crossmarket.scorers.popularity import Popularity
from xmrec.crossmarket.synthetic import markets_from_interactions
from xmrec.data.synthetic import generate_interactions

FAST = RankerConfig(n_folds=2, n_estimators=30, learning_rate=0.1, train_negatives=10)


@pytest.fixture(scope="module")
def result():
    frame = generate_interactions(30_000, n_markets=3, shift=0.3, seed=7)
    markets, _ = markets_from_interactions(frame, n_candidates=30, seed=7)
    return run_target("m1", markets=markets, config=CrossMarketConfig.smoke(ranker=FAST, seed=7))


def test_score_with_swaps_only_the_scoring_features(result):
    valid = result.candidates[VALID]
    table = result.features[VALID]
    plain = cross_validate(table, valid.labels(), valid.users, config=FAST)
    same = cross_validate(table, valid.labels(), valid.users, config=FAST, score_with=table)
    np.testing.assert_array_equal(plain.valid_scores, same.valid_scores)
    zeros = type(table)(table.names, np.zeros_like(table.values))
    blank = cross_validate(table, valid.labels(), valid.users, config=FAST, score_with=zeros)
    rows = valid.labelled
    # every list scored with all-zero features gets one constant score per fold model
    assert np.allclose(blank.valid_scores[rows].std(axis=1), 0.0)
    plain_gain = plain.importance.set_index("feature")["gain"]
    assert blank.importance.set_index("feature")["gain"].equals(plain_gain)  # same models, trained the same way
    with pytest.raises(ValueError, match="different columns"):
        cross_validate(table, valid.labels(), valid.users, config=FAST, score_with=table.select(table.names[:3]))


def test_leakage_inflates_reported_figures(result):
    leak = leakage_cost(result).set_index(["method", "setting"])["ndcg@10"]
    cf = "itemcf_iuf[m1]:sum"
    assert leak[(cf, "leaky")] > leak[(cf, "honest")] + 0.05
    ranker = f"lightgbm_{result.config.objectives[0]}"
    assert leak[(ranker, "leaky")] > leak[(ranker, "honest")] + 0.05
    assert leak[(ranker, "leak-trained, honest features")] < leak[(ranker, "leaky")] - 0.05


def test_added_value_rows(result):
    cosine = ItemCF(("m1",), "cosine")  # not among the smoke pipeline's scorers
    table, extra = added_value(result, [cosine], ranker=FAST)
    assert list(table["family"]) == ["scorer", "ranker", "ranker"]
    assert table.loc[0, "method"] == cosine.primary
    valid = result.candidates[VALID]
    assert table.loc[0, "ndcg@10"] == pytest.approx(
        list_metrics(extra.column(cosine.primary), valid.positive)["ndcg@10"]
    )
    assert list(table["features"][1:]) == ["pipeline features", f"pipeline features + {cosine.name}"]
    assert extra.values.shape[:2] == valid.items.shape
    with pytest.raises(ValueError, match="already among the pipeline's features"):
        added_value(result, [Popularity()], ranker=FAST)


def test_market_coverage_counts(result):
    cov = market_coverage(result.data, result.candidates[VALID])
    assert list(cov.index) == list(result.data.market_names) + ["all sources"]
    assert cov.loc["m1", "role"] == "target"
    cands, view, data = result.candidates[VALID], result.data.view(VALID), result.data
    inter = data.interactions[view.visible]
    market_of = np.asarray(data.market_names)[data.user_market[inter["u"].to_numpy()]]
    pool = set(np.unique(cands.items).tolist())
    positives = [cands.items[k, p] for k, p in enumerate(cands.positive) if p >= 0]
    for m in data.market_names:  # oracle: sets of the items each market's users touched
        seen = set(inter["i"].to_numpy()[market_of == m].tolist())
        assert cov.loc[m, "candidate items seen"] == pytest.approx(len(pool & seen) / len(pool))
        assert cov.loc[m, "validation positives seen"] == pytest.approx(np.mean([p in seen for p in positives]))
    sources = [m for m in result.data.market_names if m != "m1"]
    assert cov.loc["all sources", "interactions"] == cov.loc[sources, "interactions"].sum()
    assert cov.loc["all sources", "candidate items seen"] >= cov.loc[sources, "candidate items seen"].max()


def test_recorded_protocols_gain_is_over_the_same_protocols_ranker_and_names_capped_trainings():
    def part(plain: float, with_score: float, epochs_run: int) -> dict:
        table = [
            {"method": "s:score", "family": "scorer", "features": "alone", "ndcg@10": 0.3, "hit@10": 0.5},
            {"method": "r", "family": "ranker", "features": "pipeline features", "ndcg@10": plain, "hit@10": 0.8},
            {
                "method": "r",
                "family": "ranker",
                "features": "pipeline features + s",
                "ndcg@10": with_score,
                "hit@10": 0.8,
            },
        ]
        run = {"label": "s", "epochs": 30, "epochs_run": epochs_run, "best_epoch": 20, "history": [{}]}
        return {"table": table, "trainings": [run]}

    results, trainings = recorded_protocols({"protocols": {"a": part(0.6, 0.65, 30), "b": part(0.7, 0.69, 25)}})
    gains = results.dropna(subset=["gain"]).set_index("protocol")["gain"]
    assert gains.round(6).to_dict() == {"a": 0.05, "b": -0.01}
    assert results.query("family == 'scorer' or features == 'pipeline features'")["gain"].isna().all()
    assert trainings.set_index("protocol")["ended_by"].to_dict() == {"a": "the epoch cap", "b": "the stopping rule"}
    assert "history" not in trainings
