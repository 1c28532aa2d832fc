"""Negative samplers for candidate lists: distribution-mixer, uniform, popularity, same-category.

The **distribution-mixer** (Ada-Ranker's sampler, docs/DESIGN.md section 4) gives each list its own
item distribution. Per instance with anchor category ``a``:

- draw k uniformly from {0, ..., max_extra_categories} (capped by the categories available);
- categories S = [a] + k other non-empty categories drawn uniformly without replacement;
- split the ``n_neg`` negatives over S with a uniform multinomial (each slot picks a member of S
  uniformly, so a member may get none);
- one coin per instance (``popularity_prob``) picks the pool of the whole list: uniform over the
  category's distinct items, or weighted by the item's TRAINING interaction count
  (``ProcessedDataset.item_pop``: valid/test targets excluded, fixing the original's leak; a
  category whose items all have count 0 falls back to uniform).

Contrast samplers: ``uniform`` (whole catalogue), ``popularity`` (whole catalogue, weighted) and
``category`` (uniform within the anchor category). Two more build test lists far from anything the
four above train on (the shift matrix, ``benchmarks/shift_matrix.py``): ``unpopular`` (whole
catalogue, weighted by ``ceil((max_pop + 1) / (pop + 1))``: the rarest items are the likeliest,
the popularity sampler turned upside down) and ``other-category`` (uniform over the items that do
NOT carry the anchor category).

Every list holds ``n_neg`` distinct items, none equal to the target or in the instance's history
``item_seq``. Invalid slots are redrawn from the same (category, pool) in vectorised rounds; after
``max_rounds`` rounds the few left are drawn exactly from that pool minus the excluded items (the
same conditional distribution the rejection rounds target, so no bias). A slot whose pool has no
admissible item left (a small category, a long history) spills to the whole catalogue, counted in
``stats["sampling"]``; only a list the catalogue cannot fill raises a ``ValueError``.

Seeded: split k uses ``numpy.random.default_rng([seed, k])`` and rows are processed in chunks of
:data:`CHUNK_ROWS`, so the same seed gives the same negatives.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from xmrec.config import SamplerConfig
from xmrec.data.store import SPLITS, ProcessedDataset, Split

__all__ = ["ALL_SAMPLERS", "SAMPLERS", "SHIFT_SAMPLERS", "CategoryPools", "sample_negatives", "sample_split"]

SAMPLERS = ("mixer", "uniform", "popularity", "category")  # the kinds a dataset is prepared with
SHIFT_SAMPLERS = ("unpopular", "other-category")  # test-only kinds: far from every training sampler
ALL_SAMPLERS = SAMPLERS + SHIFT_SAMPLERS
CHUNK_ROWS = 4_096  # lists sampled together (small: the history keys stay in cache); seeds depend on it


@dataclass(frozen=True)
class CategoryPools:
    """Item pools with integer draw weights: pool 0 is the whole catalogue, pool c >= 1 the
    distinct items of category c (or, for ``other-category``, the items NOT in category c)."""

    ptr: np.ndarray  # int64 [n_cates + 2]: pool c is items[ptr[c]:ptr[c + 1]]
    items: np.ndarray  # int64 item ids, ascending within each pool
    cum_pop: np.ndarray  # running sum of item_pop over ``items`` (weighted draws; int32 when it fits)
    base: np.ndarray  # int64 [n_cates + 1] cum_pop before pool c
    total: np.ndarray  # int64 [n_cates + 1] weight mass of pool c
    item_pop: np.ndarray  # int64 [n_items + 1] draw weight of each item (training count, or its inverse)

    @classmethod
    def from_dataset(cls, ds: ProcessedDataset, kind: str = "mixer") -> CategoryPools:
        """The pools sampler ``kind`` draws from (weights: training counts, inverted for ``unpopular``)."""
        if kind not in ALL_SAMPLERS:
            raise ValueError(f"unknown sampler kind {kind!r}; expected one of {ALL_SAMPLERS}")
        per_item = np.diff(ds.item_cate_ptr)
        owner = np.repeat(np.arange(len(per_item)), per_item)
        by_cate = np.argsort(ds.item_cate_idx, kind="stable")
        members = np.split(owner[by_cate], np.cumsum(np.bincount(ds.item_cate_idx, minlength=ds.n_cates + 1))[:-1])
        catalogue = np.arange(1, ds.n_items + 1)
        if kind == "other-category":
            members = [np.setdiff1d(catalogue, m, assume_unique=True) for m in members]
        pools = [catalogue] + [m.astype(np.int64) for m in members[1:]]
        items = np.concatenate(pools).astype(np.int64)
        ptr = np.concatenate([[0], np.cumsum([len(p) for p in pools])]).astype(np.int64)
        weight = _inverse(ds.item_pop) if kind == "unpopular" else ds.item_pop
        cum = np.cumsum(weight[items], dtype=np.int64)
        cum = cum.astype(_index_dtype(int(cum[-1]) if len(cum) else 0))
        padded = np.concatenate([[0], cum])
        return cls(
            ptr=ptr,
            items=items,
            cum_pop=cum,
            base=padded[ptr[:-1]],
            total=padded[ptr[1:]] - padded[ptr[:-1]],
            item_pop=weight,
        )

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.ptr)

    def draw(self, cats: np.ndarray, popular: np.ndarray, u: np.ndarray) -> np.ndarray:
        """One item per entry from pool ``cats`` (weighted when ``popular``), driven by ``u`` in [0, 1)."""
        size = self.sizes[cats]
        idx = self.ptr[cats] + np.minimum((u * size).astype(np.int64), size - 1)
        weighted = popular & (self.total[cats] > 0)
        if weighted.any():
            c = cats[weighted]
            mass = self.total[c]
            target = self.base[c] + np.minimum((u[weighted] * mass).astype(np.int64), mass - 1)
            idx[weighted] = np.searchsorted(self.cum_pop, target.astype(self.cum_pop.dtype), side="right")
        return self.items[idx]

    def pool(self, c: int) -> np.ndarray:
        return self.items[self.ptr[c] : self.ptr[c + 1]]


def _inverse(pop: np.ndarray) -> np.ndarray:
    """Integer weights ``ceil((max + 1) / (pop + 1))``: decreasing in popularity, never zero."""
    top = int(pop.max()) + 1 if len(pop) else 1
    return -(-top // (pop.astype(np.int64) + 1))


def _plan(
    kind: str, split: Split, pools: CategoryPools, cfg: SamplerConfig, rows: slice, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per slot pool id ``[n, n_neg]``, per row popularity flag and number of categories used."""
    anchor = split.cate[rows]
    n = len(anchor)
    if kind == "uniform":
        return np.zeros((n, cfg.n_neg), np.int64), np.zeros(n, bool), np.zeros(n, np.int8)
    if kind in ("popularity", "unpopular"):  # the pools' weights tell the two apart
        return np.zeros((n, cfg.n_neg), np.int64), np.ones(n, bool), np.zeros(n, np.int8)
    if kind in ("category", "other-category"):  # pool c: category c, or everything outside it
        return np.repeat(anchor[:, None], cfg.n_neg, axis=1), np.zeros(n, bool), np.ones(n, np.int8)
    usable = np.flatnonzero(pools.sizes[1:] > 0) + 1  # category ids with at least one item
    rank = np.full(len(pools.sizes), -1, np.int64)
    rank[usable] = np.arange(len(usable))
    m, kmax = len(usable), cfg.max_extra_categories
    k = np.minimum(rng.integers(0, kmax + 1, n), m - 1)
    chosen = np.full((n, kmax + 1), -1, np.int64)  # ranks of S, in draw order
    chosen[:, 0] = rank[anchor]
    taken = np.full((n, kmax + 1), np.iinfo(np.int64).max)  # the same ranks, sorted per row
    taken[:, 0] = chosen[:, 0]
    for j in range(kmax):
        active = k > j
        r = (rng.random(n) * max(m - 1 - j, 1)).astype(np.int64)
        for col in range(j + 1):  # the r-th rank not taken yet
            r += r >= taken[:, col]
        chosen[active, j + 1] = r[active]
        taken[active, j + 1] = r[active]
        taken.sort(axis=1)
    slot = (rng.random((n, cfg.n_neg)) * (k + 1)[:, None]).astype(np.int64)
    cats = usable[np.take_along_axis(chosen, slot, axis=1)]
    used = np.zeros((n, kmax + 1), bool)
    np.put_along_axis(used, slot, True, axis=1)
    popular = rng.random(n) < cfg.popularity_prob
    return cats, popular, used.sum(axis=1).astype(np.int8)


