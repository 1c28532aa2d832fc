"""What every scorer offers: a name, features for candidate pairs, and one primary feature.

A scorer reads only a ``GraphView`` (the interactions visible at a stage) and the candidate
lists; it returns a dict of ``[n_lists, K]`` arrays named ``<scorer name>:<feature>``. The
``primary`` feature is the one used when the scorer ranks on its own.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from ..candidates import Candidates
from ..graph import GraphView

__all__ = ["Scorer", "market_label"]


def market_label(markets: Sequence[str] | None) -> str:
    """``t1+s2`` for a combination, ``all`` for every market."""
    return "all" if markets is None else "+".join(markets)


class Scorer(ABC):
    """Base class; subclasses set ``name`` and ``primary`` and implement ``_features``."""

    name: str
    primary_feature: str = "sum"

    @property
    def primary(self) -> str:
        return f"{self.name}:{self.primary_feature}"

    def features(self, view: GraphView, cands: Candidates) -> dict[str, np.ndarray]:
        """Named ``[n_lists, K]`` feature arrays for the candidate pairs."""
        raw = self._features(view, cands)
        return {f"{self.name}:{k}": np.asarray(v, dtype=np.float64) for k, v in raw.items()}

    @abstractmethod
    def _features(self, view: GraphView, cands: Candidates) -> dict[str, np.ndarray]: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name})"
