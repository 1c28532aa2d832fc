"""SR-GNN (Wu et al., 2019): a gated graph step over the session graph, then attention readout."""

from __future__ import annotations

import torch
from torch import nn

from xmrec.config import ModelConfig
from xmrec.models.sequence import Encoder, padding_mask


def session_graph(item_seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes and transition counts of each history.

    Returns ``alias`` [B, L] (node index of each position; distinct items are distinct nodes)
    and ``counts`` [B, L, L] with ``counts[b, u, v]`` = number of u -> v transitions between
    consecutive real items. Every transition is kept, repeats included.
    """
    b, length = item_seq.shape
    ids, order = item_seq.sort(dim=1)
    new = torch.ones_like(ids, dtype=torch.bool)
    new[:, 1:] = ids[:, 1:] != ids[:, :-1]
    alias = torch.empty_like(order).scatter_(1, order, new.long().cumsum(1) - 1)
    real = padding_mask(item_seq)
    edge = (real[:, :-1] & real[:, 1:]).float()
    flat = alias[:, :-1] * length + alias[:, 1:]
    counts = torch.zeros(b, length * length, device=item_seq.device).scatter_add_(1, flat, edge)
    return alias, counts.view(b, length, length)


class SRGNN(Encoder):
    """One gated GNN step with degree-normalised in/out adjacency; u = W [s_last; s_global].

    s_global = sum_j alpha_j h_j over real positions, alpha_j = q^T sigmoid(W1 h_last + W2 h_j).
    Node embeddings are taken from the (possibly FiLM-modulated) history embeddings.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        d = cfg.dim
        self.edge_in = nn.Linear(d, d)
        self.edge_out = nn.Linear(d, d)
        self.cell = nn.GRUCell(2 * d, d)
        self.w_last = nn.Linear(d, d, bias=False)
        self.w_step = nn.Linear(d, d)
        self.q = nn.Linear(d, 1, bias=False)
        self.out = nn.Linear(2 * d, d)

    def forward(self, seq_emb, item_seq, seq_len, user_emb=None) -> torch.Tensor:
        b, length, d = seq_emb.shape
        alias, counts = session_graph(item_seq)
        index = alias.unsqueeze(-1).expand(-1, -1, d)
        nodes = seq_emb.new_zeros(b, length, d).scatter_reduce(1, index, seq_emb, "mean", include_self=False)
        a_out = counts / counts.sum(2, keepdim=True).clamp(min=1)
        incoming = counts.transpose(1, 2)
        a_in = incoming / incoming.sum(2, keepdim=True).clamp(min=1)
        message = torch.cat([a_in @ self.edge_in(nodes), a_out @ self.edge_out(nodes)], dim=-1)
        nodes = self.cell(message.reshape(-1, 2 * d), nodes.reshape(-1, d)).view(b, length, d)
        steps = nodes.gather(1, index)  # [B, L, d] hidden state of each position
        last = steps[:, -1]
        alpha = self.q(torch.sigmoid(self.w_last(last).unsqueeze(1) + self.w_step(steps)))
        glob = (alpha * padding_mask(item_seq).unsqueeze(-1) * steps).sum(1)
        return self.out(torch.cat([last, glob], dim=-1))
