"""Typed, frozen configuration for every step of the kit, plus the data-path and device resolvers.

Defaults reproduce the papers (Ada-Ranker, SIGIR 2022; WSDM Cup 2022 XMRec winner). Ablations
derive variants with ``dataclasses.replace``; widgets and notebook parameters map onto fields.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

__all__ = [
    "DataConfig",
    "SamplerConfig",
    "EmbeddingConfig",
    "ModelConfig",
    "TrainConfig",
    "project_root",
    "data_dir",
    "markets_dir",
    "resolve_device",
    "asdict",
    "replace",
    "field_docs",
]


@dataclass(frozen=True)
class DataConfig:
    """Filtering, id remapping and leave-last-out instances (docs/DESIGN.md section 3)."""

    min_user_interactions: int = 10  # keep users with MORE than this many interactions
    small_category_max_items: int = 200  # categories with at most this many items merge into one id
    n_targets: int = 10  # the last n interactions of a user are targets: train, then valid, then test
    n_valid: int = 1  # targets for validation (taken just before the test targets)
    n_test: int = 1  # targets for test (the very last interactions)
    max_seq_len: int = 200  # history truncated to the last L items, left-padded with 0 (ML-10M: 200)
    instance_per_category: bool = True  # one instance per category of the target item (as the original)
    instance_per_raw_label: bool = True  # per RAW label (as the original): labels merged into one id repeat that anchor


@dataclass(frozen=True)
class SamplerConfig:
    """Negative sampling for candidate lists of 1 positive + n_neg negatives."""

    kind: str = "mixer"  # "mixer" (distribution-mixer), "uniform", "popularity" or "category"
    n_neg: int = 19  # negatives per list (N = 1 + n_neg candidates)
    max_extra_categories: int = 2  # mixer: k ~ U{0..max} extra categories beside the anchor
    popularity_prob: float = 0.5  # mixer: chance that a list draws from the popularity-weighted pool
    max_rounds: int = 50  # rejection rounds before giving up with a clear error
    seed: int = 2022  # numpy Generator seed


@dataclass(frozen=True)
class EmbeddingConfig:
    """word2vec item embeddings (gensim), trained on training interactions only."""

    dim: int = 64  # vector size d
    window: int = 10  # context window
    min_count: int = 3  # items seen fewer times get a zero vector
    sg: int = 0  # 0 = CBOW (as the original), 1 = skip-gram
    epochs: int = 5  # passes over the sentences
    seed: int = 2022  # gensim seed (with one worker, training is deterministic)
    workers: int = 1  # threads; more than one makes gensim non-deterministic


@dataclass(frozen=True)
class ModelConfig:
    """A ranker: base encoder plus the optional Ada-Ranker components (docs/DESIGN.md sections 6 and 9)."""

    name: str = "GRU4Rec"  # MF, GRU4Rec, SASRec, NARM, NextItNet, SRGNN or SHAN
    dim: int = 64  # embedding size d
    dropout: float = 0.4  # dropout in the prediction MLP (and encoders that use it)
    ada: bool = False  # add the Ada-Ranker components
    use_input_modulation: bool = True  # Ada: FiLM on the history embeddings
    use_param_modulation: bool = True  # Ada: patch the prediction MLP from a pool
    n_patches: int = 10  # Ada: size of the (key, patch) pool per MLP tensor
    mean_z_at_eval: bool = False  # deviation: use mu instead of a sample of z at evaluation
    film_per_dim: bool = False  # deviation: gamma/beta per dimension instead of a scalar
    identity_patches: bool = False  # deviation: patches start at identity (Ada starts as its base)
    identity_film: bool = False  # deviation: FiLM starts at identity (gamma = 1 + f(z), beta = f(z), f zero at start)
    max_seq_len: int = 200  # SASRec position table size; the trainer sets it to the dataset's history length
    sasrec_layers: int = 2  # SASRec transformer blocks
    sasrec_heads: int = 2  # SASRec attention heads
    nextitnet_dilations: tuple[int, ...] = (1, 4) * 5  # NextItNet residual block dilations
    nextitnet_kernel: int = 3  # NextItNet kernel size
    shan_short_items: int = 2  # SHAN short-term window (last k items)


@dataclass(frozen=True)
class TrainConfig:
    """The training loop: modes, optimiser, early stopping, device."""

    mode: str = "base"  # "base", "ada" (end-to-end) or "finetune" (from a base checkpoint)
    freeze: bool = False  # finetune: train only the Ada-Ranker parameters
    init: str | None = None  # finetune: path of the base checkpoint to start from
    lr: float = 1e-3  # Adam learning rate
    batch_size: int = 1024  # paper: 1024 base / 2048 Ada; use ~256 on small data
    epochs: int = 100  # upper bound; early stopping usually ends sooner
    patience: int = 10  # epochs without a better validation GAUC before stopping
    weight_decay: float = 0.0  # Adam weight decay
    seed: int = 2022  # torch / numpy seed
    device: str = "auto"  # "auto" (cuda > mps > cpu), or an explicit torch device string
    amp: bool = False  # automatic mixed precision (CUDA only)
    compile: bool = False  # torch.compile the model (CUDA only)
    eval_batch_size: int = 4096  # batch size for validation and test scoring

    def __post_init__(self):
        for name in ("epochs", "patience", "batch_size", "eval_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be a whole number >= 1, got {value!r}")
        if not self.lr >= 0 or not self.weight_decay >= 0:
            raise ValueError(f"TrainConfig.lr and weight_decay must be >= 0, got {self.lr!r}, {self.weight_decay!r}")


def field_docs(cls) -> dict[str, str]:
    """The one-line comment of each field of a config class, read from this file (for widgets/docs)."""
    import inspect
    import re

    src = inspect.getsource(cls)
    docs = {}
    for f in fields(cls):
        m = re.search(rf"^\s+{f.name}:[^#\n]*#\s*(.+)$", src, re.M)
        docs[f.name] = m.group(1).strip() if m else ""
    return docs


def project_root() -> Path:
    """The repository root (the folder holding the ``xmrec`` package)."""
    return Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """Cache folder for downloads and processed data: ``$XMREC_DATA_DIR``, else ``<root>/data``."""
    env = os.environ.get("XMREC_DATA_DIR")
    return Path(env).expanduser() if env else project_root() / "data"


def markets_dir() -> Path | None:
    """Folder of the WSDM Cup 2022 XMRec market folders (t1/, s1/, ...), or None when absent.

    ``$XMREC_MARKETS_DIR`` wins; otherwise ``../shared/data/xmrec-wsdm22`` beside the project,
    then ``<data_dir>/xmrec-wsdm22``.
    """
    env = os.environ.get("XMREC_MARKETS_DIR")
    if env:
        return Path(env).expanduser()
    for cand in (project_root().parent / "shared" / "data" / "xmrec-wsdm22", data_dir() / "xmrec-wsdm22"):
        if cand.is_dir():
            return cand
    return None


def resolve_device(device: str = "auto"):
    """``"auto"`` picks cuda, then mps, then cpu; any other string is passed to ``torch.device``."""
    import torch

    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
