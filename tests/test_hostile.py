"""The command line against hostile input: every bad case exits 2 with one message that names the
file, line or field, before any work, and leaves every folder it was pointed at as it was.

Each case runs in-process through ``xmrec.cli.main`` on tiny synthetic data and tiny markets; a
case is (argv, the message expected, what the message must name). The folders of the module's
fixtures are fingerprinted before and after every case (every file's bytes).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from xmrec.cli import main
from xmrec.folders import MANIFEST, file_entries

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TRAIN = ["--model", "GRU4Rec", "--epochs", "1", "--batch-size", "64", "--device", "cpu"]
HEADER = "userId\titemId\trating\n"


def _market(root: Path, name: str, users: int, seed: int) -> None:
    """A market folder of ``users`` users with 12 interactions each over 150 items, a qrel positive
    each, and a 100-item validation run per user holding it."""
    folder = root / name
    folder.mkdir(parents=True)
    train, qrel, run = [HEADER], [HEADER], []
    for u in range(users):
        items = [f"i{(u * 7 + k * (seed + 3)) % 150}" for k in range(13)]
        items = list(dict.fromkeys(items))
        train += [f"{name}u{u}\t{i}\t5.0\n" for i in items[:-1]]
        qrel.append(f"{name}u{u}\t{items[-1]}\t1\n")
        others = [f"i{k}" for k in range(150) if f"i{k}" != items[-1]][:99]
        run.append(f"{name}u{u}\t{','.join([items[-1], *others])}\n")
    (folder / "train.tsv").write_text("".join(train))
    (folder / "valid_qrel.tsv").write_text("".join(qrel))
    (folder / "valid_run.tsv").write_text("".join(run))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A prepared dataset, a second one of other data, a trained base run and an Ada run, markets."""
    root = tmp_path_factory.mktemp("hostile")
    common = ["--dataset", "synthetic", "--interactions", "3000", "--max-seq-len", "10"]
    assert main(["prepare", *common, "--out", str(root / "data")]) == 0
    assert main(["prepare", *common, "--seed", "7", "--out", str(root / "other")]) == 0
    assert main(["train", *TRAIN, "--data", str(root / "data"), "--out", str(root / "run")]) == 0
    ada = ["--mode", "ada", "--data", str(root / "data"), "--out", str(root / "ada")]
    assert main(["train", *TRAIN, *ada]) == 0
    assert main(["train", *TRAIN, "--data", str(root / "other"), "--out", str(root / "other-run")]) == 0
    for k, name in enumerate(("t1", "s1")):
        _market(root / "markets", name, users=8, seed=k)
    (root / "file.txt").write_text("not a folder\n")
    (root / "grid.toml").write_text('[[runs]]\nmodel = "GRU4Rec"\nmode = "base"\n')
    return root


def snapshot(root: Path) -> dict:
    """Every file under the fixture's folders, with its bytes' sha256 (caches of the run layer aside)."""
    return {k: v["sha256"] for k, v in file_entries(root).items() if not k.startswith("runs-cache")}


def run_line(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(lines))
    return path


def valid_run_lines(world: Path) -> list[str]:
    return (world / "markets" / "t1" / "valid_run.tsv").read_text().splitlines(keepends=True)


def case_args(world: Path, tmp: Path, case: str) -> list[str]:
    """The argv of ``case``: placeholders resolved against the fixture (DATA, OTHER, RUN, ...)."""
    d = {
        "DATA": world / "data",
        "OTHER": world / "other",
        "RUN": world / "run",
        "ADA": world / "ada",
        "OTHERRUN": world / "other-run",
        "MARKETS": world / "markets",
        "FILE": world / "file.txt",
        "GRID": world / "grid.toml",
        "NEW": tmp / "new",
        "MISSING": tmp / "missing",
        "HOSTILE": world,
    }
    pattern = re.compile(r"\b(" + "|".join(sorted(d, key=len, reverse=True)) + r")\b")
    return [pattern.sub(lambda m: str(d[m.group(1)]), token) for token in case.split()]


