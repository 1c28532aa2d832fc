"""One seaborn theme for every figure, and helpers that draw on a given ``ax`` and save atomically.

Helpers take ``ax=None`` (a new figure when omitted) and return ``(fig, ax)``; nothing draws on
matplotlib's global current axes, so notebooks can compose panels freely.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

from xmrec.config import project_root
from xmrec.io import atomic_path

PALETTE = "colorblind"


def set_theme() -> None:
    """The kit's theme: readable in a slide (large fonts), colour-blind safe, light grid."""
    import seaborn as sns

    sns.set_theme(context="talk", style="whitegrid", palette=PALETTE, font_scale=0.8)
    matplotlib.rcParams.update({"figure.dpi": 100, "savefig.dpi": 130, "savefig.bbox": "tight",
                                "axes.titleweight": "bold"})


def figures_dir() -> Path:
    """Where notebooks write their figures: ``<root>/figures``."""
    return project_root() / "figures"


def new_ax(ax=None, figsize=(7, 4.5)):
    """Return ``(fig, ax)``: the given axes and its figure, or a fresh single-panel figure."""
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def save_figure(fig, name: str, folder: Path | None = None) -> Path:
    """Save ``fig`` as ``<folder>/<name>.png`` atomically (default folder: ``figures/``)."""
    folder = folder or figures_dir()
    path = Path(folder) / (name if name.endswith(".png") else f"{name}.png")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
