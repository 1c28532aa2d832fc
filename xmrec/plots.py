"""One seaborn theme for every figure, and helpers that draw on a given ``ax`` and save atomically.

Helpers take ``ax=None`` (a new figure when omitted) and return ``(fig, ax)``; nothing draws on
matplotlib's global current axes, so notebooks can compose panels freely.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

from xmrec.config import project_root
from xmrec.io import atomic_path

PALETTE = "colorblind"


def set_theme() -> None:
    """The kit's theme: readable in a slide (large fonts), colour-blind safe, light grid."""
    import seaborn as sns

    sns.set_theme(context="talk", style="whitegrid", palette=PALETTE, font_scale=0.8)
    matplotlib.rcParams.update(
        {"figure.dpi": 100, "savefig.dpi": 130, "savefig.bbox": "tight", "axes.titleweight": "bold"}
    )


def figures_dir(smoke: bool = False) -> Path:
    """Where notebooks write their figures: ``<root>/figures``, or ``<root>/runs/smoke-figures`` for a
    SMOKE run, so that a quick check never overwrites the reference figures."""
    return project_root() / "runs" / "smoke-figures" if smoke else project_root() / "figures"


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


# --- Figures of notebooks 01 (data preparation) and 02 (distribution shift) ---------------------


def colors_for(names) -> dict:
    """A stable colour per name (samplers, markets, categories), in the kit's palette."""
    import seaborn as sns

    names = list(names)
    return dict(zip(names, sns.color_palette(PALETTE, max(len(names), 1))))


def sampler_colors() -> dict:
    """One fixed colour per negative sampler (the four training samplers and the two test-only
    shifts) and one for the positives, used by every figure of the kit: a sampler looks the same
    in every notebook."""
    import seaborn as sns

    pal = sns.color_palette(PALETTE)
    return {
        "uniform": pal[0],
        "popularity": pal[1],
        "category": pal[2],
        "mixer": pal[4],
        "unpopular": pal[5],
        "other-category": pal[9],
        "positives": (0.2, 0.2, 0.2),
    }


def category_labels(ds) -> list[str]:
    """Display name of each merged category id of a processed dataset (index 0 is padding).

    Categories that were merged show as ``other (k labels)``.
    """
    by_id: dict[int, list[str]] = {}
    for label, cid in ds.stats.get("category_map", {}).items():
        by_id.setdefault(int(cid), []).append(label)
    names = ["(padding)"]
    for cid in range(1, ds.n_cates + 1):
        labels = sorted(by_id.get(cid, [str(cid)]))
        names.append(labels[0] if len(labels) == 1 else f"other ({len(labels)} labels)")
    return names


def grouped_bars(
    values,
    ax=None,
    ylabel: str = "",
    labels=None,
    title: str | None = None,
    colors: dict | None = None,
    legend: bool = True,
):
    """Side-by-side bars: ``values`` rows are the x groups, columns the series (a DataFrame).

    ``labels`` (same shape, strings) is written on top of each bar; default: the values.
    """
    fig, ax = new_ax(ax)
    colors = colors or colors_for(values.columns)
    n = len(values.columns)
    width = 0.8 / n
    x = np.arange(len(values.index))
    for k, col in enumerate(values.columns):
        heights = values[col].to_numpy(dtype=float)
        bars = ax.bar(x + (k - (n - 1) / 2) * width, heights, width, label=str(col), color=colors[col])
        text = (labels[col] if labels is not None else values[col]).tolist()
        ax.bar_label(
            bars,
            labels=[f"{t:,.0f}" if isinstance(t, (int, float)) else str(t) for t in text],
            padding=3,
            fontsize="x-small",
            rotation=90 if n > 1 else 0,
        )
    ax.set_xticks(x, [str(i) for i in values.index])
    ax.set_ylabel(ylabel)
    ax.margins(y=0.3 if n > 1 else 0.15)
    if legend and n > 1:
        ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig, ax


