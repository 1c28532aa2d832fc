"""Small experiment grids for the notebooks: variants x seeds on one prepared dataset, tidy results.

A :class:`Variant` names one thing to train: a model config (with its Ada-Ranker switches), a
mode (``base``, ``ada`` end-to-end, ``finetune`` from the base checkpoint, frozen or not), the
sampler that builds the candidate lists, and whether word2vec initialises the item table.
An :class:`Experiment` prepares the data once per sampler, trains variants for seeds, finds (or
trains) the base checkpoint a fine-tune run starts from, and collects three tidy tables:

- :meth:`Experiment.table`: one row per run, test metrics, epochs and timings;
- :meth:`Experiment.history`: one row per run and epoch (validation metrics, loss, seconds);
- :meth:`Experiment.per_list`: one row per run and test list (per-list metrics plus what the
  list looks like: sampler pool, number of categories, divergence of its category mix).

With ``runs_dir`` every run lives in a folder named by a hash of everything that defines it;
a finished run found there is reused (notebooks 03, 04 and 06 share their common runs), an
interrupted one resumes. Without it, runs go to a temporary folder deleted with the experiment.

With ``workers > 1`` a grid trains its missing runs side by side in that many worker processes
(spawned, one CPU thread each by default) before collecting them in order. Small rankers use two
cores poorly from one process: on 2 cores two 1-thread GRU4Rec trainings side by side take 0.70x
the time of the same two one after the other with 2 threads, and a grid of four early-stopped runs
of unequal length 0.82x (``benchmarks/results/parallel_runs.md``). A run depends only on its own
seed, so the numbers do not depend on which worker trained it; a run
trained with one thread can differ from a 2-thread run in the last float digits.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from xmrec.config import ModelConfig, SamplerConfig, TrainConfig
from xmrec.data.pipeline import load_or_prepare, run_config
from xmrec.data.store import ProcessedDataset, Split
from xmrec.io import atomic_write_text
from xmrec.metrics import evaluate
from xmrec.metrics import per_list as per_list_metrics
from xmrec.models import Ranker
from xmrec.shift import list_divergence
from xmrec.training import MODES, Trainer, distributions

__all__ = [
    "ADA_SWITCHES",
    "METRICS",
    "MODE_NAMES",
    "POOL_NAMES",
    "Variant",
    "RunResult",
    "Experiment",
    "variant",
    "grid",
    "mode_variants",
    "ablation_variants",
    "list_features",
    "summarize",
    "mean_spread",
    "seed_gains",
    "paired_difference",
    "divergence_bins",
    "latent_of",
    "latent_probe",
]

METRICS = ("gauc", "ndcg@10", "hit@10", "mrr")  # the four headline metrics of the notebooks
ADA_SWITCHES = (
    "use_input_modulation",
    "use_param_modulation",
    "mean_z_at_eval",
    "film_per_dim",
    "identity_patches",
    "identity_film",
)  # ModelConfig fields an ablation flips
MODE_NAMES = ("base", "ada", "finetune", "finetune-frozen")  # the four training modes, by name
POOL_NAMES = {0: "uniform", 1: "popularity"}  # Split.neg_pool codes
DONE = "test_metrics.json"  # written last in a run folder: the run finished
RUN_CACHE_VERSION = 2  # part of a run folder's name: 2 = checkpoints carry data fingerprints


@dataclass(frozen=True)
class Variant:
    """One configuration to train: what the results table calls ``label``."""

    label: str  # name shown in tables and legends
    model: ModelConfig = ModelConfig()  # base model and Ada-Ranker switches (``ada`` follows the mode)
    mode: str = "base"  # "base", "ada" (end-to-end) or "finetune" (from the base checkpoint)
    freeze: bool = False  # finetune: train only the Ada-Ranker parameters
    sampler: SamplerConfig = SamplerConfig()  # negatives of every candidate list (the data changes with it)
    embedding_init: bool = True  # initialise the item table from word2vec (False: random init)

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"Variant {self.label!r}: mode must be one of {MODES}, got {self.mode!r}")
        if self.freeze and self.mode != "finetune":
            raise ValueError(f"Variant {self.label!r}: freeze=True only applies to mode 'finetune'")
        if self.mode == "base":  # Ada switches mean nothing to a base model: one run, whatever they say
            object.__setattr__(self, "model", _without_ada(self.model))

    @property
    def is_ada(self) -> bool:
        return self.mode != "base"

    def base_variant(self) -> Variant:
        """The base run a fine-tune starts from: same model and data, no Ada-Ranker parts."""
        return Variant(f"{self.model.name} base", self.model, "base", False, self.sampler, self.embedding_init)

    def describe(self) -> dict:
        """Flat columns for the results table."""
        row = {
            "label": self.label,
            "model": self.model.name,
            "mode": self.mode,
            "freeze": self.freeze,
            "ada": self.is_ada,
            "embedding_init": self.embedding_init,
            "sampler": self.sampler.kind,
            "n_neg": self.sampler.n_neg,
            "popularity_prob": self.sampler.popularity_prob,
        }
        row.update({k: getattr(self.model, k) if self.is_ada else None for k in ADA_SWITCHES})
        return row


def _without_ada(cfg: ModelConfig) -> ModelConfig:
    default = ModelConfig()
    return replace(cfg, ada=False, n_patches=default.n_patches, **{k: getattr(default, k) for k in ADA_SWITCHES})


def variant(
    model: str = "GRU4Rec",
    mode: str = "base",
    *,
    freeze: bool = False,
    label: str | None = None,
    sampler: SamplerConfig | None = None,
    embedding_init: bool = True,
    **model_fields,
) -> Variant:
    """A :class:`Variant` from plain arguments; ``model_fields`` set other ``ModelConfig`` fields.

    The default label says what differs: ``"GRU4Rec ada"``, ``"GRU4Rec finetune (frozen)"``,
    ``"GRU4Rec ada +identity_patches"`` (a base model ignores the Ada switches, and so does its label).
    """
    cfg = replace(ModelConfig(), name=model, **model_fields)
    if label is None:
        label = f"{model} {mode}" + (" (frozen)" if freeze else "")
        default = ModelConfig()
        for k, v in model_fields.items():
            if getattr(default, k) != v and not (mode == "base" and k in ADA_SWITCHES):
                label += f" +{k}" if v is True else (f" -{k}" if v is False else f" {k}={v}")
        if sampler is not None and sampler != SamplerConfig():
            label += f" [{sampler.kind}, {sampler.n_neg} neg]"
        if not embedding_init:
            label += " [random init]"
    return Variant(label, cfg, mode, freeze, sampler or SamplerConfig(), embedding_init)


def grid(models: Sequence[str] = ("GRU4Rec",), modes: Sequence[str] = MODE_NAMES) -> list[Variant]:
    """Every model in every mode (names of :data:`MODE_NAMES`), model by model."""
    unknown = [m for m in modes if m not in MODE_NAMES]
    if unknown:
        raise ValueError(f"unknown mode(s) {unknown}; expected names from {MODE_NAMES}")
    return [variant(model, mode.split("-")[0], freeze=mode.endswith("-frozen")) for model in models for mode in modes]


def mode_variants(model: str = "GRU4Rec") -> list[Variant]:
    """The four training modes of one model: base, Ada end-to-end, fine-tune, fine-tune frozen."""
    return grid([model], MODE_NAMES)


def ablation_variants(model: str = "GRU4Rec") -> list[Variant]:
    """The default grid of notebook 06, one Ada-Ranker part changed at a time: base, the faithful
    Ada, Ada without FiLM, without parameter modulation, the extractor alone (neither part: it then
    changes nothing), and the authors' initialisation against identity patches and FiLM."""
    return [
        variant(model, "base"),
        variant(model, "ada", label=f"{model} ada (faithful)"),
        variant(model, "ada", use_input_modulation=False, label=f"{model} ada without FiLM"),
        variant(model, "ada", use_param_modulation=False, label=f"{model} ada without patches"),
        variant(model, "ada", use_input_modulation=False, use_param_modulation=False, label=f"{model} extractor only"),
        variant(model, "ada", identity_patches=True, identity_film=True, label=f"{model} ada (identity init)"),
    ]