# (command line with placeholders, message it must print); every one must exit 2 and change nothing
CASES = {
    # -- prepare ----------------------------------------------------------------------------------
    "prepare unknown dataset": ("prepare --dataset nope --out NEW", r"unknown dataset 'nope'"),
    "prepare n_valid 0": ("prepare --dataset synthetic --out NEW --set data.n_valid=0", r"DataConfig\.n_valid"),
    "prepare n_test -1": ("prepare --dataset synthetic --out NEW --set data.n_test=-1", r"DataConfig\.n_test"),
    "prepare n_neg 0": ("prepare --dataset synthetic --out NEW --set sampler.n_neg=0", r"SamplerConfig\.n_neg"),
    "prepare sampler kind": ("prepare --dataset synthetic --out NEW --set sampler.kind=banana", r"SamplerConfig\.kind"),
    "prepare popularity prob": (
        "prepare --dataset synthetic --out NEW --set sampler.popularity_prob=1.5",
        r"SamplerConfig\.popularity_prob",
    ),
    "prepare embedding dim 0": ("prepare --dataset synthetic --out NEW --set embedding.dim=0", r"EmbeddingConfig\.dim"),
    "prepare sg 2": ("prepare --dataset synthetic --out NEW --set embedding.sg=2", r"EmbeddingConfig\.sg"),
    "prepare max_seq_len 0": ("prepare --dataset synthetic --out NEW --max-seq-len 0", r"DataConfig\.max_seq_len"),
    "prepare train section": ("prepare --dataset synthetic --out NEW --set train.lr=0.1", r"unknown section 'train'"),
    "prepare unknown field": ("prepare --dataset synthetic --out NEW --set data.nope=1", r"has no field 'nope'"),
    "prepare bad type": ("prepare --dataset synthetic --out NEW --set data.max_seq_len=abc", r"expects a whole number"),
    "prepare no equals": ("prepare --dataset synthetic --out NEW --set data.max_seq_len", r"SECTION\.FIELD=VALUE"),
    "prepare contradiction": (
        "prepare --dataset synthetic --out NEW --max-seq-len 10 --set data.max_seq_len=20",
        r"contradicts --max-seq-len 10",
    ),
    "prepare fixed seed": ("prepare --dataset synthetic --out NEW --set sampler.seed=1", r"cannot be set: it follows"),
    "prepare interactions ignored": (
        "prepare --dataset ml-100k --out NEW --interactions 100",
        r"--interactions only applies to --dataset synthetic",
    ),
    "prepare data-dir ignored": (
        "prepare --dataset synthetic --out NEW --data-dir MARKETS",
        r"--data-dir only applies to --dataset xmrec",
    ),
    "prepare out is a file": ("prepare --dataset synthetic --out FILE", r"file\.txt is an existing file"),
    "prepare missing tsv": ("prepare --dataset tsv:MISSING --out NEW", r"missing"),
    "prepare bad tsv": ("prepare --dataset tsv:FILE --out NEW", r"file\.txt"),
    "prepare missing market": ("prepare --dataset xmrec:t9 --data-dir MARKETS --out NEW", r"t9"),
    "prepare over a dataset, bad set": ("prepare --dataset synthetic --out DATA --set data.n_valid=0", r"n_valid"),
    # -- train --------------------------------------------------------------------------------------
    "train missing data": ("train " + " ".join(TRAIN) + " --data MISSING --out NEW", r"missing: no such processed"),
    "train data is a file": ("train " + " ".join(TRAIN) + " --data FILE --out NEW", r"file\.txt"),
    "train n_patches 0": ("train " + " ".join(TRAIN) + " --data DATA --out NEW --set model.n_patches=0", r"n_patches"),
    "train dim 0": ("train " + " ".join(TRAIN) + " --data DATA --out NEW --set model.dim=0", r"ModelConfig\.dim"),
    "train dropout 1": ("train " + " ".join(TRAIN) + " --data DATA --out NEW --set model.dropout=1", r"dropout"),
    "train activation": (
        "train " + " ".join(TRAIN) + " --data DATA --out NEW --set model.sasrec_act=tanh",
        r"sasrec_act",
    ),
    "train epochs 0": ("train --model GRU4Rec --epochs 0 --data DATA --out NEW", r"TrainConfig\.epochs"),
    "train batch -1": ("train --model GRU4Rec --batch-size -1 --data DATA --out NEW", r"TrainConfig\.batch_size"),
    "train patience 0": ("train --model GRU4Rec --patience 0 --data DATA --out NEW", r"patience"),
    "train device banana": ("train --model GRU4Rec --device banana --data DATA --out NEW", r"'banana' is not a device"),
    "train device cuda": ("train --model GRU4Rec --device cuda --data DATA --out NEW", r"no CUDA device"),
    "train device mps": ("train --model GRU4Rec --device mps --data DATA --out NEW", r"no Apple GPU"),
    "train freeze base": ("train " + " ".join(TRAIN) + " --freeze --data DATA --out NEW", r"freeze"),
    "train init with ada": (
        "train " + " ".join(TRAIN) + " --mode ada --init RUN/checkpoint.pt --data DATA --out NEW",
        r"init .*only applies to mode 'finetune'",
    ),
    "train finetune no init": (
        "train " + " ".join(TRAIN) + " --mode finetune --data DATA --out NEW",
        r"mode 'finetune' needs --init",
    ),
    "train init missing": (
        "train " + " ".join(TRAIN) + " --mode finetune --init MISSING --data DATA --out NEW",
        r"missing: no such",
    ),
    "train init not a checkpoint": (
        "train " + " ".join(TRAIN) + " --mode finetune --init FILE --data DATA --out NEW",
        r"file\.txt: not a readable xmrec checkpoint",
    ),
    "train init other data": (
        "train " + " ".join(TRAIN) + " --mode finetune --init OTHERRUN/checkpoint.pt --data DATA --out NEW",
        r"trained on another dataset",
    ),
    "train init ada checkpoint": (
        "train " + " ".join(TRAIN) + " --mode finetune --init ADA/checkpoint.pt --data DATA --out NEW",
        r"holds an Ada-Ranker",
    ),
    "train valid metric": (
        "train " + " ".join(TRAIN) + " --data DATA --out NEW --set train.valid_metric=precision",
        r"valid_metric must be",
    ),
    "train test samplers alone": (
        "train " + " ".join(TRAIN) + " --data DATA --out NEW --set train.test_samplers=mixer",
        r"only applies with test_every_epoch",
    ),
    "train test samplers unknown": (
        "train "
        + " ".join(TRAIN)
        + " --data DATA --out NEW --set train.test_every_epoch=true --set train.test_samplers=banana",
        r"unknown sampler",
    ),
    "train fixed ada": ("train " + " ".join(TRAIN) + " --data DATA --out NEW --set model.ada=true", r"follows --mode"),
    "train lists 0": (
        "train " + " ".join(TRAIN) + " --data DATA --out NEW --set train.max_train_lists=0",
        r"max_train_lists",
    ),
    "train loss drop 2": (
        "train " + " ".join(TRAIN) + " --data DATA --out NEW --set train.min_loss_drop=2",
        r"min_loss_drop",
    ),
    "train out is a file": ("train " + " ".join(TRAIN) + " --data DATA --out FILE", r"file\.txt is an existing file"),
    "train other data into a run": (
        "train " + " ".join(TRAIN) + " --data OTHER --out RUN",
        r"written by a run on other data",
    ),
    "train other model into a run": (
        "train --model SASRec --epochs 1 --batch-size 64 --device cpu --data DATA --out RUN",
        r"written by a run with other settings",
    ),
    "train tensorboard is a file": (
        "train " + " ".join(TRAIN) + " --data DATA --out NEW --tensorboard FILE",
        r"file\.txt is an existing file",
    ),
    # -- evaluate ------------------------------------------------------------------------------------
    "evaluate missing checkpoint": ("evaluate --checkpoint MISSING --data DATA", r"missing: no such checkpoint"),
    "evaluate not a checkpoint": ("evaluate --checkpoint FILE --data DATA", r"not a readable xmrec checkpoint"),
    "evaluate other data": ("evaluate --checkpoint RUN/checkpoint.pt --data OTHER", r"other|another"),
    "evaluate device banana": (
        "evaluate --checkpoint RUN/checkpoint.pt --data DATA --device banana",
        r"'banana' is not a device",
    ),
    "evaluate device cuda": ("evaluate --checkpoint RUN/checkpoint.pt --data DATA --device cuda", r"no CUDA device"),
    "evaluate scores into a folder": (
        "evaluate --checkpoint RUN/checkpoint.pt --data DATA --scores-out DATA",
        r"is a folder, not a file",
    ),
    "evaluate missing data": ("evaluate --checkpoint RUN/checkpoint.pt --data MISSING", r"missing"),
    # -- crossmarket ----------------------------------------------------------------------------------
    "crossmarket unknown target": ("crossmarket --target t9 --data-dir MARKETS --out NEW --smoke", r"'t9'"),
    "crossmarket missing data dir": ("crossmarket --target t1 --data-dir MISSING --out NEW --smoke", r"missing"),
    "crossmarket out is a file": (
        "crossmarket --target t1 --data-dir MARKETS --out FILE --smoke",
        r"file\.txt is a file, not a folder",
    ),
    "crossmarket out/target is a file": (
        "crossmarket --target file.txt --data-dir MARKETS --out HOSTILE --smoke",
        r"crossmarket output folder .*file\.txt is an existing file",
    ),
    "crossmarket missing run file": (
        "crossmarket --target t1 --data-dir MARKETS --out NEW --smoke --valid-run MISSING",
        r"missing does not exist",
    ),
    # -- grid ------------------------------------------------------------------------------------------
    "grid missing file": ("grid MISSING --out NEW", r"grid file .*missing: no such file"),
    "grid not toml": ("grid FILE --out NEW", r"file\.txt: not valid TOML"),
    "grid no out": ("grid GRID", r"needs FILE and --out"),
    "grid example with options": ("grid --example --out NEW", r"--example prints a grid file and runs nothing"),
    "grid workers in process": ("grid GRID --out NEW --workers 2 --executor inprocess", r"trains one run at a time"),
    "grid scheduler with processes": (
        "grid GRID --out NEW --scheduler tcp://127.0.0.1:1 --executor processes",
        r"needs executor 'dask'",
    ),
    "grid scheduler with workers": (
        "grid GRID --out NEW --scheduler tcp://127.0.0.1:1 --workers 2",
        r"has its own \(drop --workers\)",
    ),
    "grid missing data": ("grid GRID --out NEW --data MISSING", r"missing: no such processed"),
    "grid bad set": ("grid GRID --out NEW --data DATA --set model.n_patches=0", r"n_patches"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_exits_2_with_a_message_and_changes_nothing(world, tmp_path, capsys, name):
    argv, message = CASES[name]
    before = snapshot(world)
    code = main(case_args(world, tmp_path, argv))
    err = capsys.readouterr().err
    assert code == 2, f"{name}: exit {code}\n{err}"
    assert re.search(message, err), f"{name}: {err!r}"
    last = err.strip().splitlines()[-1]  # progress bars may come before it
    assert last.startswith("error: ") and "Traceback" not in err, f"{name}: one message, not a traceback: {err!r}"
    assert snapshot(world) == before, f"{name}: a folder changed"
    assert not (tmp_path / "new").exists() or not any((tmp_path / "new").iterdir()), f"{name}: left a folder"


def _t1_with(world: Path, tmp: Path, lines: list[str]) -> list[str]:
    path = run_line(tmp / "valid_run.tsv", lines)
    return ["crossmarket", "--target", "t1", "--data-dir", str(world / "markets"), "--out", str(tmp / "new")] + [
        "--smoke",
        "--valid-run",
        str(path),
    ]


RUN_DAMAGE = {  # a valid_run given on the command line, damaged one way
    "users missing from the run": (
        lambda lines: lines[3:],
        r"3 of the 8 users of valid_qrel are not in the given valid_run \(first: t1u0\)",
    ),
    "users the qrel lacks": (
        lambda lines: [*lines, lines[0].replace("t1u0", "stranger")],
        r"1 of the 9 users of the given valid_run are not in valid_qrel",
    ),
    "a list of 99": (
        lambda lines: [lines[0], lines[1].rsplit(",", 1)[0] + "\n", *lines[2:]],
        r"valid_run\.tsv, line 2: 99 candidate items, expected 100",
    ),
    "a repeated item": (
        lambda lines: [lines[0].rsplit(",", 1)[0] + "," + lines[0].split("\t")[1].split(",")[0] + "\n", *lines[1:]],
        r"line 1: the candidate list repeats an item",
    ),
    "a user twice": (lambda lines: [*lines, lines[0]], r"already listed on line 1"),
    "an empty file": (lambda lines: [], r"run file is empty"),
    "no tab": (lambda lines: [lines[0].replace("\t", " "), *lines[1:]], r"line 1"),
}


@pytest.mark.parametrize("name", list(RUN_DAMAGE))
def test_crossmarket_checks_its_run_against_its_qrel_before_any_work(world, tmp_path, capsys, name):
    damage, message = RUN_DAMAGE[name]
    before = snapshot(world)
    assert main(_t1_with(world, tmp_path, damage(valid_run_lines(world)))) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    after = snapshot(world)
    assert after == before, {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert not (tmp_path / "new").exists()


def test_a_finite_rating_is_required(world, tmp_path, capsys):
    bad = tmp_path / "markets"
    import shutil

    shutil.copytree(world / "markets", bad)
    qrel = bad / "t1" / "valid_qrel.tsv"
    lines = qrel.read_text().splitlines(keepends=True)
    qrel.write_text("".join([lines[0], lines[1].replace("\t1\n", "\tnan\n"), *lines[2:]]))
    assert main(["crossmarket", "--target", "t1", "--data-dir", str(bad), "--out", str(tmp_path / "o"), "--smoke"]) == 2
    assert re.search(r"valid_qrel\.tsv, line 2: rating 'nan' is not a finite number", capsys.readouterr().err)


def _rewrite_manifest(folder: Path) -> None:
    """Make the manifest match the folder again (as if the damage had been written by a writer)."""
    manifest = json.loads((folder / MANIFEST).read_text())
    (folder / MANIFEST).write_text(json.dumps({**manifest, "files": file_entries(folder)}))


def test_meta_counts_that_disagree_with_the_arrays_are_refused(world, tmp_path, capsys):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(world / "data", data)
    meta = json.loads((data / "meta.json").read_text())
    (data / "meta.json").write_text(json.dumps({**meta, "n_items": 5}))
    _rewrite_manifest(data)
    assert main(["train", *TRAIN, "--data", str(data), "--out", str(tmp_path / "run")]) == 2
    assert re.search(r"meta\.json: n_items 5 disagrees with arrays/item_pop\.npy \(\d+ rows", capsys.readouterr().err)
    assert not (tmp_path / "run").exists()


def test_ids_outside_the_tables_are_refused_before_training(world, tmp_path, capsys):
    import shutil

    import numpy as np

    data = tmp_path / "data"
    shutil.copytree(world / "data", data)
    seq = np.load(data / "arrays" / "valid.item_seq.npy")
    seq[0, -1] = 10_000  # an item no table has
    np.save(data / "arrays" / "valid.item_seq.npy", seq)
    _rewrite_manifest(data)
    assert main(["train", *TRAIN, "--data", str(data), "--out", str(tmp_path / "run")]) == 2
    assert re.search(
        r"valid split: history item ids span 0\.\.10000, the model knows 0\.\.\d+", capsys.readouterr().err
    )
    assert not (tmp_path / "run" / "metrics.json").exists()


# -- kill tests: a child process killed at several moments of a retrain over a finished run -----------
@pytest.mark.parametrize("moment", ["staged", "epochs trained"])
def test_a_retrain_killed_midway_leaves_the_finished_run_whole(world, tmp_path, moment):
    """`train --epochs 40` over a finished 1-epoch run trains in a staging copy: killed when the copy
    appears, or after some of its epochs, the finished run reads back as before, and the next call
    completes (the killed copy removed, and said so)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import torch

    from xmrec.config import project_root

    data, run = tmp_path / "data", tmp_path / "run"
    assert main(["prepare", "--dataset", "synthetic", "--interactions", "20000", "--out", str(data)]) == 0
    settings = ["--model", "GRU4Rec", "--patience", "40", "--batch-size", "64", "--device", "cpu"]
    assert main(["train", *settings, "--epochs", "1", "--data", str(data), "--out", str(run)]) == 0
    before = snapshot(run)
    cmd = [sys.executable, "-m", "xmrec", "train", *settings, "--data", str(data), "--out", str(run), "--epochs", "40"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen(cmd, cwd=project_root(), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120

    def reached() -> bool:
        staged = list(tmp_path.glob(".run.staging-*"))
        if moment == "staged":
            return bool(staged)
        last = [s / "last.pt" for s in staged if (s / "last.pt").is_file()]
        try:
            return bool(last) and len(torch.load(last[0], weights_only=True)["history"]) >= 3
        except Exception:  # caught mid-replace: look again
            return False

    try:
        while not reached():
            assert child.poll() is None and time.monotonic() < deadline, "the retrain ended before the moment"
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    assert snapshot(run) == before  # the finished run, byte for byte
    done = subprocess.run([*cmd[:-1], "2"], cwd=project_root(), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "left by an interrupted write" in done.stderr
    assert not list(tmp_path.glob(".run.*")) and json.loads((run / "config.json").read_text())["epochs_run"] == 2


@pytest.mark.skipif(__import__("xmrec.config").config.markets_dir() is None, reason="needs the real XMRec markets")
@pytest.mark.parametrize("moment", ["valid_pred.tsv", "metrics.tsv"])
def test_a_crossmarket_write_killed_midway_leaves_the_previous_output_whole(tmp_path, moment):
    """A finished output folder of t1, then `crossmarket --seed 7` over it, killed while it writes its
    new folder (its validation predictions, then its metrics): the old folder stays byte for byte."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from xmrec.config import project_root
    from xmrec.folders import transaction

    out = tmp_path / "xm"
    with transaction(out / "t1", kind="crossmarket") as tmp:  # stands for an earlier run's output
        (tmp / "summary.json").write_text('{"seed": 2022}')
        (tmp / "valid_pred.tsv").write_text("userId\titemId\tscore\n")
    before = snapshot(out)
    cmd = [sys.executable, "-m", "xmrec", "crossmarket", "--target", "t1", "--out", str(out), "--smoke", "--seed", "7"]
    child = subprocess.Popen(cmd, cwd=project_root(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    try:
        while not any(s.glob(moment) for s in out.glob(".t1.staging-*")):
            assert child.poll() is None and time.monotonic() < deadline, f"the run ended before writing {moment}"
            time.sleep(0.001)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    assert {k: v for k, v in snapshot(out).items() if k.startswith("t1/")} == before  # beside it: the dead staging
    from xmrec.folders import check

    with pytest.warns(UserWarning, match="interrupted write"):
        assert json.loads((out / "t1" / "summary.json").read_text()) == {"seed": 2022}
        check(out / "t1", "crossmarket output", "python -m xmrec crossmarket --target t1")
    assert not list(out.glob(".t1.*"))
