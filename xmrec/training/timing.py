"""Time training steps as ``Trainer.fit`` takes them: the speed benchmarks' one way in.

:func:`time_epoch` builds the model for a dataset as ``fit`` does, trains one pass over warm-up
rows of the training split, then times one pass over the measured rows (a full epoch when they
are all of them). Nothing is validated, stopped early or saved: this measures speed, not a result.

The speed benchmarks (``benchmarks/faithful_speed.py``, ``benchmarks/train_throughput.py``) time
older commits of the kit too: they load this file by its path and run it against whichever
``xmrec`` is importable. So it uses only what those commits share: ``xmrec.training``'s
``SplitTensors`` and ``Trainer``, ``Trainer._build(ds)`` and ``Trainer._train_epoch(inputs) ->
(mean loss, seconds)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from xmrec.training import SplitTensors, Trainer


class EpochTiming(NamedTuple):
    loss: float  # mean training loss over the measured rows
    seconds: float  # wall seconds of the measured pass (CUDA synchronised)
    samples: int  # candidate lists timed
    device: torch.device  # where the trainer ran


def tensors(split, device: torch.device):
    """The default inputs: the split as tensors in host memory (every commit's ``SplitTensors``)."""
    return SplitTensors.from_split(split)


def time_epoch(
    model_cfg,
    train_cfg,
    ds,
    warmup_rows: slice,
    measured_rows: slice,
    inputs: Callable = tensors,
) -> EpochTiming:
    """One pass over ``ds.train[warmup_rows]`` untimed, then one timed over ``ds.train[measured_rows]``.

    ``inputs(split, device)`` turns training rows into what ``_train_epoch`` takes (default
    :func:`tensors`; e.g. a streamed split, or tensors moved to the GPU). On CUDA the peak memory
    statistics are reset just before the timed pass, so ``torch.cuda.max_memory_allocated``
    afterwards is its peak.
    """
    trainer = Trainer(model_cfg, train_cfg, progress=False)
    trainer._build(ds)
    device = trainer.device
    trainer._train_epoch(inputs(ds.train.subset(warmup_rows), device))
    measured = inputs(ds.train.subset(measured_rows), device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    loss, seconds = trainer._train_epoch(measured)
    return EpochTiming(loss, seconds, len(measured), device)
