"""Model batches cut from contiguous tensors: a split is converted once, then indexed by rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from xmrec.data.store import Split


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

    def rows(self, block: slice) -> SplitTensors:
        """A contiguous block of lists (views, no copy)."""
        return SplitTensors(self.user[block], self.item_seq[block], self.item_seq_len[block], self.candidates[block])

    def batch(self, rows: torch.Tensor | slice, device: torch.device) -> dict[str, torch.Tensor]:
        """The model batch of ``rows`` on ``device``."""
        non_blocking = device.type == "cuda"
        return {
            k: getattr(self, k)[rows].to(device, non_blocking=non_blocking)
            for k in ("user", "item_seq", "item_seq_len", "candidates")
        }

    def check_ids(self, n_items: int, n_users: int, source: str) -> None:
        """Raise a clear error if an id is outside the model's tables (e.g. a foreign test.pkl)."""
        for name, t, top in (
            ("item", self.candidates, n_items),
            ("history item", self.item_seq, n_items),
            ("user", self.user, n_users),
        ):
            if len(t) and (int(t.max()) > top or int(t.min()) < 0):
                raise ValueError(f"{source}: {name} ids span {int(t.min())}..{int(t.max())}, the model knows 0..{top}")
