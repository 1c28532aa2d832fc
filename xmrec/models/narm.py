"""NARM (Li et al., 2017): a GRU whose last state (global) is joined by attention over all states (local)."""

from __future__ import annotations

import torch
from torch import nn

from xmrec.config import ModelConfig
from xmrec.models.sequence import Dropout, Encoder, last_real_step, padding_mask, right_align


class NARM(Encoder):
    """The authors' NARM: a bias-free GRU (hidden ``narm_hidden``) over all L columns; c_global =
    its last column; h_t = softmax over the hidden features of A1 o_t + A2 c_global (the NARM
    paper has a sigmoid: ``narm_sigmoid_attention``), zero at padding; alpha_t = v . h_t;
    c_local = sum_t alpha_t o_t (not normalised); u = B [c_local; c_global], all without biases.

    ``right_align_history`` (deviation) runs the GRU over the real items first and reads
    c_global at the true last item.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        hidden = cfg.narm_hidden
        self.right_align = cfg.right_align_history
        self.sigmoid = cfg.narm_sigmoid_attention
        self.emb_drop = Dropout(cfg.dropout)
        self.gru = nn.GRU(cfg.dim, hidden, bias=False, batch_first=True)
        self.a_1 = nn.Linear(hidden, hidden, bias=False)
        self.a_2 = nn.Linear(hidden, hidden, bias=False)
        self.v_t = nn.Linear(hidden, 1, bias=False)
        self.ct_drop = Dropout(cfg.dropout)
        self.b = nn.Linear(2 * hidden, cfg.dim, bias=False)

    def forward(self, seq_emb, item_seq, seq_len, user_emb=None) -> torch.Tensor:
        x = self.emb_drop(seq_emb)
        if self.right_align:
            states, _ = self.gru(right_align(x, seq_len))  # [B, L, hidden], real steps first
            last = last_real_step(states, seq_len)
            real = torch.arange(states.size(1), device=states.device).unsqueeze(0) < seq_len.unsqueeze(1)
        else:
            states, _ = self.gru(x)
            last, real = states[:, -1], padding_mask(item_seq)
        q = self.a_1(states) + self.a_2(last).unsqueeze(1)
        h = torch.sigmoid(q) if self.sigmoid else torch.softmax(q, dim=-1)
        alpha = self.v_t(h * real.unsqueeze(-1))  # [B, L, 1], zero at padding (v_t has no bias)
        local = (alpha * states).sum(1)
        return self.b(self.ct_drop(torch.cat([local, last], dim=-1)))
