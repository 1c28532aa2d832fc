"""Distribution-shift statistics: divergences, overlaps and popularity curves.

Two kinds of shift matter in this kit. Candidate-list shift: every list Ada-Ranker ranks has its
own item distribution (the distribution-mixer makes it so). Market shift: the same items are
bought with different popularity in different markets. Everything here is a deterministic
function of its inputs (arrays, or a processed dataset and a seed); plots live in the notebooks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from xmrec.config import SamplerConfig
from xmrec.data.sampling import ALL_SAMPLERS, SAMPLERS, CategoryPools, sample_split
from xmrec.data.store import ProcessedDataset, Split


def normalise(counts, axis: int = -1) -> np.ndarray:
    """Counts to probabilities along ``axis`` (an all-zero row stays zero)."""
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum(axis=axis, keepdims=True)
    return np.divide(c, total, out=np.zeros_like(c), where=total > 0)


def js_divergence(p, q, axis: int = -1) -> np.ndarray:
    """Jensen-Shannon divergence in bits (0 = identical, 1 = disjoint supports), row-wise.

    Inputs are counts or probabilities; they are normalised first.
    """
    p, q = np.broadcast_arrays(normalise(p, axis), normalise(q, axis))
    m = 0.5 * (p + q)

    def kl(a, b):
        ratio = np.divide(a, b, out=np.ones_like(a), where=(a > 0) & (b > 0))
        return (a * np.log2(ratio)).sum(axis=axis)

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def category_histograms(candidates, item_cate_ptr, item_cate_idx, n_cates: int) -> np.ndarray:
    """``[n_lists, n_cates + 1]`` category counts of each candidate list (an item adds 1 per category)."""
    cand = np.asarray(candidates)
    ptr = np.asarray(item_cate_ptr)
    lengths = ptr[cand + 1] - ptr[cand]  # categories per candidate
    rows = np.repeat(np.arange(cand.shape[0]), lengths.sum(axis=1))
    starts = np.repeat(ptr[cand].ravel(), lengths.ravel())
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths.ravel()) - lengths.ravel(), lengths.ravel())
    cats = np.asarray(item_cate_idx)[starts + offsets]
    hist = np.zeros((cand.shape[0], n_cates + 1), dtype=np.int64)
    np.add.at(hist, (rows, cats), 1)
    return hist


def list_divergence(candidates, reference, item_cate_ptr, item_cate_idx, n_cates: int) -> np.ndarray:
    """JS divergence (bits) of each list's category mix from a reference category distribution."""
    hist = category_histograms(candidates, item_cate_ptr, item_cate_idx, n_cates)
    ref = np.broadcast_to(np.asarray(reference, dtype=np.float64), hist.shape)
    return js_divergence(hist, ref)


def entropy(counts, axis: int = -1) -> np.ndarray:
    """Shannon entropy in bits of each row of counts or probabilities (0 for an all-zero row)."""
    p = normalise(counts, axis)
    return -(p * np.log2(np.where(p > 0, p, 1.0))).sum(axis=axis)


def popularity_curve(counts) -> tuple[np.ndarray, np.ndarray]:
    """Lorenz-style curve: (share of items, share of interactions they hold), most popular first."""
    c = np.sort(np.asarray(counts, dtype=np.float64))[::-1]
    c = c[c > 0]
    x = np.arange(1, len(c) + 1) / len(c)
    return x, np.cumsum(c) / c.sum()


def gini(counts) -> float:
    """Gini coefficient of interaction counts (0 = every item equally popular, ->1 = one item)."""
    c = np.sort(np.asarray(counts, dtype=np.float64))
    n = len(c)
    if n == 0 or c.sum() == 0:
        return 0.0
    return float((2 * np.arange(1, n + 1) - n - 1) @ c / (n * c.sum()))


def jaccard_matrix(item_sets: dict[str, set]) -> tuple[list[str], np.ndarray]:
    """Pairwise Jaccard overlap of the item sets of named groups (e.g. markets)."""
    names = list(item_sets)
    m = np.eye(len(names))
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            sa, sb = item_sets[a], item_sets[names[j]]
            union = len(sa | sb)
            m[i, j] = m[j, i] = len(sa & sb) / union if union else 0.0
    return names, m


