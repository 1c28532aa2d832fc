"""Typed, frozen configuration for every step of the kit, plus the data-path and device resolvers.

Defaults reproduce the papers (Ada-Ranker, SIGIR 2022; WSDM Cup 2022 XMRec winner). Ablations
derive variants with ``dataclasses.replace``; widgets and notebook parameters map onto fields.
"""

from __future__ import annotations

import os
import re
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
    "parity_dir",
    "resolve_device",
    "parse_device",
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

    def __post_init__(self):
        _whole_numbers(self, ("n_valid", "n_test", "max_seq_len"), 1)
        _whole_numbers(self, ("min_user_interactions", "small_category_max_items"), 0)
        if self.n_targets < self.n_valid + self.n_test:
            raise ValueError(
                f"DataConfig: need n_targets >= n_valid + n_test, got {self.n_targets}, {self.n_valid}, {self.n_test}"
            )


@dataclass(frozen=True)
class SamplerConfig:
    """Negative sampling for candidate lists of 1 positive + n_neg negatives."""

    kind: str = "mixer"  # "mixer" (distribution-mixer), "uniform", "popularity" or "category"
    n_neg: int = 19  # negatives per list (N = 1 + n_neg candidates)
    max_extra_categories: int = 2  # mixer: k ~ U{0..max} extra categories beside the anchor
    popularity_prob: float = 0.5  # mixer: chance that a list draws from the popularity-weighted pool
    max_rounds: int = 50  # rejection rounds before giving up with a clear error
    seed: int = 2022  # numpy Generator seed

    def __post_init__(self):
        from xmrec.data.sampling import ALL_SAMPLERS

        if self.kind not in ALL_SAMPLERS:
            raise ValueError(f"SamplerConfig.kind must be one of {ALL_SAMPLERS}, got {self.kind!r}")
        _whole_numbers(self, ("n_neg",), 1)
        _whole_numbers(self, ("max_extra_categories", "max_rounds"), 0)
        if not 0 <= self.popularity_prob <= 1:
            raise ValueError(f"SamplerConfig.popularity_prob must lie in [0, 1], got {self.popularity_prob!r}")


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

    def __post_init__(self):
        _whole_numbers(self, ("dim", "window", "min_count", "epochs", "workers"), 1)
        if self.sg not in (0, 1):
            raise ValueError(f"EmbeddingConfig.sg must be 0 (CBOW) or 1 (skip-gram), got {self.sg!r}")


