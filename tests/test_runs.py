"""The run layer (xmrec.runs, xmrec.executors, xmrec.grid): specs, the store, executors and the grid command."""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from xmrec.cli import main
from xmrec.config import DataConfig, ModelConfig, TrainConfig, project_root
from xmrec.executors import make_executor, plan
from xmrec.grid import EXAMPLE, read_grid, specs_of
from xmrec.runs import MANIFEST, DataRecipe, InMemoryData, RunSpec, RunStore, execute

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DATA = DataRecipe("synthetic", interactions=20_000, data=DataConfig(small_category_max_items=20, max_seq_len=10))
TRAIN = TrainConfig(batch_size=128, epochs=2, patience=1, max_train_lists=300, max_eval_lists=120, device="cpu")
TIMING = ("seconds", "samples_per_s", "eval_seconds")  # the only numbers of a history that may differ


def grid4() -> list[RunSpec]:
    """Four tiny runs: GRU4Rec base and Ada for two seeds."""
    return [
        RunSpec(DATA, ModelConfig("GRU4Rec"), replace(TRAIN, mode=mode, seed=seed))
        for seed in (1, 2)
        for mode in ("base", "ada")
    ]


def untimed(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in h.items() if k not in TIMING} for h in history]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("data-cache")


@pytest.fixture(scope="module")
def inprocess(tmp_path_factory, cache):
    store = RunStore(tmp_path_factory.mktemp("inprocess"), data_cache=cache)
    return make_executor("inprocess", threads=1).run(grid4(), store, progress=False)


# -- specs ------------------------------------------------------------------------------------
def test_a_digest_names_what_is_trained_not_how_or_where():
    spec = grid4()[1]
    assert replace(spec, label="another name").digest() == spec.digest()
    assert RunSpec(DATA, spec.model, replace(spec.train, device="cuda")).digest() == spec.digest()
    assert RunSpec(DATA, spec.model, replace(spec.train, patience=2)).digest() != spec.digest()
    assert RunSpec(replace(DATA, seed=3), spec.model, spec.train).digest() != spec.digest()
    base = RunSpec(DATA, ModelConfig("GRU4Rec", identity_patches=True), TRAIN)  # a base run ignores Ada switches
    assert base.digest() == RunSpec(DATA, ModelConfig("GRU4Rec"), TRAIN).digest() and not base.model.ada


def test_a_fine_tune_names_its_base_and_the_plan_trains_the_base_first():
    ft = RunSpec(DATA, ModelConfig("SASRec"), replace(TRAIN, mode="finetune", freeze=True))
    base = ft.base()
    assert base.mode == "base" and base.model.name == "SASRec" and not base.train.freeze
    assert ft.key()["base"] == base.digest()
    assert [s.digest() for s in plan([ft, ft])] == [base.digest(), ft.digest()]
    with pytest.raises(ValueError, match="not done"):
        execute(ft, RunStore(Path("/nonexistent-store")))
    with pytest.raises(ValueError, match="freeze"):
        RunSpec(DATA, ModelConfig(), replace(TRAIN, mode="ada", freeze=True))


# -- the store ------------------------------------------------------------------------------------
def test_done_means_a_valid_manifest_and_load_checks_every_file(inprocess, tmp_path):
    record = inprocess[0]
    store = RunStore(record.folder.parent, data_cache=tmp_path)
    assert store.done(record.spec)
    manifest = json.loads((record.folder / MANIFEST).read_text())
    assert set(manifest["files"]) == {"checkpoint.pt", "config.json", "history.json", "metrics.json", "test_scores.npy"}
    again = store.load(record.spec)
    assert again.metrics == record.metrics and again.history == record.history and again.reused
    assert again.provenance["executor"] == "inprocess" and again.provenance["worker"]["pid"] == os.getpid()
    copy = tmp_path / "copy"
    shutil.copytree(record.folder, copy / record.folder.name)
    tampered = RunStore(copy, data_cache=tmp_path)
    path = copy / record.folder.name / "metrics.json"
    path.write_text(path.read_text().replace('"gauc": 0', '"gauc": 1', 1))
    with pytest.raises(ValueError, match="changed after the run finished"):
        tampered.load(record.spec)
    (copy / record.folder.name / MANIFEST).unlink()
    assert not tampered.done(record.spec)
    with pytest.raises(FileNotFoundError, match="no finished run"):
        tampered.load(record.spec)


