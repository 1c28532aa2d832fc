"""SASRec (Kang & McAuley, 2018): causal self-attention over the history, read at the newest item."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xmrec.config import ModelConfig
from xmrec.models.sequence import Dropout, Encoder, padding_mask


class CausalSelfAttentionBlock(nn.Module):
    """Pre-LayerNorm block: x + dropout(attention(LN x)), then x + dropout(feed-forward(LN x)).
    Dropout on the residual branches only: on CPU attention-weight masks cost more than attention."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        if dim % heads:
            raise ValueError(f"SASRec: dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.ln_attn = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln_ff = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, queries: int | None = None) -> torch.Tensor:
        """The block's output at the last ``queries`` positions (default: all of them)."""
        b, length, d = x.shape
        q, k, v = self.qkv(self.ln_attn(x)).view(b, length, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        n = queries or length
        att = F.scaled_dot_product_attention(q[:, :, -n:], k, v, attn_mask=allowed[:, -n:].unsqueeze(1))
        x = x[:, -n:] + self.drop(self.proj(att.transpose(1, 2).reshape(b, n, d)))
        return x + self.drop(self.ff(self.ln_ff(x)))


class SASRec(Encoder):
    """Learned positions (counted back from the newest item), causal + padding mask, last position.

    A query may attend to earlier real items and to itself; padding positions are zeroed after
    each block, so they never reach a real position. The table holds ``cfg.max_seq_len`` positions.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.positions = nn.Embedding(cfg.max_seq_len, cfg.dim)
        self.drop = Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(
            CausalSelfAttentionBlock(cfg.dim, cfg.sasrec_heads, cfg.dropout) for _ in range(cfg.sasrec_layers)
        )
        self.ln_out = nn.LayerNorm(cfg.dim)

    def forward(self, seq_emb, item_seq, seq_len, user_emb=None) -> torch.Tensor:
        length = item_seq.size(1)
        if length > self.positions.num_embeddings:
            raise ValueError(
                f"SASRec: history length {length} exceeds the config's max_seq_len {self.positions.num_embeddings}"
            )
        real = padding_mask(item_seq)
        keep = real.unsqueeze(-1).to(seq_emb.dtype)
        back = torch.arange(length - 1, -1, -1, device=item_seq.device)  # 0 = newest item
        x = self.drop(seq_emb + self.positions(back)) * keep
        idx = torch.arange(length, device=item_seq.device)
        causal = idx.unsqueeze(1) >= idx.unsqueeze(0)  # [L, L] query i sees keys j <= i
        allowed = causal & (real.unsqueeze(1) | torch.eye(length, dtype=torch.bool, device=x.device))
        for block in self.blocks[:-1]:
            x = block(x, allowed) * keep
        return self.ln_out(self.blocks[-1](x, allowed, queries=1)[:, -1])  # only the newest position is read