@dataclass
class RunResult:
    """One trained variant for one seed."""

    variant: Variant
    seed: int
    metrics: dict[str, float]  # test metrics (xmrec.metrics.evaluate keys)
    per_list: dict[str, np.ndarray]  # test metrics of every list
    history: list[dict]  # per-epoch validation metrics (Trainer.history)
    seconds: float  # wall time of this call (training, or loading a cached run, plus test scoring)
    best_epoch: int
    n_params: int
    model: Ranker = field(repr=False)  # best epoch restored, on the training device
    run_dir: Path | None = None
    reused: bool = False  # True when a finished run was loaded from ``runs_dir``


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Experiment:
    """Train variants x seeds on one dataset spec; see the module docstring.

    ``train`` gives the optimiser and stopping settings shared by every run (mode, freeze, init
    and seed are set per run). ``max_train_lists`` / ``max_eval_lists`` keep a seeded random
    subset of the training / validation+test lists (small, fast runs). ``data_out`` caches the
    prepared dataset on disk (:func:`xmrec.data.pipeline.load_or_prepare`). ``workers`` > 1
    trains a grid's missing runs in that many processes (:meth:`train_ahead`; needs ``data_out``).
    """

    def __init__(
        self,
        spec: str = "ml-100k",
        *,
        max_seq_len: int | None = 50,
        train: TrainConfig = TrainConfig(batch_size=256),
        data_seed: int = 2022,
        max_train_lists: int | None = None,
        max_eval_lists: int | None = None,
        runs_dir: str | Path | None = None,
        data_out: str | Path | None = None,
        progress: bool = True,
        workers: int = 1,
        **prepare_kwargs,
    ):
        if workers < 1:
            raise ValueError(f"Experiment: workers must be at least 1, got {workers}")
        self.spec, self.max_seq_len, self.train_cfg, self.data_seed = spec, max_seq_len, train, data_seed
        self.max_train_lists, self.max_eval_lists = max_train_lists, max_eval_lists
        self.data_out = Path(data_out) if data_out is not None else None
        self.progress, self.workers = progress, workers
        self._worker_seconds: dict[Path, float] = {}  # runs trained by worker processes in this session
        self.prepare_kwargs = prepare_kwargs
        self._tmp = None
        if runs_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="xmrec-runs-")
            runs_dir = self._tmp.name
        self.runs_dir = Path(runs_dir)
        self.results: list[RunResult] = []
        self._data: dict[str, ProcessedDataset] = {}
        self._features: dict[str, pd.DataFrame] = {}

    # -- data -------------------------------------------------------------------------------
    def _data_key(self, sampler: SamplerConfig, embedding_init: bool) -> dict:
        cfg = run_config(
            self.spec, seed=self.data_seed, max_seq_len=self.max_seq_len, sampler_cfg=sampler, **self.prepare_kwargs
        )
        return {
            "data": cfg,
            "max_train_lists": self.max_train_lists,
            "max_eval_lists": self.max_eval_lists,
            "embedding_init": embedding_init,
        }

    def dataset(self, sampler: SamplerConfig = SamplerConfig(), embedding_init: bool = True) -> ProcessedDataset:
        """The (possibly subsampled) dataset a variant with this sampler trains on."""
        key = _digest(self._data_key(sampler, embedding_init))
        if key not in self._data:
            out = None
            if self.data_out is not None:
                out = self.data_out / f"{self.spec.replace(':', '-')}-{_digest(self._data_key(sampler, True)['data'])}"
            ds = load_or_prepare(
                self.spec,
                out,
                seed=self.data_seed,
                max_seq_len=self.max_seq_len,
                sampler_cfg=sampler,
                progress=self.progress,
                **self.prepare_kwargs,
            )
            rng = np.random.default_rng(self.data_seed)
            ds = replace(
                ds,
                train=_subset(ds.train, self.max_train_lists, rng),
                valid=_subset(ds.valid, self.max_eval_lists, rng),
                test=_subset(ds.test, self.max_eval_lists, rng),
                item_emb=ds.item_emb if embedding_init else None,
            )
            self._data[key] = ds
        return self._data[key]

    def features(self, sampler: SamplerConfig = SamplerConfig()) -> pd.DataFrame:
        """:func:`list_features` of the test lists built by ``sampler``."""
        key = _digest(asdict(sampler))
        if key not in self._features:
            self._features[key] = list_features(self.dataset(sampler))
        return self._features[key]

    # -- runs -------------------------------------------------------------------------------
    def _train_cfg(self, v: Variant, seed: int, init: Path | None) -> TrainConfig:
        return replace(
            self.train_cfg, mode=v.mode, freeze=v.freeze, seed=seed, init=None if init is None else str(init)
        )

    def _run_dir(self, v: Variant, seed: int, init: Path | None) -> Path:
        tc = {k: val for k, val in asdict(self._train_cfg(v, seed, init)).items() if k != "device"}
        key = {
            "data": self._data_key(v.sampler, v.embedding_init),
            "model": asdict(v.model),
            "train": tc,
            "cache": RUN_CACHE_VERSION,
        }
        return self.runs_dir / f"{v.model.name}-{v.mode}{'-frozen' if v.freeze else ''}-s{seed}-{_digest(key)}"

    def _init_of(self, v: Variant, seed: int) -> Path | None:
        """Where the checkpoint a fine-tune of ``v`` starts from lives (None unless a fine-tune)."""
        return self._run_dir(v.base_variant(), seed, None) / "checkpoint.pt" if v.mode == "finetune" else None

    def _base_checkpoint(self, v: Variant, seed: int) -> Path:
        """The base checkpoint of ``v``'s fine-tune: from an earlier run, else trained now."""
        init = self._init_of(v, seed)
        if not (init.parent / DONE).is_file():
            self.run(v.base_variant(), seed)
        return init

    def _dir_of(self, v: Variant, seed: int) -> Path:
        """The run folder of ``v`` for ``seed`` (a fine-tune's name includes its base checkpoint)."""
        return self._run_dir(v, seed, self._init_of(v, seed))

    def is_done(self, v: Variant, seed: int) -> bool:
        """True when ``runs_dir`` holds the finished run of ``v`` for ``seed``."""
        return (self._dir_of(v, seed) / DONE).is_file()

    def run(self, v: Variant, seed: int = 2022) -> RunResult:
        """Train (or reuse) ``v`` for ``seed``; the result is appended to :attr:`results`."""
        start = time.perf_counter()
        init = self._base_checkpoint(v, seed) if v.mode == "finetune" else None
        ds = self.dataset(v.sampler, v.embedding_init)
        tc = self._train_cfg(v, seed, init)
        run_dir = self._run_dir(v, seed, init)
        done = (run_dir / DONE).is_file()
        trainer = Trainer(v.model, tc, out=run_dir, progress=self.progress and not done)
        history = trainer.fit(ds, resume=True)
        scores = trainer.score(ds.test)
        metrics, lists = evaluate(scores), per_list_metrics(scores)
        atomic_write_text(run_dir / DONE, json.dumps(metrics, indent=2))
        in_worker = self._worker_seconds.get(run_dir)
        result = RunResult(
            v,
            seed,
            metrics,
            lists,
            [dict(h) for h in history],
            time.perf_counter() - start + (in_worker or 0.0),
            trainer.best_epoch,
            sum(p.numel() for p in trainer.model.parameters()),
            trainer.model,
            run_dir,
            reused=done and in_worker is None,
        )
        self.results.append(result)
        return result

    def train_ahead(self, jobs: Sequence[tuple[Variant, int]]) -> None:
        """Train the unfinished runs among ``jobs`` (variant, seed) in :attr:`workers` spawned
        processes, one CPU thread each by default (fine-tunes after every base run); :meth:`run`
        then collects them. Nothing happens with one worker."""
        todo = list(dict.fromkeys((v, s) for v, s in jobs if not self.is_done(v, s)))
        if self.workers <= 1 or not todo:
            return
        if self.data_out is None:
            raise ValueError(
                "Experiment(workers > 1) needs data_out: the worker processes read the prepared dataset from disk"
            )
        for v, _ in todo:  # prepared here, once, before the workers read it
            self.dataset(v.sampler, v.embedding_init)
        threads = max(1, torch.get_num_threads() // self.workers)
        settings = self._settings()
        bar = tqdm(total=len(todo), desc=f"training in {self.workers} processes", unit="run", disable=not self.progress)
        with ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=torch.set_num_threads,
            initargs=(threads,),
        ) as pool:
            for phase in ([j for j in todo if j[0].mode != "finetune"], [j for j in todo if j[0].mode == "finetune"]):
                futures = {pool.submit(_run_in_worker, settings, v, s): (v, s) for v, s in phase}
                for future in as_completed(futures):
                    v, s = futures[future]
                    self._worker_seconds[self._dir_of(v, s)] = future.result()
                    bar.update(1)
                    bar.set_postfix_str(f"{v.label} seed {s}")
        bar.close()

    def _settings(self) -> dict:
        """The arguments that rebuild this experiment in a worker (same data, same run folders)."""
        return dict(
            spec=self.spec,
            max_seq_len=self.max_seq_len,
            train=self.train_cfg,
            data_seed=self.data_seed,
            max_train_lists=self.max_train_lists,
            max_eval_lists=self.max_eval_lists,
            runs_dir=str(self.runs_dir),
            data_out=self.data_out,
            progress=False,
            **self.prepare_kwargs,
        )

    def run_grid(self, variants: Sequence[Variant], seeds: Iterable[int] = (2022,)) -> list[RunResult]:
        """Every variant for every seed (base variants first, so fine-tunes find their checkpoint);
        with :attr:`workers` > 1 the missing runs train side by side first (:meth:`train_ahead`)."""
        order = sorted(variants, key=lambda v: v.mode == "finetune")
        jobs = [(v, s) for s in seeds for v in order]
        self.train_ahead(jobs)
        bar = tqdm(jobs, desc="experiments", unit="run", disable=not self.progress)
        out = []
        for v, s in bar:
            bar.set_postfix_str(f"{v.label} seed {s}")
            out.append(self.run(v, s))
        return out

    # -- tidy tables ------------------------------------------------------------------------
    def table(self) -> pd.DataFrame:
        """One row per run: the variant's columns, seed, test metrics, epochs and seconds."""
        rows = []
        for r in self.results:
            seconds = [h["seconds"] for h in r.history]
            rows.append(
                {
                    **r.variant.describe(),
                    "seed": r.seed,
                    **r.metrics,
                    "best_epoch": r.best_epoch,
                    "epochs_run": len(r.history),
                    "train_seconds": float(np.sum(seconds)),
                    "seconds_per_epoch": float(np.mean(seconds)) if seconds else float("nan"),
                    "wall_seconds": r.seconds,
                    "reused": r.reused,
                    "n_params": r.n_params,
                }
            )
        return pd.DataFrame(rows)

    def history(self) -> pd.DataFrame:
        """One row per run and epoch: label, seed, epoch, train loss and the validation metrics."""
        rows = [
            {"label": r.variant.label, "mode": r.variant.mode, "model": r.variant.model.name, "seed": r.seed, **h}
            for r in self.results
            for h in r.history
        ]
        return pd.DataFrame(rows)

    def per_list(self) -> pd.DataFrame:
        """One row per run and test list: per-list metrics and the list's features."""
        parts = []
        for r in self.results:
            df = self.features(r.variant.sampler).copy()
            for k in ("rank",) + METRICS:
                df[k] = r.per_list[k]
            df.insert(0, "seed", r.seed)
            df.insert(0, "mode", r.variant.mode)
            df.insert(0, "model", r.variant.model.name)
            df.insert(0, "label", r.variant.label)
            parts.append(df)
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    def control_of(self, label: str) -> str | None:
        """Label of the base run that ``label`` (an Ada variant) is compared with: same model and
        data, no Ada parts (None when no such run was made)."""
        base = self.latest(label).variant.base_variant()
        for r in reversed(self.results):
            if replace(r.variant, label=base.label) == base:
                return r.variant.label
        return None

    def latest(self, label: str, seed: int | None = None) -> RunResult:
        """The last run of ``label`` (and ``seed``)."""
        for r in reversed(self.results):
            if r.variant.label == label and (seed is None or r.seed == seed):
                return r
        raise KeyError(
            f"no run labelled {label!r}"
            + (f" for seed {seed}" if seed is not None else "")
            + f"; runs: {sorted({r.variant.label for r in self.results})}"
        )