def category_sizes(items_per_label, threshold: int, ax=None, title: str | None = None):
    """Horizontal bars: distinct items per raw category label, coloured kept vs merged at ``threshold``."""
    from matplotlib.patches import Patch

    fig, ax = new_ax(ax, figsize=(7, 6))
    sizes = items_per_label.sort_values()
    palette = colors_for(["kept", "merged"])
    kept = sizes.to_numpy() > threshold
    ax.barh([str(s) for s in sizes.index], sizes.to_numpy(), color=[palette["kept" if k else "merged"] for k in kept])
    ax.axvline(threshold, color="black", ls="--", lw=1.5)
    ax.text(threshold, -0.9, f" threshold {threshold}", va="top", fontsize="small")
    ax.legend(
        handles=[
            Patch(color=palette["kept"], label=f"own category ({kept.sum()})"),
            Patch(color=palette["merged"], label=f"merged into one ({(~kept).sum()})"),
        ],
        loc="lower right",
        fontsize="small",
    )
    ax.set_xlabel("distinct items with the label")
    if title:
        ax.set_title(title)
    return fig, ax


def history_lengths(lengths, max_len: int, ax=None, title: str | None = None, bins: int = 40):
    """Histogram of history lengths (items) with the truncation cap L marked."""
    fig, ax = new_ax(ax)
    lengths = np.asarray(lengths)
    at_cap = float(np.mean(lengths >= max_len))
    longest = int(lengths.max()) if len(lengths) else 0
    if longest < max_len:  # nothing is cut: integer bins over the data, the cap stated in words
        ax.hist(lengths, bins=np.arange(-0.5, longest + 1.5), color="C0")
        ax.text(
            0.97,
            0.95,
            f"L = {max_len}: no history reaches it\n(longest {longest})",
            ha="right",
            va="top",
            transform=ax.transAxes,
            fontsize="small",
        )
    else:
        ax.hist(lengths, bins=bins, color="C0")
        ax.axvline(max_len, color="black", ls="--", lw=1.5)
        ax.text(
            0.9,
            0.95,
            f"L = {max_len} (dashed):\n{at_cap:.0%} of histories cut",
            ha="right",
            va="top",
            transform=ax.transAxes,
            fontsize="small",
            bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"},
        )
    ax.set_xlabel("history length (items before the target)")
    ax.set_ylabel("instances")
    if title:
        ax.set_title(title)
    return fig, ax


def distribution_by_group(
    values: dict,
    ax=None,
    ylabel: str = "",
    kind: str = "box",
    log: bool = False,
    colors: dict | None = None,
    title: str | None = None,
):
    """One box (or violin) per named group of values, in the dict's order."""
    import pandas as pd
    import seaborn as sns

    fig, ax = new_ax(ax)
    long = pd.DataFrame(
        {
            "group": np.repeat(list(values), [len(v) for v in values.values()]),
            "value": np.concatenate([np.asarray(v, dtype=float) for v in values.values()]),
        }
    )
    colors = colors or colors_for(values)
    common = dict(
        data=long,
        x="group",
        y="value",
        hue="group",
        palette=colors,
        legend=False,
        ax=ax,
        order=list(values),
        log_scale=log,
    )
    if kind == "violin":
        sns.violinplot(cut=0, inner="quartile", density_norm="width", **common)
    else:
        sns.boxplot(showfliers=False, width=0.6, **common)
    ax.set_xlabel("")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return fig, ax


def ecdf_lines(
    values: dict, ax=None, xlabel: str = "", log: bool = True, styles: dict | None = None, title: str | None = None
):
    """Empirical CDF of each named array; ``styles`` maps a name to extra ``plot`` keywords."""
    fig, ax = new_ax(ax)
    colors = colors_for(values)
    for name, v in values.items():
        x = np.sort(np.asarray(v, dtype=float))
        kw = {"color": colors[name], "lw": 2.5, **(styles or {}).get(name, {})}
        ax.step(x, np.arange(1, len(x) + 1) / len(x), where="post", label=name, **kw)
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of items at or below x")
    ax.set_ylim(0, 1.01)
    ax.legend(fontsize="x-small", loc="upper left")
    if title:
        ax.set_title(title)
    return fig, ax


