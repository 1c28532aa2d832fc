"""A processed Ada-Ranker dataset in memory and on disk.

One ``Split`` per train/valid/test holds contiguous arrays (no pandas in the training loop);
``ProcessedDataset`` bundles the splits with the id spaces, item categories, training
popularity and the word2vec table. ``save``/``load`` round-trip it through one ``.npy`` per array
(``arrays/<split>.<field>.npy``) plus a ``meta.json``, each written atomically and ``meta.json``
last (a reader never sees a half-written dataset). ``load`` memory-maps the arrays: nothing is
read until used, so a dataset larger than memory still trains (``xmrec.training.batches``).
"""

from __future__ import annotations

import hashlib
import json
import mmap
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

SPLITS = ("train", "valid", "test")
FORMAT_VERSION = 2  # 1: one arrays.npz (read whole into memory)
ARRAYS = "arrays"  # the folder of .npy files inside a dataset folder
_HASH_ROWS = 1 << 14  # rows hashed at a time: the fingerprint never copies a whole array


@dataclass
class Split:
    """Instances of one split; row i is one candidate list (positive ``item`` + ``neg_items``)."""

    user: np.ndarray  # int64 [n] user id (1..n_users)
    item: np.ndarray  # int64 [n] target (positive) item id
    cate: np.ndarray  # int64 [n] anchor category of the instance (merged id)
    item_seq: np.ndarray  # int32 [n, L] (int64 if ids exceed int32) history, oldest..newest, left-padded with 0
    item_seq_len: np.ndarray  # int64 [n] number of real items in item_seq
    neg_items: np.ndarray  # int64 [n, n_neg] negatives, distinct, never the target or in the history
    neg_pool: np.ndarray  # int8 [n] pool used: 0 uniform, 1 popularity-weighted
    neg_n_cates: np.ndarray  # int8 [n] number of categories the negatives were drawn from

    def __len__(self) -> int:
        return len(self.item)

    def candidates(self) -> np.ndarray:
        """``[n, 1 + n_neg]`` candidate matrix with the positive in column 0."""
        return np.concatenate([self.item[:, None], self.neg_items], axis=1)

    def subset(self, rows) -> Split:
        """The rows ``rows`` (an index array, mask or slice) as a new split."""
        return Split(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})


@dataclass
class ProcessedDataset:
    """A dataset ready for training: id spaces start at 1, 0 is padding everywhere."""

    name: str
    n_users: int  # largest user id
    n_items: int  # largest item id
    n_cates: int  # largest (merged) category id
    item_cate_ptr: np.ndarray  # int64 [n_items + 2] CSR row pointers: categories of item i
    item_cate_idx: np.ndarray  # int64 [nnz] CSR column indices (category ids)
    item_pop: np.ndarray  # int64 [n_items + 1] interaction counts on training interactions only
    train: Split
    valid: Split
    test: Split
    item_emb: np.ndarray | None = None  # float32 [n_items + 1, d] word2vec table, row 0 zero
    config: dict = field(default_factory=dict)  # the configs that produced it (asdict)
    stats: dict = field(default_factory=dict)  # counts after each processing step
    item_raw_ids: np.ndarray | None = None  # [n_items + 1] original item id of each new id (row 0 empty)
    user_raw_ids: np.ndarray | None = None  # [n_users + 1] original user id of each new id

    def item_categories(self, item: int) -> np.ndarray:
        """Category ids of one item."""
        return self.item_cate_idx[self.item_cate_ptr[item] : self.item_cate_ptr[item + 1]]

    @property
    def max_seq_len(self) -> int:
        return self.train.item_seq.shape[1]

    def fingerprint(self, splits=SPLITS) -> str:
        """16 hex digits of sha256 over the id spaces, training popularity and the arrays of
        ``splits``: ``fingerprint(())`` names the id space (the same interactions re-sampled keep
        it), ``fingerprint()`` the exact data. Checkpoints record both (resume and evaluate check)."""
        digest = hashlib.sha256(np.asarray([self.n_users, self.n_items], np.int64).tobytes())
        arrays = [self.item_pop, self.item_cate_ptr, self.item_cate_idx, self.item_raw_ids, self.user_raw_ids]
        arrays += [getattr(self.split(s), f.name) for s in splits for f in fields(Split)]
        for stored in arrays:
            a = np.asarray(stored) if stored is not None else np.zeros(0, np.int64)
            digest.update(f"{a.shape}".encode())
            if a.dtype.kind not in "iub":  # raw ids may be strings
                digest.update("\0".join(map(str, a)).encode())
                continue
            for lo in range(0, max(len(a), 1), _HASH_ROWS):  # the bytes of the whole array as int64
                digest.update(np.ascontiguousarray(a[lo : lo + _HASH_ROWS], dtype=np.int64).tobytes())
                release_pages(stored)
        return digest.hexdigest()[:16]

    @property
    def n_neg(self) -> int:
        return self.train.neg_items.shape[1]

    def split(self, name: str) -> Split:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        return getattr(self, name)


