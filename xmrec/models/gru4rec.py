"""GRU4Rec (Hidasi et al.): a GRU over the history, read at the newest column."""

from __future__ import annotations

import torch
from torch import nn

from xmrec.config import ModelConfig
from xmrec.models.sequence import Dropout, Encoder, last_real_step, right_align


class GRU4Rec(Encoder):
    """Embedding dropout, a GRU with hidden size 2d over all L columns (the left padding first, as
    the authors), u = dense(h at the last column).

    ``right_align_history`` (deviation) moves the real items to the front and reads the state at
    the true last item, so the padding never reaches u.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.right_align = cfg.right_align_history
        self.emb_drop = Dropout(cfg.dropout)
        self.gru = nn.GRU(cfg.dim, 2 * cfg.dim, batch_first=True)
        self.dense = nn.Linear(2 * cfg.dim, cfg.dim)

    def forward(self, seq_emb, item_seq, seq_len, user_emb=None) -> torch.Tensor:
        x = self.emb_drop(seq_emb)
        if self.right_align:
            out, _ = self.gru(right_align(x, seq_len))
            return self.dense(last_real_step(out, seq_len))
        _, h = self.gru(x)  # the state after the last column: the same as the output there
        return self.dense(h[-1])