def category_mix(histograms, labels, ax=None, title: str | None = None, colors: dict | None = None):
    """Stacked horizontal bars: the category shares of each list (one bar per row of ``histograms``).

    ``histograms`` is ``[n_lists, n_cates + 1]`` (column 0, padding, is ignored); ``labels`` names
    the columns.
    """
    fig, ax = new_ax(ax)
    hist = np.asarray(histograms, dtype=float)[:, 1:]
    share = hist / np.maximum(hist.sum(axis=1, keepdims=True), 1)
    colors = colors or colors_for(labels[1:])
    left = np.zeros(len(share))
    rows = np.arange(len(share))
    for c, name in enumerate(labels[1:]):
        ax.barh(rows, share[:, c], left=left, height=0.9, color=colors[name], label=name)
        left += share[:, c]
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.5, len(share) - 0.5)
    ax.set_yticks([])
    ax.set_xlabel("share of the list's category labels")
    ax.set_ylabel(f"{len(share)} candidate lists")
    if title:
        ax.set_title(title)
    return fig, ax


def list_space(profile, ax=None, color=None, title: str | None = None, seed: int = 0):
    """Each candidate list as a point: share of negatives in the anchor category vs their median popularity."""
    fig, ax = new_ax(ax)
    rng = np.random.default_rng(seed)
    x = profile["anchor_share"].to_numpy() + rng.uniform(-0.015, 0.015, len(profile))
    ax.scatter(x, profile["negative_pop"].to_numpy() + 1, s=6, alpha=0.25, color=color, linewidths=0)
    ax.set_yscale("log")
    ax.set_xlim(-0.03, 1.03)
    ax.set_xlabel("share of negatives in the anchor category")
    ax.set_ylabel("median popularity of negatives\n(training interactions + 1)")
    if title:
        ax.set_title(title)
    return fig, ax


def popularity_curves(counts: dict, ax=None, colors: dict | None = None, title: str | None = None):
    """Concentration curve per group: share of interactions held by the top share of its items."""
    from xmrec.shift import gini, popularity_curve

    fig, ax = new_ax(ax)
    colors = colors or colors_for(counts)
    smallest = 100.0
    for name, c in counts.items():
        x, y = popularity_curve(c)
        ax.plot(100 * x, 100 * y, lw=2.5, color=colors[name], label=f"{name} (Gini {gini(c):.2f})")
        smallest = min(smallest, 100 * x[0])
    even = np.logspace(np.log10(smallest), 2, 100)
    ax.plot(even, even, color="grey", ls=":", lw=2, label="all items equally popular")
    ax.set_xscale("log")
    ax.set_xlabel("top items of the market (% of its items, log scale)")
    ax.set_ylabel("share of its interactions (%)")
    ax.set_ylim(0, 101)
    ax.legend(fontsize="x-small", loc="upper left")
    if title:
        ax.set_title(title)
    return fig, ax


def heatmap(
    matrix,
    labels,
    ax=None,
    title: str | None = None,
    cbar_label: str = "",
    fmt: str = ".2f",
    vmin: float | None = 0.0,
    vmax: float | None = 1.0,
    cmap: str = "rocket_r",
):
    """An annotated square heatmap of a pairwise matrix between named groups."""
    import pandas as pd

    return table_heatmap(
        pd.DataFrame(matrix, index=labels, columns=labels),
        ax=ax,
        title=title,
        cbar_label=cbar_label,
        fmt=fmt,
        vmin=vmin,
        vmax=vmax,
        cmap=cmap,
        square=True,
    )


