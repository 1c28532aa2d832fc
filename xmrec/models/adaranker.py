"""Ada-Ranker (Fan et al., SIGIR 2022): adapt a ranker to the item distribution of each candidate list.

Three parts, each switchable (``ModelConfig``):

- ``DistributionExtractor``: a neural-process encoder that reads the candidates' embeddings and
  returns a latent z [B, d] describing the list's distribution (mean-pooled: candidate order
  does not matter).
- ``InputModulation`` (FiLM): gamma(z) * e + beta(z) on the history embeddings.
- ``ParameterModulation`` ("model patching"): per prediction-MLP tensor, a pool of (key, patch)
  pairs mixed by attention on z; weights multiply by the mixed patch, biases add it.

Extra parameters at d = 64 with N patches = 10 (scalar FiLM): extractor 20,800 + FiLM 130 +
patching 85,770 (keys 4 x 10 x 64; patches 10 x (8192 + 64 + 64 + 1)) = 106,700.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from xmrec.config import ModelConfig
from xmrec.models.sequence import Dropout


class Distribution(NamedTuple):
    """The latent of each candidate list: a draw ``z`` and the Gaussian it came from."""

    z: torch.Tensor  # [B, d]
    mu: torch.Tensor  # [B, d]
    logvar: torch.Tensor  # [B, d]


class DistributionExtractor(nn.Module):
    """r_n = MLP(e_n); r = mean_n r_n; h = ReLU(W r); z = mu(h) + exp(logvar(h) / 2) * eps.

    z is sampled in training and, as in the paper, at evaluation too unless ``mean_at_eval``.
    """

    def __init__(self, dim: int, dropout: float, mean_at_eval: bool = False):
        super().__init__()
        self.mean_at_eval = mean_at_eval
        self.item_mlp = nn.Sequential(nn.Linear(dim, dim), Dropout(dropout), nn.ReLU(), nn.Linear(dim, dim))
        self.hidden = nn.Linear(dim, dim)
        self.mu = nn.Linear(dim, dim)
        self.logvar = nn.Linear(dim, dim)

    def forward(self, cand_emb: torch.Tensor) -> Distribution:
        h = torch.relu(self.hidden(self.item_mlp(cand_emb).mean(dim=1)))
        mu, logvar = self.mu(h), self.logvar(h)
        if not self.training and self.mean_at_eval:
            return Distribution(mu, mu, logvar)
        return Distribution(mu + torch.exp(0.5 * logvar) * torch.randn_like(mu), mu, logvar)


class InputModulation(nn.Module):
    """FiLM on history embeddings: e -> gamma(z) * e + beta(z).

    gamma and beta are one scalar per list (paper) or one value per dimension (``per_dim``).
    With ``identity`` gamma = 1 + f(z) and beta = f'(z) with f, f' zero at start (no change).
    """

    def __init__(self, dim: int, per_dim: bool = False, identity: bool = False):
        super().__init__()
        out = dim if per_dim else 1
        self.gamma = nn.Linear(dim, out)
        self.beta = nn.Linear(dim, out)
        self.offset = 1.0 if identity else 0.0
        if identity:
            for layer in (self.gamma, self.beta):
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    def coefficients(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """gamma(z) and beta(z), each [B, 1] (or [B, d] with ``per_dim``)."""
        return self.offset + self.gamma(z), self.beta(z)

    def forward(self, seq_emb: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.coefficients(z)
        return gamma.unsqueeze(1) * seq_emb + beta.unsqueeze(1)


class ParameterModulation(nn.Module):
    """One pool of ``n_patches`` (key, patch) pairs per modulated tensor.

    For tensor t: a = softmax(z K_t^T) [B, n]; P = a @ patches_t [B, *shape]; a weight (2-D
    tensor) becomes W * P, a bias (1-D) becomes b + P: one set of MLP parameters per list.
    Faithful start (the authors' code): each pool, seen as an (n_patches, numel) matrix, and its
    keys (n_patches, d) are Xavier-uniform, e.g. +-0.027 for the W1 pool at d = 64 and 10 patches,
    so W * P starts near zero. ``identity``: ones for weights, zeros for biases (Ada starts as its base).
    """

    def __init__(self, shapes: Sequence[tuple[int, ...]], dim: int, n_patches: int, identity: bool = False):
        super().__init__()
        self.shapes = [tuple(s) for s in shapes]
        self.keys = nn.ParameterList(nn.Parameter(_xavier(n_patches, dim)) for _ in shapes)
        patches = []
        for shape in self.shapes:
            if identity:
                start = torch.ones(n_patches, *shape) if len(shape) > 1 else torch.zeros(n_patches, *shape)
            else:
                start = _xavier(n_patches, math.prod(shape)).view(n_patches, *shape)
            patches.append(nn.Parameter(start))
        self.patches = nn.ParameterList(patches)

    def attention(self, z: torch.Tensor) -> list[torch.Tensor]:
        """Per modulated tensor, the weights [B, n_patches] each list puts on the pool's patches."""
        return [torch.softmax(z @ keys.t(), dim=-1) for keys in self.keys]

    def forward(self, z: torch.Tensor, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Per-list versions [B, *shape] of ``params`` (same order as the shapes)."""
        out = []
        for param, shape, weights, patches in zip(params, self.shapes, self.attention(z), self.patches):
            if tuple(param.shape) != shape:
                raise ValueError(f"parameter modulation built for {shape}, got {tuple(param.shape)}")
            mix = weights @ patches.flatten(1)  # [B, prod(shape)]
            mix = mix.view(-1, *shape)
            out.append(param * mix if len(shape) > 1 else param + mix)
        return out


def _xavier(rows: int, cols: int) -> torch.Tensor:
    """A (rows, cols) matrix drawn Xavier-uniform: U(-b, b) with b = sqrt(6 / (rows + cols))."""
    out = torch.empty(rows, cols)
    nn.init.xavier_uniform_(out)
    return out


class AdaComponents(nn.Module):
    """The Ada-Ranker additions of one ranker, kept under one name (``ranker.ada``) so that
    checkpoints, freezing and parameter counts can tell them from the base model."""

    def __init__(self, cfg: ModelConfig, mlp_shapes: Sequence[tuple[int, ...]], modulate_input: bool):
        super().__init__()
        self.extractor = DistributionExtractor(cfg.dim, cfg.dropout, cfg.mean_z_at_eval)
        self.film = (
            InputModulation(cfg.dim, cfg.film_per_dim, cfg.identity_film)
            if cfg.use_input_modulation and modulate_input
            else None
        )
        self.patcher = (
            ParameterModulation(mlp_shapes, cfg.dim, cfg.n_patches, cfg.identity_patches)
            if cfg.use_param_modulation
            else None
        )

    def parts(self) -> list[str]:
        """Names of the components present, for messages."""
        return (
            ["extractor"]
            + (["FiLM"] if self.film is not None else [])
            + (["patches"] if self.patcher is not None else [])
        )
