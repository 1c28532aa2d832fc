"""NARM (Li et al., 2017): a GRU whose last state (global) is joined by attention over all states (local)."""

from __future__ import annotations

import torch
from torch import nn

from xmrec.config import ModelConfig
from xmrec.models.sequence import Encoder, last_real_step, right_align


class NARM(Encoder):
    """Global c_g = h_t; local c_l = sum_j alpha_j h_j with alpha_j = v^T sigmoid(A1 h_t + A2 h_j);
    u = Linear([c_g; c_l]). Padding steps get no weight."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        d = cfg.dim
        self.gru = nn.GRU(d, d, batch_first=True)
        self.a_last = nn.Linear(d, d, bias=False)
        self.a_step = nn.Linear(d, d, bias=False)
        self.v = nn.Linear(d, 1, bias=False)
        self.out = nn.Linear(2 * d, d)

    def forward(self, seq_emb, item_seq, seq_len, user_emb=None) -> torch.Tensor:
        states, _ = self.gru(right_align(seq_emb, seq_len))  # [B, L, d], real steps first
        last = last_real_step(states, seq_len)
        real = torch.arange(states.size(1), device=states.device).unsqueeze(0) < seq_len.unsqueeze(1)
        alpha = self.v(torch.sigmoid(self.a_last(last).unsqueeze(1) + self.a_step(states))).squeeze(-1)
        local = ((alpha * real).unsqueeze(-1) * states).sum(1)
        return self.out(torch.cat([last, local], dim=-1))
