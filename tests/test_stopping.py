"""The stopping rule: one pure function of the history, replayable over a recorded run."""

from __future__ import annotations

import pytest

from xmrec.config import TrainConfig
from xmrec.training.stopping import StoppingRule, best_epoch, replay, should_stop


def history(gaucs, losses=None, lists: int = 100) -> list[dict]:
    losses = losses or [0.2] * len(gaucs)
    return [
        {"epoch": i + 1, "gauc": g, "mrr": g / 2, "train_loss": loss, "train_lists": lists}
        for i, (g, loss) in enumerate(zip(gaucs, losses))
    ]


# a slow start: a plateau of 5 epochs near the start value, then a rise to 0.80 at epoch 10
PLATEAU_THEN_RISE = [0.60, 0.601, 0.600, 0.601, 0.600, 0.601, 0.65, 0.72, 0.78, 0.80, 0.79, 0.79, 0.79, 0.79]
FALLING_LOSS = [0.30, 0.27, 0.24, 0.21, 0.19, 0.17, 0.15, 0.14, 0.13, 0.125, 0.124, 0.124, 0.124, 0.124]


def test_best_epoch_is_the_first_maximum_of_the_chosen_metric():
    h = history([0.5, 0.7, 0.7, 0.6])
    assert best_epoch(h) == 2
    assert best_epoch(h, "mrr") == 2
    assert best_epoch([]) == 0


@pytest.mark.parametrize(
    "rule, stopped_at, best",
    [
        (StoppingRule(patience=3), 5, 2),  # cut on the plateau: it never sees the rise
        (StoppingRule(patience=10), 14, 10),  # waits it out (the history ends before it stops)
        (StoppingRule(patience=3, min_epochs=8), 13, 10),  # not before epoch 8: by then it climbs
        (StoppingRule(patience_lists=300), 5, 2),  # 3 epochs of 100 lists: the same as patience 3
        (StoppingRule(patience_lists=1000), 14, 10),
        (StoppingRule(patience=3, min_loss_drop=0.05), 13, 10),  # not while the loss still falls by > 5%
    ],
)
def test_a_plateau_then_a_rise_is_cut_or_not_as_each_rule_says(rule, stopped_at, best):
    h = history(PLATEAU_THEN_RISE, FALLING_LOSS)
    out = replay(h, rule)
    assert (out["stopped_at"], out["best_epoch"]) == (stopped_at, best)
    assert out["best"]["gauc"] == PLATEAU_THEN_RISE[best - 1]


def test_replay_says_when_the_recorded_history_is_too_short_for_the_rule():
    h = history(PLATEAU_THEN_RISE, FALLING_LOSS)
    assert replay(h, StoppingRule(patience=3))["complete"]
    assert not replay(h, StoppingRule(patience=10))["complete"]  # 4 epochs after the best, not 10


def test_should_stop_counts_epochs_after_the_best_one():
    rule = StoppingRule(patience=2)
    assert not should_stop(history([0.5, 0.6, 0.59]), rule)
    assert should_stop(history([0.5, 0.6, 0.59, 0.58]), rule)
    assert not should_stop(history([0.5, 0.6, 0.59, 0.61]), rule)  # a new best resets the count


def test_train_config_carries_the_rule_and_refuses_nonsense():
    cfg = TrainConfig(patience=4, valid_metric="ndcg@10", min_loss_drop=0.01)
    assert cfg.stopping == StoppingRule("ndcg@10", 4, None, 1, 0.01)
    for bad in ({"valid_metric": "accuracy"}, {"patience_lists": 0}, {"min_epochs": 0}, {"min_loss_drop": 1.5}):
        with pytest.raises(ValueError, match="TrainConfig"):
            TrainConfig(**bad)
