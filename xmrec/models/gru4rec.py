"""GRU4Rec (Hidasi et al.): a GRU over the history, read at the newest real item."""

from __future__ import annotations

import torch
from torch import nn

from xmrec.config import ModelConfig
from xmrec.models.sequence import Encoder, last_real_step, right_align


class GRU4Rec(Encoder):
    """GRU with hidden size 2d over the right-aligned history; its last real step, projected to d.

    Right-aligning first means the GRU meets the real items before any padding, so the state at
    the true last step never saw a padding position (the original ran the GRU over the padding).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.gru = nn.GRU(cfg.dim, 2 * cfg.dim, batch_first=True)
        self.proj = nn.Linear(2 * cfg.dim, cfg.dim)

    def forward(self, seq_emb, item_seq, seq_len, user_emb=None) -> torch.Tensor:
        out, _ = self.gru(right_align(seq_emb, seq_len))
        return self.proj(last_real_step(out, seq_len))