def popularity_divergence_matrix(counts_by_group: dict[str, dict]) -> tuple[list[str], np.ndarray]:
    """Pairwise JS divergence (bits) between the item-popularity distributions of named groups.

    ``counts_by_group`` maps a group name to ``{item: count}``; items absent from a group count 0.
    """
    names = list(counts_by_group)
    items = sorted(set().union(*[set(c) for c in counts_by_group.values()]))
    index = {it: k for k, it in enumerate(items)}
    mat = np.zeros((len(names), len(items)))
    for g, name in enumerate(names):
        for it, c in counts_by_group[name].items():
            mat[g, index[it]] = c
    return names, js_divergence(mat[:, None, :], mat[None, :, :])


def lists_by_sampler(
    ds: ProcessedDataset,
    kinds: Sequence[str] = SAMPLERS,
    split: str = "train",
    n_lists: int | None = None,
    seed: int = 2022,
    base: SamplerConfig | None = None,
) -> dict[str, Split]:
    """The same instances of ``split`` with negatives from each sampler: a controlled comparison.

    ``n_lists`` instances are drawn once (seeded, without replacement; all when None); each sampler
    then fills its own copy of them from ``numpy.random.default_rng([seed, k])``, k its position in
    ``ALL_SAMPLERS`` (so a kind's lists do not depend on which others are asked for), and the lists
    differ only by how their negatives were drawn. ``base`` sets the other sampler knobs
    (default: ``SamplerConfig`` with the dataset's ``n_neg``). Returns ``{kind: Split}``.
    """
    rows = ds.split(split)
    if n_lists is not None and n_lists < len(rows):
        rows = rows.subset(np.sort(np.random.default_rng(seed).choice(len(rows), n_lists, replace=False)))
    base = base or SamplerConfig(n_neg=ds.n_neg or SamplerConfig.n_neg)
    out = {}
    for kind in kinds:
        lists = rows.subset(slice(None))
        cfg = replace(base, kind=kind, seed=seed)
        stream = np.random.default_rng([seed, ALL_SAMPLERS.index(kind)])  # a kind's lists never depend on the others
        lists.neg_items, lists.neg_pool, lists.neg_n_cates, _ = sample_split(
            lists, CategoryPools.from_dataset(ds, kind), cfg, stream
        )
        out[kind] = lists
    return out


def list_profile(lists: Split, ds: ProcessedDataset, reference=None) -> pd.DataFrame:
    """One row per candidate list: how its negatives relate to its positive and to the catalogue.

    Columns: ``positive_pop`` (training interactions of the positive), ``negative_pop`` (median
    over the negatives), ``effective_categories`` (2 ** entropy in bits of the negatives' category
    histogram: 1 when they share one category, m when spread evenly over m), ``anchor_share`` (share of negatives carrying the list's anchor category), ``divergence`` (JS
    in bits of the whole list's category histogram from ``reference``; default the catalogue's
    category distribution, the mix a uniformly drawn list has on average) and ``pool`` (the
    sampler's pool flag: 1 = popularity-weighted).
    """
    if reference is None:
        reference = np.bincount(ds.item_cate_idx, minlength=ds.n_cates + 1)
    neg_hist = category_histograms(lists.neg_items, ds.item_cate_ptr, ds.item_cate_idx, ds.n_cates)
    n_neg = lists.neg_items.shape[1]
    return pd.DataFrame(
        {
            "positive_pop": ds.item_pop[lists.item],
            "negative_pop": np.median(ds.item_pop[lists.neg_items], axis=1),
            "effective_categories": 2.0 ** entropy(neg_hist),
            "anchor_share": neg_hist[np.arange(len(lists)), lists.cate] / n_neg,
            "divergence": list_divergence(
                lists.candidates(), reference, ds.item_cate_ptr, ds.item_cate_idx, ds.n_cates
            ),
            "pool": lists.neg_pool.astype(np.int64),
        }
    )
