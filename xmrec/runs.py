"""The run layer: every training of the kit is a :class:`RunSpec`, lives in a :class:`RunStore` and is
trained by :func:`execute`, alone or in a grid by an executor (``xmrec.executors``).

- :class:`RunSpec`: what to train, whole: the data (:class:`DataRecipe`, a :class:`PreparedData`
  folder, or :class:`InMemoryData`), the ``ModelConfig``, the ``TrainConfig`` and a label. Its
  :meth:`~RunSpec.digest` (under :data:`RUN_FORMAT`) names the run; a fine-tune's digest includes
  its base's (:meth:`~RunSpec.base`), whose checkpoint it starts from.
- :class:`RunStore`: one folder layout for every caller. ``ROOT/<name>/`` holds ``checkpoint.pt``
  (best epoch), ``last.pt`` (resume state), ``config.json``, ``history.json`` (every epoch),
  ``metrics.json`` (test metrics with provenance), ``test_scores.npy`` and, written last,
  ``MANIFEST.json`` (format, digest, every file's size and sha256, the command). A run is *done*
  when its manifest is valid; :meth:`RunStore.load` reads a done run back without training.
- :func:`execute`: the one function outside ``xmrec/training`` that builds a ``Trainer``. It holds
  the run's folder while it trains (``xmrec.folders.exclusive``): a second process asked for the
  same run, say a second grid over the same store, fails at once naming the first.
- *Extension*: a run whose spec differs from a done run of the store only by a larger epoch cap
  and/or a looser patience starts from that run's ``last.pt`` (:meth:`RunStore.precursor`): it
  trains only the epochs the shorter run did not, and its history is the one it would have had
  from scratch. This is how a recording is made longer (a capped run, or a certificate at a
  larger patience) without training again what it holds.

Datasets are prepared once and cached (``RunStore.data_cache``, default ``<data dir>/processed``);
``TrainConfig.max_train_lists`` / ``max_eval_lists`` take seeded subsets of the lists (seeded by
the data seed, so every model and seed of a grid meets the same lists).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import sys
import warnings
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from xmrec.config import DataConfig, EmbeddingConfig, ModelConfig, SamplerConfig, TrainConfig, data_dir
from xmrec.data.store import ProcessedDataset, Split
from xmrec.folders import exclusive, file_entries, file_sha256, recover, staging_folder, swap_in
from xmrec.io import atomic_path, atomic_write_text
from xmrec.metrics import evaluate
from xmrec.provenance import utc_now, worker_identity

__all__ = [
    "RUN_FORMAT",
    "ADA_SWITCHES",
    "DataRecipe",
    "PreparedData",
    "InMemoryData",
    "RunSpec",
    "RunRecord",
    "RunStore",
    "execute",
    "digest",
    "without_ada",
]

RUN_FORMAT = "xmrec-run/1"  # the digest's and the manifest's format: change it when a spec's meaning changes
MANIFEST = "MANIFEST.json"
RESULT_FILES = ("checkpoint.pt", "config.json", "history.json", "metrics.json", "test_scores.npy")
ADA_SWITCHES = (
    "use_input_modulation",
    "use_param_modulation",
    "mean_z_at_eval",
    "film_per_dim",
    "identity_patches",
    "identity_film",
)  # ModelConfig fields that mean something to an Ada-Ranker only (a base run ignores them)
EXTENDS = "extends.json"  # in a run folder that started from a precursor's last.pt: which run, how far
LEGACY_DONE = "test_metrics.json"  # the last file of a run folder before the run layer


def digest(obj) -> str:
    """16 hex digits of sha256 over ``obj`` as sorted JSON."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


