"""What the models share: the encoder interface, sequence helpers, a fast dropout.

Histories arrive LEFT-padded with item id 0 (newest item in the last column). As the authors, the
encoders read every column, padding included, and mask padding only where the authors do (the
attention keys of SASRec, SHAN, NARM and SRGNN). The helpers also serve the deviation switches
that keep padding out entirely: a right-alignment that lets a recurrent net read the real items
first, so its output at the true last step never saw padding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xmrec.config import ModelConfig


class Encoder(nn.Module):
    """Maps a user's history to the user vector u [B, d] that the shared ranker scores against.

    ``forward(seq_emb, item_seq, seq_len, user_emb)``: ``seq_emb`` [B, L, d] item embeddings
    (possibly FiLM-modulated; at padding the padding row's, unless ``ModelConfig.mask_padding``),
    ``item_seq`` [B, L] ids (0 = padding), ``seq_len`` [B] real lengths, ``user_emb`` [B, d] or None.
    """

    uses_history: bool = True  # False for MF: there is no history for FiLM to modulate
    uses_user: bool = False  # MF and SHAN read a user embedding table
    reads_pretrained_table: bool = True  # the item table starts from the word2vec vectors when given

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.dim = cfg.dim


def padding_mask(item_seq: torch.Tensor) -> torch.Tensor:
    """[B, L] True at real items."""
    return item_seq != 0


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis restricted to ``mask``; a row with no real entry gives zeros."""
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.softmax(scores, dim=-1) * mask


def right_align(x: torch.Tensor, seq_len: torch.Tensor) -> torch.Tensor:
    """Move the real items of a left-padded [B, L, ...] tensor to the front (padding to the end)."""
    length = x.size(1)
    shift = (length - seq_len.clamp(min=0, max=length)).unsqueeze(1)
    idx = (torch.arange(length, device=x.device).unsqueeze(0) + shift) % length
    idx = idx.view(*idx.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, idx)


def last_real_step(h: torch.Tensor, seq_len: torch.Tensor) -> torch.Tensor:
    """Output [B, d] of a right-aligned sequence output [B, L, d] at its true last step."""
    pos = (seq_len.clamp(min=1) - 1).view(-1, 1, 1).expand(-1, 1, h.size(-1))
    return h.gather(1, pos).squeeze(1)


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose CPU mask comes from ``torch.rand``: the same distribution, about twice
    as fast on CPU, where drawing the mask dominates small rankers. Other devices use ``F.dropout``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, True)
        return x * (torch.rand_like(x) >= self.p) * (1.0 / (1.0 - self.p))
