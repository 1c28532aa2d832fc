"""Model batches of a split, by rows: converted once into tensors, or streamed for large splits.

``model_inputs(split)`` picks: a split whose model inputs take under ``RESIDENT_BYTES`` as int64
becomes a :class:`SplitTensors` (converted once, indexed by rows; on CUDA it can live on the
device, :meth:`SplitTensors.to`); a larger one a :class:`StreamedSplit`, which converts only each
step's rows from the (memory-mapped, ``xmrec.data.store.load``) arrays, so a dataset larger than
memory trains with bounded resident memory.
"""

from __future__ import annotations

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
    """A split's model inputs read step by step from its arrays: only a batch's rows are converted
    to int64 tensors, and the pages of memory-mapped arrays are released after every batch. The
    kernel maps up to 64 KB around each page it reads, so a batch of B random rows maps at most
    about B x 64 KB per array, whatever the size of the files."""

    def __init__(self, split: Split):
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    @property
    def n_candidates(self) -> int:
        return 1 + self.split.neg_items.shape[1]

    def rows(self, block: slice) -> StreamedSplit:
        return StreamedSplit(self.split.subset(block))

    def batch(self, rows: torch.Tensor | slice, device: torch.device) -> dict[str, torch.Tensor]:
        """The model batch of ``rows`` on ``device``."""
        idx = rows.numpy() if isinstance(rows, torch.Tensor) else rows
        s = self.split
        parts = {
            "user": s.user[idx],
            "item_seq": s.item_seq[idx],
            "item_seq_len": s.item_seq_len[idx],
            "candidates": np.concatenate([s.item[idx][:, None], s.neg_items[idx]], axis=1),
        }
        batch = {k: torch.from_numpy(np.array(v, dtype=np.int64)).to(device) for k, v in parts.items()}
        self.release()
        return batch

    def release(self) -> None:
        """Let go of the mapped pages read so far (they stay in the page cache, out of this process)."""
        for name in ("user", "item_seq", "item_seq_len", "item", "neg_items"):
            release_pages(getattr(self.split, name))

    def check_ids(self, n_items: int, n_users: int, source: str) -> None:
        """As :meth:`SplitTensors.check_ids`, reading the arrays once."""
        s = self.split
        ids = [("item", s.item, n_items), ("item", s.neg_items, n_items), ("history item", s.item_seq, n_items)]
        _check_ids(ids + [("user", s.user, n_users)], source)
        self.release()


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