def _run_in_worker(settings: dict, v: Variant, seed: int) -> float:
    """One run of a grid, trained in a worker process (:meth:`Experiment.train_ahead`); its seconds."""
    return Experiment(**settings).run(v, seed).seconds


def _subset(split: Split, n: int | None, rng: np.random.Generator) -> Split:
    if n is None or n >= len(split):
        return split
    return split.subset(np.sort(rng.choice(len(split), size=n, replace=False)))


def list_features(ds: ProcessedDataset, split: str = "test") -> pd.DataFrame:
    """What each candidate list of ``split`` looks like, one row per list.

    ``pool`` (uniform / popularity), ``n_cates`` (categories the negatives came from), and
    ``divergence``: JS divergence (bits) of the list's category mix (every candidate adds 1 to
    each of its categories) from the category mix of all training interactions.
    """
    s = ds.split(split)
    n_per_item = np.diff(ds.item_cate_ptr)[: ds.n_items + 1]
    reference = np.bincount(
        ds.item_cate_idx, weights=np.repeat(ds.item_pop.astype(np.float64), n_per_item), minlength=ds.n_cates + 1
    )
    return pd.DataFrame(
        {
            "list": np.arange(len(s)),
            "pool": pd.Categorical(
                [POOL_NAMES.get(int(p), str(p)) for p in s.neg_pool], categories=list(POOL_NAMES.values())
            ),
            "n_cates": s.neg_n_cates.astype(int),
            "divergence": list_divergence(s.candidates(), reference, ds.item_cate_ptr, ds.item_cate_idx, ds.n_cates),
        }
    )