def _index_dtype(largest: int):
    """int32 when ``largest`` fits (halves the memory traffic of the searches), else int64."""
    return np.int32 if largest < np.iinfo(np.int32).max else np.int64


class _Excluded:
    """Membership of candidates in each row's history or target: per row sorted, keys offset by row."""

    def __init__(self, item_seq: np.ndarray, target: np.ndarray, n_items: int):
        self.stride = n_items + 1
        dtype = _index_dtype(len(target) * self.stride)
        hist = np.sort(np.concatenate([item_seq, target[:, None]], axis=1).astype(dtype), axis=1)
        self.keys = (hist + (np.arange(len(hist), dtype=dtype) * self.stride)[:, None]).ravel()

    def contains(self, rows: np.ndarray, cand: np.ndarray) -> np.ndarray:
        dtype = self.keys.dtype
        q = cand.astype(dtype) + (rows.astype(dtype) * self.stride)[:, None]
        at = np.minimum(np.searchsorted(self.keys, q), len(self.keys) - 1)
        return self.keys[at] == q


def _repeated(neg: np.ndarray) -> np.ndarray:
    """True for a slot whose item already appears in an earlier slot of its row."""
    order = np.argsort(neg, axis=1, kind="stable")
    s = np.take_along_axis(neg, order, axis=1)
    rep = np.zeros_like(s, dtype=bool)
    rep[:, 1:] = s[:, 1:] == s[:, :-1]
    out = np.empty_like(rep)
    np.put_along_axis(out, order, rep, axis=1)
    return out


