"""Data-parallel training under torchrun (2 CPU processes, gloo) against a single process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_models import random_dataset

from xmrec.data.store import save
from xmrec.training import evaluate_checkpoint, read_checkpoint
from xmrec.training.distributed import World, eval_shard, shard

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--model", "GRU4Rec", "--batch-size", "64", "--device", "cpu", "--seed", "7", "--set", "model.dropout=0"]
LOSS_TOL = 1e-5  # relative: the ranks' partial gradients are summed in another order than one process's


def train_cli(data: Path, out: Path, epochs: int) -> list[str]:
    """The ``-m xmrec train ...`` arguments every run of this module shares."""
    return ["-m", "xmrec", "train", "--data", str(data), "--out", str(out), "--epochs", str(epochs), *ARGS]


def train(data: Path, out: Path, epochs: int, procs: int) -> subprocess.CompletedProcess:
    """``python -m xmrec train`` in one process, or under torchrun on ``procs`` processes."""
    cli = train_cli(data, out, epochs)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}"]
    cmd = launcher + cli if procs > 1 else [sys.executable, *cli]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def history(run: Path) -> list[dict]:
    return json.loads((run / "history.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same 2-epoch training in one process and in two, and a run resumed across the two."""
    root = tmp_path_factory.mktemp("ddp")
    data = save(random_dataset(seed=1), root / "data")
    single, ddp, crossed = root / "single", root / "ddp", root / "crossed"
    train(data, single, 2, 1)
    printed = train(data, ddp, 2, 2).stdout
    train(data, crossed, 1, 1)  # one epoch in one process, the second under DDP: resume across
    train(data, crossed, 2, 2)
    return {"data": data, "single": single, "ddp": ddp, "crossed": crossed, "printed": printed}


def test_shards_are_disjoint_and_cover_every_batch_with_the_global_mean():
    order = torch.randperm(203, generator=torch.Generator().manual_seed(0))
    losses = torch.rand(203, dtype=torch.float64)
    for size in (2, 3):
        for lo in range(0, 203, 64):  # the last batch (11 rows) is short
            rows = order[lo : lo + 64]
            parts = [shard(rows, World(rank=r, size=size)) for r in range(size)]
            seen = torch.cat([p for p, w in parts if w > 0])
            assert sorted(seen.tolist()) == sorted(rows.tolist())  # disjoint and covering
            averaged = sum(w * losses[p].mean() for p, w in parts) / size  # what DDP's all-reduce averages
            assert torch.isclose(averaged, losses[rows].mean())
    idle, weight = shard(order[:1], World(rank=1, size=2))  # a rank left without rows still steps, at weight 0
    assert len(idle) == 1 and weight == 0.0
    blocks = [eval_shard(10, World(rank=r, size=3)) for r in range(3)]
    assert [np.arange(10)[b].tolist() for b in blocks] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_two_processes_train_like_one_and_write_once(runs):
    one, two = history(runs["single"]), history(runs["ddp"])
    assert len(one) == len(two) == 2
    assert two[0]["train_loss"] == pytest.approx(one[0]["train_loss"], rel=LOSS_TOL)
    assert two[-1]["gauc"] == pytest.approx(one[-1]["gauc"], abs=1e-6)
    metrics = [json.loads((runs[r] / "metrics.json").read_text()) for r in ("single", "ddp")]
    assert metrics[0]["world_size"] == 1 and metrics[1]["world_size"] == 2
    for key in ("gauc", "ndcg@10", "mrr"):
        assert metrics[1][key] == pytest.approx(metrics[0][key], abs=1e-6), key
    assert json.loads((runs["ddp"] / "config.json").read_text())["world_size"] == 2
    assert metrics[1]["provenance"]["config"]["world_size"] == 2
    lines = [ln for ln in runs["printed"].splitlines() if ln.startswith("{")]
    assert len(lines) == 1  # rank 0 alone prints (and writes) the result
    assert sorted(p.name for p in runs["ddp"].iterdir()) == sorted(p.name for p in runs["single"].iterdir())


def test_a_ddp_checkpoint_evaluates_identically_in_one_process(runs):
    payload = read_checkpoint(runs["ddp"] / "checkpoint.pt")
    assert not any(k.startswith("module.") for k in payload["model"])  # the unwrapped model's tensors
    again = evaluate_checkpoint(runs["ddp"] / "checkpoint.pt", runs["data"], split="test", device="cpu")
    written = json.loads((runs["ddp"] / "metrics.json").read_text())
    assert {k: again[k] for k in ("gauc", "auc", "mrr", "ndcg@10", "hit@10")} == {
        k: written[k] for k in ("gauc", "auc", "mrr", "ndcg@10", "hit@10")
    }


def test_a_single_process_run_resumes_under_ddp(runs):
    crossed, single = history(runs["crossed"]), history(runs["single"])
    assert len(crossed) == 2
    assert crossed[0]["train_loss"] == single[0]["train_loss"]  # the first epoch, from last.pt
    assert crossed[1]["train_loss"] == pytest.approx(single[1]["train_loss"], rel=LOSS_TOL)
    assert json.loads((runs["crossed"] / "config.json").read_text())["resumed_epochs"] == 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_through_the_c10d_rendezvous_train_like_two_local_processes(runs, tmp_path):
    """The README's two-machine command, both 'machines' on this one: each torchrun starts one process."""
    out = tmp_path / "two-nodes"
    cli = train_cli(runs["data"], out, 2)
    rendezvous = ["--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d", "--rdzv-id", "xmrec-test"]
    rendezvous += ["--rdzv-endpoint", f"127.0.0.1:{free_port()}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    nodes = [
        subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", *rendezvous, "--node-rank", str(rank), *cli],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    finished = [node.communicate(timeout=300) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], [err[-2000:] for _, err in finished]
    printed = [ln for text, _ in finished for ln in text.splitlines() if ln.startswith("{")]
    assert len(printed) == 1  # one node's rank 0 prints and writes
    metrics = json.loads((out / "metrics.json").read_text())
    local = json.loads((runs["ddp"] / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    for key in ("gauc", "ndcg@10", "mrr"):
        assert metrics[key] == pytest.approx(local[key], abs=1e-6), key
    assert history(out)[0]["train_loss"] == pytest.approx(history(runs["ddp"])[0]["train_loss"], rel=LOSS_TOL)