# -- data ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataRecipe:
    """A dataset to prepare (``xmrec.data.pipeline``) and cache: spec, seed and the three configs."""

    dataset: str = "ml-100k"  # dataset spec (xmrec.data.pipeline.DATASET_SPECS)
    seed: int = 2022  # seeds the sampler, word2vec, synthetic data and the list subsets
    data: DataConfig = DataConfig()
    sampler: SamplerConfig = SamplerConfig()
    embedding: EmbeddingConfig = EmbeddingConfig()
    interactions: int = 100_000  # synthetic: number of interactions
    data_dir: str | None = None  # xmrec markets folder (None: the default resolver)

    def _kwargs(self) -> dict:
        return dict(
            seed=self.seed,
            data_dir=self.data_dir,
            interactions=self.interactions,
            data_cfg=self.data,
            sampler_cfg=self.sampler,
            emb_cfg=self.embedding,
        )

    def key(self) -> dict:
        from xmrec.data.pipeline import run_config

        return run_config(self.dataset, **self._kwargs())

    def folder(self, cache: Path) -> Path:
        """Where the prepared dataset is cached under ``cache``."""
        return Path(cache) / f"{self.dataset.replace(':', '-').replace('/', '-')}-{digest(self.key())}"

    def load(self, cache: Path, progress: bool = False) -> ProcessedDataset:
        from xmrec.data.pipeline import load_or_prepare

        return load_or_prepare(self.dataset, self.folder(cache), progress=progress, **self._kwargs())


@dataclass(frozen=True)
class PreparedData:
    """A dataset folder written by ``python -m xmrec prepare``, used as it is; named by its content."""

    path: str
    seed: int = 2022  # seeds the list subsets

    @cached_property
    def _fingerprint(self) -> str:
        return self.load().fingerprint()

    def key(self) -> dict:
        return {"prepared": self._fingerprint}

    def load(self, cache: Path | None = None, progress: bool = False) -> ProcessedDataset:
        from xmrec.data.store import load

        return load(self.path)


@dataclass(frozen=True)
class InMemoryData:
    """A dataset built in this process (e.g. a cross-market view): runs on it cannot leave the process."""

    dataset: ProcessedDataset = field(compare=False, repr=False)
    seed: int = 2022

    def key(self) -> dict:
        return {"memory": self.dataset.name, "fingerprint": self.dataset.fingerprint()}

    def load(self, cache: Path | None = None, progress: bool = False) -> ProcessedDataset:
        return self.dataset


DataSpec = DataRecipe | PreparedData | InMemoryData


def subset_lists(ds: ProcessedDataset, train: TrainConfig, seed: int) -> ProcessedDataset:
    """``ds`` with seeded random subsets of its lists (``max_train_lists``, ``max_eval_lists``)."""
    rng = np.random.default_rng(seed)
    return replace(
        ds,
        train=_subset(ds.train, train.max_train_lists, rng),
        valid=_subset(ds.valid, train.max_eval_lists, rng),
        test=_subset(ds.test, train.max_eval_lists, rng),
    )


def _subset(split: Split, n: int | None, rng: np.random.Generator) -> Split:
    if n is None or n >= len(split):
        return split
    return split.subset(np.sort(rng.choice(len(split), size=n, replace=False)))


# -- what to train ----------------------------------------------------------------------------
def _extension_key(key: dict) -> dict:
    """A spec's key (or its ``describe()``) without what an extension may change (the epoch cap and
    the patience) and without the label and digest, in its JSON form."""
    key = json.loads(json.dumps(key))
    train = {k: v for k, v in key["train"].items() if k not in ("epochs", "patience")}
    return {**{k: v for k, v in key.items() if k not in ("label", "digest")}, "train": train}


def without_ada(cfg: ModelConfig) -> ModelConfig:
    """``cfg`` as a base model: no Ada-Ranker parts, its Ada switches at their defaults."""
    default = ModelConfig()
    return replace(cfg, ada=False, n_patches=default.n_patches, **{k: getattr(default, k) for k in ADA_SWITCHES})


