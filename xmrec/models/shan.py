"""SHAN (Ying et al., 2018): long-term attention with the user vector, then short-term attention."""

from __future__ import annotations

import torch
from torch import nn

from xmrec.config import ModelConfig
from xmrec.models.sequence import Encoder, masked_softmax, padding_mask


class SHAN(Encoder):
    """Two attention layers queried by the user embedding.

    Long-term: u_long = sum_j a_j v_j over the whole history, a = softmax(u . ReLU(W1 v_j)).
    Short-term: attention of the same form over [u_long; last k items] (k = shan_short_items).
    """

    uses_user = True

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.short_items = cfg.shan_short_items
        self.long = nn.Linear(cfg.dim, cfg.dim)
        self.short = nn.Linear(cfg.dim, cfg.dim)

    @staticmethod
    def _attend(layer: nn.Linear, x, mask, user) -> torch.Tensor:
        weights = masked_softmax((torch.relu(layer(x)) * user.unsqueeze(1)).sum(-1), mask)
        return (weights.unsqueeze(-1) * x).sum(1)

    def forward(self, seq_emb, item_seq, seq_len, user_emb: torch.Tensor) -> torch.Tensor:
        mask = padding_mask(item_seq)
        long_term = self._attend(self.long, seq_emb, mask, user_emb)
        k = self.short_items
        x = torch.cat([long_term.unsqueeze(1), seq_emb[:, -k:]], dim=1)
        x_mask = torch.cat([torch.ones_like(mask[:, :1]), mask[:, -k:]], dim=1)
        return self._attend(self.short, x, x_mask, user_emb)
