"""SHAN (Ying et al., 2018): long-term attention with the user vector, then short-term attention."""

from __future__ import annotations

import math

import torch
from torch import nn

from xmrec.config import ModelConfig
from xmrec.models.sequence import Encoder, masked_softmax, padding_mask


class SHAN(Encoder):
    """Two attention layers queried by the user embedding p.

    Long-term: l = sum_t a_t x_t over the history, a = softmax_t(p . ReLU(W_long x_t + b_long)).
    Long+short: u = attention of the same form over [l; last k columns] (k = shan_short_items).
    Each layer has the authors' extra bias vector beside its Linear's own bias (``long_b``,
    ``long_short_b``: U(-sqrt(3/d), sqrt(3/d)) at start); padded columns get no weight.
    """

    uses_user = True

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        d, bound = cfg.dim, math.sqrt(3 / cfg.dim)
        self.short_items = cfg.shan_short_items
        self.long_w = nn.Linear(d, d)
        self.long_b = nn.Parameter(torch.empty(d).uniform_(-bound, bound))
        self.long_short_w = nn.Linear(d, d)
        self.long_short_b = nn.Parameter(torch.empty(d).uniform_(-bound, bound))

    @staticmethod
    def _attend(layer: nn.Linear, bias: torch.Tensor, x, mask, user) -> torch.Tensor:
        weights = masked_softmax((torch.relu(layer(x) + bias) * user.unsqueeze(1)).sum(-1), mask)
        return (weights.unsqueeze(-1) * x).sum(1)

    def forward(self, seq_emb, item_seq, seq_len, user_emb: torch.Tensor) -> torch.Tensor:
        mask = padding_mask(item_seq)
        long_term = self._attend(self.long_w, self.long_b, seq_emb, mask, user_emb)
        k = self.short_items
        x = torch.cat([long_term.unsqueeze(1), seq_emb[:, -k:]], dim=1)
        x_mask = torch.cat([torch.ones_like(mask[:, :1]), mask[:, -k:]], dim=1)
        return self._attend(self.long_short_w, self.long_short_b, x, x_mask, user_emb)
