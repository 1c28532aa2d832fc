"""Experiment grids for the notebooks: variants x seeds on one dataset spec, planned as runs of the run
layer (:mod:`xmrec.runs`), trained by an executor (:mod:`xmrec.executors`) and read back as tidy tables.

A :class:`Variant` names one thing to train: a model config (with its Ada-Ranker switches), a mode
(``base``, ``ada`` end-to-end, ``finetune`` from the base checkpoint, frozen or not), the sampler
that builds the candidate lists, and whether word2vec initialises the item table. An
:class:`Experiment` turns a variant and a seed into a :class:`~xmrec.runs.RunSpec` under one preset
(``teaching`` by default: protocols live in presets, :mod:`xmrec.overrides`), has the missing runs
trained into its :class:`~xmrec.runs.RunStore` (``runs_dir``; a temporary folder without one),
and collects three tidy tables:

- :meth:`Experiment.table`: one row per run, test metrics, epochs and timings;
- :meth:`Experiment.history`: one row per run and epoch (validation metrics, loss, seconds);
- :meth:`Experiment.per_list`: one row per run and test list (per-list metrics plus what the
  list looks like: sampler pool, number of categories, divergence of its category mix).

A finished run in ``runs_dir`` is reused (notebooks 03, 04 and 06 share their common runs), an
interrupted one resumes. With ``workers > 1`` the missing runs of a grid train side by side (a Dask
``LocalCluster`` by default, one CPU thread each: small rankers use two cores poorly from one
process); a run depends only on its own seed, so its numbers do not depend on the executor. The
statistics over these tables live in :mod:`xmrec.stats`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from xmrec.config import ModelConfig, SamplerConfig
from xmrec.data.store import ProcessedDataset
from xmrec.executors import make_executor
from xmrec.metrics import per_list as per_list_metrics
from xmrec.overrides import preset_configs
from xmrec.runs import ADA_SWITCHES, DataRecipe, RunRecord, RunSpec, RunStore, without_ada
from xmrec.shift import list_divergence
from xmrec.stats import METRICS
from xmrec.training import MODES, distributions

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
    "latent_of",
]

MODE_NAMES = ("base", "ada", "finetune", "finetune-frozen")  # the four training modes, by name
POOL_NAMES = {0: "uniform", 1: "popularity"}  # Split.neg_pool codes


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
            object.__setattr__(self, "model", without_ada(self.model))

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


@dataclass
class RunResult:
    """One trained variant for one seed: the run's record, read from the store, under the variant's label."""

    variant: Variant
    record: RunRecord

    @property
    def seed(self) -> int:
        return self.record.spec.seed

    @property
    def metrics(self) -> dict[str, float]:
        return self.record.metrics

    @property
    def history(self) -> list[dict]:
        return self.record.history

    @property
    def best_epoch(self) -> int:
        return self.record.best_epoch

    @property
    def n_params(self) -> int:
        return self.record.summary["n_params"]

    @property
    def reused(self) -> bool:
        return self.record.reused

    @property
    def run_dir(self) -> Path | None:
        return self.record.folder

    @property
    def seconds(self) -> float:
        """Training and validation seconds of the run (every epoch, whoever trained it)."""
        return float(sum(h["seconds"] + h.get("eval_seconds", 0.0) for h in self.history))

    @cached_property
    def per_list(self) -> dict[str, np.ndarray]:
        """Test metrics of every list, from the run's stored test scores."""
        return per_list_metrics(self.record.test_scores)

    @property
    def model(self):
        """The trained ranker (best epoch), in eval mode."""
        return self.record.model()


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


