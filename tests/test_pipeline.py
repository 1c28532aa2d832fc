"""prepare_dataset end to end: CLI, save/load, original-layout export, caching, specs, crash safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xmrec.config import DataConfig, project_root
from xmrec.data import pipeline
from xmrec.data.export import ORIGINAL_COLUMNS, read_item_embeddings, read_original_split
from xmrec.data.pipeline import load_or_prepare, prepare_dataset, write_dataset
from xmrec.data.store import SPLITS, load
from xmrec.overrides import default_of

PY = sys.executable
SPLIT_FIELDS = ("user", "item", "cate", "item_seq", "item_seq_len", "neg_items", "neg_pool", "neg_n_cates")


def assert_same_dataset(a, b):
    assert (a.name, a.n_users, a.n_items, a.n_cates) == (b.name, b.n_users, b.n_items, b.n_cates)
    for k in ("item_cate_ptr", "item_cate_idx", "item_pop", "item_emb", "item_raw_ids", "user_raw_ids"):
        assert np.array_equal(getattr(a, k), getattr(b, k)), k
    for s in SPLITS:
        for f in SPLIT_FIELDS:
            assert np.array_equal(getattr(a.split(s), f), getattr(b.split(s), f)), (s, f)


@pytest.fixture(scope="module")
def cli_out(tmp_path_factory):
    """`python -m xmrec prepare --dataset ml-100k --out DIR --seed 5`, run as a user would."""
    out = tmp_path_factory.mktemp("prep") / "ml100k"
    run = subprocess.run(
        [PY, "-m", "xmrec", "prepare", "--dataset", "ml-100k", "--out", str(out), "--seed", "5"],
        cwd=project_root(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    return out, json.loads(run.stdout)


def test_cli_writes_dataset_and_original_layout(cli_out):
    out, printed = cli_out
    ds = load(out)
    assert printed == json.loads((out / "meta.json").read_text())["stats"] == ds.stats
    assert ds.config["spec"] == "ml-100k" and ds.config["seed"] == 5 and ds.config["sampler"]["seed"] == 5
    for name in ("train.pkl", "valid.pkl", "test.pkl", "item_emb_64.txt"):
        assert (out / "original" / name).is_file()
    assert printed["train_instances"] == len(ds.train) > 0


def test_same_seed_in_process_matches_the_cli_run(cli_out):
    from xmrec.config import SamplerConfig
    from xmrec.data.process import process_interactions
    from xmrec.data.sampling import sample_negatives
    from xmrec.data.sources import load_movielens

    out, _ = cli_out
    preset = DataConfig(max_seq_len=default_of("data.max_seq_len"))  # the CLI's default preset, small-data
    here = process_interactions(load_movielens("ml-100k"), preset, name="ml-100k").dataset
    sample_negatives(here, SamplerConfig(seed=5))
    here.item_emb = load(out).item_emb  # word2vec determinism: tests/test_embeddings.py
    assert_same_dataset(here, load(out))


def test_original_layout_round_trip(cli_out):
    out, _ = cli_out
    ds = load(out)
    for name in SPLITS:
        frame = pd.read_pickle(out / "original" / f"{name}.pkl")
        assert tuple(frame.columns) == ORIGINAL_COLUMNS
        s = ds.split(name)
        # unpadded histories, one-element category lists, as the original
        r = int(np.argmin(s.item_seq_len))
        assert frame["item_seq"][r] == s.item_seq[r][s.item_seq.shape[1] - s.item_seq_len[r] :].tolist()
        assert frame["cate_id"][r] == [s.cate[r]]
        back = read_original_split(out / "original" / f"{name}.pkl", max_seq_len=ds.max_seq_len)
        for f in SPLIT_FIELDS[:6]:
            assert np.array_equal(getattr(back, f), getattr(s, f)), (name, f)
        assert (back.neg_pool == -1).all() and (back.neg_n_cates == -1).all()  # not in the original layout
    table = read_item_embeddings(out / "original" / "item_emb_64.txt")
    assert table.shape[1] == 64 and np.array_equal(table, ds.item_emb[: len(table)])
    assert not ds.item_emb[len(table) :].any()  # trailing items without a vector are zero anyway


def test_load_or_prepare_reuses_a_matching_run(cli_out, monkeypatch, tmp_path):
    out, _ = cli_out
    calls = []

    def fake_prepare(spec, out=None, **kw):
        calls.append((spec, out, kw))
        return "prepared"

    monkeypatch.setattr(pipeline, "prepare_dataset", fake_prepare)
    length = default_of("data.max_seq_len")  # what the CLI's default preset prepared
    ds = load_or_prepare("ml-100k", out, seed=5, max_seq_len=length)
    assert not calls and ds.config["seed"] == 5
    assert load_or_prepare("ml-100k", out, seed=6, max_seq_len=length) == "prepared"  # another config: prepare again
    assert load_or_prepare("ml-100k", out, seed=5, max_seq_len=20) == "prepared"
    assert len(calls) == 2
    assert load_or_prepare("ml-100k", seed=9) is load_or_prepare("ml-100k", seed=9, progress=True)
    assert len(calls) == 3  # in-process cache: prepared once


def test_unknown_spec_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown dataset 'ml-20m'.*ml-100k.*xmrec:MARKET.*tsv:PATH.*synthetic"):
        prepare_dataset("ml-20m")
    with pytest.raises(ValueError, match="unknown dataset"):
        prepare_dataset("xmrec:")


def write_tsv(path: Path, rows, header=("userId", "itemId", "rating")):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(["\t".join(header)] + ["\t".join(map(str, r)) for r in rows]) + "\n")


def test_xmrec_spec_pseudo_time_and_market_categories(tmp_path):
    # t1: four users with 12 interactions each; the qrel item becomes the test target of two
    t1 = [(f"t1U{u}", f"P{(u * 13 + k) % 60}", 5.0) for u in range(4) for k in range(12)]
    write_tsv(tmp_path / "t1" / "train.tsv", t1)
    write_tsv(tmp_path / "t1" / "valid_qrel.tsv", [("t1U0", "P99", 1), ("t1U1", "P98", 1)])
    write_tsv(tmp_path / "s1" / "train_5core.tsv", [("s1U0", f"P{k}", 1.0) for k in range(10)])
    cfg = DataConfig(small_category_max_items=3)
    ds = prepare_dataset("xmrec:t1", data_dir=tmp_path, data_cfg=cfg, max_seq_len=5)
    assert ds.stats["source"]["markets"] == ["s1", "t1"]
    assert ds.stats["category_map"] == {"s1": 1, "t1": 2}
    test = {ds.user_raw_ids[u]: ds.item_raw_ids[i] for u, i in zip(ds.test.user, ds.test.item)}
    assert (test["t1U0"], test["t1U1"]) == ("P99", "P98")
    for i in range(1, ds.n_items + 1):  # P0..P9 occur in s1 too
        raw = ds.item_raw_ids[i]
        expect = [1, 2] if raw in {f"P{k}" for k in range(10)} else [2]
        assert ds.item_categories(i).tolist() == expect
    # the qrel is the most recent interaction: the valid target is the last train.tsv row of the user
    last_train = {u: it for u, it, _ in t1 if u in ("t1U0", "t1U1")}
    valid = {ds.user_raw_ids[u]: ds.item_raw_ids[i] for u, i in zip(ds.valid.user, ds.valid.item)}
    assert {u: valid[u] for u in last_train} == last_train


def test_empty_market_and_missing_market_raise(tmp_path):
    write_tsv(tmp_path / "t1" / "train.tsv", [])
    with pytest.raises(ValueError, match="no interactions"):
        prepare_dataset("xmrec:t1", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="t9"):
        prepare_dataset("xmrec:t9", data_dir=tmp_path)


def test_tsv_and_synthetic_specs(tmp_path):
    rows = [
        (f"u{u}", f"i{(u * 7 + k) % 60}", f"c{k % 3},c{(k + 1) % 3}", 100 + k) for u in range(12) for k in range(14)
    ]
    path = tmp_path / "raw.tsv"
    write_tsv(path, rows, header=("user_id", "item_id", "cate_id", "timestamp"))
    ds = prepare_dataset(f"tsv:{path}", max_seq_len=8)
    assert ds.n_users == 12 and len(ds.test) == 12 * 2  # every item has two categories
    assert ds.stats["steps"]["raw"]["categories"] == 3
    syn = prepare_dataset("synthetic", interactions=4000, max_seq_len=10, seed=3)
    assert syn.stats["source"]["synthetic"]["n_interactions"] == 4000 and len(syn.train) > 0


# ------------------------------------------------------------------------------------------------
# crash safety: SIGKILL in the middle of a write
# ------------------------------------------------------------------------------------------------

MAKE_DATASET = textwrap.dedent("""
    import numpy as np
    from xmrec.data.store import ProcessedDataset, Split

    def make(n, name, L=200):
        rng = np.random.default_rng(n)
        def split(k):
            return Split(user=np.arange(1, k + 1), item=rng.integers(1, 1000, k), cate=np.ones(k, np.int64),
                         item_seq=rng.integers(0, 1000, (k, L)), item_seq_len=np.full(k, L),
                         neg_items=rng.integers(1, 1000, (k, 19)), neg_pool=np.zeros(k, np.int8),
                         neg_n_cates=np.ones(k, np.int8))
        return ProcessedDataset(name=name, n_users=n, n_items=999, n_cates=1,
                                item_cate_ptr=np.r_[0, np.arange(1000)], item_cate_idx=np.ones(999, np.int64),
                                item_pop=np.ones(1000, np.int64), train=split(n), valid=split(5), test=split(5))