_TOP_ARRAYS = ("item_cate_ptr", "item_cate_idx", "item_pop", "item_emb", "item_raw_ids", "user_raw_ids")


def release_pages(array: np.ndarray) -> None:
    """Drop the pages of a memory-mapped array from this process (they stay in the page cache and
    are read again on use), so reading a large dataset does not grow the resident memory. A no-op
    for arrays in memory."""
    mapped = getattr(array, "_mmap", None)  # numpy.memmap's mapping (shared by its views)
    if mapped is not None:
        mapped.madvise(mmap.MADV_DONTNEED)


def save(ds: ProcessedDataset, out: str | Path, *, original: bool = False, command=None) -> Path:
    """Write ``ds`` to folder ``out`` as one transaction (``xmrec.folders``): ``arrays/*.npy``,
    ``meta.json``, with ``original`` the original pickle layout in ``original/``, and
    ``MANIFEST.json`` last. Until the new folder is complete the previous one stays as it was."""
    from xmrec.folders import transaction

    out = Path(out)
    with transaction(out, kind="dataset", command=command) as tmp:
        (tmp / ARRAYS).mkdir()
        arrays = {k: getattr(ds, k) for k in _TOP_ARRAYS if getattr(ds, k) is not None}
        for s in SPLITS:
            for f in fields(Split):
                arrays[f"{s}.{f.name}"] = getattr(ds.split(s), f.name)
        for name, array in arrays.items():
            with open(tmp / ARRAYS / f"{name}.npy", "wb") as fh:
                np.save(fh, np.asarray(array), allow_pickle=False)
        meta = {
            "format_version": FORMAT_VERSION,
            "name": ds.name,
            "n_users": ds.n_users,
            "n_items": ds.n_items,
            "n_cates": ds.n_cates,
            "arrays": sorted(arrays),
            "config": ds.config,
            "stats": ds.stats,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, default=_json_default))
        if original:
            from xmrec.data.export import export_original

            export_original(ds, tmp / "original")
    return out


def rebuild_command(path: str | Path) -> str:
    """The command that prepares the dataset folder ``path`` again (from its meta.json when it has one)."""
    try:
        spec = json.loads((Path(path) / "meta.json").read_text())["config"]["spec"]
    except (OSError, ValueError, KeyError, TypeError):
        spec = "SPEC"
    return f"python -m xmrec prepare --dataset {spec} --out {path}"


def read_meta(path: str | Path) -> dict:
    """``meta.json`` of the dataset folder ``path``, checked against the folder's manifest and its
    arrays: one clear sentence if the folder is not a complete dataset of this version."""
    from xmrec.folders import check

    check(path, "processed xmrec dataset", rebuild_command(path))
    meta_path = Path(path) / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{meta_path}: not readable JSON ({exc}); rebuild with `{rebuild_command(path)}`") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{meta_path}: format_version {meta.get('format_version')}, this version reads {FORMAT_VERSION}; "
            "prepare the dataset again (`python -m xmrec prepare`)"
        )
    return meta


def load(path: str | Path) -> ProcessedDataset:
    """Open a dataset written by :func:`save`, its arrays memory-mapped (read-only); a clear error
    if the folder is not one."""
    path = Path(path)
    meta = read_meta(path)
    arrays = {}
    for name in meta["arrays"]:
        file = path / ARRAYS / f"{name}.npy"
        try:
            arrays[name] = np.load(file, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{file}: not a readable array of this dataset ({exc})") from exc
    _check_counts(path, meta, arrays)
    splits = {s: Split(**{f.name: arrays[f"{s}.{f.name}"] for f in fields(Split)}) for s in SPLITS}
    return ProcessedDataset(
        name=meta["name"],
        n_users=meta["n_users"],
        n_items=meta["n_items"],
        n_cates=meta["n_cates"],
        config=meta["config"],
        stats=meta["stats"],
        **{k: arrays.get(k) for k in _TOP_ARRAYS},
        **splits,
    )


def _check_counts(path: Path, meta: dict, arrays: dict) -> None:
    """meta.json's counts against the arrays that have one row per item or user (shapes only: cheap)."""
    rows = {"item_pop": meta["n_items"] + 1, "item_raw_ids": meta["n_items"] + 1, "user_raw_ids": meta["n_users"] + 1}
    rows["item_cate_ptr"] = meta["n_items"] + 2
    for name, expected in rows.items():
        array = arrays.get(name)
        if array is not None and len(array) != expected:
            count = "n_users" if name.startswith("user") else "n_items"
            raise ValueError(
                f"{path / 'meta.json'}: {count} {meta[count]} disagrees with {ARRAYS}/{name}.npy ({len(array)} rows, "
                f"expected {expected}); rebuild with `{rebuild_command(path)}`"
            )


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, (tuple, set)):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
