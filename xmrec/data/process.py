"""Ada-Ranker preprocessing: raw interactions -> leave-last-out instances (docs/DESIGN.md section 3).

Steps, in the original's order, each counted in ``stats["steps"]``:

1. **category merge**: a category label with at most ``small_category_max_items`` distinct items
   (counted on the raw data) is "small"; all small labels share one merged id. Large labels get
   ids 1..m in sorted label order, the merged id is m + 1.
2. **sort** by (user, time) with a stable sort (ties keep file order).
3. **user filter**: keep users with MORE than ``min_user_interactions`` interactions.
4. **dedup**: a repeated (user, item) pair keeps its last interaction.
5. **remap** users and items to 1..n in sorted raw-id order (0 is padding); the raw ids are kept
   as fixed-width unicode arrays.
6. **instances**: the last ``n_targets`` interactions of a user are targets (capped so that every
   target has at least one earlier item): the very last ``n_test`` are test, the ``n_valid``
   before them valid, the rest train. The history of a target is every earlier item, truncated to
   the last ``max_seq_len`` and left-padded with 0. With ``instance_per_category`` a target gives
   one instance per category of its item, that category being the instance's anchor ``cate``;
   as the original, per RAW label (``instance_per_raw_label``: two labels merged into one id give
   two instances with that anchor; ML-100K: 16,069 training lists instead of 14,336), else per
   distinct merged id. Without ``instance_per_category``: one instance, the smallest category id.

Categories belong to an item: with the raw ``cate_id`` list column the first row of each item
gives its labels (an empty list becomes the label ``"(none)"``); a separate item table
``item_categories`` (``item_id, cate_id`` rows, a label or a list of labels each) can be given
instead, which saves building 10M per-row lists. Everything is vectorised numpy; negatives are
sampled later (:mod:`xmrec.data.sampling`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from xmrec.config import DataConfig
from xmrec.data.store import ProcessedDataset, Split

__all__ = [
    "ROLE_HISTORY",
    "ROLE_TRAIN",
    "ROLE_VALID",
    "ROLE_TEST",
    "NO_CATEGORY_LABEL",
    "Interactions",
    "ProcessResult",
    "process_interactions",
    "item_category_table",
    "merge_categories",
]

ROLE_HISTORY, ROLE_TRAIN, ROLE_VALID, ROLE_TEST = -1, 0, 1, 2  # role of a kept interaction
NO_CATEGORY_LABEL = "(none)"  # label given to an item whose category list is empty
REQUIRED_COLUMNS = ("user_id", "item_id", "timestamp")
_CHUNK_CELLS = 1_000_000  # history cells gathered per chunk


@dataclass
class Interactions:
    """The kept interactions after filter and dedup, sorted by (user, time), in the new id space."""

    user: np.ndarray  # int64 [m] user id, non-decreasing
    item: np.ndarray  # int64 [m] item id
    role: np.ndarray  # int8 [m] ROLE_HISTORY (never a target), ROLE_TRAIN, ROLE_VALID or ROLE_TEST

    @property
    def training(self) -> np.ndarray:
        """Mask of the training interactions: everything except the valid and test targets."""
        return self.role <= ROLE_TRAIN


@dataclass
class ProcessResult:
    """What processing hands on: the dataset (negatives not sampled yet) and its interactions."""

    dataset: ProcessedDataset  # splits with empty ``neg_items`` ([n, 0]); item_pop on training only
    interactions: Interactions  # for word2vec (training interactions only)
    category_map: dict[str, int]  # raw category label -> merged category id


def item_category_table(frame: pd.DataFrame, first_row_per_item: bool = True) -> pd.DataFrame:
    """Long table ``item_id, cate_id`` (one row per label) from a ``cate_id`` column.

    ``cate_id`` may hold lists (the raw format) or scalar labels. With ``first_row_per_item``
    (raw interactions) the first row of an item gives its labels; otherwise (an item table) every
    row counts. An empty list becomes :data:`NO_CATEGORY_LABEL`.
    """
    missing = [c for c in ("item_id", "cate_id") if c not in frame.columns]
    if missing:
        raise ValueError(
            f"categories need columns 'item_id' and 'cate_id' (a list of labels per row, or a "
            f"separate item_categories table); missing {missing}"
        )
    first = frame.drop_duplicates("item_id") if first_row_per_item else frame
    first = first[["item_id", "cate_id"]]
    if first["cate_id"].map(lambda x: isinstance(x, (list, tuple, np.ndarray))).any():
        first = first.explode("cate_id")
    cate = first["cate_id"].astype(object)
    cate = cate.where(cate.notna(), NO_CATEGORY_LABEL)
    return pd.DataFrame({"item_id": first["item_id"].to_numpy(), "cate_id": cate.to_numpy()})


def merge_categories(table: pd.DataFrame, max_items: int) -> tuple[dict, list]:
    """Map every label to a merged id: large labels 1..m (sorted), small ones share m + 1.

    Returns ``(label -> id, sorted small labels)``; a label is small when it has at most
    ``max_items`` distinct items in ``table``.
    """
    n_items = table.drop_duplicates().groupby("cate_id", sort=False)["item_id"].size()
    labels = _sorted_labels(n_items.index)
    small = [lab for lab in labels if n_items[lab] <= max_items]
    large = [lab for lab in labels if n_items[lab] > max_items]
    mapping = {lab: i for i, lab in enumerate(large, start=1)}
    mapping.update({lab: len(large) + 1 for lab in small})
    return mapping, small


def _sorted_labels(index: pd.Index) -> list:
    try:
        return sorted(index)
    except TypeError:  # mixed label types: order by their text
        return sorted(index, key=str)


def _timestamps(df: pd.DataFrame) -> np.ndarray:
    ts = df["timestamp"]
    if pd.api.types.is_datetime64_any_dtype(ts):
        return ts.to_numpy().astype("datetime64[ns]").astype(np.int64)
    if pd.api.types.is_bool_dtype(ts) or not pd.api.types.is_numeric_dtype(ts):
        raise ValueError(f"column 'timestamp' must be numeric or datetime, got dtype {ts.dtype}")
    if ts.isna().any():
        raise ValueError(f"column 'timestamp' has {int(ts.isna().sum())} missing values")
    return ts.to_numpy()


def _ranked_ids(uniques: pd.Index, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """New ids 1..n for the present codes in sorted raw-id order, and the raw ids as unicode."""
    codes = np.flatnonzero(present)
    raw = pd.Index(uniques[codes])
    order = raw.argsort()
    new = np.zeros(len(uniques), dtype=np.int64)
    new[codes[order]] = np.arange(1, len(codes) + 1)
    raw_text = np.asarray(raw[order].to_numpy(dtype=object).astype(str))
    return new, np.concatenate([np.array([""], dtype=raw_text.dtype), raw_text])


def _csr(keys: np.ndarray, n_cates: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Row pointers and category ids from sorted ``item * (n_cates + 1) + category`` keys."""
    per_item = np.bincount(keys // (n_cates + 1), minlength=n_items + 1)
    ptr = np.concatenate([[0], np.cumsum(per_item)]).astype(np.int64)
    return ptr, (keys % (n_cates + 1)).astype(np.int64)


def _history_windows(user: np.ndarray, item: np.ndarray, L: int) -> np.ndarray:
    """Windows such that ``windows[g + L * (user[g] - 1)]`` is the padded history of interaction g.

    Each user's items are laid out after L zeros, so the up-to-L items before an interaction form
    one length-L window of that array (a strided view: a gather, no masking). int32 when the ids
    fit, to halve this temporary at 10M interactions.
    """
    dtype = np.int32 if len(item) == 0 or item.max() < np.iinfo(np.int32).max else np.int64
    padded = np.zeros(len(item) + L * (int(user[-1]) + 1), dtype=dtype)
    padded[np.arange(len(item)) + L * user] = item  # user ids are 1..n and sorted: L zeros before each
    return sliding_window_view(padded, L)


def _gather(windows: np.ndarray, first: np.ndarray) -> np.ndarray:
    """``[len(first), L]`` copies of the windows (their dtype: int32 when the ids fit), gathered in
    chunks (small temporaries)."""
    out = np.empty((len(first), windows.shape[1]), dtype=windows.dtype)
    step = max(1, _CHUNK_CELLS // windows.shape[1])
    for a in range(0, len(first), step):
        out[a : a + step] = windows[first[a : a + step]]
    return out


@dataclass
class _StepCounter:
    """Users, items, categories and interactions of a subset of the raw rows (``stats["steps"]``)."""

    user: np.ndarray  # int64 code of every raw row's user
    item: np.ndarray  # int64 code of every raw row's item
    n_items: int  # number of item codes
    pair_item: np.ndarray  # item code of every category-table row (-1: not in the interactions)
    pair_cate: np.ndarray  # merged category id of every category-table row

    def __call__(self, rows: np.ndarray | None = None) -> dict:
        u, i = (self.user, self.item) if rows is None else (self.user[rows], self.item[rows])
        present = np.bincount(i, minlength=self.n_items) > 0
        keep = (self.pair_item >= 0) & present[np.maximum(self.pair_item, 0)]
        return {
            "users": int(np.count_nonzero(np.bincount(u))),
            "items": int(present.sum()),
            "categories": len(np.unique(self.pair_cate[keep])),
            "interactions": int(len(u)),
        }


@dataclass
class _Kept:
    """Steps 2-5 done: the kept interactions in the new id space, sorted by (user, time)."""

    user: np.ndarray  # int64 [m] new user id, non-decreasing
    item: np.ndarray  # int64 [m] new item id
    user_raw: np.ndarray  # raw id of every new user id (index 0: padding)
    item_raw: np.ndarray  # raw id of every new item id (index 0: padding)
    table_item: np.ndarray  # new item id of every category-table row (0: item not kept)

    @property
    def n_users(self) -> int:
        return len(self.user_raw) - 1

    @property
    def n_items(self) -> int:
        return len(self.item_raw) - 1


@dataclass
class _ItemCategories:
    """Item -> categories over the new item ids, as CSR: distinct merged ids, and the anchors."""

    ptr: np.ndarray
    idx: np.ndarray
    anchor_ptr: np.ndarray  # one entry per raw label (instance_per_raw_label), else ptr
    anchor_idx: np.ndarray

    def instances(self, targets: np.ndarray, item: np.ndarray, per_category: bool):
        """Interaction row and anchor category of every instance of the ``targets``."""
        if not per_category:
            return targets, self.idx[self.ptr[item[targets]]]
        n_cat = np.diff(self.anchor_ptr)[item[targets]]
        rows = np.repeat(targets, n_cat)
        within = np.arange(len(rows)) - np.repeat(np.cumsum(n_cat) - n_cat, n_cat)
        return rows, self.anchor_idx[self.anchor_ptr[item[rows]] + within]


def process_interactions(
    df: pd.DataFrame,
    cfg: DataConfig | None = None,
    *,
    item_categories: pd.DataFrame | None = None,
    name: str = "dataset",
) -> ProcessResult:
    """Run the protocol above on raw interactions ``user_id, item_id, cate_id, timestamp``.

    ``item_categories`` (``item_id, cate_id`` rows, labels or lists of labels) replaces the
    ``cate_id`` column when given. Raises ``ValueError`` naming the dataset on missing columns,
    non-numeric timestamps, no interactions, no user left after the filter, or an item without
    a category.
    """
    cfg = cfg or DataConfig()
    ts = _checked_timestamps(df, name)
    table = (
        item_category_table(df)
        if item_categories is None
        else item_category_table(item_categories, first_row_per_item=False)
    )
    category_map, small_labels = merge_categories(table, cfg.small_category_max_items)
    n_cates = max(category_map.values())
    pair_cate = table["cate_id"].map(category_map).to_numpy(dtype=np.int64)
    kept, steps = _kept_interactions(df, ts, table, pair_cate, cfg.min_user_interactions, name)
    steps["category_merge"]["merged_labels"] = len(small_labels)
    del ts  # free a 10M-row temporary before the histories
    cats = _item_categories(table, pair_cate, kept, n_cates, cfg.instance_per_raw_label, name)
    role, pos_in_user = _roles(kept.user, cfg)
    splits, instances = _splits(kept, role, pos_in_user, cats, cfg)
    steps["instances"] = {"users": int(np.count_nonzero(np.bincount(kept.user)[1:] > 1)), **instances}
    ds = ProcessedDataset(
        name=name,
        n_users=kept.n_users,
        n_items=kept.n_items,
        n_cates=n_cates,
        item_cate_ptr=cats.ptr,
        item_cate_idx=cats.idx,
        item_pop=np.bincount(kept.item[role <= ROLE_TRAIN], minlength=kept.n_items + 1).astype(np.int64),
        **splits,
        config={"data": asdict(cfg)},
        stats=_stats(kept, role, cats, steps, category_map, small_labels),
        item_raw_ids=kept.item_raw,
        user_raw_ids=kept.user_raw,
    )
    return ProcessResult(
        dataset=ds, interactions=Interactions(user=kept.user, item=kept.item, role=role), category_map=category_map
    )


def _checked_timestamps(df: pd.DataFrame, name: str) -> np.ndarray:
    """The timestamps, after checking the columns and that there are rows."""
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{name}: raw interactions lack column(s) {missing}; have {list(df.columns)}")
    if len(df) == 0:
        raise ValueError(f"{name}: no interactions to process")
    try:
        return _timestamps(df)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def _kept_interactions(
    df: pd.DataFrame, ts: np.ndarray, table: pd.DataFrame, pair_cate: np.ndarray, min_interactions: int, name: str
) -> tuple[_Kept, dict]:
    """Steps 2-5 (sort, user filter, dedup, remap), and the counts before and after each."""
    ucode, users = pd.factorize(df["user_id"], sort=True)  # codes follow the sorted raw ids
    icode, items = pd.factorize(df["item_id"])
    ucode, icode = ucode.astype(np.int64), icode.astype(np.int64)
    pair_item = pd.Index(items).get_indexer(table["item_id"])
    count = _StepCounter(ucode, icode, len(items), pair_item, pair_cate)
    raw = {**count(), "categories": table["cate_id"][pair_item >= 0].nunique()}  # raw labels, before the merge
    steps = {"raw": raw, "category_merge": count()}

    order = np.argsort(ts, kind="stable")
    order = order[np.argsort(ucode[order], kind="stable")]
    per_user = np.bincount(ucode, minlength=len(users))
    order = order[per_user[ucode[order]] > min_interactions]
    if len(order) == 0:
        raise ValueError(
            f"{name}: no user has more than {min_interactions} interactions (DataConfig.min_user_interactions)"
        )
    steps["user_filter"] = count(order)
    dup = pd.Series(ucode[order] * len(items) + icode[order]).duplicated(keep="last").to_numpy()
    order = order[~dup]
    steps["dedup"] = count(order)

    user_new, user_raw = _ranked_ids(users, np.bincount(ucode[order], minlength=len(users)) > 0)
    item_new, item_raw = _ranked_ids(items, np.bincount(icode[order], minlength=len(items)) > 0)
    table_item = np.where(pair_item >= 0, item_new[np.maximum(pair_item, 0)], 0)
    kept = _Kept(user_new[ucode[order]], item_new[icode[order]], user_raw, item_raw, table_item)
    return kept, steps


def _item_categories(
    table: pd.DataFrame, pair_cate: np.ndarray, kept: _Kept, n_cates: int, per_raw_label: bool, name: str
) -> _ItemCategories:
    """The kept items' categories; raises naming up to five items that have none."""
    keep = (kept.table_item > 0) & ~table.duplicated().to_numpy()
    keys = np.sort(kept.table_item[keep] * (n_cates + 1) + pair_cate[keep])
    ptr, idx = _csr(np.unique(keys), n_cates, kept.n_items)
    lacking = np.diff(ptr)[1:] == 0
    if lacking.any():
        examples = kept.item_raw[1:][lacking][:5].tolist()
        raise ValueError(f"{name}: {int(lacking.sum())} item(s) have no category, e.g. {examples}")
    anchor_ptr, anchor_idx = _csr(keys, n_cates, kept.n_items) if per_raw_label else (ptr, idx)
    return _ItemCategories(ptr, idx, anchor_ptr, anchor_idx)


def _roles(user: np.ndarray, cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """Role of every interaction (the last ``n_targets`` of a user, each with an earlier item, are
    targets: test last, valid before) and its position within its user."""
    n_per_user = np.bincount(user)
    start = np.concatenate([[0], np.cumsum(n_per_user)])[:-1]
    pos_in_user = np.arange(len(user)) - start[user]
    from_end = n_per_user[user] - 1 - pos_in_user  # 0 = the user's last interaction
    target = from_end < np.minimum(cfg.n_targets, n_per_user - 1)[user]
    role = np.full(len(user), ROLE_HISTORY, dtype=np.int8)
    role[target] = ROLE_TRAIN
    role[target & (from_end < cfg.n_test + cfg.n_valid)] = ROLE_VALID
    role[target & (from_end < cfg.n_test)] = ROLE_TEST
    return role, pos_in_user


def _splits(
    kept: _Kept, role: np.ndarray, pos_in_user: np.ndarray, cats: _ItemCategories, cfg: DataConfig
) -> tuple[dict[str, Split], dict[str, int]]:
    """Step 6: the train, valid and test splits (negatives not sampled), and their sizes."""
    L = cfg.max_seq_len
    windows = _history_windows(kept.user, kept.item, L)
    splits, sizes = {}, {}
    for split_name, r in (("train", ROLE_TRAIN), ("valid", ROLE_VALID), ("test", ROLE_TEST)):
        targets = np.flatnonzero(role == r)
        rows, cate = cats.instances(targets, kept.item, cfg.instance_per_category)
        n = len(rows)
        splits[split_name] = Split(
            user=kept.user[rows],
            item=kept.item[rows],
            cate=cate.astype(np.int64),
            item_seq=_gather(windows, rows + L * (kept.user[rows] - 1)),
            item_seq_len=np.minimum(pos_in_user[rows], L).astype(np.int64),
            neg_items=np.zeros((n, 0), dtype=np.int64),
            neg_pool=np.zeros(n, dtype=np.int8),
            neg_n_cates=np.zeros(n, dtype=np.int8),
        )
        sizes[f"{split_name}_targets"] = len(targets)
        sizes[f"{split_name}_instances"] = n
    return splits, sizes


def _stats(
    kept: _Kept, role: np.ndarray, cats: _ItemCategories, steps: dict, category_map: dict, small_labels: list
) -> dict:
    """The dataset's ``stats``: sizes, the counts after every step, the category merge."""
    return {
        "users": kept.n_users,
        "items": kept.n_items,
        "categories": int(len(np.unique(cats.idx))),
        "interactions": int(len(kept.user)),
        "training_interactions": int((role <= ROLE_TRAIN).sum()),
        **{key: steps["instances"][key] for key in ("train_instances", "valid_instances", "test_instances")},
        "steps": steps,
        "category_map": {str(k): v for k, v in category_map.items()},
        "merged_category_id": len(category_map) - len(small_labels) + 1 if small_labels else None,
    }