""")


def _staged(out: Path, pattern: str) -> bool:
    """Whether a staging folder of ``out`` holds a file matching ``pattern``."""
    return any(staging.glob(pattern) for staging in out.parent.glob(f".{out.name}.staging-*"))


@pytest.mark.parametrize(
    "moment",
    ["arrays/train.item_seq.npy", "meta.json", "original/train.pkl"],
    ids=["writing arrays", "arrays done", "writing the original layout"],
)
def test_a_write_killed_at_any_moment_leaves_the_previous_dataset_usable(tmp_path, moment):
    namespace: dict = {}
    exec(MAKE_DATASET, namespace)
    out = tmp_path / "ds"
    previous = namespace["make"](50, "previous")
    write_dataset(previous, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    script = MAKE_DATASET + textwrap.dedent(f"""
        from xmrec.data.pipeline import write_dataset
        write_dataset(make(10_000, "big"), {str(out)!r})
    """)
    proc = subprocess.Popen([PY, "-c", script], cwd=project_root())
    deadline = time.time() + 120
    try:
        while not _staged(out, moment):
            assert proc.poll() is None, f"the writer ended before {moment} appeared"
            assert time.time() < deadline, f"the writer never wrote {moment}"
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # untouched
    with pytest.warns(UserWarning, match="interrupted write"):
        assert load(out).name == "previous"  # and the reader says what it cleaned up
    assert not list(tmp_path.glob(".ds.*"))
    write_dataset(namespace["make"](60, "next"), out)  # the next write completes
    assert load(out).name == "next" and not list(tmp_path.glob(".ds.*"))


def test_a_kill_between_the_two_renames_is_undone_by_the_next_reader(tmp_path):
    """The one moment without a folder at the target: the old one aside, the new one staged."""
    namespace: dict = {}
    exec(MAKE_DATASET, namespace)
    out = tmp_path / "ds"
    write_dataset(namespace["make"](50, "previous"), out)
    os.rename(out, tmp_path / ".ds.previous")
    (tmp_path / ".ds.staging-999999999-x").mkdir()  # a writer that no longer runs
    (tmp_path / f".ds.staging-{os.getppid()}-y").mkdir()  # one that does (this test's parent): left alone
    with pytest.warns(UserWarning, match="the previous one is back"):
        assert load(out).name == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".ds.staging-{os.getppid()}-y", "ds"]


def test_a_folder_without_a_valid_manifest_is_refused_with_the_command_that_rebuilds_it(tmp_path):
    namespace: dict = {}
    exec(MAKE_DATASET, namespace)
    out = tmp_path / "ds"
    write_dataset(namespace["make"](50, "previous"), out)
    (out / "MANIFEST.json").unlink()  # as a cache written before manifests
    with pytest.raises(ValueError, match=r"no valid MANIFEST.json.*rebuild it with `python -m xmrec prepare"):
        load(out)
    write_dataset(namespace["make"](50, "previous"), out)
    with open(out / "arrays" / "train.item.npy", "ab") as fh:
        fh.write(b"0")  # a file changed after the write
    with pytest.raises(ValueError, match="train.item.npy differs from"):
        load(out)