def table_heatmap(
    frame,
    ax=None,
    title: str | None = None,
    cbar_label: str = "",
    fmt: str = ".2f",
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = "rocket_r",
    center: float | None = None,
    square: bool = False,
    xlabel: str = "",
    ylabel: str = "",
    annot=True,
):
    """An annotated heatmap of a DataFrame: its index are the rows, its columns the columns
    (``annot``: True for the values in ``fmt``, or a same-shaped array of cell texts)."""
    import seaborn as sns

    fig, ax = new_ax(ax, figsize=(6.5, 5.5))
    sns.heatmap(
        frame,
        annot=annot,
        fmt=fmt if annot is True else "",
        vmin=vmin,
        vmax=vmax,
        cmap=cmap,
        center=center,
        square=square,
        cbar_kws={"label": cbar_label},
        ax=ax,
    )
    ax.tick_params(axis="y", rotation=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return fig, ax


SHIFT_PANELS = (
    ("base_drop", -1, "base:\nshifted - matched lists"),
    ("ada_drop", -1, "Ada-Ranker:\nshifted - matched lists"),
    ("diff", 1, "Ada-Ranker - base,\nsame lists and seed"),
)  # (summary column, sign, title): every panel shows a change in the metric, red = lower, blue = higher


def shift_limit(summary, scale: float = 100.0) -> float:
    """The colour limit that puts every panel of :func:`shift_matrix`, for every model of ``summary``,
    on one scale (the largest mean change, in points)."""
    values = np.abs(summary[[f"{c}_mean" for c, _, _ in SHIFT_PANELS]].to_numpy(dtype=float)) * scale
    return float(np.nanmax(values)) if np.isfinite(values).any() else 1.0


def shift_matrix(summary, model: str, axes, metric: str = "gauc", scale: float = 100.0, limit: float | None = None):
    """Three heatmaps of one model's shift matrix (rows: trained on, columns: tested on), in points
    (x ``scale``): the change from the matched test set for base and for Ada, and Ada - base. One
    diverging scale (``limit``, default :func:`shift_limit`) and one meaning in every panel: red,
    the metric is lower; blue, higher. Each cell shows the mean over seeds and, under it, the std."""
    from xmrec.data.sampling import ALL_SAMPLERS

    rows = summary[summary["model"] == model]
    train = [k for k in ALL_SAMPLERS if k in set(rows["train_sampler"])]
    test = [k for k in ALL_SAMPLERS if k in set(rows["test_sampler"])]
    limit = limit or shift_limit(summary, scale)

    def grid(column):
        return rows.pivot(index="train_sampler", columns="test_sampler", values=column).loc[train, test] * scale

    for ax, (column, sign, name) in zip(axes, SHIFT_PANELS):
        mean, std = sign * grid(f"{column}_mean"), grid(f"{column}_std")
        text = [
            [
                "matched"
                if column != "diff" and t == k
                else (f"{m:+.1f}" + (f"\n±{s:.1f}" if s == s else "") if m == m else "")
                for t, m, s in zip(test, mr, sr)
            ]
            for k, mr, sr in zip(train, mean.to_numpy(), std.to_numpy())
        ]
        table_heatmap(
            mean,
            ax=ax,
            annot=np.array(text),
            cmap="vlag_r",
            center=0,
            vmin=-limit,
            vmax=limit,
            cbar_label=f"{metric_label(metric)} change (points)",
            title=name,
            xlabel="tested on",
            ylabel="trained on",
        )
        for r, sampler in enumerate(train):  # say so where a row has no recorded runs yet
            if mean.loc[sampler].isna().all():
                ax.text(
                    len(test) / 2, r + 0.5, "not recorded yet", ha="center", va="center", fontsize="small", color="grey"
                )
    return axes[0].figure, axes


def embedding_map(
    xy,
    groups,
    ax=None,
    order=None,
    colors: dict | None = None,
    title: str | None = None,
    size: float = 8,
    alpha: float = 0.5,
    xlabel: str = "PC 1",
    ylabel: str = "PC 2",
    background=None,
    seed: int = 0,
):
    """2-D scatter of item vectors (e.g. a PCA projection), one colour per group label.

    Points are drawn in a seeded random order, so no group hides another; ``background`` (more
    points, ``[m, 2]``) is drawn first in light grey, e.g. every item behind one group's items.
    """
    from matplotlib.lines import Line2D

    fig, ax = new_ax(ax, figsize=(7.5, 6))
    xy, groups = np.asarray(xy), np.asarray(groups)
    order = list(order) if order is not None else sorted(set(groups.tolist()))
    colors = colors or colors_for(order)
    if background is not None:
        ax.scatter(background[:, 0], background[:, 1], s=size * 0.6, color="0.85", linewidths=0)
    known = np.isin(groups, order)
    shuffled = np.random.default_rng(seed).permutation(np.flatnonzero(known))
    ax.scatter(
        xy[shuffled, 0], xy[shuffled, 1], s=size, alpha=alpha, linewidths=0, c=[colors[g] for g in groups[shuffled]]
    )
    handles = [
        Line2D([], [], ls="", marker="o", markersize=8, color=colors[g], label=f"{g} ({int((groups == g).sum()):,})")
        for g in order
    ]
    ax.legend(handles=handles, fontsize="x-small", loc="best", framealpha=0.9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return fig, ax


# --- Figures of notebooks 03 (training), 04 (comparison) and 06 (ablation explorer) -----------

METRIC_LABELS = {
    "gauc": "GAUC",
    "auc": "AUC",
    "mrr": "MRR",
    "ndcg@10": "NDCG@10",
    "hit@10": "HR@10",
    "ndcg@5": "NDCG@5",
    "hit@5": "HR@5",
    "train_loss": "training loss (BCE)",
}


def metric_label(metric: str) -> str:
    """Display name of a metric key (``"hit@10"`` -> ``"HR@10"``)."""
    return METRIC_LABELS.get(metric, metric)


def learning_curves(
    history,
    metric: str = "gauc",
    hue: str = "label",
    ax=None,
    title: str | None = None,
    colors: dict | None = None,
    split: str = "validation",
):
    """``metric`` per epoch, one line per ``hue`` value: the mean over seeds (band = min..max) where
    every seed still runs, and each seed on its own as a thin line ending in a cross at its last
    epoch, so runs of different lengths are never averaged together unmarked. A star marks the epoch
    each seed keeps (its best validation GAUC), whatever ``metric`` is drawn.

    ``history`` is a tidy frame with columns ``epoch``, ``seed``, ``hue`` and ``metric``
    (``xmrec.experiments.Experiment.history``, which also has the validation ``gauc``).
    """
    fig, ax = new_ax(ax, figsize=(8, 5))
    names = list(dict.fromkeys(history[hue]))
    colors = colors or colors_for(names)
    for name in names:
        runs = history[history[hue] == name]
        g = runs.groupby("epoch")[metric]
        every = g.count() == runs["seed"].nunique()  # epochs that every seed reached
        mean, lo, hi = g.mean()[every], g.min()[every], g.max()[every]
        ax.plot(mean.index, mean.to_numpy(), lw=2.5, marker="o", ms=4, color=colors[name], label=name)
        if (hi > lo).any():
            ax.fill_between(mean.index, lo.to_numpy(), hi.to_numpy(), color=colors[name], alpha=0.15, lw=0)
        for _, seed_run in runs.groupby("seed"):
            seed_run = seed_run.sort_values("epoch")
            if len(every) > every.sum():  # runs of different lengths: show each one whole
                ax.plot(seed_run["epoch"], seed_run[metric], lw=1, alpha=0.6, color=colors[name])
                ax.scatter(seed_run["epoch"].iloc[-1:], seed_run[metric].iloc[-1:], marker="x", color=colors[name])
            kept = seed_run.loc[seed_run["gauc"].idxmax()]  # what early stopping keeps for this seed
            ax.scatter(
                [kept["epoch"]], [kept[metric]], s=120, marker="*", color=colors[name], edgecolor="black", zorder=5
            )
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{split} {metric_label(metric)}")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize="x-small", loc="lower right" if metric != "train_loss" else "upper right")
    if title:
        ax.set_title(title)
    return fig, ax


def metric_points(
    table,
    metric: str = "gauc",
    y: str = "label",
    ax=None,
    title: str | None = None,
    colors: dict | None = None,
    order=None,
    annotate: bool = True,
):
    """One row per ``y`` value: the mean of ``metric`` over seeds (dot), +- one standard deviation
    (bar) and each seed (small open circles). Differences of a few thousandths stay visible
    because the axis does not start at zero."""
    fig, ax = new_ax(ax, figsize=(8, 0.6 * table[y].nunique() + 1.8))
    order = list(order) if order is not None else list(dict.fromkeys(table[y]))
    colors = colors or colors_for(order)
    for i, name in enumerate(order):
        v = table.loc[table[y] == name, metric].to_numpy(dtype=float)
        if not len(v):
            continue
        mean, sd = v.mean(), v.std(ddof=1) if len(v) > 1 else 0.0
        ax.errorbar(mean, i, xerr=sd, fmt="o", ms=10, capsize=6, lw=2.5, color=colors[name], zorder=3)
        if len(v) > 1:
            ax.scatter(v, np.full(len(v), i + 0.18), s=28, facecolors="none", edgecolors=colors[name], zorder=2)
        if annotate:
            text = f"{mean:.4f}" + (f" ± {sd:.4f}" if len(v) > 1 else "")
            ax.annotate(
                text, (mean, i), xytext=(0, -17), textcoords="offset points", ha="center", va="top", fontsize="x-small"
            )
    ax.set_yticks(range(len(order)), order)
    ax.set_ylim(len(order) - 0.4, -0.6)
    ax.set_xlabel(f"test {metric_label(metric)}")
    ax.set_ylabel("")
    ax.margins(x=0.25)
    if title:
        ax.set_title(title)
    return fig, ax


def seed_gains(
    diffs,
    metric: str = "gauc",
    by: str = "label",
    ax=None,
    control: str | None = None,
    colors: dict | None = None,
    title: str | None = None,
    xlabel: str = "",
    scale: float = 100.0,
):
    """A gain per group of ``by`` (e.g. each variant minus its base, ``xmrec.stats.seed_differences``;
    one row per group and seed), in points: a bar for the mean over seeds, a dot per seed, a whisker
    of one std over seeds. ``control`` names a group that changes nothing: the grey band spans its
    seeds' gains, the noise of the experiment itself."""
    import textwrap

    fig, ax = new_ax(ax, figsize=(10, 5.5))
    groups = [
        g
        for g in (diffs[by].cat.categories if hasattr(diffs[by], "cat") else dict.fromkeys(diffs[by]))
        if (diffs[by] == g).any()
    ]
    colors = colors or colors_for(groups)
    if control in groups:
        values = diffs.loc[diffs[by] == control, metric].to_numpy() * scale
        ax.axhspan(
            min(values.min(), 0), max(values.max(), 0), color="grey", alpha=0.2, lw=0, label=f"{control} (control)"
        )
    for x, label in enumerate(groups):
        values = diffs.loc[diffs[by] == label, metric].to_numpy() * scale
        std = values.std(ddof=1) if len(values) > 1 else 0.0
        ax.bar(x, values.mean(), yerr=std, capsize=6, color=colors[label], alpha=0.6, width=0.6)
        ax.scatter(np.full(len(values), x), values, color="black", s=24, zorder=3)
    ax.axhline(0, color="black", lw=1.2)
    ax.set_xticks(range(len(groups)), [textwrap.fill(str(g), 18) for g in groups])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"Δ test {metric_label(metric)} over the base, points\n(bar: mean; dots: seeds; whisker: std)")
    if control in groups:
        ax.legend(fontsize="x-small", loc="best")
    ax.use_sticky_edges = False
    ax.margins(y=0.2)
    if title:
        ax.set_title(title)
    return fig, ax


def gain_by_group(
    paired,
    by: str,
    ax=None,
    title: str | None = None,
    xlabel: str | None = None,
    metric: str = "gauc",
    seed: int = 0,
    n_boot: int = 1000,
    color=None,
):
    """Mean per-list difference (column ``diff``, e.g. Ada - base) per group of ``by``, with a 95%
    bootstrap interval (seeded); the number of lists is under each group's name; zero is marked."""
    import textwrap

    fig, ax = new_ax(ax)
    groups = [
        g
        for g in (paired[by].cat.categories if hasattr(paired[by], "cat") else sorted(paired[by].unique()))
        if (paired[by] == g).any()
    ]
    rng = np.random.default_rng(seed)
    means, lows, highs, counts = [], [], [], []
    for g in groups:
        d = paired.loc[paired[by] == g, "diff"].to_numpy(dtype=float)
        boot = rng.choice(d, size=(n_boot, len(d)), replace=True).mean(axis=1)
        means.append(d.mean())
        lows.append(d.mean() - np.quantile(boot, 0.025))
        highs.append(np.quantile(boot, 0.975) - d.mean())
        counts.append(len(d))
    x = np.arange(len(groups))
    color = color or colors_for(["gain"])["gain"]
    ax.bar(x, means, yerr=[lows, highs], capsize=6, color=color, alpha=0.85, width=0.6)
    ax.axhline(0, color="black", lw=1.2)
    ax.set_xticks(x, [f"{textwrap.fill(str(g), 18)}\n(n={n:,})" for g, n in zip(groups, counts)])
    ax.set_xlabel(by if xlabel is None else xlabel)
    ax.set_ylabel(f"Δ test {metric_label(metric)} per list\n(mean, 95% interval)")
    ax.use_sticky_edges = False  # margin on both sides of zero: bars all below it still show the zero line
    ax.margins(y=0.25)
    if title:
        ax.set_title(title)
    return fig, ax


# --- Figures of notebook 05 (cross-market ranking) ------------------------------------------


def ranked_bars(
    values,
    ax=None,
    colors=None,
    xlabel: str = "",
    title: str | None = None,
    fmt: str = ".3f",
    reference: tuple[str, float] | None = None,
):
    """Horizontal bars, largest on top: ``values`` a Series (label -> number, long labels wrapped),
    the value written at each bar's end; ``colors``: one colour per label (a dict) or for all;
    ``reference``: a labelled vertical line, e.g. ``("published 0.725", 0.725)``."""
    import textwrap

    fig, ax = new_ax(ax, figsize=(9, 0.42 * len(values) + 1.5))
    values = values.sort_values()
    color = [colors.get(k) for k in values.index] if isinstance(colors, dict) else colors
    bars = ax.barh(np.arange(len(values)), values.to_numpy(dtype=float), color=color)
    ax.bar_label(  # on a white box: a reference line passing behind a label does not cross its digits
        bars,
        labels=[format(v, fmt) for v in values],
        padding=3,
        fontsize="x-small",
        bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5},
    )
    labels = ["\n".join(textwrap.fill(part, 28) for part in str(k).split("\n")) for k in values.index]
    ax.set_yticks(np.arange(len(values)), labels, fontsize="small")
    ax.set_xlabel(xlabel)
    ax.margins(x=0.12)
    if reference is not None:
        ax.axvline(reference[1], color="black", ls="--", lw=1.2, zorder=2)  # under the labels (zorder 3)
        ax.text(reference[1], len(values) - 0.4, f" {reference[0]}", fontsize="x-small", va="bottom")
    if title:
        ax.set_title(title)
    return fig, ax


