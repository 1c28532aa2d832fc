"""benchmarks/train_throughput.py: which settings it measures, and --cuda-only on a machine without CUDA."""

import importlib.util
import subprocess
import sys

import pytest
import torch

from xmrec.config import project_root

SCRIPT = project_root() / "benchmarks" / "train_throughput.py"
spec = importlib.util.spec_from_file_location("train_throughput", SCRIPT)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_cuda_only_measures_one_cpu_process_against_cuda_with_longer_runs():
    full = bench.settings(cuda=True, cuda_only=False, steps=8)
    assert [label for label, *_ in full] == [
        "1 process",
        "1 process, code before DDP",
        "2 DDP processes (gloo)",
        "CUDA + AMP, 1 process",
    ]
    cuda_only = bench.settings(cuda=True, cuda_only=True, steps=8)
    assert [(label, procs, old) for label, procs, _, old in cuda_only] == [
        ("1 process", 1, False),
        ("CUDA + AMP, 1 process", 1, False),
    ]
    assert cuda_only[1][2] == {"device": "cuda", "amp": True, "steps": 8 * bench.CUDA_STEPS_FACTOR}
    assert [label for label, *_ in bench.settings(cuda=False, cuda_only=False, steps=8)] == [
        label for label, *_ in full[:3]
    ]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_only_without_cuda_refuses_and_writes_nothing():
    written = [bench.RESULTS / f"train_throughput_cuda.{ext}" for ext in ("md", "json")]
    before = {p: p.stat().st_mtime_ns for p in written if p.exists()}
    done = subprocess.run([sys.executable, str(SCRIPT), "--cuda-only"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "no CUDA device here" in done.stderr and "nothing measured" in done.stderr and done.stdout == ""
    assert {p: p.stat().st_mtime_ns for p in written if p.exists()} == before
