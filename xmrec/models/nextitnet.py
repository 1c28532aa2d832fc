"""NextItNet (Yuan et al., 2019): stacked dilated causal convolutions with residual blocks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xmrec.config import ModelConfig
from xmrec.models.sequence import Encoder, padding_mask


class DilatedResidualBlock(nn.Module):
    """x + ReLU(LN(conv_2r(ReLU(LN(conv_r(x)))))) with causal (left-only) padding.

    Padding positions are zeroed after each convolution, so a real position sees exactly the
    zeros a sequence of its true length would see: no padding value leaks in.
    """

    def __init__(self, dim: int, kernel: int, dilation: int):
        super().__init__()
        self.kernel = kernel
        self.dilations = (dilation, 2 * dilation)
        self.convs = nn.ModuleList(nn.Conv1d(dim, dim, kernel, dilation=r) for r in self.dilations)
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in self.dilations)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        h = x
        for conv, norm, r in zip(self.convs, self.norms, self.dilations):
            h = F.pad(h.transpose(1, 2), ((self.kernel - 1) * r, 0))  # [B, d, pad + L]
            h = torch.relu(norm(conv(h).transpose(1, 2))) * keep
        return x + h


class NextItNet(Encoder):
    """Residual blocks with the configured dilations (default [1, 4] x 5, kernel 3); newest position.

    Reads the shared (word2vec-initialised) item table like every other encoder; the original
    replaced it with a fresh table.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.blocks = nn.ModuleList(
            DilatedResidualBlock(cfg.dim, cfg.nextitnet_kernel, r) for r in cfg.nextitnet_dilations
        )

    def forward(self, seq_emb, item_seq, seq_len, user_emb=None) -> torch.Tensor:
        keep = padding_mask(item_seq).unsqueeze(-1).to(seq_emb.dtype)
        x = seq_emb * keep
        for block in self.blocks:
            x = block(x, keep)
        return x[:, -1]
