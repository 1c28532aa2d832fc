"""Inside Ada-Ranker, one candidate list at a time: what it reads and how it changes the ranker.

For every list of a split: the extractor's mean ``mu``, FiLM's ``gamma`` and ``beta``, the weights
each patch pool puts on its patches, and the scores. Everything is taken at z = mu (the latent's
mean, not a sample), so the numbers are the model's deterministic reading of the list.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
import torch

from xmrec.data.store import Split
from xmrec.models import Ranker
from xmrec.training.batches import SplitTensors, StreamedSplit, model_inputs

__all__ = ["PATCHED_TENSORS", "at_mean_z", "inside_lists", "mechanism_frame"]

PATCHED_TENSORS = ("W1", "b1", "W2", "b2")  # the prediction MLP's tensors, in the patcher's order


@contextlib.contextmanager
def at_mean_z(model: Ranker):
    """Evaluation mode, no gradients, and z = mu for the duration (the model's settings come back after)."""
    extractor = model.ada.extractor
    was_training, was_mean = model.training, extractor.mean_at_eval
    extractor.mean_at_eval = True
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        extractor.mean_at_eval = was_mean
        model.train(was_training)


def inside_lists(model: Ranker, split: Split | SplitTensors, batch_size: int = 2048) -> dict[str, np.ndarray]:
    """Per list: ``mu`` [n, d], ``scores`` [n, N], and, for the parts present, ``gamma`` and ``beta``
    [n, 1] (or [n, d] with per-dimension FiLM) and ``attention.W1`` ... ``attention.b2`` [n, n_patches]."""
    if model.ada is None:
        raise ValueError(f"{model.describe()} has no Ada-Ranker parts to look inside")
    data = split if isinstance(split, (SplitTensors, StreamedSplit)) else model_inputs(split)
    device = next(model.parameters()).device
    parts: dict[str, list] = {}
    with at_mean_z(model):
        for start in range(0, len(data), batch_size):
            batch = data.batch(slice(start, start + batch_size), device)
            mu = model.distribution(batch["candidates"]).mu
            found = {"mu": mu, "scores": model(batch)}
            if model.ada.film is not None:
                found["gamma"], found["beta"] = model.ada.film.coefficients(mu)
            if model.ada.patcher is not None:
                found.update(
                    {f"attention.{name}": w for name, w in zip(PATCHED_TENSORS, model.ada.patcher.attention(mu))}
                )
            for key, value in found.items():
                parts.setdefault(key, []).append(value.float().cpu())
    return {k: torch.cat(v).numpy() for k, v in parts.items()}


def mechanism_frame(inside_by_sampler: dict[str, dict[str, np.ndarray]], tensor: str = "W1") -> pd.DataFrame:
    """One row per (test sampler, list): ``gamma`` and ``beta`` (mean over dimensions), the entropy
    in bits of the ``tensor`` pool's attention, its most-attended patch, and the positive's rank
    (1 + the negatives scored strictly higher)."""
    frames = []
    for sampler, inside in inside_by_sampler.items():
        scores = inside["scores"]
        row = {
            "sampler": sampler,
            "list": np.arange(len(scores)),
            "positive_rank": 1 + (scores[:, 1:] > scores[:, :1]).sum(axis=1),
        }
        if "gamma" in inside:
            row.update(gamma=inside["gamma"].mean(axis=1), beta=inside["beta"].mean(axis=1))
        key = f"attention.{tensor}"
        if key in inside:
            w = inside[key]
            row.update(
                attention_entropy=-(w * np.log2(np.clip(w, 1e-12, None))).sum(axis=1), top_patch=w.argmax(axis=1)
            )
        frames.append(pd.DataFrame(row))
    out = pd.concat(frames, ignore_index=True)
    out["sampler"] = pd.Categorical(out["sampler"], categories=list(inside_by_sampler))
    return out
