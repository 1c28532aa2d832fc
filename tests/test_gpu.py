"""The CUDA path: AMP, torch.compile, device-resident batches and a 1-process nccl DDP run.

Marked ``gpu``; skipped with the reason on machines without CUDA (CI, the 2-core workstation).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from test_models import DIM, random_dataset

from xmrec.config import ModelConfig, TrainConfig
from xmrec.data.store import save
from xmrec.training import SplitTensors, Trainer, model_inputs, score

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(), reason="needs a CUDA device (torch.cuda.is_available() is False)"
    ),
]
ROOT = Path(__file__).resolve().parents[1]
CUDA = TrainConfig(batch_size=64, epochs=2, patience=10, device="cuda", seed=7)


@pytest.fixture(scope="module")
def dataset():
    return random_dataset(seed=1)


@pytest.mark.parametrize("name", ["GRU4Rec", "SASRec"])
def test_amp_training_step_on_cuda(dataset, name):
    trainer = Trainer(ModelConfig(name=name, dim=DIM), replace(CUDA, amp=True, mode="ada"))
    history = trainer.fit(dataset)
    assert trainer.amp and trainer.device.type == "cuda"
    assert trainer.scaler.is_enabled() == (not torch.cuda.is_bf16_supported())  # fp16 needs the scaler, bf16 not
    assert all(torch.isfinite(torch.tensor(h["train_loss"])) for h in history)


def test_torch_compile_on_cuda_scores_like_eager(dataset):
    trainer = Trainer(ModelConfig(name="SASRec", dim=DIM), replace(CUDA, compile=True))
    trainer.fit(dataset)
    assert trainer.forward is not trainer.model  # the compiled module
    compiled = trainer.score(dataset.test)
    eager = score(trainer.model, dataset.test, seed=CUDA.seed)
    assert abs(compiled - eager).max() < 1e-3


def test_batches_stay_on_the_device_a_step_copies_only_its_index(dataset, monkeypatch):
    moved = []
    original = SplitTensors.to
    monkeypatch.setattr(SplitTensors, "to", lambda self, device: moved.append(device) or original(self, device))
    Trainer(ModelConfig(name="GRU4Rec", dim=DIM), CUDA).fit(dataset)
    assert [d.type for d in moved] == ["cuda", "cuda"]  # train and valid, once each
    resident = model_inputs(dataset.train).to(torch.device("cuda"))
    rows = torch.arange(10)
    batch = resident.batch(rows, torch.device("cuda"))
    assert all(t.is_cuda for t in (resident.user, resident.item_seq, resident.candidates))
    assert all(v.is_cuda for v in batch.values())


def test_one_process_nccl_ddp_run(dataset, tmp_path):
    data = save(dataset, tmp_path / "data")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=1", "-m", "xmrec"]
    cmd += ["train", "--model", "GRU4Rec", "--data", str(data), "--out", str(tmp_path / "run"), "--epochs", "2"]
    cmd += ["--device", "cuda", "--batch-size", "64"]
    done = subprocess.run(cmd, cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["backend"] == "nccl" and config["world_size"] == 1
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["world_size"] == 1