class Experiment:
    """Train variants x seeds on one dataset spec under one preset; see the module docstring.

    ``preset`` and ``sets`` (``"section.field=value"``, as ``--set`` takes them) give the data,
    embedding and training settings of every run (mode, freeze, sampler, init and seed come from
    the variant and the seed). ``data_seed`` seeds the sampler, word2vec and the list subsets.
    ``recipe`` holds further :class:`~xmrec.runs.DataRecipe` fields (``interactions``, ``data_dir``).
    ``runs_dir`` keeps the runs (a temporary folder deleted with the experiment when None);
    ``data_cache`` the prepared datasets (default ``<data dir>/processed``). ``workers`` > 1 trains
    a grid's missing runs side by side with ``executor`` (default Dask, a ``LocalCluster``; or
    ``processes``), or on the Dask cluster at ``scheduler``.
    """

    def __init__(
        self,
        spec: str = "ml-100k",
        *,
        preset: str = "teaching",
        sets: Sequence[str] = (),
        data_seed: int = 2022,
        runs_dir: str | Path | None = None,
        data_cache: str | Path | None = None,
        progress: bool = True,
        workers: int = 1,
        executor: str | None = None,
        scheduler: str | None = None,
        **recipe,
    ):
        self.spec, self.preset, self.sets, self.data_seed = spec, preset, tuple(sets), data_seed
        self.recipe, self.progress = recipe, progress
        self.configs = preset_configs(preset, "base", self.sets)  # checks the preset and every --set now
        self.executor = make_executor(executor, workers, scheduler, threads=1 if workers > 1 else None)
        self._tmp = None
        if runs_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="xmrec-runs-")
            runs_dir = self._tmp.name
        self.store = RunStore(runs_dir, data_cache=data_cache)
        self.results: list[RunResult] = []
        self._features: dict[str, pd.DataFrame] = {}

    @property
    def runs_dir(self) -> Path:
        return self.store.root

    @property
    def workers(self) -> int:
        return self.executor.workers

    @property
    def train_cfg(self):
        """The training settings every base run shares (the preset's, with ``sets``)."""
        return self.configs["train"]

    # -- planning -----------------------------------------------------------------------------
    def data_of(self, sampler: SamplerConfig = SamplerConfig()) -> DataRecipe:
        """The dataset recipe of a variant drawing its lists with ``sampler``."""
        c = self.configs
        return DataRecipe(self.spec, self.data_seed, c["data"], sampler, c["embedding"], **self.recipe)

    def spec_of(self, v: Variant, seed: int) -> RunSpec:
        """The run that trains ``v`` for ``seed``."""
        train = replace(
            preset_configs(self.preset, v.mode, self.sets)["train"], mode=v.mode, freeze=v.freeze, seed=seed
        )
        return RunSpec(self.data_of(v.sampler), v.model, train, v.label, v.embedding_init)

    def dataset(self, sampler: SamplerConfig = SamplerConfig(), embedding_init: bool = True) -> ProcessedDataset:
        """The lists a variant with this sampler trains and is tested on (subsets as the preset says)."""
        spec = self.spec_of(Variant("dataset", sampler=sampler, embedding_init=embedding_init), self.data_seed)
        return spec.dataset(self.store.data_cache, self.progress)

    def features(self, sampler: SamplerConfig = SamplerConfig()) -> pd.DataFrame:
        """:func:`list_features` of the test lists built by ``sampler``."""
        key = repr(asdict(sampler))
        if key not in self._features:
            self._features[key] = list_features(self.dataset(sampler))
        return self._features[key]

    # -- runs -----------------------------------------------------------------------------------
    def is_done(self, v: Variant, seed: int) -> bool:
        """True when the store holds the finished run of ``v`` for ``seed``."""
        return self.store.done(self.spec_of(v, seed))

    def run(self, v: Variant, seed: int = 2022) -> RunResult:
        """Train (or reuse) ``v`` for ``seed`` (a fine-tune's base first); appended to :attr:`results`."""
        if v.mode == "finetune":
            self.run(v.base_variant(), seed)
        return self.run_grid([v], [seed])[0]

    def run_grid(self, variants: Sequence[Variant], seeds: Iterable[int] = (2022,)) -> list[RunResult]:
        """Every variant for every seed, base variants first; the missing runs are trained by the executor."""
        order = sorted(variants, key=lambda v: v.mode == "finetune")
        jobs = [(v, s) for s in seeds for v in order]
        records = self.executor.run([self.spec_of(v, s) for v, s in jobs], self.store, progress=self.progress)
        out = [RunResult(v, record) for (v, _), record in zip(jobs, records)]
        self.results += out
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

    def records(self) -> list[dict]:
        """Every run so far as a results-file entry: label, model, mode, seed, test metrics, epochs,
        the run's digest and its full per-epoch history (so a curve can be read from the results alone)."""
        return [
            {
                "label": r.variant.label,
                "model": r.variant.model.name,
                "mode": r.variant.mode,
                "freeze": r.variant.freeze,
                "train_sampler": r.variant.sampler.kind,
                "seed": r.seed,
                **{k: v for k, v in r.metrics.items() if k != "world_size"},
                "best_epoch": r.best_epoch,
                "epochs_run": len(r.history),
                "epochs": r.record.spec.train.epochs,
                "patience": r.record.spec.train.patience,
                "digest": r.record.spec.digest(),
                "executor": r.record.provenance.get("executor"),
                "history": r.history,
            }
            for r in self.results
        ]

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


def latent_of(result: RunResult, ds: ProcessedDataset, split: str = "test", key: str = "mu") -> np.ndarray:
    """The distribution extractor's ``mu`` (or ``z``) [n_lists, d] of an Ada run on ``split``."""
    if not result.variant.is_ada:
        raise ValueError(f"{result.variant.label!r} is a base model: it has no distribution extractor")
    return distributions(result.model, ds.split(split), seed=result.seed)[key]
