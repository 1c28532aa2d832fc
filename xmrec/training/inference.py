"""Scoring: a model's logits for every candidate list of a split, and checkpoint evaluation."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from xmrec.config import resolve_device
from xmrec.data.store import Split, load
from xmrec.io import atomic_path
from xmrec.metrics import evaluate
from xmrec.models import Ranker
from xmrec.training.batches import SplitTensors, StreamedSplit, model_inputs
from xmrec.training.checkpoint import load_model


def autocast(device: torch.device, amp: bool):
    """bf16 (or fp16) autocast on CUDA when ``amp``; a no-op elsewhere."""
    if not amp or device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def _tensors(split: Split | SplitTensors | StreamedSplit) -> SplitTensors | StreamedSplit:
    return split if isinstance(split, (SplitTensors, StreamedSplit)) else model_inputs(split)


@contextlib.contextmanager
def _eval_mode(model: Ranker, device: torch.device, seed: int):
    """Evaluation mode with a private, seeded random stream (z may be sampled at evaluation):
    the same seed gives the same scores, and the caller's random state is left untouched."""
    was_training = model.training
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(seed)
        model.eval()
        try:
            yield
        finally:
            model.train(was_training)


def _model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def score(
    model: Ranker,
    split: Split | SplitTensors,
    *,
    batch_size: int = 4096,
    seed: int = 0,
    amp: bool = False,
    progress: bool = False,
    forward=None,
) -> np.ndarray:
    """Logits ``[n_lists, n_candidates]`` (float32) of ``model`` on ``split``, positive in column 0.

    ``forward`` optionally replaces ``model`` for the call (e.g. its ``torch.compile`` version).
    """
    data, device = _tensors(split), _model_device(model)
    out = []
    with _eval_mode(model, device, seed):
        for start in tqdm(range(0, len(data), batch_size), desc="score", leave=False, disable=not progress):
            batch = data.batch(slice(start, start + batch_size), device)
            with autocast(device, amp):
                out.append((forward or model)(batch).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, data.n_candidates), np.float32)


def distributions(
    model: Ranker, split: Split | SplitTensors, *, batch_size: int = 4096, seed: int = 0
) -> dict[str, np.ndarray]:
    """The distribution extractor's ``z``, ``mu`` and ``logvar`` [n_lists, d] for each list (to plot)."""
    data, device = _tensors(split), _model_device(model)
    parts: dict[str, list] = {"z": [], "mu": [], "logvar": []}
    with _eval_mode(model, device, seed):
        for start in range(0, len(data), batch_size):
            dist = model.distribution(data.batch(slice(start, start + batch_size), device)["candidates"])
            for key in parts:
                parts[key].append(getattr(dist, key).float().cpu())
    return {k: torch.cat(v).numpy() for k, v in parts.items()}


def load_split(data: str | Path, split: str, max_seq_len: int) -> Split:
    """A processed dataset folder's split, or a ``*.pkl`` file in the original Ada-Ranker layout."""
    data = Path(data)
    if data.is_file() and data.suffix == ".pkl":
        from xmrec.data.export import read_original_split

        return read_original_split(data, max_seq_len=max_seq_len)
    return load(data).split(split)


def _checked_split(checkpoint, payload: dict, data, split: str, max_seq_len: int) -> Split:
    """The split to score, read once; a processed dataset whose id space is not the checkpoint's is
    refused (another dataset's item 7 is another item), and what cannot be checked is said out loud."""
    recorded = payload.get("fingerprints", {}).get("ids")
    if Path(data).suffix == ".pkl" or recorded is None:
        why = "an original-layout file" if Path(data).suffix == ".pkl" else "the checkpoint records no data fingerprint"
        print(f"xmrec: note: {why}; only the id ranges of {data} are checked against {checkpoint}", file=sys.stderr)
        return load_split(data, split, max_seq_len)
    ds = load(data)
    here = ds.fingerprint(())
    if here != recorded:
        raise ValueError(
            f"{checkpoint} was trained on another dataset than {data} (id-space fingerprint "
            f"{recorded}, here {here}): its scores on these ids would mean nothing"
        )
    return ds.split(split)


def evaluate_checkpoint(
    checkpoint: str | Path,
    data: str | Path,
    split: str = "test",
    device: str = "auto",
    scores_out: str | Path | None = None,
    *,
    batch_size: int = 4096,
    verbose: bool = True,
) -> dict[str, float]:
    """Metrics of a saved model on a split of ``data`` (a processed folder or an original ``test.pkl``).

    The model is rebuilt strictly from the checkpoint (base or Ada as recorded); with ``verbose``
    a line on stderr says what was loaded. ``scores_out`` also saves the score matrix (``.npy``).
    Scoring uses the seed of the training run, so it reproduces the run's own test figures.
    """
    model, payload = load_model(checkpoint, resolve_device(device))
    if verbose:
        print(f"xmrec: loaded {payload['description']} from {checkpoint}", file=sys.stderr)
    source = str(data) if Path(data).suffix == ".pkl" else f"{data} [{split}]"
    tensors = model_inputs(_checked_split(checkpoint, payload, data, split, model.cfg.max_seq_len))
    tensors.check_ids(payload["n_items"], payload["n_users"], source)
    scores = score(model, tensors, batch_size=batch_size, seed=payload["train_config"]["seed"])
    if scores_out is not None:
        with atomic_path(scores_out) as tmp, open(tmp, "wb") as fh:
            np.save(fh, scores)
    return evaluate(scores)
