"""The cross-market pipeline's settings and the scorers they stand for.

Market combinations are written target-relative, so one configuration serves any target:
``"target"`` (the target alone), ``"target+each"`` (the target with each other market, one
scorer per market), ``"all"`` (every market).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .graph import CrossMarketData
from .ranker import RankerConfig
from .scorers.base import Scorer
from .scorers.ease import EASE
from .scorers.embeddings import Word2VecScorer
from .scorers.itemcf import ItemCF
from .scorers.lightgcn import LightGCN
from .scorers.popularity import Popularity
from .scorers.sequential import SequentialScorer
from .scorers.swing import Swing
from .scorers.usercf import UserCF

__all__ = ["CrossMarketConfig", "resolve_combinations", "make_scorers", "COMBINATIONS"]

COMBINATIONS = ("target", "target+each", "all")


@dataclass(frozen=True)
class CrossMarketConfig:
    """Every knob of ``run_target``; defaults give the benchmarked t1 pipeline."""

    itemcf_iuf: tuple[str, ...] = ("target", "target+each", "all")  # ItemCF-IUF market combinations
    itemcf_cosine: tuple[str, ...] = ("target", "all")  # rating-weighted cosine ItemCF combinations
    itemcf_jaccard: tuple[str, ...] = ()  # Jaccard ItemCF combinations (best single ItemCF; ranker gain in noise)
    usercf: tuple[str, ...] = ("target", "all")  # UserCF (inverse item frequency) combinations
    swing: tuple[str, ...] = ("target",)  # Swing combinations (alpha below)
    swing_alpha: float = 0.01  # Swing smoothing in 1 / (alpha + |I_u & I_v|)
    ease: tuple[str, ...] = ("target", "all")  # EASE combinations
    ease_l2: float = 200.0  # EASE ridge penalty
    word2vec: tuple[str, ...] = ("all",)  # word2vec combinations
    word2vec_epochs: int = 5  # passes over the user sentences (CBOW, one worker)
    lightgcn: tuple[str, ...] = ()  # LightGCN combinations; off in the ranker by default: it is retrained
    #   for every view (valid, test, each held-out round), ~1 min each on 2 CPU cores for +0.003
    lightgcn_epochs: int = 60  # passes over the visible interactions
    lightgcn_layers: int = 4  # propagation layers
    lightgcn_batch_size: int = 16384  # BPR triples per step
    lightgcn_lr: float = 0.02  # Adam learning rate
    sequential: tuple[str, ...] = ()  # Ada-Ranker (SASRec) scorer combinations; off by default: retrained per view
    sequential_sets: tuple[str, ...] = ()  # Ada-Ranker scorer: "section.field=value" over the scorer preset
    device: str = "auto"  # torch device for LightGCN and the Ada-Ranker scorer (auto: cuda > mps > cpu)
    heldout_rounds: int = 3  # rounds of extra training lists held out from the target's training data
    objectives: tuple[str, ...] = ("binary",)  # ranker objectives to fit ("binary", "lambdarank"); first is submitted
    ranker: RankerConfig = field(default_factory=RankerConfig)  # LightGBM settings (objective set per run)
    n_candidates: int = 100  # list length when candidates must be sampled
    seed: int = 2022  # candidate sampling, scorers, folds, LightGBM
    ties: str = "mean"  # tie rule of the metrics: "mean" (mean tied rank) or "trec" (the official trec_eval)
    protocol: str = "honest"  # "honest" (user folds) or "published" (the winners' reporting, crossmarket.protocol)
    progress: bool = False  # tqdm progress bars

    @classmethod
    def smoke(cls, **changes) -> CrossMarketConfig:
        """A fast setting (well under a minute on t1): fewer scorers, rounds, folds and epochs."""
        base = cls(
            itemcf_iuf=("target", "all"),
            itemcf_cosine=(),
            usercf=("target",),
            swing=(),
            ease=(),
            word2vec=(),
            heldout_rounds=1,
            ranker=RankerConfig(n_folds=3, n_estimators=60, learning_rate=0.1, train_negatives=20),
        )
        return replace(base, **changes)


def resolve_combinations(specs, data: CrossMarketData) -> list[tuple[str, ...] | None]:
    """Concrete market tuples (None = every market) for target-relative ``specs``."""
    out: list[tuple[str, ...] | None] = []
    for spec in specs:
        if spec == "target":
            out.append((data.target,))
        elif spec == "target+each":
            out.extend((data.target, s) for s in data.sources)
        elif spec == "all":
            out.append(None)
        else:
            raise ValueError(f"unknown market combination {spec!r}; use one of {COMBINATIONS}")
    return list(dict.fromkeys(out))


def make_scorers(cfg: CrossMarketConfig, data: CrossMarketData) -> list[Scorer]:
    """The scorers of ``cfg`` for ``data``'s target, popularity first."""

    def combos(specs):
        return resolve_combinations(specs, data)

    scorers: list[Scorer] = [Popularity()]
    scorers += [ItemCF(m, "iuf") for m in combos(cfg.itemcf_iuf)]
    scorers += [ItemCF(m, "cosine") for m in combos(cfg.itemcf_cosine)]
    scorers += [ItemCF(m, "jaccard") for m in combos(cfg.itemcf_jaccard)]
    scorers += [UserCF(m) for m in combos(cfg.usercf)]
    scorers += [Swing(m, alpha=cfg.swing_alpha, progress=cfg.progress) for m in combos(cfg.swing)]
    scorers += [EASE(m, l2=cfg.ease_l2) for m in combos(cfg.ease)]
    scorers += [Word2VecScorer(m, epochs=cfg.word2vec_epochs, sg=0, seed=cfg.seed) for m in combos(cfg.word2vec)]
    scorers += [
        LightGCN(
            m,
            layers=cfg.lightgcn_layers,
            epochs=cfg.lightgcn_epochs,
            batch_size=cfg.lightgcn_batch_size,
            lr=cfg.lightgcn_lr,
            seed=cfg.seed,
            device=cfg.device,
            progress=cfg.progress,
        )
        for m in combos(cfg.lightgcn)
    ]
    scorers += [
        SequentialScorer(m, sets=cfg.sequential_sets, seed=cfg.seed, device=cfg.device, progress=cfg.progress)
        for m in combos(cfg.sequential)
    ]
    return scorers
