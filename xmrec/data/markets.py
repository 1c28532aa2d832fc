"""Load the market folders of the WSDM Cup 2022 cross-market recommendation (XMRec) data.

A data directory holds one folder per market (``s1``, ``s2``, ``s3``, ``t1``, ``t2``, ...) with:

- ``train.tsv`` / ``train_5core.tsv``: header ``userId itemId rating``; at least one is required;
- ``valid_qrel.tsv``: header ``userId itemId rating``, one held-out positive per evaluated user;
- ``valid_run.tsv`` / ``test_run.tsv``: no header, ``userId<TAB>item1,...,item100``.

Each file may also be gzipped (``.tsv.gz``). Optional files that are absent load as ``None``
(the public copy lacks several), a missing required file or malformed line raises an error
naming the market, the file and the line. Ids stay strings, exactly as in the files.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from xmrec.config import markets_dir

__all__ = ["Market", "list_markets", "load_market", "read_run", "read_interactions", "find_file", "RUN_LENGTH"]

RUN_LENGTH = 100  # candidates per line of an official run file (1 positive + 99 negatives)
INTERACTION_HEADER = ("userId", "itemId", "rating")
TRAIN_FILES = ("train", "train_5core")


@dataclass
class Market:
    """One market's files, loaded; absent optional files are ``None``."""

    name: str
    train: pd.DataFrame  # userId, itemId, rating: train.tsv UNION train_5core.tsv (train.tsv rating wins)
    train_raw: pd.DataFrame | None  # train.tsv as read (duplicates kept)
    train_5core: pd.DataFrame | None  # train_5core.tsv as read
    valid_qrel: pd.DataFrame | None  # userId, itemId: the held-out validation positive per user
    valid_run: pd.DataFrame | None  # userId, items (list of candidate item ids)
    test_run: pd.DataFrame | None  # userId, items
    path: Path | None = None  # the market folder (None for markets built in memory)
    run_kind: str = "official"  # where valid_run/test_run came from: "official" files or "sampled"

    @property
    def users(self) -> pd.Index:
        """Users with at least one training interaction."""
        return pd.Index(self.train["userId"].unique())

    @property
    def items(self) -> pd.Index:
        """Items with at least one training interaction."""
        return pd.Index(self.train["itemId"].unique())

    def __repr__(self) -> str:
        def n(df):
            return "-" if df is None else len(df)

        return (
            f"Market({self.name!r}: train={len(self.train)} rows, {self.train['userId'].nunique()} users, "
            f"{self.train['itemId'].nunique()} items; valid_qrel={n(self.valid_qrel)}, "
            f"valid_run={n(self.valid_run)}, test_run={n(self.test_run)})"
        )


def _resolve_dir(data_dir) -> Path:
    if data_dir is None:
        data_dir = markets_dir()
        if data_dir is None:
            raise FileNotFoundError(
                "no XMRec data directory: pass data_dir=, or set XMREC_MARKETS_DIR to the folder that "
                "holds the market folders (t1/, t2/, s1/, ...), or place it at ../shared/data/xmrec-wsdm22"
            )
    data_dir = Path(data_dir).expanduser()
    if not data_dir.is_dir():
        raise FileNotFoundError(f"XMRec data directory {data_dir} does not exist")
    return data_dir


def find_file(folder: str | Path, stem: str) -> Path | None:
    """``folder/stem.tsv`` or ``folder/stem.tsv.gz``, whichever exists (plain first), else None."""
    for suffix in (".tsv", ".tsv.gz"):
        p = Path(folder) / f"{stem}{suffix}"
        if p.is_file():
            return p
    return None


def _read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as fh:
            text = fh.read()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot be read ({exc})") from exc
    lines = text.splitlines()
    while lines and not lines[-1].strip():  # tolerate trailing blank lines
        lines.pop()
    return lines


def read_interactions(path: str | Path) -> pd.DataFrame:
    """A ``userId itemId rating`` file (with header) as a DataFrame; ratings are float64.

    Raises ``ValueError`` naming the file and 1-based line of a wrong header, a line without
    exactly three fields, an empty id, or a non-numeric rating.
    """
    path = Path(path)
    lines = _read_lines(path)
    if not lines:
        raise ValueError(f"{path}: file is empty (expected the header 'userId<TAB>itemId<TAB>rating')")
    header = tuple(h.strip() for h in lines[0].split("\t"))
    if header != INTERACTION_HEADER:
        raise ValueError(f"{path}, line 1: header {header!r}, expected {INTERACTION_HEADER!r}")
    users, items, ratings = [], [], []
    for lineno, line in enumerate(lines[1:], start=2):
        parts = line.split("\t")
        if len(parts) != 3:
            raise ValueError(
                f"{path}, line {lineno}: {len(parts)} tab-separated fields, expected 3 "
                f"(userId, itemId, rating): {line[:80]!r}"
            )
        u, i, r = (p.strip() for p in parts)
        if not u or not i:
            raise ValueError(f"{path}, line {lineno}: empty userId or itemId")
        users.append(u)
        items.append(i)
        ratings.append(r)
    rating = pd.to_numeric(pd.Series(ratings, dtype=object), errors="coerce")
    bad = (~np.isfinite(rating.to_numpy(dtype=np.float64, na_value=np.nan))).nonzero()[0]
    if len(bad):
        k = int(bad[0])
        raise ValueError(f"{path}, line {k + 2}: rating {ratings[k]!r} is not a finite number")
    return pd.DataFrame({"userId": users, "itemId": items, "rating": rating.astype("float64").to_numpy()})


