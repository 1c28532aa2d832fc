"""LightGCN (He et al., SIGIR 2020) in PyTorch, trained with BPR on a view of the markets.

Embeddings E0 of users and items; each layer multiplies by the symmetrically normalised
bipartite adjacency D^-1/2 A D^-1/2; the final embedding is the mean of layers 0..L. Training
samples (user, positive, negative) triples uniformly over visible interactions (negatives
uniform over items, re-drawn when the user has them); loss BPR + L2 on the batch's E0 rows.
Runs on any device (``xmrec.config.resolve_device``); the seed fixes initialisation and
sampling. The score of a candidate pair is the dot product of the final embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from xmrec.config import resolve_device

from ..candidates import Candidates
from ..graph import GraphView
from .base import Scorer, market_label

__all__ = ["LightGCN", "train_lightgcn"]


def _normalised_adjacency(binary: sp.csr_matrix):
    import torch

    n_users, n_items = binary.shape
    adj = sp.bmat([[None, binary], [binary.T, None]], format="coo")
    deg = np.asarray(adj.sum(axis=1)).ravel()
    inv_sqrt = np.zeros_like(deg)
    np.power(deg, -0.5, out=inv_sqrt, where=deg > 0)
    values = inv_sqrt[adj.row] * adj.data * inv_sqrt[adj.col]
    idx = torch.from_numpy(np.vstack([adj.row, adj.col]).astype(np.int64))
    return torch.sparse_coo_tensor(
        idx, torch.from_numpy(values.astype(np.float32)), (n_users + n_items, n_users + n_items), check_invariants=True
    ).coalesce()


def train_lightgcn(
    binary: sp.csr_matrix,
    dim: int = 64,
    layers: int = 4,
    epochs: int = 60,
    batch_size: int = 16384,
    lr: float = 0.02,
    l2: float = 1e-3,
    seed: int = 2022,
    device: str = "auto",
    threads: int | None = 1,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Final (user, item) embeddings [n_users, dim], [n_items, dim] of LightGCN trained on ``binary``.

    ``threads``: CPU threads for torch while training (restored afterwards); 1 avoids the heavy
    slow-down of spinning threads when other processes share the cores. None keeps torch's setting.
    """
    import torch

    saved_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _train(binary, dim, layers, epochs, batch_size, lr, l2, seed, device, progress)
    finally:
        torch.set_num_threads(saved_threads)


def _train(binary, dim, layers, epochs, batch_size, lr, l2, seed, device, progress):
    import torch

    dev = resolve_device(device)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    binary = sp.csr_matrix(binary)
    n_users, n_items = binary.shape
    adj = _normalised_adjacency(binary).to(dev)
    emb = torch.nn.Parameter((torch.randn(n_users + n_items, dim, generator=gen) * 0.1).to(dev))
    opt = torch.optim.Adam([emb], lr=lr)
    coo = binary.tocoo()
    users, items = coo.row.astype(np.int64), coo.col.astype(np.int64)
    keys = np.sort(users * n_items + items)

    def propagate():
        out, layer = emb, emb
        for _ in range(layers):
            layer = adj @ layer
            out = out + layer
        return out / (layers + 1)

    for _ in tqdm(range(epochs), desc="lightgcn", disable=not progress, leave=False):
        order = rng.permutation(len(users))
        for lo in range(0, len(order), batch_size):
            batch = order[lo : lo + batch_size]
            u, p = users[batch], items[batch]
            n = rng.integers(n_items, size=len(batch))
            for _retry in range(3):  # re-draw negatives the user has seen
                seen = np.isin(u * n_items + n, keys, assume_unique=False)
                if not seen.any():
                    break
                n[seen] = rng.integers(n_items, size=int(seen.sum()))
            ut, pt, nt = (torch.from_numpy(x).to(dev) for x in (u, p + n_users, n + n_users))
            final = propagate()
            pos = (final[ut] * final[pt]).sum(1)
            neg = (final[ut] * final[nt]).sum(1)
            reg = (emb[ut].pow(2).sum() + emb[pt].pow(2).sum() + emb[nt].pow(2).sum()) / (2 * len(batch))
            loss = torch.nn.functional.softplus(neg - pos).mean() + l2 * reg
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        final = propagate().cpu().numpy().astype(np.float64)
    return final[:n_users], final[n_users:]


@dataclass(frozen=True)
class LightGCN(Scorer):
    """LightGCN dot-product score, trained on the users of ``markets`` (None: every market)."""

    markets: tuple[str, ...] | None = None
    dim: int = 64
    layers: int = 4
    epochs: int = 60
    batch_size: int = 16384
    lr: float = 0.02
    l2: float = 1e-3
    seed: int = 2022
    device: str = "auto"
    threads: int | None = 1
    progress: bool = False
    primary_feature: str = "dot"

    @property
    def name(self) -> str:
        return f"lightgcn[{market_label(self.markets)}]"

    def _features(self, view: GraphView, cands: Candidates) -> dict[str, np.ndarray]:
        binary = view.restrict(self.markets)
        rows, cols = binary.nonzero()
        active_users = np.unique(np.concatenate([rows, cands.users]))
        active_items = np.unique(np.concatenate([cols, cands.items.ravel()]))
        sub = binary[active_users][:, active_items]  # train on the connected part only
        user_emb, item_emb = train_lightgcn(
            sub,
            dim=self.dim,
            layers=self.layers,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            l2=self.l2,
            seed=self.seed,
            device=self.device,
            threads=self.threads,
            progress=self.progress,
        )
        urow = np.searchsorted(active_users, cands.users)
        icol = np.searchsorted(active_items, cands.items)
        return {"dot": np.einsum("nd,nkd->nk", user_emb[urow], item_emb[icol])}
