"""NextItNet (Yuan et al., 2019): stacked dilated causal convolutions with residual blocks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xmrec.config import ModelConfig
from xmrec.models.sequence import Encoder, padding_mask

LN_EPS = 1e-8  # the authors' LayerNorm epsilon


class DilatedResidualBlock(nn.Module):
    """x + ReLU(LN(conv_2r(ReLU(LN(conv_r(x)))))), causal: zeros are added on the left.

    With ``keep`` (the ``nextitnet_zero_padding`` deviation), padded columns are zeroed after each
    convolution, so a real column sees exactly what a history of its true length would see.
    """

    def __init__(self, dim: int, kernel: int, dilation: int):
        super().__init__()
        self.kernel = kernel
        self.dilations = (dilation, 2 * dilation)
        self.convs = nn.ModuleList(nn.Conv1d(dim, dim, kernel, dilation=r) for r in self.dilations)
        self.norms = nn.ModuleList(nn.LayerNorm(dim, eps=LN_EPS) for _ in self.dilations)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        h = x
        for conv, norm, r in zip(self.convs, self.norms, self.dilations):
            h = F.pad(h.transpose(1, 2), ((self.kernel - 1) * r, 0))  # [B, d, pad + L]
            h = torch.relu(norm(conv(h).transpose(1, 2)))
            if keep is not None:
                h = h * keep
        return x + h


class NextItNet(Encoder):
    """Residual blocks with the configured dilations (default [1, 4] x 5, kernel 3) over all L
    columns, padding included; u = final_layer(the last column).

    As the authors, NextItNet scores with an item table of its own, freshly initialised, with a
    fixed zero padding row (``reads_pretrained_table`` False: the ranker then builds it so); ``nextitnet_shared_table``
    (deviation) gives it the shared word2vec-initialised table instead.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.reads_pretrained_table = cfg.nextitnet_shared_table
        self.zero_padding = cfg.nextitnet_zero_padding
        self.blocks = nn.ModuleList(
            DilatedResidualBlock(cfg.dim, cfg.nextitnet_kernel, r) for r in cfg.nextitnet_dilations
        )
        self.final_layer = nn.Linear(cfg.dim, cfg.dim)

    def forward(self, seq_emb, item_seq, seq_len, user_emb=None) -> torch.Tensor:
        keep = padding_mask(item_seq).unsqueeze(-1).to(seq_emb.dtype) if self.zero_padding else None
        x = seq_emb if keep is None else seq_emb * keep
        for block in self.blocks:
            x = block(x, keep)
        return self.final_layer(x[:, -1])
