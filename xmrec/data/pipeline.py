"""From a dataset name to a ready :class:`ProcessedDataset`: load -> process -> sample -> word2vec -> save.

Dataset specs (:data:`DATASET_SPECS`):

- ``ml-100k``, ``ml-1m``, ``ml-10m``: MovieLens, genres as categories, every rating counts.
- ``tsv:PATH``: interactions in the raw format (:func:`xmrec.data.sources.load_interactions_tsv`).
- ``synthetic``: :func:`xmrec.data.synthetic.generate_interactions` with ``interactions`` rows.
- ``xmrec:MARKET`` (e.g. ``xmrec:t1``): a WSDM Cup 2022 market. That data has neither timestamps
  nor categories, so two choices stand in for them (recorded in ``stats["source"]``):
  **pseudo-time** = file order of ``Market.train`` (train.tsv rows, then the 5-core-only rows),
  with the market's ``valid_qrel`` positive appended as each user's most recent interaction (so
  it becomes that user's test target; on the real files that order carries no time: ItemCF
  over a user's first k items ranks t1's validation lists as well as over the last k);
  **categories** of an item = the markets (among all market folders of the data directory) in
  which the item occurs, in train, 5-core or valid_qrel. The mixer then mixes market-specific
  pools: each candidate list gets its own cross-market distribution shift.

``seed`` seeds everything (the sampler, word2vec, the synthetic generator); it overrides the
seeds of the configs given. With ``out`` the dataset is saved to ``out/`` (``arrays/*.npy`` +
``meta.json``, see :mod:`xmrec.data.store`) and exported to the original layout in
``out/original/`` (:mod:`xmrec.data.export`), the whole folder as one transaction
(:mod:`xmrec.folders`): ``MANIFEST.json`` is written last, and the previous folder stays usable until
the new one is complete.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from xmrec.config import DataConfig, EmbeddingConfig, SamplerConfig, markets_dir
from xmrec.data.embeddings import train_item_embeddings
from xmrec.data.process import process_interactions
from xmrec.data.sampling import sample_negatives
from xmrec.data.store import ProcessedDataset, load, read_meta, save

__all__ = [
    "DATASET_SPECS",
    "PIPELINE_VERSION",
    "RawData",
    "load_raw",
    "xmrec_raw",
    "prepare_dataset",
    "write_dataset",
    "run_config",
    "load_or_prepare",
]

DATASET_SPECS = ("ml-100k", "ml-1m", "ml-10m", "xmrec:MARKET", "tsv:PATH", "synthetic")
MOVIELENS = ("ml-100k", "ml-1m", "ml-10m")
PIPELINE_VERSION = 1  # bump when the output of the same config changes
_MEMORY: dict[str, ProcessedDataset] = {}  # load_or_prepare's in-process cache (out=None)


@dataclass
class RawData:
    """Raw interactions (``user_id, item_id, [cate_id,] timestamp``) and where categories come from."""

    interactions: pd.DataFrame
    item_categories: pd.DataFrame | None = None  # item_id, cate_id; None: the cate_id column
    source: dict = field(default_factory=dict)  # how the raw data was built (goes to stats["source"])


def _parse_spec(spec: str) -> tuple[str, str]:
    if spec in MOVIELENS:
        return "movielens", spec
    if spec == "synthetic":
        return "synthetic", spec
    for kind in ("xmrec", "tsv"):
        if spec.startswith(f"{kind}:") and len(spec) > len(kind) + 1:
            return kind, spec[len(kind) + 1 :]
    raise ValueError(
        f"unknown dataset {spec!r}; valid: {', '.join(DATASET_SPECS)} "
        "(e.g. ml-100k, xmrec:t1, tsv:data/my.tsv, synthetic)"
    )


def xmrec_raw(market: str, data_dir=None) -> RawData:
    """A WSDM Cup market as raw data: pseudo-time and market categories (see the module docstring)."""
    from xmrec.data.markets import find_file, list_markets, load_market

    m = load_market(market, data_dir)
    root = m.path.parent
    parts = [m.train[["userId", "itemId"]]]
    if m.valid_qrel is not None:
        parts.append(m.valid_qrel[["userId", "itemId"]])
    both = pd.concat(parts, ignore_index=True)
    df = pd.DataFrame(
        {
            "user_id": both["userId"].to_numpy(),
            "item_id": both["itemId"].to_numpy(),
            "timestamp": np.arange(len(both), dtype=np.int64),
        }
    )
    wanted = pd.Index(df["item_id"].unique())
    rows = []
    markets = list_markets(root)
    for name in markets:
        files = [p for stem in ("train", "train_5core", "valid_qrel") if (p := find_file(root / name, stem))]
        seen = [_items_of(p, p.stat().st_mtime_ns, p.stat().st_size) for p in files]
        items = pd.Index(np.unique(np.concatenate(seen))).intersection(wanted)
        rows.append(pd.DataFrame({"item_id": items.to_numpy(), "cate_id": name}))
    source = {
        "market": market,
        "data_dir": str(root),
        "markets": markets,
        "pseudo_time": "file order of train.tsv then 5-core-only rows; valid_qrel appended last per user",
        "categories": "markets in which the item occurs (train, train_5core or valid_qrel)",
        "train_rows": len(m.train),
        "valid_qrel_appended": 0 if m.valid_qrel is None else len(m.valid_qrel),
    }
    return RawData(df, pd.concat(rows, ignore_index=True), source)


@lru_cache(maxsize=64)
def _items_of(path: Path, mtime_ns: int, size: int) -> np.ndarray:
    """Distinct item ids of one market file (cached per file version: every market is read per spec)."""
    from xmrec.data.markets import read_interactions

    return read_interactions(path)["itemId"].unique().astype(str)


def load_raw(
    spec: str, *, seed: int = 2022, data_dir=None, interactions: int = 100_000, progress: bool = False
) -> RawData:
    """The raw interactions of ``spec`` (see :data:`DATASET_SPECS`)."""
    kind, arg = _parse_spec(spec)
    if kind == "movielens":
        from xmrec.data.sources import load_movielens

        return RawData(load_movielens(arg, progress=progress), source={"movielens": arg})
    if kind == "tsv":
        from xmrec.data.sources import load_interactions_tsv

        return RawData(load_interactions_tsv(arg), source={"tsv": arg})
    if kind == "synthetic":
        from xmrec.data.synthetic import generate_interactions

        data = generate_interactions(interactions, seed=seed, as_lists=False)
        return RawData(
            data.interactions, data.item_categories, {"synthetic": {"n_interactions": interactions, "seed": seed}}
        )
    return xmrec_raw(arg, data_dir)


def _configs(seed, max_seq_len, data_cfg, sampler_cfg, emb_cfg):
    data_cfg = data_cfg or DataConfig()
    if max_seq_len is not None:
        data_cfg = replace(data_cfg, max_seq_len=max_seq_len)
    sampler_cfg = replace(sampler_cfg or SamplerConfig(), seed=seed)
    return data_cfg, sampler_cfg, replace(emb_cfg or EmbeddingConfig(), seed=seed)


def run_config(
    spec: str,
    *,
    seed: int = 2022,
    data_dir=None,
    interactions: int = 100_000,
    max_seq_len: int | None = None,
    data_cfg: DataConfig | None = None,
    sampler_cfg: SamplerConfig | None = None,
    emb_cfg: EmbeddingConfig | None = None,
) -> dict:
    """The JSON-ready description of a run: what ``ProcessedDataset.config`` holds after it."""
    kind, _ = _parse_spec(spec)
    data_cfg, sampler_cfg, emb_cfg = _configs(seed, max_seq_len, data_cfg, sampler_cfg, emb_cfg)
    if kind == "xmrec":
        data_dir = str(Path(data_dir).expanduser() if data_dir is not None else markets_dir())
    cfg = {
        "pipeline_version": PIPELINE_VERSION,
        "spec": spec,
        "seed": seed,
        "data_dir": data_dir if kind == "xmrec" else None,
        "interactions": interactions if kind == "synthetic" else None,
        "data": asdict(data_cfg),
        "sampler": asdict(sampler_cfg),
        "embedding": asdict(emb_cfg),
    }
    return json.loads(json.dumps(cfg, default=str))


def prepare_dataset(
    spec: str,
    out: str | Path | None = None,
    *,
    seed: int = 2022,
    data_dir=None,
    interactions: int = 100_000,
    max_seq_len: int | None = None,
    data_cfg: DataConfig | None = None,
    sampler_cfg: SamplerConfig | None = None,
    emb_cfg: EmbeddingConfig | None = None,
    progress: bool = False,
    original: bool = True,
) -> ProcessedDataset:
    """Load, process, sample negatives and train word2vec for ``spec``; save to ``out`` if given.

    ``max_seq_len`` overrides ``data_cfg.max_seq_len``; ``seed`` overrides the sampler and
    embedding seeds. ``original=False`` skips the ``out/original/`` export (its Python lists cost
    ~36 bytes per id: several GB at 10M interactions). Raises ``ValueError`` for an unknown spec
    (listing the valid ones).
    """
    config = run_config(
        spec,
        seed=seed,
        data_dir=data_dir,
        interactions=interactions,
        max_seq_len=max_seq_len,
        data_cfg=data_cfg,
        sampler_cfg=sampler_cfg,
        emb_cfg=emb_cfg,
    )
    data_cfg, sampler_cfg, emb_cfg = _configs(seed, max_seq_len, data_cfg, sampler_cfg, emb_cfg)
    stages = ["load", "process", "sample", "word2vec"] + (["save"] if out is not None else [])
    with tqdm(total=len(stages), desc=f"prepare {spec}", unit="stage", disable=not progress) as bar:
        with _stage(bar, "load"):
            raw = load_raw(spec, seed=seed, data_dir=data_dir, interactions=interactions, progress=progress)
        with _stage(bar, "process"):
            result = process_interactions(raw.interactions, data_cfg, item_categories=raw.item_categories, name=spec)
            raw.interactions = None  # free the raw frame before sampling (10M rows)
        ds = result.dataset
        with _stage(bar, "sample"):
            sample_negatives(ds, sampler_cfg)
        with _stage(bar, "word2vec"):
            inter = result.interactions
            train = inter.training
            ds.item_emb = train_item_embeddings(inter.user[train], inter.item[train], ds.n_items, emb_cfg)
        ds.config = config
        ds.stats["source"] = raw.source
        if out is not None:
            with _stage(bar, "save"):
                write_dataset(ds, out, original=original)
    return ds


@contextmanager
def _stage(bar: tqdm, name: str):
    """Name the running stage on the progress bar; count it done when it ends."""
    bar.set_postfix_str(name)
    yield
    bar.update()


def write_dataset(ds: ProcessedDataset, out: str | Path, original: bool = True) -> Path:
    """Save ``ds`` to ``out/`` (with ``original`` the original layout in ``out/original/`` too), as
    one transaction: until the new folder is complete, the previous one stays usable."""
    return save(ds, out, original=original, command=sys.argv)


def load_or_prepare(spec: str, out: str | Path | None = None, **kwargs) -> ProcessedDataset:
    """:func:`prepare_dataset`, unless the same run was done already.

    With ``out``: loads ``out/`` when it is a complete dataset (a valid manifest) whose ``meta.json``
    records the same :func:`run_config`; otherwise (another config, an interrupted write, a cache
    from before manifests) prepares it again.
    Without: reuses a dataset prepared earlier in this process (the same object: do not mutate
    it). A changed ``tsv:`` input file with the same path is not detected: delete ``out/``.
    """
    key = run_config(spec, **{k: v for k, v in kwargs.items() if k not in ("progress", "original")})
    if out is not None:
        try:
            found = read_meta(out)
        except (FileNotFoundError, ValueError) as why:
            if Path(out).is_dir():  # say why a cache is prepared again (interrupted, damaged, before manifests)
                print(f"xmrec: preparing {out} again: {str(why).split('; rebuild')[0]}", file=sys.stderr)
            found = {}
        if found.get("config") == key:
            return load(out)
        return prepare_dataset(spec, out, **kwargs)
    text = json.dumps(key, sort_keys=True)
    if text not in _MEMORY:
        _MEMORY[text] = prepare_dataset(spec, None, **kwargs)
    return _MEMORY[text]
