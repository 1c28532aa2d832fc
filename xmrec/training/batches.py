"""Model batches of a split, by rows: converted once into tensors, or streamed for large splits.

``model_inputs(split)`` picks: a split whose model inputs take under ``RESIDENT_BYTES`` as int64
becomes a :class:`SplitTensors` (converted once, indexed by rows; on CUDA it can live on the
device, :meth:`SplitTensors.to`); a larger one a :class:`StreamedSplit`, which converts only each
step's rows from the (memory-mapped, ``xmrec.data.store.load``) arrays, so a dataset larger than
memory trains with bounded resident memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from xmrec.data.store import Split, release_pages

RESIDENT_BYTES = 1 << 28  # model inputs (as int64) up to 256 MiB are converted once, larger ones stream
INPUTS = ("user", "item_seq", "item_seq_len", "candidates")


@dataclass
class SplitTensors:
    """The four model inputs of a split as contiguous int64 tensors (CPU; batches move to the device)."""

    user: torch.Tensor  # [n]
    item_seq: torch.Tensor  # [n, L], left-padded
    item_seq_len: torch.Tensor  # [n]
    candidates: torch.Tensor  # [n, N], positive in column 0

    @classmethod
    def from_split(cls, split: Split) -> SplitTensors:
        def t(a) -> torch.Tensor:
            a = np.ascontiguousarray(a, dtype=np.int64)
            return torch.from_numpy(a if a.flags.writeable else a.copy())

        return cls(
            user=t(split.user),
            item_seq=t(split.item_seq),
            item_seq_len=t(split.item_seq_len),
            candidates=t(split.candidates()),
        )

    def __len__(self) -> int:
        return self.user.shape[0]

    @property
    def n_candidates(self) -> int:
        return self.candidates.shape[1]

    def rows(self, block: slice) -> SplitTensors:
        """A contiguous block of lists (views, no copy)."""
        return SplitTensors(self.user[block], self.item_seq[block], self.item_seq_len[block], self.candidates[block])

    def to(self, device: torch.device) -> SplitTensors:
        """The same inputs on ``device`` (e.g. resident on the GPU: a step then copies only its row index)."""
        return SplitTensors(*(getattr(self, k).to(device) for k in INPUTS))

    def batch(self, rows: torch.Tensor | slice, device: torch.device) -> dict[str, torch.Tensor]:
        """The model batch of ``rows`` on ``device``."""
        non_blocking = device.type == "cuda"
        return {k: getattr(self, k)[rows].to(device, non_blocking=non_blocking) for k in INPUTS}

    def check_ids(self, n_items: int, n_users: int, source: str) -> None:
        """Raise a clear error if an id is outside the model's tables (e.g. a foreign test.pkl)."""
        _check_ids(
            [
                ("item", self.candidates, n_items),
                ("history item", self.item_seq, n_items),
                ("user", self.user, n_users),
            ],
            source,
        )


class StreamedSplit:
    """A split's model inputs read step by step: only a batch's rows are converted to int64 tensors.

    The histories and negatives (the two large arrays) of a loaded dataset are read row by row
    from their ``.npy`` files (:func:`_read_rows`): nothing of them is mapped into memory (the
    kernel would map up to a whole page-cache folio around each random row, gigabytes per epoch).
    Other arrays are indexed as they are; memory-mapped pages are released after every batch.
    ``rows(block)`` narrows to a contiguous block of lists without copying.
    """

    def __init__(self, split: Split, start: int = 0, stop: int | None = None):
        self.split, self.start = split, start
        self.stop = len(split) if stop is None else stop

    def __len__(self) -> int:
        return self.stop - self.start

    @property
    def n_candidates(self) -> int:
        return 1 + self.split.neg_items.shape[1]

    def rows(self, block: slice) -> StreamedSplit:
        span = range(self.start, self.stop)[block]
        return StreamedSplit(self.split, span.start, span.stop)

    def batch(self, rows: torch.Tensor | slice, device: torch.device) -> dict[str, torch.Tensor]:
        """The model batch of ``rows`` (positions within this block) on ``device``."""
        idx = (rows.numpy() if isinstance(rows, torch.Tensor) else np.arange(len(self))[rows]) + self.start
        s = self.split
        parts = {
            "user": s.user[idx],
            "item_seq": _read_rows(s.item_seq, idx),
            "item_seq_len": s.item_seq_len[idx],
            "candidates": np.concatenate([s.item[idx][:, None], _read_rows(s.neg_items, idx)], axis=1),
        }
        batch = {k: torch.from_numpy(np.array(v, dtype=np.int64)).to(device) for k, v in parts.items()}
        self.release()
        return batch

    def release(self) -> None:
        """Let go of the mapped pages read so far (they stay in the page cache, out of this process)."""
        for name in ("user", "item_seq", "item_seq_len", "item", "neg_items"):
            release_pages(getattr(self.split, name))

    def check_ids(self, n_items: int, n_users: int, source: str) -> None:
        """As :meth:`SplitTensors.check_ids`, reading the arrays in blocks."""
        s, step = self.split, 1 << 14
        for lo in range(self.start, self.stop, step):
            block = slice(lo, min(lo + step, self.stop))
            ids = [("item", s.item[block], n_items), ("item", s.neg_items[block], n_items)]
            ids += [("history item", s.item_seq[block], n_items), ("user", s.user[block], n_users)]
            _check_ids(ids, source)
            self.release()


def _read_rows(array: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``array[idx]``; for a whole 2-D array memory-mapped from a ``.npy`` file, read with ``pread``
    (one call per row, into the result: no page of the file is mapped)."""
    whole = (
        isinstance(array, np.memmap)
        and array.filename is not None
        and array.ndim == 2
        and array.flags.c_contiguous
        and array.offset + array.nbytes == os.path.getsize(array.filename)
    )
    if not whole:
        return array[idx]
    out = np.empty((len(idx), array.shape[1]), array.dtype)
    row = array.dtype.itemsize * array.shape[1]
    buffer = memoryview(out).cast("B")
    fd = os.open(array.filename, os.O_RDONLY)
    try:
        for n, r in enumerate(idx.tolist()):
            os.preadv(fd, [buffer[n * row : (n + 1) * row]], array.offset + r * row)
    finally:
        os.close(fd)
    return out


def model_inputs(split: Split) -> SplitTensors | StreamedSplit:
    """The split's model inputs: tensors converted once when small, streamed otherwise (module docstring)."""
    n = len(split)
    cells = n * (3 + split.item_seq.shape[1] + split.neg_items.shape[1])
    return StreamedSplit(split) if 8 * cells > RESIDENT_BYTES else SplitTensors.from_split(split)


def _check_ids(arrays, source: str) -> None:
    """``arrays``: (what, ids, largest valid id) triples."""
    for name, t, top in arrays:
        if len(t) and (int(t.max()) > top or int(t.min()) < 0):
            raise ValueError(f"{source}: {name} ids span {int(t.min())}..{int(t.max())}, the model knows 0..{top}")
