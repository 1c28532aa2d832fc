"""Checkpoints: what a trained ranker needs to be rebuilt, and what a run needs to resume.

A checkpoint is one ``torch.save`` dict written atomically, readable with ``weights_only=True``.
Loading is strict: the model is rebuilt from the stored ``ModelConfig`` and every tensor must
match, so an Ada-Ranker checkpoint can never be loaded into a base model (or the reverse).
"""

from __future__ import annotations

import logging
import random
from dataclasses import asdict, fields
from pathlib import Path

import torch

from xmrec.config import ModelConfig, TrainConfig
from xmrec.io import atomic_path
from xmrec.models import Ranker, build_model

FORMAT = "xmrec-ranker/1"
log = logging.getLogger(__name__)


def model_payload(
    model: Ranker,
    *,
    n_items: int,
    n_users: int,
    train_cfg: TrainConfig,
    dataset: str,
    epoch: int,
    valid: dict | None,
    state: dict | None = None,
    fingerprints: dict | None = None,
) -> dict:
    """Everything needed to rebuild and describe a trained model (``state`` defaults to the model's).

    ``fingerprints``: ``ids`` (the dataset's id space) and ``data`` (its training and validation
    arrays), from :meth:`ProcessedDataset.fingerprint`, so evaluation and resume can check the data.
    """
    return {
        "format": FORMAT,
        "model_config": asdict(model.cfg),
        "train_config": asdict(train_cfg),
        "n_items": n_items,
        "n_users": n_users,
        "dataset": dataset,
        "epoch": epoch,
        "fingerprints": fingerprints or {},
        "valid": valid or {},
        "model": state if state is not None else model.state_dict(),
    }


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    """Write ``payload`` to ``path`` atomically (a crash leaves the previous file intact)."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def read_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint written by this module; a clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: torch's first line says what it saw
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: not a readable xmrec checkpoint ({first[:160]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not an xmrec ranker checkpoint (format {FORMAT!r} expected)")
    return payload


def model_config_of(payload: dict, source: str = "checkpoint") -> ModelConfig:
    """The ``ModelConfig`` stored in a checkpoint."""
    stored = dict(payload["model_config"])
    known = {f.name for f in fields(ModelConfig)}
    unknown = sorted(set(stored) - known)
    if unknown:
        raise ValueError(f"{source}: model config has fields this version does not know: {unknown}")
    stored["nextitnet_dilations"] = tuple(stored.get("nextitnet_dilations", ModelConfig.nextitnet_dilations))
    return ModelConfig(**stored)


def describe_payload(payload: dict, model: Ranker | None = None) -> str:
    """One line: what the checkpoint holds, from which epoch and data."""
    cfg = model_config_of(payload)
    what = model.describe() if model is not None else f"{'Ada-Ranker' if cfg.ada else 'base'} {cfg.name}"
    gauc = payload.get("valid", {}).get("gauc")
    score = f", valid gauc {gauc:.4f}" if gauc is not None else ""
    return f"{what}, epoch {payload.get('epoch')}{score}, trained on {payload.get('dataset')!r}"


def load_weights(model: Ranker, payload: dict, source: str = "checkpoint") -> str:
    """Load a checkpoint's tensors into ``model``, strictly; returns what was loaded, in words."""
    stored = model_config_of(payload, source)
    if stored.ada != model.cfg.ada:
        held = "an Ada-Ranker" if stored.ada else "a base"
        raise ValueError(
            f"{source} holds {held} {stored.name}, but the model is {model.describe()}: refusing "
            "to load it (build the model from the checkpoint with load_model instead)"
        )
    if stored.name != model.cfg.name or stored.dim != model.cfg.dim:
        raise ValueError(f"{source} holds {stored.name} d={stored.dim}, the model is {model.describe()}")
    try:
        model.load_state_dict(payload["model"], strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{source} does not match {model.describe()}: {exc}") from exc
    return describe_payload(payload, model)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[Ranker, dict]:
    """Rebuild the model stored at ``path`` (base or Ada, as recorded) and load it strictly.

    Returns ``(model, payload)``; ``payload["description"]`` says what was loaded.
    """
    payload = read_checkpoint(path)
    model = build_model(model_config_of(payload, str(path)), payload["n_items"], payload["n_users"])
    payload["description"] = load_weights(model, payload, str(path))
    log.info("loaded %s from %s", payload["description"], path)
    return model.to(device).eval(), payload


def load_base_weights(model: Ranker, payload: dict, source: str) -> str:
    """Fine-tuning start: load a BASE checkpoint into an Ada model; the Ada parameters keep their
    initialisation. Every base tensor must match exactly; anything else is refused."""
    stored = model_config_of(payload, source)
    if stored.ada:
        raise ValueError(f"{source} holds an Ada-Ranker {stored.name}; fine-tuning starts from a base checkpoint")
    if stored.name != model.cfg.name or stored.dim != model.cfg.dim:
        raise ValueError(f"{source} holds base {stored.name} d={stored.dim}, cannot start {model.describe()}")
    base_keys = {k for k in model.state_dict() if not k.startswith("ada.")}
    missing, unexpected = sorted(base_keys - set(payload["model"])), sorted(set(payload["model"]) - base_keys)
    if missing or unexpected:
        raise ValueError(
            f"{source} does not match the base part of {model.describe()}: missing {missing}, unexpected {unexpected}"
        )
    try:
        model.load_state_dict(payload["model"], strict=False)
    except RuntimeError as exc:
        raise ValueError(f"{source} does not match {model.describe()}: {exc}") from exc
    return describe_payload(payload)


def rng_state(shuffle: torch.Generator) -> dict:
    """Every random state the training loop draws from (batch order, dropout, z samples)."""
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "shuffle": shuffle.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, shuffle: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    shuffle.set_state(state["shuffle"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