def test_run_folders_of_the_old_layout_are_named_as_to_be_retrained(tmp_path):
    (tmp_path / "GRU4Rec-base-s1-0123456789abcdef").mkdir()
    (tmp_path / "GRU4Rec-base-s1-0123456789abcdef" / "test_metrics.json").write_text("{}")
    with pytest.warns(UserWarning, match="1 run folder.*layout before the run layer.*trained again"):
        RunStore(tmp_path)


def test_a_longer_cap_and_a_looser_patience_extend_a_stored_run_to_its_from_scratch_history(cache, tmp_path):
    short = RunSpec(DATA, ModelConfig("GRU4Rec"), replace(TRAIN, mode="ada", seed=1, epochs=4, patience=2))
    longer = RunSpec(DATA, short.model, replace(short.train, epochs=7, patience=4))
    store = RunStore(tmp_path / "store", data_cache=cache)
    first = execute(short, store)
    extended = execute(longer, store)
    scratch = execute(longer, RunStore(tmp_path / "scratch", data_cache=cache))
    assert len(extended.history) > len(first.history)  # it trained on, from where the short run ended
    assert extended.summary["resumed_epochs"] == len(first.history)
    assert extended.summary["extends"]["run"] == short.name and scratch.summary["extends"] is None
    assert untimed(extended.history) == untimed(scratch.history)
    assert extended.metrics == scratch.metrics and (extended.test_scores == scratch.test_scores).all()
    assert store.load(longer).summary["extends"]["epochs_run"] == len(first.history)
    # only a looser rule on the same spec extends, and the longest such run is the one extended
    assert store.precursor(RunSpec(DATA, short.model, replace(short.train, patience=1))) is None
    assert store.precursor(RunSpec(DATA, short.model, replace(longer.train, epochs=9, lr=0.01))) is None
    furthest = RunSpec(DATA, short.model, replace(longer.train, epochs=9))
    assert store.precursor(furthest) == extended.folder
    execute(furthest, store)  # its lineage: every shorter recording, oldest first, with its epochs
    assert [(c["run"], c["epochs"]) for c in store.lineage(furthest)] == [(short.name, 4), (longer.name, 7)]
    assert store.lineage(short) == []


def test_in_memory_runs_stay_in_the_process(tmp_path):
    from test_models import random_dataset

    spec = RunSpec(InMemoryData(random_dataset(seed=3)), ModelConfig("MF", dim=16), replace(TRAIN, epochs=1))
    record = execute(spec, None)
    assert record.folder is None and record.history and record.model() is not None
    with pytest.raises(ValueError, match="in-memory data"):
        make_executor("processes", workers=2).run([spec], RunStore(tmp_path), progress=False)


# -- executors ------------------------------------------------------------------------------------
def test_a_dask_local_cluster_trains_the_grid_to_the_same_numbers(inprocess, tmp_path, cache):
    records = make_executor("dask", workers=2).run(grid4(), RunStore(tmp_path, data_cache=cache), progress=False)
    assert [r.spec.digest() for r in records] == [r.spec.digest() for r in inprocess]
    for mine, theirs in zip(records, inprocess):
        assert mine.metrics == theirs.metrics
        assert untimed(mine.history) == untimed(theirs.history)
        assert not mine.reused and mine.provenance["executor"] == "dask"
        assert mine.provenance["worker"]["pid"] != os.getpid()
    assert len({r.provenance["worker"]["pid"] for r in records}) == 2  # both workers trained


