"""MF: the user vector is the user's own embedding; the history is not read."""

from __future__ import annotations

import torch

from xmrec.models.sequence import Encoder


class MF(Encoder):
    """Matrix factorisation through the shared ranker: u = user embedding."""

    uses_history = False
    uses_user = True

    def forward(self, seq_emb, item_seq, seq_len, user_emb: torch.Tensor) -> torch.Tensor:
        return user_emb