@dataclass(frozen=True)
class ModelConfig:
    """A ranker: base encoder plus the optional Ada-Ranker components (docs/DESIGN.md sections 6 and 9).

    The defaults compute the authors' function (checked against their code's reference numbers,
    ``tests/test_authors_parity.py``); every field marked "deviation" is off by default and listed in
    docs/DESIGN.md section 9 with what the authors do and why the switch exists.
    """

    name: str = "GRU4Rec"  # MF, GRU4Rec, SASRec, NARM, NextItNet, SRGNN or SHAN
    dim: int = 64  # embedding size d
    dropout: float = 0.4  # dropout of the MLP, the extractor, GRU4Rec's and NARM's inputs, NARM's readout
    ada: bool = False  # add the Ada-Ranker components
    use_input_modulation: bool = True  # Ada: FiLM on the history embeddings
    use_param_modulation: bool = True  # Ada: patch the prediction MLP from a pool
    n_patches: int = 10  # Ada: size of the (key, patch) pool per MLP tensor
    mean_z_at_eval: bool = False  # deviation: use mu instead of a sample of z at evaluation
    film_per_dim: bool = False  # deviation: gamma/beta per dimension instead of a scalar
    identity_patches: bool = False  # deviation: patches start at identity (Ada starts as its base)
    identity_film: bool = False  # deviation: FiLM starts at identity (gamma = 1 + f(z), beta = f(z), f zero at start)
    frozen_padding_row: bool = False  # deviation: row 0 of the item and user tables stays zero and untrained
    mask_padding: bool = False  # deviation: history embeddings are zero at padding, after FiLM too
    right_align_history: bool = False  # deviation: GRU4Rec and NARM read the real items first, stop at the last
    max_seq_len: int = 200  # SASRec position table size; the trainer sets it to the dataset's history length
    sasrec_layers: int = 2  # SASRec transformer blocks
    sasrec_heads: int = 2  # SASRec attention heads
    sasrec_inner: int = 256  # SASRec feed-forward inner size
    sasrec_act: str = "gelu"  # SASRec feed-forward activation: "gelu" (exact, erf) or "relu"
    sasrec_ln_eps: float = 1e-12  # SASRec LayerNorm epsilon
    sasrec_hidden_dropout: float = 0.5  # SASRec dropout on the input and on each sublayer's output
    sasrec_attn_dropout: float = 0.5  # SASRec dropout on the attention probabilities
    sasrec_pre_ln: bool = False  # deviation: pre-LayerNorm blocks and a final LayerNorm (no input LayerNorm)
    sasrec_positions_from_newest: bool = False  # deviation: position 0 is the newest item, not the left column
    narm_hidden: int = 128  # NARM GRU hidden size
    narm_sigmoid_attention: bool = False  # deviation: the NARM paper's sigmoid, not a softmax over features
    nextitnet_dilations: tuple[int, ...] = (1, 4) * 5  # NextItNet residual block dilations
    nextitnet_kernel: int = 3  # NextItNet kernel size
    nextitnet_shared_table: bool = False  # deviation: NextItNet reads the shared word2vec table, not its own
    nextitnet_zero_padding: bool = False  # deviation: NextItNet zeroes padded columns after every convolution
    srgnn_count_repeats: bool = False  # deviation: SRGNN edges weighted by how often a transition repeats
    srgnn_skip_alias0: bool = False  # the authors' defect: SRGNN drops the edges of node 0 (a real item if unpadded)
    shan_short_items: int = 2  # SHAN short-term window (last k items)

    def __post_init__(self):
        _whole_numbers(self, ("dim", "n_patches", "sasrec_layers", "sasrec_heads", "sasrec_inner", "narm_hidden"), 1)
        _whole_numbers(self, ("nextitnet_kernel", "shan_short_items"), 1)
        if self.sasrec_act not in SASREC_ACTIVATIONS:
            raise ValueError(f"ModelConfig.sasrec_act must be one of {SASREC_ACTIVATIONS}, got {self.sasrec_act!r}")
        for name in ("sasrec_hidden_dropout", "sasrec_attn_dropout", "dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"ModelConfig.{name} must lie in [0, 1), got {getattr(self, name)!r}")


SASREC_ACTIVATIONS = ("gelu", "relu")


@dataclass(frozen=True)
class TrainConfig:
    """The training loop: modes, optimiser, early stopping, device."""

    mode: str = "base"  # "base", "ada" (end-to-end) or "finetune" (from a base checkpoint)
    freeze: bool = False  # finetune: train only the Ada-Ranker parameters
    init: str | None = None  # finetune: path of the base checkpoint to start from
    lr: float = 1e-3  # Adam learning rate
    batch_size: int = 1024  # paper: 1024 base / 2048 Ada; use ~256 on small data
    epochs: int = 100  # upper bound; early stopping usually ends sooner
    valid_metric: str = "gauc"  # the validation metric that selects the best epoch: gauc, auc, mrr, ndcg@k or hit@k
    patience: int = 10  # stop after this many epochs without a better validation metric
    patience_lists: int | None = None  # instead of patience: stop after this many training lists since the best
    min_epochs: int = 1  # never stop before this many epochs
    min_loss_drop: float | None = None  # never stop while the training loss falls by more than this per epoch
    weight_decay: float = 0.0  # Adam weight decay
    seed: int = 2022  # torch / numpy seed
    device: str = "auto"  # "auto" (cuda > mps > cpu), or an explicit torch device string
    amp: bool = False  # automatic mixed precision (CUDA only)
    compile: bool = False  # torch.compile the model (CUDA only)
    eval_batch_size: int = 4096  # batch size for validation and test scoring
    max_train_lists: int | None = None  # train on a seeded random subset of this many training lists (None: all)
    max_eval_lists: int | None = None  # validate and test on seeded random subsets of this many lists (None: all)
    test_every_epoch: bool = False  # also record test metrics after every epoch (analysis only: they select nothing)
    test_samplers: tuple[str, ...] = ()  # with test_every_epoch: also these samplers' test lists (shift matrix)

    @property
    def stopping(self):
        """The early-stopping rule these fields describe (``xmrec.training.stopping``)."""
        from xmrec.training.stopping import StoppingRule

        return StoppingRule(self.valid_metric, self.patience, self.patience_lists, self.min_epochs, self.min_loss_drop)

    def __post_init__(self):
        if not re.fullmatch(r"gauc|auc|mrr|(ndcg|hit)@\d+", self.valid_metric):
            raise ValueError(
                f"TrainConfig.valid_metric must be gauc, auc, mrr, ndcg@k or hit@k, got {self.valid_metric!r}"
            )
        try:
            self.stopping  # noqa: B018  (the rule checks its own fields)
        except ValueError as err:
            raise ValueError(f"TrainConfig.{err}") from None
        _whole_numbers(self, ("epochs", "patience", "batch_size", "eval_batch_size"), 1)
        if self.device != "auto":
            try:
                parse_device(self.device)
            except ValueError as err:
                raise ValueError(f"TrainConfig.{err}") from None
        from xmrec.data.sampling import ALL_SAMPLERS

        unknown = [k for k in self.test_samplers if k not in ALL_SAMPLERS]
        if unknown:
            raise ValueError(f"TrainConfig.test_samplers: unknown sampler(s) {unknown}; samplers: {ALL_SAMPLERS}")
        if self.test_samplers and not self.test_every_epoch:
            raise ValueError("TrainConfig.test_samplers only applies with test_every_epoch=true")
        for name in ("max_train_lists", "max_eval_lists"):
            if getattr(self, name) is not None:
                _whole_numbers(self, (name,), 1)
        if not self.lr >= 0 or not self.weight_decay >= 0:
            raise ValueError(f"TrainConfig.lr and weight_decay must be >= 0, got {self.lr!r}, {self.weight_decay!r}")


def _whole_numbers(cfg, names, low: int) -> None:
    """Refuse, naming the field, a value of ``names`` that is not a whole number >= ``low``."""
    for name in names:
        value = getattr(cfg, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{type(cfg).__name__}.{name} must be a whole number >= {low}, got {value!r}")


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


def parity_dir() -> Path | None:
    """Folder of the reference numbers computed by the authors' Ada-Ranker code (one ``.npz`` per
    model and mode): ``$XMREC_PARITY_DIR``, else ``../shared/parity`` beside the project, or None."""
    env = os.environ.get("XMREC_PARITY_DIR")
    if env:
        return Path(env).expanduser()
    cand = project_root().parent / "shared" / "parity"
    return cand if cand.is_dir() else None


def resolve_device(device: str = "auto"):
    """``"auto"`` picks cuda, then mps, then cpu; any other string must name a torch device this
    machine has (a ValueError in one sentence otherwise: never a traceback after the work began)."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    found = parse_device(device)
    if found.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: this machine has no CUDA device (use auto or cpu)")
    if found.type == "cuda" and found.index is not None and found.index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    mps = getattr(torch.backends, "mps", None)
    if found.type == "mps" and (mps is None or not mps.is_available()):
        raise ValueError(f"device {device!r}: this machine has no Apple GPU (use auto or cpu)")
    return found


def parse_device(device: str):
    """``device`` as a ``torch.device``; a ValueError naming the accepted forms if it is not one."""
    import torch

    try:
        return torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device {device!r} is not a device: use auto, cpu, cuda, cuda:N or mps") from None
