"""Export a processed dataset to the original Ada-Ranker layout, and read that layout back.

The original code trains from ``train.pkl`` / ``valid.pkl`` / ``test.pkl``: pickled DataFrames,
one row per instance, with columns

- ``user_id``, ``item_id``: ints (the remapped ids, 1..n);
- ``cate_id``: a one-element list ``[anchor category]``;
- ``item_seq``: the history as a list of item ids, oldest first, WITHOUT padding (the original
  pads while loading), here already truncated to ``max_seq_len``;
- ``item_seq_len``: int, the length of ``item_seq``;
- ``neg_items``: a list of ``n_neg`` item ids.

``item_emb_<d>.txt`` (``item_emb_64.txt`` by default) is in the word2vec text format that
gensim's ``save_word2vec_format`` writes and ``KeyedVectors.load_word2vec_format`` reads: a
header ``<rows> <d>``, then ``<item id> v1 ... vd`` for EVERY item 1..n_items (items without a
word2vec vector are written as zeros, so the table needs no vocabulary lookup). Every file is
written atomically. Python lists cost about 36 bytes per id (8 in the npz store): fine for
MovieLens, several GB for 10M synthetic interactions (``prepare_dataset(..., original=False)``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from xmrec.data.store import SPLITS, ProcessedDataset, Split
from xmrec.io import atomic_path

__all__ = [
    "ORIGINAL_COLUMNS",
    "split_to_frame",
    "frame_to_split",
    "export_original",
    "read_original_split",
    "write_item_embeddings",
    "read_item_embeddings",
]

ORIGINAL_COLUMNS = ("user_id", "item_id", "cate_id", "item_seq", "item_seq_len", "neg_items")
UNKNOWN = -1  # neg_pool / neg_n_cates of a split read from the original layout (not recorded there)


def split_to_frame(split: Split) -> pd.DataFrame:
    """One split as the original DataFrame (columns :data:`ORIGINAL_COLUMNS`)."""
    L = split.item_seq.shape[1]
    seq = [row[L - n :].tolist() for row, n in zip(split.item_seq, split.item_seq_len)]
    return pd.DataFrame(
        {
            "user_id": split.user.tolist(),
            "item_id": split.item.tolist(),
            "cate_id": [[c] for c in split.cate.tolist()],
            "item_seq": seq,
            "item_seq_len": split.item_seq_len.tolist(),
            "neg_items": split.neg_items.tolist(),
        }
    )


def frame_to_split(df: pd.DataFrame, max_seq_len: int | None = None, source: str = "DataFrame") -> Split:
    """The original DataFrame as a :class:`Split`: histories keep their last ``max_seq_len`` items
    (default: the longest) and are left-padded with 0; the anchor is ``cate_id[0]``."""
    missing = [c for c in ORIGINAL_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing}; the original layout has {list(ORIGINAL_COLUMNS)}")
    n = len(df)
    seqs = [np.asarray(s, dtype=np.int64).ravel() for s in df["item_seq"]]
    lens = np.array([len(s) for s in seqs], dtype=np.int64)
    L = max_seq_len or max(int(lens.max(initial=0)), 1)
    item_seq = np.zeros((n, L), dtype=np.int64)
    for r, s in enumerate(seqs):
        s = s[-L:]
        if len(s):
            item_seq[r, L - len(s) :] = s
    negs = [np.asarray(x, dtype=np.int64).ravel() for x in df["neg_items"]]
    widths = {len(x) for x in negs}
    if len(widths) > 1:
        raise ValueError(f"{source}: neg_items lists have different lengths {sorted(widths)}")
    cate = [np.asarray(c).ravel() for c in df["cate_id"]]
    if any(len(c) == 0 for c in cate):
        raise ValueError(f"{source}: a row has an empty cate_id list")
    return Split(
        user=df["user_id"].to_numpy(dtype=np.int64),
        item=df["item_id"].to_numpy(dtype=np.int64),
        cate=np.array([c[0] for c in cate], dtype=np.int64),
        item_seq=item_seq,
        item_seq_len=np.minimum(lens, L),
        neg_items=np.stack(negs) if n else np.zeros((0, 0), np.int64),
        neg_pool=np.full(n, UNKNOWN, np.int8),
        neg_n_cates=np.full(n, UNKNOWN, np.int8),
    )


def write_item_embeddings(table: np.ndarray, path: str | Path) -> Path:
    """Write rows 1.. of ``table`` in the word2vec text format (see the module docstring)."""
    path = Path(path)
    n, d = table.shape[0] - 1, table.shape[1]
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        fh.write(f"{n} {d}\n")
        body = np.column_stack([np.arange(1, n + 1), table[1:]]) if n else np.zeros((0, d + 1))
        np.savetxt(fh, body, fmt=["%d"] + ["%.9g"] * d, delimiter=" ")
    return path


def read_item_embeddings(path: str | Path) -> np.ndarray:
    """``float32 [max id + 1, d]`` table from a word2vec text file (absent ids and row 0 are zero)."""
    path = Path(path)
    with open(path) as fh:
        header = fh.readline().split()
        if len(header) != 2:
            raise ValueError(f"{path}, line 1: expected the header '<rows> <dim>', got {' '.join(header)!r}")
        rows, d = int(header[0]), int(header[1])
        body = np.loadtxt(fh, dtype=np.float64, ndmin=2) if rows else np.zeros((0, d + 1))
    if body.shape != (rows, d + 1):
        raise ValueError(
            f"{path}: header says {rows} x {d}, body has shape {body.shape} (expected an id and a vector per row)"
        )
    ids = body[:, 0].astype(np.int64)
    table = np.zeros((int(ids.max(initial=0)) + 1, d), dtype=np.float32)
    table[ids] = body[:, 1:]
    return table


def export_original(ds: ProcessedDataset, folder: str | Path) -> Path:
    """Write ``train/valid/test.pkl`` and ``item_emb_<d>.txt`` (when ``ds.item_emb`` exists) to ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in SPLITS:
        with atomic_path(folder / f"{name}.pkl") as tmp:
            split_to_frame(ds.split(name)).to_pickle(tmp)
    if ds.item_emb is not None:
        write_item_embeddings(ds.item_emb, folder / f"item_emb_{ds.item_emb.shape[1]}.txt")
    return folder


def read_original_split(path: str | Path, max_seq_len: int | None = None) -> Split:
    """Read one ``*.pkl`` of the original layout as a :class:`Split` (neg_pool/neg_n_cates = -1)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (expected train.pkl / valid.pkl / test.pkl)")
    df = pd.read_pickle(path)
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"{path}: holds a {type(df).__name__}, not a DataFrame of the original layout")
    return frame_to_split(df, max_seq_len, source=str(path))
