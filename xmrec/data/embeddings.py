"""word2vec item embeddings (gensim) to initialise the item table, as the original did.

One sentence per user: their items in chronological order, over TRAINING interactions only (the
valid and test targets are left out; the original fed them in, a mild leak). CBOW, vector 64,
window 10, min_count 3, 5 epochs by default (:class:`xmrec.config.EmbeddingConfig`). With one
worker and a fixed seed gensim is deterministic. Items below ``min_count`` (or never in a
training interaction) get a zero vector, as does row 0 (padding).
"""

from __future__ import annotations

import numpy as np

from xmrec.config import EmbeddingConfig

__all__ = ["user_sentences", "train_item_embeddings"]


def user_sentences(user: np.ndarray, item: np.ndarray) -> list[list[str]]:
    """Split ``item`` (sorted by user, then time) into one list of item-id tokens per user."""
    if len(user) == 0:
        return []
    cuts = np.flatnonzero(np.diff(user)) + 1
    tokens = item.astype(str)
    return [part.tolist() for part in np.split(tokens, cuts)]


def train_item_embeddings(
    user: np.ndarray, item: np.ndarray, n_items: int, cfg: EmbeddingConfig | None = None
) -> np.ndarray:
    """``float32 [n_items + 1, dim]`` word2vec table from the (user, item) sequence given.

    Pass the training interactions only (``Interactions.training`` mask), sorted by (user, time).
    """
    from gensim.models import Word2Vec

    cfg = cfg or EmbeddingConfig()
    table = np.zeros((n_items + 1, cfg.dim), dtype=np.float32)
    sentences = user_sentences(np.asarray(user), np.asarray(item))
    if not sentences:
        return table
    model = Word2Vec(
        vector_size=cfg.dim,
        window=cfg.window,
        min_count=cfg.min_count,
        sg=cfg.sg,
        epochs=cfg.epochs,
        seed=cfg.seed,
        workers=cfg.workers,
    )
    model.build_vocab(sentences)
    if len(model.wv) == 0:  # every item below min_count: nothing to learn
        return table
    model.train(sentences, total_examples=len(sentences), epochs=cfg.epochs)
    keys = np.asarray(model.wv.index_to_key, dtype=np.int64)
    table[keys] = model.wv.vectors
    return table