def sample_split(
    split: Split, pools: CategoryPools, cfg: SamplerConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Negatives of one split: ``(neg_items [n, n_neg], neg_pool, neg_n_cates, fallback counts)``
    (``cfg.kind`` is one of ``ALL_SAMPLERS``: ``SamplerConfig`` checks it)."""
    n = len(split)
    neg = np.zeros((n, cfg.n_neg), np.int64)
    pool_flag, n_cates = np.zeros(n, np.int8), np.zeros(n, np.int8)
    fallback = spill = 0
    for a in range(0, n, CHUNK_ROWS):
        rows = slice(a, min(a + CHUNK_ROWS, n))
        cats, popular, used = _plan(cfg.kind, split, pools, cfg, rows, rng)
        pop_slots = np.repeat(popular[:, None], cfg.n_neg, axis=1)
        excluded = _Excluded(split.item_seq[rows], split.item[rows], int(pools.sizes[0]))
        chunk = pools.draw(cats, pop_slots, rng.random(cats.shape))
        todo = np.arange(len(chunk))
        for round_ in range(cfg.max_rounds + 1):
            bad = excluded.contains(todo, chunk[todo]) | _repeated(chunk[todo])
            todo, bad = todo[bad.any(axis=1)], bad[bad.any(axis=1)]
            if len(todo) == 0:
                break
            if round_ == cfg.max_rounds:
                filled, spilled = _fill_exactly(chunk, todo, cats, popular, excluded, pools, rng, split, a)
                fallback, spill = fallback + filled, spill + spilled
                break
            r, c = np.nonzero(bad)
            r = todo[r]
            chunk[r, c] = pools.draw(cats[r, c], pop_slots[r, c], rng.random(len(r)))
        neg[rows], pool_flag[rows], n_cates[rows] = chunk, popular, used
    return neg, pool_flag, n_cates, {"exact_fallback_slots": fallback, "spilled_to_catalogue": spill}


def _fill_exactly(chunk, todo, cats, popular, excluded, pools, rng, split, offset) -> tuple[int, int]:
    """Redraw the invalid slots of rows ``todo`` from their pool minus the excluded items.

    A pool with no admissible item left spills to the whole catalogue (same pool kind). Returns
    ``(slots filled, of which spilled)``.
    """
    filled = spilled = 0
    for r in todo:
        row = chunk[r]
        bad = excluded.contains(np.array([r]), row[None, :])[0] | _repeated(row[None, :])[0]
        for c in np.flatnonzero(bad):
            others = np.delete(row, c)
            for pool_id in (cats[r, c], 0):
                pool = pools.pool(pool_id)
                allowed = pool[~(excluded.contains(np.array([r]), pool[None, :])[0] | np.isin(pool, others))]
                if len(allowed):
                    break
            else:
                i = offset + r
                raise ValueError(
                    f"sampler: instance {i} (user {split.user[i]}, target {split.item[i]}) needs "
                    f"{len(row)} distinct negatives outside its history, but the catalogue has too few "
                    "items left; lower SamplerConfig.n_neg"
                )
            w = pools.item_pop[allowed].astype(np.float64) if popular[r] else None
            row[c] = rng.choice(allowed, p=w / w.sum() if w is not None and w.sum() > 0 else None)
            filled += 1
            spilled += pool_id != cats[r, c]
    return filled, spilled


def sample_negatives(ds: ProcessedDataset, cfg: SamplerConfig | None = None) -> ProcessedDataset:
    """Fill ``neg_items``, ``neg_pool`` and ``neg_n_cates`` of every split of ``ds`` in place.

    Records the sampler config in ``ds.config["sampler"]`` and, in ``ds.stats["sampling"]``, per
    split how many slots needed the exact fallback and how many of those spilled to the whole
    catalogue. Returns ``ds``.
    """
    cfg = cfg or SamplerConfig()
    pools = CategoryPools.from_dataset(ds, cfg.kind)
    fallback = {}
    for k, name in enumerate(SPLITS):
        split = ds.split(name)
        rng = np.random.default_rng([cfg.seed, k])
        split.neg_items, split.neg_pool, split.neg_n_cates, fallback[name] = sample_split(split, pools, cfg, rng)
    ds.config["sampler"] = asdict(cfg)
    ds.stats["sampling"] = {"kind": cfg.kind, "fallback": fallback}
    return ds