@dataclass(frozen=True)
class RunSpec:
    """One training, whole. The mode decides ``model.ada``; a base run drops the Ada switches (one
    base run serves every Ada variant of its model). ``embedding_init=False`` starts the item table
    at random instead of from word2vec. ``label`` names the run in tables; it is not part of the digest."""

    data: DataSpec
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    label: str = ""
    embedding_init: bool = True

    def __post_init__(self):
        from xmrec.models import canonical_name
        from xmrec.training.trainer import MODES

        if self.train.mode not in MODES:
            raise ValueError(f"TrainConfig.mode must be one of {MODES}, got {self.train.mode!r}")
        if self.train.freeze and self.train.mode != "finetune":
            raise ValueError(f"run {self.label!r}: freeze=True only applies to mode 'finetune'")
        model = replace(self.model, name=canonical_name(self.model.name), ada=self.train.mode != "base")
        object.__setattr__(self, "model", model if model.ada else without_ada(model))
        if self.train.init is not None and self.train.mode != "finetune":
            raise ValueError(
                f"run {self.label!r}: TrainConfig.init (a base checkpoint) only applies to mode 'finetune'"
            )
        if not self.label:
            object.__setattr__(self, "label", self.default_label())

    def default_label(self) -> str:
        return f"{self.model.name} {self.train.mode}" + (" (frozen)" if self.train.freeze else "")

    @property
    def seed(self) -> int:
        return self.train.seed

    @property
    def mode(self) -> str:
        return self.train.mode

    def base(self) -> RunSpec | None:
        """The base run a fine-tune starts from (same model, data and optimiser); None for other
        modes and for a fine-tune from a checkpoint named by ``TrainConfig.init``."""
        if self.train.mode != "finetune" or self.train.init is not None:
            return None
        train = replace(self.train, mode="base", freeze=False)
        return RunSpec(self.data, self.model, train, f"{self.model.name} base", self.embedding_init)

    def key(self) -> dict:
        """Everything that defines the run (the device and the label do not)."""
        base = self.base()
        return {
            "format": RUN_FORMAT,
            "data": self.data.key(),
            "embedding_init": self.embedding_init,
            "model": asdict(self.model),
            "train": {k: v for k, v in asdict(self.train).items() if k not in ("device", "init")},
            "base": base.digest() if base is not None else None,
            "init": file_sha256(Path(self.train.init)) if self.train.init is not None else None,
        }

    def digest(self) -> str:
        return digest(self.key())

    @property
    def name(self) -> str:
        """The run's folder name in a store: readable prefix, then the digest."""
        frozen = "-frozen" if self.train.freeze else ""
        return f"{self.model.name}-{self.train.mode}{frozen}-s{self.train.seed}-{self.digest()}"

    def describe(self) -> dict:
        """The JSON-ready spec (configs in full) for config.json and the manifest."""
        return {"label": self.label, "digest": self.digest(), **self.key()}

    def dataset(self, cache: Path, progress: bool = False) -> ProcessedDataset:
        """The lists this run trains, validates and tests on."""
        ds = subset_lists(self.data.load(cache, progress), self.train, self.data.seed)
        return ds if self.embedding_init else replace(ds, item_emb=None)


# -- results ------------------------------------------------------------------------------------
@dataclass
class RunRecord:
    """A finished run: what its folder holds (``folder`` None for a run kept in memory)."""

    spec: RunSpec
    metrics: dict  # test metrics of the best epoch
    history: list[dict]  # every epoch: train loss, validation (and test) metrics, seconds
    summary: dict  # config.json: configs, best epoch, epochs run, timing, sizes
    provenance: dict  # commit, versions, device, executor, worker, command
    test_scores: np.ndarray = field(repr=False)  # logits [n_test, n_candidates], positive first
    folder: Path | None = None
    reused: bool = False  # read back from the store, not trained by this call
    _model: object = field(default=None, repr=False)

    @property
    def best_epoch(self) -> int:
        return self.summary["best_epoch"]

    def model(self, device: str = "cpu"):
        """The trained ranker (best epoch), in eval mode."""
        if self._model is None:
            from xmrec.training.checkpoint import load_model

            self._model, _ = load_model(self.folder / "checkpoint.pt", device)
        return self._model