def test_the_executor_follows_the_workers_unless_named():
    assert make_executor().name == "inprocess" and make_executor("local").name == "inprocess"
    assert make_executor(workers=2).name == "dask" and make_executor(scheduler="tcp://127.0.0.1:1").name == "dask"
    with pytest.raises(ValueError, match="needs executor 'dask'"):
        make_executor("processes", scheduler="tcp://127.0.0.1:1")
    with pytest.raises(ValueError, match="unknown executor"):
        make_executor("slurm")


# -- the grid command -------------------------------------------------------------------------------
GRID = """
preset = "small-data"
dataset = "synthetic"
interactions = 20000
seeds = [1, 2]
set = ["data.max_seq_len=10", "data.small_category_max_items=20", "train.batch_size=128", "train.device=cpu",
       "train.max_eval_lists=120", {extra}]

[[runs]]
model = "GRU4Rec"
mode = "base"

[[runs]]
label = "GRU4Rec ada"
model = "GRU4Rec"
mode = "ada"
"""
SHORT = '"train.epochs=2", "train.patience=1", "train.max_train_lists=300"'
LONG = '"train.epochs=14", "train.patience=14", "train.max_train_lists=1500"'  # a few seconds a run


def test_the_example_grid_is_valid_and_pairs_a_base_with_its_ada_twin(capsys):
    assert main(["grid", "--example"]) == 0
    assert capsys.readouterr().out == EXAMPLE
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"xmrec-example-{os.getpid()}.toml"
    path.write_text(EXAMPLE)
    specs = specs_of(read_grid(path))
    path.unlink()
    assert len(specs) >= 2 and {s.mode for s in specs} == {"base", "ada"}
    assert len({(s.model.name, s.seed) for s in specs}) < len(specs)  # twins: same model and seed


