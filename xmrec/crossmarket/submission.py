"""Prediction files and the WSDM Cup 2022 submission archive.

A prediction file is a TSV with header ``userId itemId score`` and one row per user-candidate
pair. The archive holds ``t1/`` and ``t2/``, each with ``valid_pred.tsv`` and ``test_pred.tsv``.
Everything is written atomically.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from xmrec.io import atomic_path

from .candidates import Candidates
from .graph import CrossMarketData

__all__ = [
    "predictions_frame",
    "write_predictions",
    "read_predictions",
    "write_submission",
    "SUBMISSION_MARKETS",
    "PRED_FILES",
    "PRED_COLUMNS",
]

SUBMISSION_MARKETS = ("t1", "t2")
PRED_FILES = {"valid": "valid_pred.tsv", "test": "test_pred.tsv"}
PRED_COLUMNS = ["userId", "itemId", "score"]


def predictions_frame(data: CrossMarketData, cands: Candidates, scores: np.ndarray) -> pd.DataFrame:
    """``userId, itemId, score`` rows for every candidate of every list, in list order."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != cands.items.shape:
        raise ValueError(f"scores of shape {scores.shape} for candidates of shape {cands.items.shape}")
    k = cands.items.shape[1]
    return pd.DataFrame(
        {
            "userId": np.repeat(data.user_ids.to_numpy()[cands.users], k),
            "itemId": data.item_ids.to_numpy()[cands.items.ravel()],
            "score": scores.ravel(),
        }
    )


def write_predictions(pred: pd.DataFrame, path: str | Path) -> Path:
    """Write a prediction table as TSV (header ``userId itemId score``), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        pred[PRED_COLUMNS].to_csv(tmp, sep="\t", index=False, float_format="%.8g")
    return path


def read_predictions(path: str | Path) -> pd.DataFrame:
    """Read a prediction TSV, checking its header."""
    df = pd.read_csv(path, sep="\t", dtype={"userId": str, "itemId": str})
    if list(df.columns) != PRED_COLUMNS:
        raise ValueError(f"{path}: header {list(df.columns)}, expected {PRED_COLUMNS}")
    return df


def write_submission(
    folder: str | Path, zip_path: str | Path, markets=SUBMISSION_MARKETS, strict: bool = True
) -> list[str]:
    """Zip ``folder/<market>/{valid,test}_pred.tsv`` into ``zip_path`` with the official layout.

    Returns the archive members. ``strict`` raises when one of the expected files is missing
    (the official scorer needs all four); otherwise missing files are skipped.
    """
    folder = Path(folder)
    members, missing = [], []
    for market in markets:
        for name in PRED_FILES.values():
            (members if (folder / market / name).is_file() else missing).append(f"{market}/{name}")
    if missing and strict:
        raise FileNotFoundError(f"submission incomplete: {missing} missing under {folder}")
    if not members:
        raise FileNotFoundError(f"no prediction files under {folder} for markets {list(markets)}")
    with atomic_path(zip_path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for member in members:
            zf.write(folder / member, member)
    return members
