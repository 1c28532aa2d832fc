"""SR-GNN (Wu et al., 2019): a gated graph step over the session graph, then attention readout."""

from __future__ import annotations

import torch
from torch import nn

from xmrec.config import ModelConfig
from xmrec.models.sequence import Encoder, padding_mask


def session_graph(
    item_seq: torch.Tensor, count_repeats: bool = False, skip_alias0: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes and transitions of each history.

    Returns ``alias`` [B, L] (node index of each column: the rank of its id among the history's
    sorted distinct ids, so padding, id 0, is node 0 of a padded history) and ``edges`` [B, L, L]
    with ``edges[b, u, v]`` = 1 when some consecutive pair of real items goes u -> v (the
    authors: a repeated transition counts once; ``count_repeats``: the number of times).
    ``skip_alias0`` reproduces the authors' defect: every edge of node 0 is dropped, which in an
    unpadded history is a real item.
    """
    b, length = item_seq.shape
    ids, order = item_seq.sort(dim=1)
    new = torch.ones_like(ids, dtype=torch.bool)
    new[:, 1:] = ids[:, 1:] != ids[:, :-1]
    alias = torch.empty_like(order).scatter_(1, order, new.long().cumsum(1) - 1)
    src, dst = alias[:, :-1], alias[:, 1:]
    real = padding_mask(item_seq)
    keep = (src != 0) & (dst != 0) if skip_alias0 else real[:, :-1] & real[:, 1:]
    flat = src * length + dst
    edges = torch.zeros(b, length * length, device=item_seq.device).scatter_add_(1, flat, keep.float())
    edges = edges.view(b, length, length)
    return alias, edges if count_repeats else (edges > 0).float()


class GatedGraphCell(nn.Module):
    """One step of the authors' gated GNN over node states H [B, n, d].

    m_in = A_in . edge_in(H) + b_iah, m_out = A_out . edge_out(H) + b_ioh; gates r, i, n from
    w_ih [m_in; m_out] + b_ih and w_hh H + b_hh; H' = (1 - i) * H + i * n: the gate weighs the new
    candidate (torch's GRUCell weighs the old state). The cell's tensors start N(0, 1), as the authors'.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.edge_in, self.edge_out = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.b_iah, self.b_ioh = nn.Parameter(torch.randn(dim)), nn.Parameter(torch.randn(dim))
        self.w_ih, self.w_hh = nn.Parameter(torch.randn(3 * dim, 2 * dim)), nn.Parameter(torch.randn(3 * dim, dim))
        self.b_ih, self.b_hh = nn.Parameter(torch.randn(3 * dim)), nn.Parameter(torch.randn(3 * dim))

    def forward(self, nodes: torch.Tensor, a_in: torch.Tensor, a_out: torch.Tensor) -> torch.Tensor:
        m_in = a_in @ self.edge_in(nodes) + self.b_iah
        m_out = a_out @ self.edge_out(nodes) + self.b_ioh
        gi = torch.cat([m_in, m_out], dim=-1) @ self.w_ih.t() + self.b_ih
        gh = nodes @ self.w_hh.t() + self.b_hh
        i_r, i_i, i_n = gi.chunk(3, -1)
        h_r, h_i, h_n = gh.chunk(3, -1)
        reset, gate = torch.sigmoid(i_r + h_r), torch.sigmoid(i_i + h_i)
        new = torch.tanh(i_n + reset * h_n)
        return (1 - gate) * nodes + gate * new


class SRGNN(Encoder):
    """One gated GNN step with degree-normalised in/out adjacency; u = W [a; h_last].

    a = sum_t alpha_t h_t over real columns, alpha_t = q . sigmoid(W1 h_last + W2 h_t). Node states
    start from the (possibly FiLM-modulated) history embeddings. The kit keeps the edges of node 0
    in an unpadded history (the authors drop them: ``srgnn_skip_alias0``).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        d = cfg.dim
        self.count_repeats, self.skip_alias0 = cfg.srgnn_count_repeats, cfg.srgnn_skip_alias0
        self.gnn = GatedGraphCell(d)
        self.linear_one = nn.Linear(d, d)
        self.linear_two = nn.Linear(d, d)
        self.linear_three = nn.Linear(d, 1, bias=False)
        self.linear_transform = nn.Linear(2 * d, d)

    def forward(self, seq_emb, item_seq, seq_len, user_emb=None) -> torch.Tensor:
        b, length, d = seq_emb.shape
        alias, edges = session_graph(item_seq, self.count_repeats, self.skip_alias0)
        index = alias.unsqueeze(-1).expand(-1, -1, d)
        nodes = seq_emb.new_zeros(b, length, d).scatter_reduce(1, index, seq_emb, "mean", include_self=False)
        a_out = edges / edges.sum(2, keepdim=True).clamp(min=1)
        incoming = edges.transpose(1, 2)
        a_in = incoming / incoming.sum(2, keepdim=True).clamp(min=1)
        steps = self.gnn(nodes, a_in, a_out).gather(1, index)  # [B, L, d] hidden state of each column
        last = steps[:, -1]
        alpha = self.linear_three(torch.sigmoid(self.linear_one(last).unsqueeze(1) + self.linear_two(steps)))
        glob = (alpha * padding_mask(item_seq).unsqueeze(-1) * steps).sum(1)
        return self.linear_transform(torch.cat([glob, last], dim=-1))