def _protocol_bars(ax, table, published, low: float, high: float, legend: bool = True) -> None:
    """Bars of ``table`` in its own order with standard-error bars, each labelled past its error bar."""
    y = np.arange(len(table))[::-1]
    honest, leaky = colors_for(["honest", "leak"]).values()
    leak = table["leak"].to_numpy(bool)
    bars = ax.barh(
        y, table["ndcg@10"], xerr=table["se_users"], capsize=3, color=[leaky if is_leak else honest for is_leak in leak]
    )
    for bar, is_leak in zip(bars, leak):
        bar.set_hatch("//" if is_leak else None)
    for yy, v, se, g in zip(y, table["ndcg@10"], table["se_users"], table["gain"]):
        ax.text(
            v + se + 0.002 * (high - low) / 0.06,
            yy,
            f" {v:.4f} ({g:+.4f})",
            va="center",
            fontsize="x-small",
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1},
        )
    ax.set_yticks(y, table["protocol"], fontsize="small")
    ax.set_xlim(low, high)
    ax.axvline(table["ndcg@10"].iloc[0], color="black", lw=0.8)
    if published is not None:
        ax.axvline(published, color="black", ls="--", lw=1.2, label=f"published {published}")
        if legend:
            ax.legend(loc="lower right", fontsize="x-small")


