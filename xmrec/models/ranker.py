"""The shared ranker: item table, a history encoder, and the prediction MLP over [u; e_candidate].

Every base model (MF, GRU4Rec, ...) is this ranker with a different encoder; Ada-Ranker adds
its components (``xmrec.models.adaranker``) under ``ranker.ada``. A batch is a dict of tensors:
``item_seq`` [B, L] (left-padded), ``item_seq_len`` [B], ``user`` [B], ``candidates`` [B, N]
(positive first in the data, though the model does not care); the output is logits [B, N].
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xmrec.config import ModelConfig
from xmrec.models.adaranker import AdaComponents, Distribution, ParameterModulation
from xmrec.models.sequence import Dropout, Encoder


class PredictionMLP(nn.Module):
    """dropout -> Linear(2d, d) -> tanh -> Linear(d, 1) on [u; e_n] for each candidate n."""

    def __init__(self, dim: int, dropout: float):
        super().__init__()
        self.drop = Dropout(dropout)
        self.fc1 = nn.Linear(2 * dim, dim)
        self.fc2 = nn.Linear(dim, 1)

    def shapes(self) -> list[tuple[int, ...]]:
        """Shapes of W1, b1, W2, b2: what parameter modulation patches."""
        return [tuple(p.shape) for p in self.tensors()]

    def tensors(self) -> list[torch.Tensor]:
        return [self.fc1.weight, self.fc1.bias, self.fc2.weight, self.fc2.bias]

    def forward(
        self,
        u: torch.Tensor,
        cand_emb: torch.Tensor,
        patcher: ParameterModulation | None = None,
        z: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = self.drop(torch.cat([u.unsqueeze(1).expand(-1, cand_emb.size(1), -1), cand_emb], dim=-1))
        if patcher is None:
            return self.fc2(torch.tanh(self.fc1(x))).squeeze(-1)
        w1, b1, w2, b2 = patcher(z, self.tensors())  # one MLP per list
        h = torch.tanh(torch.einsum("bni,boi->bno", x, w1) + b1.unsqueeze(1))
        return (torch.einsum("bno,bko->bnk", h, w2) + b2.unsqueeze(1)).squeeze(-1)


class Ranker(nn.Module):
    """A base ranker, or an Ada-Ranker when ``cfg.ada``; built by ``xmrec.models.build_model``."""

    def __init__(
        self, cfg: ModelConfig, encoder: Encoder, n_items: int, n_users: int, item_emb: np.ndarray | None = None
    ):
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.item_emb = nn.Embedding(n_items + 1, d)
        self.user_emb = nn.Embedding(n_users + 1, d) if encoder.uses_user else None
        self.encoder = encoder
        self.predictor = PredictionMLP(d, cfg.dropout)
        self.ada = AdaComponents(cfg, self.predictor.shapes(), encoder.uses_history) if cfg.ada else None
        self._init_tables(item_emb if encoder.reads_pretrained_table else None)

    def _init_tables(self, item_emb: np.ndarray | None) -> None:
        """The authors' tables: N(0, 1) (torch's default), or [a zero row; the word2vec vectors]
        when given. Row 0 then starts at zero and trains like any row; it is fixed at zero (a
        padding row) when no vectors are given, in NextItNet's own table, and with the
        ``frozen_padding_row`` deviation (the user table too)."""
        if item_emb is not None:
            want = tuple(self.item_emb.weight.shape)
            if tuple(item_emb.shape) != want:
                raise ValueError(
                    f"item_emb has shape {tuple(item_emb.shape)}, the model needs {want} "
                    "(n_items + 1 rows, cfg.dim columns)"
                )
            with torch.no_grad():  # np.array copies: the table may be a read-only memory map
                self.item_emb.weight.copy_(torch.from_numpy(np.array(item_emb, dtype=np.float32)))
                self.item_emb.weight[0].zero_()
        frozen = self.cfg.frozen_padding_row
        padded = [self.item_emb] if frozen or item_emb is None else []  # no vectors: NextItNet's own table too
        if frozen and self.user_emb is not None:
            padded.append(self.user_emb)
        for table in padded:
            table.padding_idx = 0  # as nn.Embedding(padding_idx=0): row 0 gets no gradient
            with torch.no_grad():
                table.weight[0].zero_()

    def describe(self) -> str:
        """A one-line description, e.g. ``Ada-Ranker GRU4Rec (d=64; extractor, FiLM, patches)``."""
        if self.ada is None:
            return f"base {self.cfg.name} (d={self.cfg.dim})"
        return f"Ada-Ranker {self.cfg.name} (d={self.cfg.dim}; {', '.join(self.ada.parts())})"

    def distribution(self, candidates: torch.Tensor) -> Distribution:
        """The extractor's latent (z, mu, logvar) of each candidate list [B, N] (Ada models only)."""
        if self.ada is None:
            raise ValueError(f"{self.describe()} has no distribution extractor")
        return self.ada.extractor(self.item_emb(candidates))

    def outputs(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``logits`` [B, N], plus ``z``, ``mu``, ``logvar`` [B, d] for Ada models."""
        cand = self.item_emb(batch["candidates"])
        out: dict[str, torch.Tensor] = {}
        z = None
        if self.ada is not None:
            dist = self.ada.extractor(cand)
            z = dist.z
            out.update(z=dist.z, mu=dist.mu, logvar=dist.logvar)
        u = self._user_vector(batch, z)
        out["logits"] = self.predictor(u, cand, self.ada.patcher if self.ada is not None else None, z)
        return out

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.outputs(batch)["logits"]

    def _user_vector(self, batch: dict[str, torch.Tensor], z: torch.Tensor | None) -> torch.Tensor:
        user = self.user_emb(batch["user"]) if self.user_emb is not None else None
        if not self.encoder.uses_history:
            return self.encoder(None, None, None, user)
        seq = batch["item_seq"]
        emb = self.item_emb(seq)
        if self.ada is not None and self.ada.film is not None:
            emb = self.ada.film(emb, z)  # at every column, padding included (the authors' FiLM)
        if self.cfg.mask_padding:
            emb = emb * (seq != 0).unsqueeze(-1)
        return self.encoder(emb, seq, batch["item_seq_len"], user)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Binary cross-entropy over the candidates; the positive is column 0."""
        return list_bce(self(batch))

    def ada_parameter_count(self) -> int:
        return 0 if self.ada is None else sum(p.numel() for p in self.ada.parameters())


def list_bce(logits: torch.Tensor) -> torch.Tensor:
    """Mean BCE of [B, N] logits with label 1 in column 0 and 0 elsewhere."""
    labels = torch.zeros_like(logits, dtype=torch.float32)
    labels[:, 0] = 1.0
    return F.binary_cross_entropy_with_logits(logits.float(), labels)