def read_run(path: str | Path, n_candidates: int | None = RUN_LENGTH) -> pd.DataFrame:
    """A run file (``userId<TAB>item1,...,itemN``, no header) as a DataFrame ``userId, items``.

    ``items`` holds a list of str per user. ``n_candidates`` enforces the list length (the
    official files have 100); ``None`` accepts any length as long as every line has the same.
    Duplicate users or duplicate items within a line are errors (named by file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"run file {path} does not exist")
    lines = _read_lines(path)
    if not lines:
        raise ValueError(f"{path}: run file is empty")
    users, lists, seen = [], [], {}
    expected = n_candidates
    for lineno, line in enumerate(lines, start=1):
        parts = line.split("\t")
        if len(parts) != 2:
            raise ValueError(
                f"{path}, line {lineno}: {len(parts)} tab-separated fields, expected 2 "
                f"(userId, comma-separated items): {line[:80]!r}"
            )
        user = parts[0].strip()
        cands = [c.strip() for c in parts[1].split(",")]
        if not user or any(not c for c in cands):
            raise ValueError(f"{path}, line {lineno}: empty userId or empty item in the list")
        if expected is None:
            expected = len(cands)
        if len(cands) != expected:
            raise ValueError(f"{path}, line {lineno}: {len(cands)} candidate items, expected {expected}")
        if len(set(cands)) != len(cands):
            raise ValueError(f"{path}, line {lineno}: the candidate list repeats an item")
        if user in seen:
            raise ValueError(f"{path}, line {lineno}: user {user} already listed on line {seen[user]}")
        seen[user] = lineno
        users.append(user)
        lists.append(cands)
    return pd.DataFrame({"userId": users, "items": lists})


def merge_train(train_raw: pd.DataFrame | None, train_5core: pd.DataFrame | None) -> pd.DataFrame:
    """train.tsv UNION train_5core.tsv, one row per (userId, itemId).

    train.tsv rows come first (a duplicate pair inside it keeps its first rating), then the
    5-core pairs absent from train.tsv, in file order.
    """
    frames = [f for f in (train_raw, train_5core) if f is not None]
    if not frames:
        raise ValueError("no training interactions: neither train.tsv nor train_5core.tsv was given")
    both = pd.concat(frames, ignore_index=True)
    return both.drop_duplicates(["userId", "itemId"], keep="first").reset_index(drop=True)


def list_markets(data_dir=None) -> list[str]:
    """Names of the market folders under ``data_dir`` (folders with a train file), sorted."""
    root = _resolve_dir(data_dir)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and any(find_file(p, s) for s in TRAIN_FILES))


def load_market(market: str, data_dir=None) -> Market:
    """Load one market folder; see the module docstring for the files and what is optional."""
    root = _resolve_dir(data_dir)
    folder = root / market
    if not folder.is_dir():
        raise FileNotFoundError(
            f"market {market!r}: no folder {folder}; markets found in {root}: {list_markets(root) or 'none'}"
        )
    paths = {stem: find_file(folder, stem) for stem in ("train", "train_5core", "valid_qrel", "valid_run", "test_run")}
    if paths["train"] is None and paths["train_5core"] is None:
        raise FileNotFoundError(
            f"market {market!r}: neither train.tsv nor train_5core.tsv (.gz) in {folder}; at least one is required"
        )
    train_raw = read_interactions(paths["train"]) if paths["train"] else None
    train_5core = read_interactions(paths["train_5core"]) if paths["train_5core"] else None
    train = merge_train(train_raw, train_5core)
    if train.empty:
        raise ValueError(f"market {market!r}: the training files in {folder} hold no interactions")
    qrel = None
    if paths["valid_qrel"]:
        qrel = read_interactions(paths["valid_qrel"])[["userId", "itemId"]]
        dup = qrel["userId"].duplicated()
        if dup.any():
            k = int(dup.to_numpy().nonzero()[0][0])
            raise ValueError(
                f"{paths['valid_qrel']}, line {k + 2}: user {qrel['userId'].iat[k]} has a "
                "second validation positive (expected one per user)"
            )
    valid_run = read_run(paths["valid_run"]) if paths["valid_run"] else None
    test_run = read_run(paths["test_run"]) if paths["test_run"] else None
    return Market(
        name=market,
        train=train,
        train_raw=train_raw,
        train_5core=train_5core,
        valid_qrel=qrel,
        valid_run=valid_run,
        test_run=test_run,
        path=folder,
    )
