"""xmrec.converged: recorded histories read under a rule, the certificate's rows, and when a lesson holds."""

import pandas as pd
import pytest

from xmrec.converged import CERTIFICATE_FACTOR, cell_moves, replayed_rows, split_runs, with_patience
from xmrec.training.stopping import StoppingRule

KEYS = ("model", "mode", "train_sampler", "seed")


def recording(curve: list[float], sampler: str = "uniform") -> dict:
    """A training recorded long: validation GAUC follows ``curve``; each epoch's test metrics encode
    the epoch (mixer GAUC = epoch / 100, uniform = epoch / 1000), so a row shows which epoch it read."""
    history = [
        {
            "epoch": e,
            "gauc": v,
            "train_loss": 0.2,
            "train_lists": 10,
            **{f"test@mixer_{m}": e / 100 for m in ("gauc", "ndcg@10", "hit@10", "mrr")},
            **{f"test@uniform_{m}": e / 1000 for m in ("gauc", "ndcg@10", "hit@10", "mrr")},
        }
        for e, v in enumerate(curve, 1)
    ]
    return {"model": "GRU4Rec", "mode": "ada", "train_sampler": sampler, "seed": 1, "run": "r", "history": history}


PLATEAU_THEN_LEARNS = [0.5, 0.5, 0.5, 0.5, 0.6, 0.7, 0.8] + [0.79] * 20  # best at 7 once the plateau ends


def test_rows_read_the_test_metrics_of_the_epoch_the_rule_restores():
    rows = replayed_rows([recording(PLATEAU_THEN_LEARNS)], StoppingRule(patience=3), KEYS)
    assert {r["test_sampler"] for r in rows} == {"mixer", "uniform"}
    by = {r["test_sampler"]: r for r in rows}
    assert by["mixer"]["best_epoch"] == 1 and by["mixer"]["epochs_run"] == 4  # cut on the plateau
    assert by["mixer"]["gauc"] == pytest.approx(0.01) and by["uniform"]["mrr"] == pytest.approx(0.001)
    assert by["uniform"]["history"] and "history" not in by["mixer"]  # on the training's matched row only
    long = replayed_rows([recording(PLATEAU_THEN_LEARNS)], StoppingRule(patience=12), KEYS, check=True)
    assert all(r["best_epoch"] == 7 and r["patience_check"] and r["patience"] == 12 for r in long)
    assert all("history" not in r for r in long)  # a certificate's rows carry no history


def test_a_rule_the_recording_ends_first_is_marked_incomplete():
    rows = replayed_rows([recording(PLATEAU_THEN_LEARNS[:9])], StoppingRule(patience=5), KEYS)
    assert not rows[0]["complete"] and rows[0]["epochs_run"] == 9


def test_a_recording_without_per_sampler_test_metrics_is_refused():
    bare = recording([0.5, 0.6])
    bare["history"] = [{k: v for k, v in h.items() if not k.startswith("test@")} for h in bare["history"]]
    with pytest.raises(ValueError, match="test_every_epoch"):
        replayed_rows([bare], StoppingRule(patience=1), KEYS)


def test_the_certificate_multiplies_the_patience_it_counts():
    assert with_patience(StoppingRule(patience=3), CERTIFICATE_FACTOR).patience == 3 * CERTIFICATE_FACTOR
    lists = with_patience(StoppingRule(patience_lists=100), 2)
    assert lists.patience_lists == 200 and lists.patience == StoppingRule().patience


def test_split_runs_separates_the_certificate_and_drops_histories():
    rule, cert = split_runs([{"gauc": 0.8, "history": [1]}, {"gauc": 0.7, "patience_check": True}])
    assert list(rule.gauc) == [0.8] and list(cert.gauc) == [0.7] and "history" not in rule


def test_a_lesson_holds_when_the_certificate_moves_it_within_its_spread():
    rule = pd.DataFrame(
        {"diff_mean": [0.010, 0.010, 0.010, -0.02], "diff_std": [0.004, 0.004, float("nan"), 0.08]},
        index=list("abcd"),
    )
    cert = pd.DataFrame(
        {"diff_mean": [0.013, 0.020, 0.011, 0.01], "diff_std": [0.004, 0.004, 0.002, 0.005]}, index=list("abcd")
    )
    moves = cell_moves(rule, cert, ["diff"]).set_index("cell")
    assert moves.loc["a", "holds"] is True and moves.loc["b", "holds"] is False
    assert moves.loc["c", "holds"] is None  # one seed: no spread to judge by
    assert moves.loc["b", "move"] == pytest.approx(0.010)
    # a rule whose cut inflated its own spread (one seed stalled, one not) is judged by the looser reading's
    assert moves.loc["d", "holds"] is False and moves.loc["d", "spread"] == pytest.approx(0.005)
