"""word2vec item embeddings (gensim) over user sequences, compared with the user's history.

One sentence per visible user (items in file order; the XMRec files carry no timestamps, so the
window spans a whole history). Features are cosine statistics between a candidate's vector and
each history item's vector (sum, max, mean). Items below ``min_count`` get a zero vector
(cosine 0). Single worker: same seed, same vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..candidates import Candidates
from ..graph import GraphView
from .base import Scorer, market_label
from .history import aggregate_history

__all__ = ["Word2VecScorer", "train_item_vectors"]


def train_item_vectors(
    sentences: list[list[int]],
    n_items: int,
    dim: int = 64,
    window: int = 50,
    min_count: int = 1,
    sg: int = 1,
    epochs: int = 10,
    seed: int = 2022,
) -> np.ndarray:
    """Unit-norm item vectors [n_items, dim] from integer-item sentences (zero rows when unseen)."""
    from gensim.models import Word2Vec

    sentences = [[str(i) for i in s] for s in sentences if len(s) > 1]
    vectors = np.zeros((n_items, dim))
    if not sentences:
        return vectors
    model = Word2Vec(
        sentences,
        vector_size=dim,
        window=window,
        min_count=min_count,
        sg=sg,
        epochs=epochs,
        seed=seed,
        workers=1,
        sample=0,
    )
    keys = np.array([int(k) for k in model.wv.index_to_key], dtype=np.int64)
    vecs = model.wv.vectors.astype(np.float64)
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    vectors[keys] = vecs / np.maximum(norms, 1e-12)
    return vectors


@dataclass(frozen=True)
class Word2VecScorer(Scorer):
    """Cosine statistics between candidate and history under word2vec item vectors."""

    markets: tuple[str, ...] | None = None
    dim: int = 64
    window: int = 50
    epochs: int = 10
    sg: int = 1
    seed: int = 2022
    primary_feature: str = "mean"

    @property
    def name(self) -> str:
        return f"w2v[{market_label(self.markets)}]"

    def item_vectors(self, view: GraphView) -> np.ndarray:
        return train_item_vectors(
            view.sequences(self.markets),
            view.data.n_items,
            dim=self.dim,
            window=self.window,
            sg=self.sg,
            epochs=self.epochs,
            seed=self.seed,
        )

    def _features(self, view: GraphView, cands: Candidates) -> dict[str, np.ndarray]:
        vectors = self.item_vectors(view)
        return aggregate_history(
            view.histories(cands.users), cands.items, lambda H, J: vectors[H] @ vectors[J].T, ("sum", "max", "mean")
        )