class RunStore:
    """Run folders under ``root``, one per spec (``root/<spec.name>``); see the module docstring.

    ``single=True`` makes ``root`` itself the folder of whatever spec is given (the CLI's
    ``train --out RUN``). ``data_cache`` is where datasets are prepared (default
    ``<data dir>/processed``).
    """

    def __init__(self, root: str | Path, *, data_cache: str | Path | None = None, single: bool = False):
        self.root, self.single = Path(root), single
        self.data_cache = Path(data_cache) if data_cache is not None else data_dir() / "processed"
        if not single:
            self._warn_legacy()

    def folder(self, spec: RunSpec) -> Path:
        return self.root if self.single else self.root / spec.name

    def manifest(self, spec: RunSpec) -> dict | None:
        """The folder's manifest when it is valid for ``spec`` (every listed file present, same size)."""
        return self.manifest_of(self.folder(spec), spec.digest())

    @staticmethod
    def manifest_of(folder: Path, digest: str) -> dict | None:
        """``folder``'s manifest when it is valid for the spec of ``digest``."""
        path = folder / MANIFEST
        try:
            found = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(found, dict) or found.get("format") != RUN_FORMAT or found.get("digest") != digest:
            return None
        for name, entry in found.get("files", {}).items():
            file = path.parent / name
            if not file.is_file() or file.stat().st_size != entry.get("bytes"):
                return None
        return found

    def precursor(self, spec: RunSpec) -> Path | None:
        """The folder of the longest done run of this store that ``spec`` extends: the same spec but
        for a smaller or equal epoch cap and patience (see the module docstring); None if none."""
        if self.single:
            return None
        mine, found = _extension_key(spec.key()), []
        for folder in self.root.glob(f"{spec.name.rsplit('-', 1)[0]}-*"):
            try:
                theirs = json.loads((folder / "config.json").read_text())["spec"]
            except (OSError, ValueError, KeyError):
                continue
            train = theirs["train"]
            shorter = train["epochs"] <= spec.train.epochs and train["patience"] <= spec.train.patience
            if (
                folder != self.folder(spec)
                and shorter
                and (folder / "last.pt").is_file()
                and (_extension_key(theirs) == mine and self.manifest_of(folder, theirs["digest"]) is not None)
            ):
                found.append((train["patience"], train["epochs"], folder))
        return max(found)[2] if found else None

    def extend(self, spec: RunSpec, folder: Path) -> dict | None:
        """Start ``folder`` (where ``spec`` trains) from its :meth:`precursor`'s ``last.pt`` when it has
        no ``last.pt`` of its own; what it extends (None: a run of its own). ``last.pt`` is copied
        last, atomically: a folder that holds it is seeded whole."""
        mark = folder / EXTENDS
        if (folder / "last.pt").is_file():
            return json.loads(mark.read_text()) if mark.is_file() else None
        source = self.precursor(spec)
        if source is None:
            return None
        history = json.loads((source / "history.json").read_text())
        train = json.loads((source / "config.json").read_text())["spec"]["train"]
        extends = {
            "run": source.name,
            "epochs_run": len(history),
            "epochs": train["epochs"],
            "patience": train["patience"],
            "command": json.loads((source / MANIFEST).read_text()).get("command"),
        }
        shutil.copy2(source / "checkpoint.pt", folder / "checkpoint.pt")
        atomic_write_text(mark, json.dumps(extends, indent=2))
        with atomic_path(folder / "last.pt") as tmp:
            shutil.copy2(source / "last.pt", tmp)
        return extends

    def lineage(self, spec: RunSpec) -> list[dict]:
        """The shorter recordings a done run extends, oldest first: each one's run, epochs run, epoch
        cap, patience and command (each folder's ``extends``, followed through the store)."""
        chain, folder = [], self.folder(spec)
        while True:
            try:
                extends = json.loads((folder / "config.json").read_text()).get("extends")
            except (OSError, ValueError):
                break
            if not extends or extends["run"] in {c["run"] for c in chain}:
                break
            chain.append(extends)  # run, epochs_run, epochs, patience, command (RunStore.extend)
            folder = self.root / extends["run"]
        return chain[::-1]

    def done(self, spec: RunSpec) -> bool:
        """Whether ``spec`` finished here: its folder holds a valid manifest."""
        return self.manifest(spec) is not None

    def load(self, spec: RunSpec) -> RunRecord:
        """A done run read back (every file checked against its sha256); no training."""
        folder, manifest = self.folder(spec), self.manifest(spec)
        if manifest is None:
            raise FileNotFoundError(f"{folder}: no finished run of {spec.label!r} (no valid {MANIFEST})")
        for name, entry in manifest["files"].items():
            if file_sha256(folder / name) != entry["sha256"]:
                raise ValueError(f"{folder / name} changed after the run finished (sha256 differs from {MANIFEST})")
        metrics = json.loads((folder / "metrics.json").read_text())
        provenance = metrics.pop("provenance")
        summary = json.loads((folder / "config.json").read_text())
        summary.pop("provenance", None)
        return RunRecord(
            spec,
            metrics,
            json.loads((folder / "history.json").read_text()),
            summary,
            provenance,
            np.load(folder / "test_scores.npy"),
            folder,
            reused=True,
        )

    def begin(self, spec: RunSpec, *, in_place: bool = False) -> Path:
        """Where ``spec`` trains. A store folder trains in place (an interrupted run resumes from its
        ``last.pt``; until it is done it holds no manifest and no result files). In a ``single``
        store that holds a finished run (of another spec: say, fewer epochs), the run trains in a
        staging copy of it, swapped in by :meth:`commit`: killed before, the finished run is intact
        (``in_place``: not under DDP, where every rank must read the same folder)."""
        folder = self.folder(spec)
        for message in recover(folder):
            print(f"xmrec: {message}", file=sys.stderr)
        if in_place or not (self.single and (folder / MANIFEST).is_file()):
            folder.mkdir(parents=True, exist_ok=True)
            for name in (MANIFEST, *RESULT_FILES[1:]):  # result files of no finished run: never left to disagree
                (folder / name).unlink(missing_ok=True)
            return folder
        staging = staging_folder(folder)
        for name in ("last.pt", "checkpoint.pt"):
            if (folder / name).is_file():
                shutil.copy2(folder / name, staging / name)
        return staging

    def commit(self, spec: RunSpec, record: RunRecord, trained_in: Path) -> None:
        """Write the result files into ``trained_in``, then the manifest last (from here on the run is
        done), and swap a staging folder in for the run's folder."""
        folder = trained_in
        atomic_write_text(
            folder / "config.json", json.dumps({**record.summary, "provenance": record.provenance}, indent=2)
        )
        atomic_write_text(folder / "history.json", json.dumps(record.history, indent=2))
        atomic_write_text(
            folder / "metrics.json", json.dumps({**record.metrics, "provenance": record.provenance}, indent=2)
        )
        with atomic_path(folder / "test_scores.npy") as tmp, open(tmp, "wb") as fh:
            np.save(fh, record.test_scores, allow_pickle=False)
        manifest = {
            "format": RUN_FORMAT,
            "digest": spec.digest(),
            "label": spec.label,
            "files": file_entries(folder, RESULT_FILES),
            "command": record.provenance.get("command"),
            "written_utc": utc_now(),
        }
        atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=2))
        if folder != self.folder(spec):
            swap_in(folder, self.folder(spec))
        record.folder = self.folder(spec)

    def _warn_legacy(self) -> None:
        """Say once that run folders of the layout before the run layer are not read (they must be retrained)."""
        if not self.root.is_dir():
            return
        old = [p for p in self.root.iterdir() if (p / LEGACY_DONE).is_file() and not (p / MANIFEST).is_file()]
        if old:
            warnings.warn(
                f"{self.root}: {len(old)} run folder(s) of the layout before the run layer ({LEGACY_DONE}, no "
                f"{MANIFEST}) are ignored: they were trained by earlier models and configs, so they are trained "
                "again; delete them to free the space and silence this",
                stacklevel=3,
            )


