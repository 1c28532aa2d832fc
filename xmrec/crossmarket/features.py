"""Feature tables: every scorer's features for one stage's candidate pairs, plus list context.

A ``FeatureTable`` is a ``[n_lists, K, F]`` array with named columns. Because each scorer reads
only the stage's ``GraphView``, the validation table is built without the target's validation
positives (see ``graph``). List context turns a score into how it stands within its own list
(descending rank scaled to [0, 1], gap to the list's best), which a pointwise ranker cannot see.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from .candidates import Candidates
from .graph import GraphView
from .scorers.base import Scorer

__all__ = ["FeatureTable", "build_features", "list_context"]


@dataclass
class FeatureTable:
    """Named features of every candidate pair of one stage."""

    names: list[str]
    values: np.ndarray  # float32 [n_lists, K, F]
    seconds: dict[str, float] = field(default_factory=dict)  # time spent per scorer

    def column(self, name: str) -> np.ndarray:
        """One feature as ``[n_lists, K]``."""
        try:
            return self.values[:, :, self.names.index(name)]
        except ValueError:
            raise KeyError(f"no feature {name!r}; have {self.names}") from None

    def select(self, names: Sequence[str]) -> FeatureTable:
        idx = [self.names.index(n) for n in names]
        return FeatureTable(list(names), self.values[:, :, idx], self.seconds)

    def join(self, other: FeatureTable) -> FeatureTable:
        """This table's columns followed by ``other``'s (same lists, no shared names)."""
        if other.values.shape[:2] != self.values.shape[:2]:
            raise ValueError(f"cannot join tables of {other.values.shape[:2]} and {self.values.shape[:2]} pairs")
        if shared := set(self.names) & set(other.names):
            raise ValueError(f"both tables have the features {sorted(shared)}")
        values = np.concatenate([self.values, other.values], axis=2)
        return FeatureTable(self.names + other.names, values, {**self.seconds, **other.seconds})


def list_context(score: np.ndarray) -> dict[str, np.ndarray]:
    """``rank``: 0 for the list's best score .. 1 for its worst (ties share the best rank);
    ``gap``: score minus the list's maximum."""
    k = score.shape[1]
    higher = (score[:, None, :] > score[:, :, None]).sum(axis=2)
    return {"rank": higher / max(k - 1, 1), "gap": score - score.max(axis=1, keepdims=True)}


def build_features(
    view: GraphView,
    cands: Candidates,
    scorers: Sequence[Scorer],
    context_of: Sequence[str] | None = None,
    progress: bool = False,
) -> FeatureTable:
    """Run every scorer on ``cands`` with ``view`` and stack the features.

    ``context_of`` names the features that also get list context (default: each scorer's primary
    feature and every ``:max``/``:sum`` statistic).
    """
    if cands.stage != view.stage:
        raise ValueError(f"{cands.stage} candidates must be scored with the {cands.stage} view, got {view.stage}")
    feats: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    for scorer in tqdm(scorers, desc=f"{view.stage} features", disable=not progress, leave=False):
        start = time.perf_counter()
        feats.update(scorer.features(view, cands))
        seconds[scorer.name] = time.perf_counter() - start
    if context_of is None:
        context_of = [n for n in feats if n.endswith((":sum", ":max")) or any(n == s.primary for s in scorers)]
    for name in dict.fromkeys(context_of):
        for kind, value in list_context(feats[name]).items():
            feats[f"{name}@{kind}"] = value
    names = list(feats)
    values = np.stack([feats[n] for n in names], axis=2).astype(np.float32)
    return FeatureTable(names, values, seconds)