def summarize(table: pd.DataFrame, metrics: Sequence[str] = METRICS, by: Sequence[str] = ("label",)) -> pd.DataFrame:
    """Mean, std and count over seeds of each metric, plus a ``"mean ± std"`` text column each."""
    by = list(by)
    grouped = table.groupby(by, sort=False, observed=True)[list(metrics)]
    mean, std, n = grouped.mean(), grouped.std(ddof=1).fillna(0.0), grouped.size()
    out = pd.DataFrame(index=mean.index)
    out["n_seeds"] = n
    for m in metrics:
        out[f"{m}_mean"], out[f"{m}_std"] = mean[m], std[m]
        out[m] = [mean_spread(a, b if k > 1 else float("nan")) for a, b, k in zip(mean[m], std[m], n)]
    return out.reset_index()


def mean_spread(mean: float, std: float, signed: bool = False) -> str:
    """``"0.8123 ± 0.0040"`` (``"+0.0123 ± ..."`` when ``signed``); the mean alone when std is NaN (one seed)."""
    text = f"{mean:+.4f}" if signed else f"{mean:.4f}"
    return text if np.isnan(std) else f"{text} ± {std:.4f}"


def seed_gains(table: pd.DataFrame, metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Each Ada-Ranker variant minus the base run of the same model and seed, over seeds.

    One row per non-base ``label``: ``model``, ``n_seeds`` (seeds with both runs), ``<metric>_gain``
    and ``<metric>_gain_std`` (mean and std of the per-seed differences; std NaN for one seed) and
    ``wins`` (seeds where the variant's first metric is ahead). Pairing by seed removes what the
    two runs of a seed share.
    """
    keys = ["model", "seed"]
    base = table[table["mode"] == "base"].set_index(keys)[list(metrics)]
    rows = []
    for label, g in table[table["mode"] != "base"].groupby("label", sort=False):
        g = g.set_index(keys)
        both = g.index.intersection(base.index)
        diff = g.loc[both, list(metrics)] - base.loc[both]
        row = {"label": label, "model": g.index.get_level_values("model")[0], "n_seeds": len(diff)}
        for m in metrics:
            row[f"{m}_gain"] = diff[m].mean()
            row[f"{m}_gain_std"] = diff[m].std(ddof=1) if len(diff) > 1 else float("nan")
        row["wins"] = int((diff[metrics[0]] > 0).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def paired_difference(per_list: pd.DataFrame, treatment: str, control: str, metric: str = "gauc") -> pd.DataFrame:
    """Per-list ``metric`` of ``treatment`` minus ``control`` (labels), paired by seed and list.

    Keeps the list features (``pool``, ``n_cates``, ``divergence``); the column ``diff`` holds the
    difference. Raises if either label is missing.
    """
    labels = set(per_list["label"])
    for name in (treatment, control):
        if name not in labels:
            raise KeyError(f"no per-list results for {name!r}; labels: {sorted(labels)}")
    keys = ["seed", "list"]
    t = per_list[per_list["label"] == treatment]
    c = per_list[per_list["label"] == control][keys + [metric]]
    paired = t.merge(c, on=keys, suffixes=("", "_control"))
    paired["diff"] = paired[metric] - paired[f"{metric}_control"]
    paired["treatment"], paired["control"] = treatment, control
    return paired[keys + ["treatment", "control", "pool", "n_cates", "divergence", metric, f"{metric}_control", "diff"]]


def divergence_bins(values, n_bins: int = 4) -> pd.Categorical:
    """Quantile bins of a divergence, labelled by their range in bits (e.g. ``"0.12-0.25"``).

    Fewer bins come back when values repeat (one bin when they are all equal).
    """
    values = np.asarray(values, dtype=np.float64)
    edges = np.unique(np.quantile(values, np.linspace(0, 1, n_bins + 1))) if len(values) else np.zeros(1)
    if len(edges) < 2:
        return pd.Categorical([f"{edges[0]:.2f}"] * len(values), ordered=True)
    codes = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
    names = [f"{a:.2f}-{b:.2f}" for a, b in zip(edges[:-1], edges[1:])]
    return pd.Categorical.from_codes(codes, categories=names, ordered=True)


def latent_of(result: RunResult, ds: ProcessedDataset, split: str = "test", key: str = "mu") -> np.ndarray:
    """The distribution extractor's ``mu`` (or ``z``) [n_lists, d] of an Ada run on ``split``."""
    if not result.variant.is_ada:
        raise ValueError(f"{result.variant.label!r} is a base model: it has no distribution extractor")
    return distributions(result.model, ds.split(split), seed=result.seed)[key]


def latent_probe(latent: np.ndarray, labels, *, folds: int = 5, seed: int = 0) -> dict[str, float]:
    """How much a linear model can read ``labels`` off the latent: cross-validated accuracy of a
    logistic regression, beside the accuracy of always guessing the most common label."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(labels)
    _, counts = np.unique(y, return_counts=True)
    folds = int(min(folds, counts.min()))
    majority = float(counts.max() / counts.sum())
    if len(counts) < 2 or folds < 2:
        return {"accuracy": float("nan"), "majority": majority}
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return {"accuracy": float(cross_val_score(model, latent, y, cv=cv).mean()), "majority": majority}