# -- training -----------------------------------------------------------------------------------
def execute(
    spec: RunSpec,
    store: RunStore | None,
    *,
    progress: bool = False,
    executor: str = "inprocess",
    command: list[str] | str | None = None,
    callbacks=(),
) -> RunRecord:
    """Train ``spec`` into ``store`` (or in memory when ``store`` is None) and return its record; a
    run the store holds already is read back instead. A fine-tune needs its base done in the store.
    Resumes an interrupted run from its ``last.pt``. Under ``torchrun`` every rank calls this, the
    ranks train data-parallel and rank 0 writes."""
    if store is not None and store.done(spec):
        return store.load(spec)
    from xmrec.training.trainer import Trainer

    train, base = spec.train, spec.base()
    if base is not None:  # a fine-tune from its base run in the store
        if store is None or not store.done(base):
            raise ValueError(f"fine-tune {spec.label!r} starts from its base run, which is not done: train it first")
        train = replace(train, init=str(store.folder(base) / "checkpoint.pt"))
    from xmrec.training import distributed

    ds = spec.dataset(store.data_cache if store is not None else None, progress)
    world = distributed.setup(train.device)
    held = store is not None and world.main  # one process writes a run's folder at a time (rank 0 for its ranks)
    with exclusive(store.folder(spec), f"run {spec.label!r}") if held else contextlib.nullcontext():
        if store is not None and store.done(spec):  # finished by another process since the check above
            return store.load(spec)
        folder = store.begin(spec, in_place=world.distributed) if store is not None else None
        extends = store.extend(spec, folder) if held else None
        world.barrier()  # a seeded folder is whole before any rank reads it
        trainer = Trainer(spec.model, train, out=folder, progress=progress, callbacks=callbacks)
        try:
            return _train(spec, store, trainer, ds, folder, progress, executor, command, extends)
        finally:
            if store is not None and folder != store.folder(spec) and folder.exists():  # a staging copy
                shutil.rmtree(folder, ignore_errors=True)


