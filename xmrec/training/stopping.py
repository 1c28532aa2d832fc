"""Early stopping as one pure function of a run's history: which epoch is best, and whether to stop.

A history is the list of per-epoch records ``Trainer.fit`` keeps (``epoch``, ``train_loss``,
``train_lists``, the validation metrics). The rule (``TrainConfig``'s stopping fields) reads
nothing else, so any rule can be replayed over a recorded history: the epoch it would have stopped
at and the epoch it would have restored, without training again.

- ``valid_metric``: the validation metric that selects the best epoch (first maximum);
- ``patience``: stop after this many epochs without a better one;
- ``patience_lists``: instead, stop once this many training lists have been seen since the best
  epoch (one rule for data of any size: ML-100K and ML-10M epochs differ a hundredfold);
- ``min_epochs``: never stop before this many epochs;
- ``min_loss_drop``: never stop while the training loss still falls by more than this fraction per
  epoch (a slow start whose validation metric sits on a plateau is not cut).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class StoppingRule:
    """The stopping fields of a ``TrainConfig``, on their own (``TrainConfig.stopping``)."""

    valid_metric: str = "gauc"
    patience: int = 10
    patience_lists: int | None = None
    min_epochs: int = 1
    min_loss_drop: float | None = None

    def __post_init__(self):
        if self.patience < 1:
            raise ValueError(f"patience must be a whole number >= 1, got {self.patience!r}")
        if self.patience_lists is not None and self.patience_lists < 1:
            raise ValueError(f"patience_lists must be None or >= 1, got {self.patience_lists!r}")
        if self.min_epochs < 1:
            raise ValueError(f"min_epochs must be >= 1, got {self.min_epochs!r}")
        if self.min_loss_drop is not None and not 0 <= self.min_loss_drop < 1:
            raise ValueError(f"min_loss_drop must be None or a fraction in [0, 1), got {self.min_loss_drop!r}")


def best_epoch(history: Sequence[dict], metric: str = "gauc") -> int:
    """The 1-based epoch with the highest ``metric`` (the first of equals); 0 for an empty history."""
    best, value = 0, float("-inf")
    for record in history:
        if record[metric] > value:
            best, value = record["epoch"], record[metric]
    return best


def should_stop(history: Sequence[dict], rule: StoppingRule) -> bool:
    """Whether ``rule`` ends the run after the last epoch of ``history``."""
    if len(history) < rule.min_epochs:
        return False
    if rule.min_loss_drop is not None and len(history) >= 2:
        before, now = history[-2]["train_loss"], history[-1]["train_loss"]
        if before > 0 and (before - now) / before > rule.min_loss_drop:
            return False
    best = best_epoch(history, rule.valid_metric)
    since = history[best:]  # the epochs after the best one
    if rule.patience_lists is not None:
        return sum(r["train_lists"] for r in since) >= rule.patience_lists
    return len(since) >= rule.patience


def replay(history: Sequence[dict], rule: StoppingRule) -> dict:
    """What ``rule`` would have done over a recorded ``history`` (recorded with a looser rule):
    ``stopped_at`` (epochs it would have run), ``best_epoch`` (the one it restores; its record is
    ``best``) and ``complete`` (False when the history ended before the rule stopped)."""
    for n in range(1, len(history) + 1):
        if should_stop(history[:n], rule):
            break
    else:
        n = len(history)
    best = best_epoch(history[:n], rule.valid_metric)
    return {
        "stopped_at": n,
        "best_epoch": best,
        "best": history[best - 1] if best else None,
        "complete": should_stop(history[:n], rule),
    }
