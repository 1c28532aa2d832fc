"""SASRec (Kang & McAuley, 2018): causal self-attention over the history, read at the newest column."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xmrec.config import ModelConfig
from xmrec.models.sequence import Dropout, Encoder, padding_mask

MASKED = -10000.0  # the authors' additive mask: masked weights underflow to exactly 0 in float32


class TransformerBlock(nn.Module):
    """The authors' post-LayerNorm block: a = LN(x + drop(dense(MHA(x)))), then
    LN(a + drop(dense_2(act(dense_1(a))))), with dropout on the attention probabilities.

    ``pre_ln`` (deviation): x + drop(dense(MHA(LN x))), then x + drop(FF(LN x)).
    Q, K and V are one Linear of 3d outputs (the authors' three, stacked in that order).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.dim
        if d % cfg.sasrec_heads:
            raise ValueError(f"SASRec: dim {d} is not divisible by heads {cfg.sasrec_heads}")
        self.heads, self.pre_ln, self.attn_dropout = cfg.sasrec_heads, cfg.sasrec_pre_ln, cfg.sasrec_attn_dropout
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln_attn = nn.LayerNorm(d, eps=cfg.sasrec_ln_eps)
        act = nn.GELU() if cfg.sasrec_act == "gelu" else nn.ReLU()
        self.ff = nn.Sequential(nn.Linear(d, cfg.sasrec_inner), act, nn.Linear(cfg.sasrec_inner, d))
        self.ln_ff = nn.LayerNorm(d, eps=cfg.sasrec_ln_eps)
        self.drop = Dropout(cfg.sasrec_hidden_dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, queries: int | None = None) -> torch.Tensor:
        """The block's output at the last ``queries`` positions (default: all); ``mask`` is additive [B, L, L]."""
        b, length, d = x.shape
        inp = self.ln_attn(x) if self.pre_ln else x
        q, k, v = self.qkv(inp).view(b, length, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        n = queries or length
        p = self.attn_dropout if self.training else 0.0
        att = F.scaled_dot_product_attention(q[:, :, -n:], k, v, attn_mask=mask[:, -n:].unsqueeze(1), dropout_p=p)
        a = self.drop(self.proj(att.transpose(1, 2).reshape(b, n, d)))
        if self.pre_ln:
            x = x[:, -n:] + a
            return x + self.drop(self.ff(self.ln_ff(x)))
        x = self.ln_attn(x[:, -n:] + a)
        return self.ln_ff(x + self.drop(self.ff(x)))


class SASRec(Encoder):
    """h0 = drop(LN(e + p)) with learned positions indexing the columns of the padded window from
    the left (``sasrec_positions_from_newest``: from the newest item); causal attention that never
    looks at a padded key; u = the last block's output at the newest column.

    Only the newest column of the last block is computed (the only one read: the same function).
    ``sasrec_pre_ln`` (deviation) has no input LayerNorm and a final one after the last block.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.pre_ln, self.from_newest = cfg.sasrec_pre_ln, cfg.sasrec_positions_from_newest
        self.positions = nn.Embedding(cfg.max_seq_len, cfg.dim)
        self.norm = nn.LayerNorm(cfg.dim, eps=cfg.sasrec_ln_eps)  # input LN, or the final one when pre-LN
        self.drop = Dropout(cfg.sasrec_hidden_dropout)
        self.blocks = nn.ModuleList(TransformerBlock(cfg) for _ in range(cfg.sasrec_layers))

    def forward(self, seq_emb, item_seq, seq_len, user_emb=None) -> torch.Tensor:
        length = item_seq.size(1)
        if length > self.positions.num_embeddings:
            raise ValueError(
                f"SASRec: history length {length} exceeds the config's max_seq_len {self.positions.num_embeddings}"
            )
        idx = torch.arange(length, device=item_seq.device)
        x = seq_emb + self.positions(idx.flip(0) if self.from_newest else idx)
        x = self.drop(x if self.pre_ln else self.norm(x))
        allowed = (idx.unsqueeze(1) >= idx.unsqueeze(0)) & padding_mask(item_seq).unsqueeze(1)  # [B, L, L]
        mask = torch.zeros(allowed.shape, dtype=x.dtype, device=x.device).masked_fill_(~allowed, MASKED)
        for block in self.blocks[:-1]:
            x = block(x, mask)
        out = self.blocks[-1](x, mask, queries=1)[:, -1]
        return self.norm(out) if self.pre_ln else out