@pytest.mark.parametrize(
    "text, message",
    [
        ("seeds = [1]\n", "at least one \\[\\[runs\\]\\]"),
        ('colour = "red"\n[[runs]]\nmodel = "MF"\nmode = "base"\n', "unknown key"),
        ('[[runs]]\nmodel = "MF"\n', "needs a 'mode'"),
        ('[[runs]]\nmodel = "MF"\nmode = "base"\nset = ["model.n_patches=0"]\n', "n_patches"),
        ("seeds = [\n", "not valid TOML"),
    ],
)
def test_a_bad_grid_file_is_refused_naming_it(tmp_path, capsys, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["grid", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert __import__("re").search(message, err), err
    assert "bad.toml" in err or "n_patches" in err


def test_grid_runs_end_to_end_against_a_scheduler_on_localhost(tmp_path, monkeypatch, capsys, inprocess):
    from distributed import LocalCluster

    monkeypatch.setenv("XMREC_DATA_DIR", str(tmp_path / "data"))
    path = tmp_path / "grid.toml"
    path.write_text(GRID.format(extra=SHORT))
    with LocalCluster(host="127.0.0.1", n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        assert main(["grid", str(path), "--out", str(tmp_path / "out"), "--scheduler", address]) == 0
    out = capsys.readouterr().out
    assert "4 runs (4 trained here)" in out
    results = json.loads((tmp_path / "out" / "grid_results.json").read_text())
    assert [r["executor"] for r in results["runs"]] == ["dask"] * 4
    assert all(len(r["history"]) == r["epochs_run"] for r in results["runs"])
    assert results["provenance"]["config"]["executor"] == "dask"
    # the same runs as the in-process grid of this module (same data, configs and seeds)
    assert [r["gauc"] for r in results["runs"]] == [r.metrics["gauc"] for r in inprocess]
    assert main(["grid", str(path), "--out", str(tmp_path / "out")]) == 0  # again, in-process: nothing to train
    assert "4 runs (0 trained here)" in capsys.readouterr().out


def _folders(out: Path) -> list[Path]:
    return [p for p in out.iterdir() if p.is_dir()] if out.is_dir() else []


def test_a_grid_killed_midway_leaves_a_consistent_store_and_a_rerun_trains_only_the_rest(tmp_path):
    """The grid's process group (its worker processes with it) is killed once one run has finished
    and another has started; every folder is then either a valid run or an unfinished one."""
    path, out = tmp_path / "grid.toml", tmp_path / "out"
    path.write_text(GRID.format(extra=LONG))
    env = {**os.environ, "XMREC_DATA_DIR": str(tmp_path / "data"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "xmrec", "grid", str(path), "--out", str(out), "--executor", "processes"]
    child = subprocess.Popen([*cmd, "--workers", "2"], env=env, cwd=project_root(), start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and child.poll() is None:
        folders = _folders(out)
        finished = [p for p in folders if (p / MANIFEST).is_file()]
        started = [p for p in folders if (p / "last.pt").is_file() and not (p / MANIFEST).is_file()]
        if finished and started:
            break
        time.sleep(0.05)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    assert finished and started, "the grid ended before it could be killed midway"
    specs = specs_of(read_grid(path))
    store = RunStore(out, data_cache=tmp_path / "data" / "processed")
    done = [s for s in specs if store.done(s)]
    assert 1 <= len(done) < len(specs)
    for spec in done:
        store.load(spec)  # every finished run reads back, every file matching its manifest
    done_names = {s.name for s in done}
    assert {p.name for p in finished} <= done_names
    again = subprocess.run(cmd, env=env, cwd=project_root(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"{len(specs)} runs ({len(specs) - len(done)} trained here)" in again.stdout
    assert all(store.done(s) for s in specs)


# -- one path to a Trainer ----------------------------------------------------------------------------
def _trainer_calls(tree: ast.AST) -> list[str]:
    """Names of the functions (``module-level`` outside one) that call ``Trainer(...)`` in ``tree``."""
    found = []

    def visit(node, where):
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else where
            if isinstance(child, ast.Call):
                f = child.func
                name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
                if name == "Trainer":
                    found.append(where)
            visit(child, inner)

    visit(tree, "module-level")
    return found


def _sources(root: Path):
    """Every Python source outside xmrec/training and tests: the package, benchmarks, tools, notebooks."""
    for path in sorted(root.glob("**/*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] in ("tests", ".venv", "build", "data", "runs") or rel.parts[:2] == ("xmrec", "training"):
            continue
        yield rel, path.read_text()
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        yield (
            path.relative_to(root),
            "\n".join(ln for ln in code.splitlines() if not ln.lstrip().startswith(("%", "!"))),
        )


def test_exactly_one_function_builds_a_trainer_outside_the_training_package():
    calls = [(str(rel), fn) for rel, text in _sources(project_root()) for fn in _trainer_calls(ast.parse(text))]
    assert calls == [("xmrec/runs.py", "execute")], calls


def test_the_trainer_scan_finds_a_caller_that_goes_around_the_run_layer():
    sneaky = "from xmrec.training import Trainer\ndef train(ds):\n    return Trainer(cfg).fit(ds)\n"
    assert _trainer_calls(ast.parse(sneaky)) == ["train"]
    assert _trainer_calls(ast.parse("import xmrec.training as t\nt.Trainer()\n")) == ["module-level"]


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_run_in_training_is_held_and_a_second_process_asking_for_it_fails_naming_the_holder(cache, tmp_path):
    spec = grid4()[0]
    store = RunStore(tmp_path / "store", data_cache=cache)
    lock = store.folder(spec).parent / f".{store.folder(spec).name}.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.parent.mkdir(parents=True)
        lock.write_text(json.dumps({"host": os.uname().nodename, "pid": holder.pid, "since_utc": "now"}))
        with pytest.raises(RuntimeError, match=rf"being written by process {holder.pid} .*{lock.name}"):
            execute(spec, store)
        assert not store.done(spec) and not (store.folder(spec) / "last.pt").exists()  # nothing trained
    finally:
        holder.kill()
        holder.wait()
    lock.write_text(json.dumps({"host": os.uname().nodename, "pid": _dead_pid(), "since_utc": "then"}))
    record = execute(spec, store)  # a dead holder's lock is taken over, and let go when the run is done
    assert store.done(spec) and record.history and not lock.exists()
    assert not list(lock.parent.glob(".*.lock*"))
