"""Models by name: ``build_model(ModelConfig(name="GRU4Rec", ada=True), n_items, n_users)``."""

from __future__ import annotations

import numpy as np

from xmrec.config import ModelConfig
from xmrec.models.gru4rec import GRU4Rec
from xmrec.models.mf import MF
from xmrec.models.narm import NARM
from xmrec.models.nextitnet import NextItNet
from xmrec.models.ranker import Ranker
from xmrec.models.sasrec import SASRec
from xmrec.models.sequence import Encoder
from xmrec.models.shan import SHAN
from xmrec.models.srgnn import SRGNN

ENCODERS: dict[str, type[Encoder]] = {
    "MF": MF,
    "GRU4Rec": GRU4Rec,
    "SASRec": SASRec,
    "NARM": NARM,
    "NextItNet": NextItNet,
    "SRGNN": SRGNN,
    "SHAN": SHAN,
}
MODEL_NAMES: tuple[str, ...] = tuple(ENCODERS)


def canonical_name(name: str) -> str:
    """The registry spelling of a model name, matched case-insensitively."""
    by_lower = {k.lower(): k for k in ENCODERS}
    if name.lower() not in by_lower:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(MODEL_NAMES)}")
    return by_lower[name.lower()]


def build_model(cfg: ModelConfig, n_items: int, n_users: int, item_emb: np.ndarray | None = None) -> Ranker:
    """The ranker named ``cfg.name`` (with Ada-Ranker components when ``cfg.ada``).

    ``item_emb`` (e.g. the word2vec table, [n_items + 1, d]) initialises the item table.
    """
    encoder = ENCODERS[canonical_name(cfg.name)](cfg)
    return Ranker(cfg, encoder, n_items=n_items, n_users=n_users, item_emb=item_emb)
