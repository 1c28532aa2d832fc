"""Per-epoch history as TensorBoard scalars (``train --tensorboard DIR``); optional dependency ``tensorboard``."""

from __future__ import annotations

from pathlib import Path


def tensorboard_callback(log_dir: str | Path):
    """A :class:`Trainer` callback that writes each epoch's numbers (loss, validation metrics, timing)
    as scalars under ``log_dir``; a clear error when ``tensorboard`` is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch raises this when the tensorboard package is missing
        raise ImportError(
            "--tensorboard needs the tensorboard package: pip install tensorboard (or the kit's 'tensorboard' extra)"
        ) from None
    writer = SummaryWriter(log_dir=str(log_dir))

    def write(record: dict, trainer) -> None:
        for key, value in record.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "epoch":
                writer.add_scalar(key, value, record["epoch"])
        writer.flush()

    return write