def protocol_steps(table, published: float | None = None, title: str | None = None):
    """The protocol table, honest row first: left, the reporting elements on a zoomed axis (NDCG@10,
    standard error over users, gain over the honest row, a dashed line at ``published``); right,
    the leak row (hatched) beside the honest one on the full scale."""
    import matplotlib.pyplot as plt

    plain, leak = table[~table["leak"]], table[table["leak"] | (table.index == table.index[0])]
    fig, (ax, ax_leak) = plt.subplots(
        1, 2, figsize=(15, 0.6 * len(plain) + 2.2), gridspec_kw={"width_ratios": [3, 1.4]}
    )
    low = float(plain["ndcg@10"].min() - plain["se_users"].max()) - 0.01
    high = max(float((plain["ndcg@10"] + plain["se_users"]).max()), published or 0) + 0.02
    _protocol_bars(ax, plain, published, low, high)
    ax.set_xlabel("NDCG@10 on t1 validation lists (error bar: standard error over users)")
    ax.set_title("the published reporting, element by element", fontsize="medium")
    _protocol_bars(ax_leak, leak, published, 0.0, 1.25, legend=False)
    ax_leak.set_yticks(
        np.arange(len(leak))[::-1], ["honest" if not x else "all three + leak" for x in leak["leak"]], fontsize="small"
    )
    ax_leak.set_xlabel("NDCG@10 (full scale)")
    ax_leak.set_title("upper bound: the leak, never reported", fontsize="medium")
    if title:
        fig.suptitle(title, fontweight="bold", y=1.02)
    fig.tight_layout()
    return fig, (ax, ax_leak)