def _train(spec, store, trainer, ds, folder, progress, executor, command, extends) -> RunRecord:
    """The training of :func:`execute`, its record, and (rank 0) its files committed (``extends``:
    the run it started from, :meth:`RunStore.extend`)."""
    history = trainer.fit(ds, resume=True)
    if trainer.resumed_epochs and trainer.world.main and progress:
        print(
            f"xmrec: resumed {folder}: {trainer.resumed_epochs} of its {len(history)} epochs were trained earlier",
            file=sys.stderr,
        )
    scores = trainer.score(ds.test)  # every rank holds every list's scores
    metrics = {**evaluate(scores), "world_size": trainer.world.size}
    record = RunRecord(
        spec,
        metrics,
        [dict(h) for h in history],
        {**_summary(trainer, ds, spec, history), "extends": extends},
        _provenance(spec, trainer, executor, command),
        scores,
        folder,
        _model=trainer.model,
    )
    if store is not None:
        if trainer.world.main:
            store.commit(spec, record, folder)
        trainer.world.barrier()  # the files exist on return, on every rank
    return record


def _provenance(spec: RunSpec, trainer, executor: str, command) -> dict:
    from xmrec.provenance import provenance

    config = {**spec.describe(), "data_fingerprint": trainer.fingerprints["data"], "world_size": trainer.world.size}
    return {**provenance(config, str(trainer.device), command), "executor": executor, "worker": worker_identity()}


def _summary(trainer, ds: ProcessedDataset, spec: RunSpec, history: list[dict]) -> dict:
    """config.json without its provenance: the spec, what was trained, epochs, timing, sizes."""
    seconds = [h["seconds"] for h in history]
    return {
        "spec": spec.describe(),
        "model": asdict(trainer.model_cfg),
        "train": asdict(trainer.train_cfg),
        "dataset": ds.name,
        "description": trainer.model.describe(),
        "init": trainer.init_description,
        "best_epoch": trainer.best_epoch,
        "epochs_run": len(history),
        "resumed_epochs": trainer.resumed_epochs,
        "seconds_per_epoch": sum(seconds) / len(seconds) if seconds else None,
        "n_train": len(ds.train),
        "n_test": len(ds.test),
        "world_size": trainer.world.size,
        "backend": trainer.world.backend,
        "n_params": sum(p.numel() for p in trainer.model.parameters()),
        "n_ada_params": trainer.model.ada_parameter_count(),
    }


def lineage_commands(rows) -> list[str]:
    """The commands of the shorter recordings that recorded rows extend (each row's ``lineage``, from
    :meth:`RunStore.lineage`), oldest first, each once."""
    return list(dict.fromkeys(step["command"] for row in rows for step in row.get("lineage") or ()))
