"""One training run from a dataset folder to a run folder: what ``python -m xmrec train`` does."""
from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

from xmrec.config import ModelConfig, TrainConfig
from xmrec.data.store import ProcessedDataset, load
from xmrec.io import atomic_write_text
from xmrec.training.trainer import Trainer


def train_run(data: str | Path | ProcessedDataset, out: str | Path, model: str = "GRU4Rec", mode: str = "base",
              freeze: bool = False, init: str | Path | None = None, epochs: int | None = None, seed: int = 2022,
              device: str = "auto", batch_size: int | None = None, patience: int | None = None,
              amp: bool = False, *, model_cfg: ModelConfig | None = None, train_cfg: TrainConfig | None = None,
              progress: bool = True, resume: bool = True) -> dict[str, float]:
    """Train ``model`` in ``mode`` on ``data`` (a folder of ``xmrec.data.store.save``, or the dataset).

    Writes to ``out``: ``checkpoint.pt`` (best model), ``last.pt`` (resume state), ``history.json``
    (per-epoch validation metrics), ``metrics.json`` (test metrics of the best model) and
    ``config.json`` (configs, data, what was trained, epochs and timing). Returns the test metrics.
    ``None`` arguments keep the ``train_cfg`` (default ``TrainConfig()``) values; ``model_cfg``
    sets the model's other fields (e.g. the Ada-Ranker switches); without it, d is the word2vec
    table's width.
    """
    ds = data if isinstance(data, ProcessedDataset) else load(data)
    out = Path(out)
    mcfg = replace(model_cfg or ModelConfig(), name=model)
    if model_cfg is None and ds.item_emb is not None:  # the embedding size follows the word2vec table
        mcfg = replace(mcfg, dim=int(ds.item_emb.shape[1]))
    overrides = {"epochs": epochs, "batch_size": batch_size, "patience": patience}
    tcfg = replace(train_cfg or TrainConfig(), mode=mode, freeze=freeze, init=None if init is None else str(init),
                   seed=seed, device=device, amp=amp, **{k: v for k, v in overrides.items() if v is not None})
    trainer = Trainer(mcfg, tcfg, out=out, progress=progress)
    history = trainer.fit(ds, resume=resume)
    metrics = trainer.evaluate(ds.test)
    seconds = [h["seconds"] for h in history]
    summary = {
        "model": asdict(trainer.model_cfg), "train": asdict(tcfg),
        "data": str(data) if not isinstance(data, ProcessedDataset) else None, "dataset": ds.name,
        "description": trainer.model.describe(), "init": trainer.init_description,
        "best_epoch": trainer.best_epoch, "epochs_run": len(history),
        "seconds_per_epoch": sum(seconds) / len(seconds) if seconds else None,
        "n_train": len(ds.train), "n_params": sum(p.numel() for p in trainer.model.parameters()),
        "n_ada_params": trainer.model.ada_parameter_count(),
    }
    atomic_write_text(out / "config.json", json.dumps(summary, indent=2))
    atomic_write_text(out / "history.json", json.dumps(history, indent=2))
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    return metrics
