"""One training run from a dataset folder to a run folder: what ``python -m xmrec train`` does."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

from xmrec.config import ModelConfig, TrainConfig
from xmrec.data.store import ProcessedDataset, load
from xmrec.io import atomic_write_text, writable_folder
from xmrec.provenance import provenance
from xmrec.training.trainer import Trainer


def train_run(
    data: str | Path | ProcessedDataset,
    out: str | Path,
    model_cfg: ModelConfig = ModelConfig(),
    train_cfg: TrainConfig = TrainConfig(),
    *,
    match_embedding_dim: bool = True,
    progress: bool = True,
    resume: bool = True,
    command: list[str] | str | None = None,
    callbacks=(),
) -> dict:
    """Train ``model_cfg`` with ``train_cfg`` on ``data`` (a folder of ``xmrec.data.store.save``, or the dataset).

    Writes to ``out``: ``checkpoint.pt`` (best model), ``last.pt`` (resume state), ``history.json``
    (per-epoch validation metrics), ``metrics.json`` (test metrics of the best model beside
    ``provenance``) and ``config.json`` (configs, data, what was trained, epochs, timing,
    ``provenance``). Returns metrics.json's content. ``match_embedding_dim`` sets d to the word2vec
    table's width (otherwise a ``dim`` that differs from the table is refused). A run folder from
    another run refuses to resume; a resumed run says so on stderr. ``callbacks`` run after each
    epoch (:class:`Trainer`), e.g. :func:`xmrec.training.tensorboard.tensorboard_callback`.

    Under ``torchrun`` every rank calls this; they train data-parallel (:class:`Trainer`), only
    rank 0 writes the files, and every rank returns the same metrics, which record ``world_size``.
    """
    out = writable_folder(out, "run folder")
    ds = data if isinstance(data, ProcessedDataset) else load(data)
    if match_embedding_dim and ds.item_emb is not None:
        model_cfg = replace(model_cfg, dim=int(ds.item_emb.shape[1]))
    trainer = Trainer(model_cfg, train_cfg, out=out, progress=progress, callbacks=callbacks)
    history = trainer.fit(ds, resume=resume)
    world = trainer.world
    if trainer.resumed_epochs and world.main:
        print(
            f"xmrec: resumed {out}: {trainer.resumed_epochs} of its {len(history)} epochs were trained "
            "by an earlier call",
            file=sys.stderr,
        )
    source = str(data) if not isinstance(data, ProcessedDataset) else None
    record = provenance(
        {
            "model": asdict(trainer.model_cfg),
            "train": asdict(train_cfg),
            "data": source or ds.name,
            "data_fingerprint": trainer.fingerprints["data"],
            "world_size": world.size,
        },
        str(trainer.device),
        command,
    )
    summary = _summary(trainer, ds, source, history) | {"provenance": record}
    metrics = {**trainer.evaluate(ds.test), "world_size": world.size, "provenance": record}
    if world.main:
        atomic_write_text(out / "config.json", json.dumps(summary, indent=2))
        atomic_write_text(out / "history.json", json.dumps(history, indent=2))
        atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    world.barrier()  # the files exist on return, on every rank
    return metrics


def _summary(trainer: Trainer, ds: ProcessedDataset, source: str | None, history: list[dict]) -> dict:
    """config.json without its provenance: configs, data, what was trained, epochs, timing, sizes."""
    seconds = [h["seconds"] for h in history]
    return {
        "model": asdict(trainer.model_cfg),
        "train": asdict(trainer.train_cfg),
        "data": source,
        "dataset": ds.name,
        "description": trainer.model.describe(),
        "init": trainer.init_description,
        "best_epoch": trainer.best_epoch,
        "epochs_run": len(history),
        "resumed_epochs": trainer.resumed_epochs,
        "seconds_per_epoch": sum(seconds) / len(seconds) if seconds else None,
        "n_train": len(ds.train),
        "world_size": trainer.world.size,
        "backend": trainer.world.backend,
        "n_params": sum(p.numel() for p in trainer.model.parameters()),
        "n_ada_params": trainer.model.ada_parameter_count(),
    }
