"""Training throughput (samples/s) and peak memory: one process, 2 DDP processes, CUDA with AMP.

Cases: GRU4Rec and SASRec, base and Ada, on ML-100K (L = 50, batch 256) and on the 10M-interaction
synthetic dataset at paper scale (L = 200, batch 1024, memory-mapped and streamed as ``fit``
streams it). Each measurement runs in a fresh process (``--worker``): ``xmrec/training/timing.py``
(loaded by its path, so that it runs the baseline commit's code too) builds the model as
``Trainer.fit`` does, trains a few warm-up steps, then times the measured steps over the next
rows of the training split. Settings compared on the same machine, in the same run:

- ``1 process``: one process, torch's default threads (the machine's cores);
- ``2 DDP (gloo)``: ``torchrun --nproc-per-node 2``, one thread each (the same cores);
- ``1 process, code before DDP``: the same single-process case with the commit before this
  change (a git worktree of ``--baseline-rev``): the ratio shows the single-process path did not
  get slower;
- ``CUDA + AMP``: when a GPU is present (bf16 where supported, else fp16 with the scaler), over
  ``CUDA_STEPS_FACTOR`` times as many measured steps (a GPU step is short), as far as the training
  split reaches (the table says how many samples were timed).

``--cuda-only`` measures ``1 process`` and ``CUDA + AMP`` alone and writes
``train_throughput_cuda.{md,json}``: the run for a lent GPU machine, which has no .git for the
baseline worktree and little time (``benchmarks/device_gpu.sh`` runs it there).

The datasets are prepared once into ``data/`` (``load_or_prepare``; the 10M one takes minutes). Their
word2vec tables are trained with ``WORD2VEC_WORKERS`` threads, so their values vary from run to run;
throughput does not depend on them. This measures speed, not model quality: no early stopping
here, by design.

    .venv/bin/python benchmarks/train_throughput.py          # about 30 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import fields
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BASELINE_REV = "ab02b4d"  # the last commit before distributed training and the memory-mapped store
DATASETS = {  # name -> (load_or_prepare arguments, batch size, warm-up steps, measured steps)
    "ml-100k": ({"spec": "ml-100k", "out": "data/bench-ml-100k"}, 256, 3, 40),
    "synthetic-10M L=200": (
        {
            "spec": "synthetic",
            "out": "data/bench-synthetic-10m-L200",
            "interactions": 10_000_000,
            "max_seq_len": 200,
            "original": False,
        },
        1024,
        2,
        8,
    ),
}
MODELS = [("GRU4Rec", "base"), ("GRU4Rec", "ada"), ("SASRec", "base"), ("SASRec", "ada")]
WORD2VEC_WORKERS = 8
CUDA_STEPS_FACTOR = 5


def read_store(folder: Path):
    """The dataset of ``folder`` (store format 2), memory-mapped, built with whichever xmrec is imported
    (the baseline's ``load`` reads only format 1; the dataclasses are the same)."""
    import numpy as np

    from xmrec.data.store import ProcessedDataset, Split

    meta = json.loads((folder / "meta.json").read_text())
    arrays = {n: np.load(folder / "arrays" / f"{n}.npy", mmap_mode="r") for n in meta["arrays"]}
    splits = {s: Split(**{f.name: arrays[f"{s}.{f.name}"] for f in fields(Split)}) for s in ("train", "valid", "test")}
    top = {f.name: arrays.get(f.name) for f in fields(ProcessedDataset) if f.name in arrays}
    keys = ("name", "n_users", "n_items", "n_cates")
    return ProcessedDataset(**{k: meta[k] for k in keys}, **top, **splits)


def load_timing():
    """``xmrec/training/timing.py`` of this tree, loaded by its path: it then trains with whichever ``xmrec``
    is importable (``PYTHONPATH``), also an older commit's, which has no such module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("xmrec_timing", ROOT / "xmrec" / "training" / "timing.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def worker(job: dict) -> dict:
    """One measurement in this process (under torchrun: this rank's part of it)."""
    import torch
    from peak_memory import peak_rss_kib

    import xmrec
    from xmrec.config import ModelConfig, TrainConfig

    if job["threads"]:
        torch.set_num_threads(job["threads"])
    ds = read_store(ROOT / job["folder"])
    batch, warm, steps = job["batch_size"], job["warmup"], job["steps"]
    train_cfg = TrainConfig(mode=job["mode"], batch_size=batch, device=job["device"], amp=job["amp"], seed=0)
    timing = load_timing()
    inputs = timing.tensors if job["baseline"] else streamed_inputs if job["streamed"] else resident_inputs
    measured = slice(warm * batch, (warm + steps) * batch)
    result = timing.time_epoch(ModelConfig(name=job["model"]), train_cfg, ds, slice(0, warm * batch), measured, inputs)
    device = result.device
    return {
        "rank": int(os.environ.get("RANK", 0)),
        "samples": result.samples,
        "samples_per_s": result.samples / result.seconds,
        "rss_peak_gb": peak_rss_kib() / 1e6,
        "cuda_peak_gb": torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else None,
        "xmrec": str(Path(xmrec.__file__).parent),
    }


def streamed_inputs(split, device):
    """Training rows read from the memory-mapped arrays batch by batch, as ``fit`` streams a large split."""
    from xmrec.training.batches import StreamedSplit

    return StreamedSplit(split)


def resident_inputs(split, device):
    """Training rows as ``fit`` holds a small split: tensors, moved to the GPU when training there."""
    from xmrec.training.batches import SplitTensors, model_inputs

    data = model_inputs(split)
    return data.to(device) if device.type == "cuda" and isinstance(data, SplitTensors) else data


def run(job: dict, procs: int = 1, code: Path = ROOT) -> dict:
    """``job`` in fresh processes (torchrun for ``procs`` > 1) with the xmrec package of ``code``."""
    with tempfile.TemporaryDirectory(prefix="xmrec-worker-") as out:
        script = [str(Path(__file__).resolve()), "--worker", json.dumps({**job, "out": out})]
        if procs > 1:
            launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}"]
            cmd = launcher + script
        else:
            cmd = [sys.executable, *script]
        env = {**os.environ, "PYTHONPATH": str(code)}
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{job} on {procs} process(es) failed:\n{done.stderr[-3000:]}")
        ranks = [json.loads(p.read_text()) for p in sorted(Path(out).glob("rank*.json"))]
    if any(Path(r["xmrec"]) != code / "xmrec" for r in ranks):
        raise RuntimeError(f"the worker imported {ranks[0]['xmrec']}, not {code / 'xmrec'}")
    return {
        "samples": next(r["samples"] for r in ranks if r["rank"] == 0),
        "samples_per_s": next(r["samples_per_s"] for r in ranks if r["rank"] == 0),
        "rss_peak_gb": max(r["rss_peak_gb"] for r in ranks),
        "cuda_peak_gb": ranks[0]["cuda_peak_gb"],
    }


def prepare() -> None:
    from xmrec.config import EmbeddingConfig
    from xmrec.data.pipeline import load_or_prepare

    emb_cfg = EmbeddingConfig(workers=WORD2VEC_WORKERS)
    for name, (kwargs, *_) in DATASETS.items():
        start = time.perf_counter()
        load_or_prepare(**{**kwargs, "out": ROOT / kwargs["out"]}, emb_cfg=emb_cfg, progress=True)
        print(f"{name}: ready in {time.perf_counter() - start:.0f} s", flush=True)


def settings(cuda: bool, cuda_only: bool, steps: int) -> list[tuple[str, int, dict, bool]]:
    """(label, processes, job changes, baseline code) of every setting measured."""
    rows = [("1 process", 1, {}, False)]
    if not cuda_only:
        rows.append(("1 process, code before DDP", 1, {"baseline": True}, True))
        rows.append(("2 DDP processes (gloo)", 2, {"threads": 1}, False))
    if cuda:
        rows.append(
            ("CUDA + AMP, 1 process", 1, {"device": "cuda", "amp": True, "steps": CUDA_STEPS_FACTOR * steps}, False)
        )
    return rows


def measure(baseline_code: Path | None, cuda: bool, cuda_only: bool = False) -> list[dict]:
    rows = []
    for name, (kwargs, batch, warm, steps) in DATASETS.items():
        for model, mode in MODELS:
            job = {
                "folder": kwargs["out"],
                "model": model,
                "mode": mode,
                "batch_size": batch,
                "warmup": warm,
                "steps": steps,
                "device": "cpu",
                "amp": False,
                "threads": None,
                "baseline": False,
                "streamed": name != "ml-100k",
            }
            for label, procs, changes, old in settings(cuda, cuda_only, steps):
                result = run({**job, **changes}, procs, baseline_code if old else ROOT)
                rows.append({"dataset": name, "model": model, "mode": mode, "setting": label, **result})
                print(f"{name} {model} {mode} {label}: {result['samples_per_s']:,.0f} samples/s", flush=True)
    return rows


def machine() -> str:
    import torch

    gpu = "no GPU"
    if torch.cuda.is_available():
        amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16 + scaler"
        gpu = f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda}, AMP {amp})"
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB memory, {gpu}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads by default"
    )


def report(rows: list[dict], command: str) -> str:
    lines = [
        "# Training throughput: one process, 2 DDP processes, CUDA + AMP",
        "",
        f"`{command}`. Machine: {machine()}.",
        "",
        "Samples (candidate lists) per second over the measured training steps, after warm-up; peak resident "
        "memory of the largest process (and CUDA memory when on a GPU). Ratios against `1 process` of the same "
        "case, measured in the same run.",
        "",
        "| dataset | model | setting | samples timed | samples/s | ratio | peak RSS GB | CUDA peak GB |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        base = next(
            b["samples_per_s"]
            for b in rows
            if (b["dataset"], b["model"], b["mode"], b["setting"]) == (r["dataset"], r["model"], r["mode"], "1 process")
        )
        cuda = f"{r['cuda_peak_gb']:.2f}" if r["cuda_peak_gb"] is not None else ""
        lines.append(
            f"| {r['dataset']} | {r['model']} {r['mode']} | {r['setting']} | {r['samples']:,} | "
            f"{r['samples_per_s']:,.0f} | {r['samples_per_s'] / base:.2f}x | {r['rss_peak_gb']:.2f} | {cuda} |"
        )
    return "\n".join(lines) + "\n"


def measure_against_baseline(rev: str, cuda: bool) -> list[dict]:
    """Every setting, the baseline's with the code of ``rev`` checked out in a temporary git worktree."""
    with tempfile.TemporaryDirectory(prefix="xmrec-baseline-") as tmp:
        old = Path(tmp) / "code"
        subprocess.run(["git", "worktree", "add", "--detach", str(old), rev], cwd=ROOT, check=True)
        try:
            return measure(old, cuda)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT, check=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--baseline-rev", default=BASELINE_REV, help=f"the code before (default {BASELINE_REV})")
    ap.add_argument("--cuda-only", action="store_true", help="only '1 process' and 'CUDA + AMP' (a lent GPU machine)")
    args = ap.parse_args(argv)
    if args.worker:  # each rank writes its own file: lines printed by two ranks can interleave
        job = json.loads(args.worker)
        result = worker(job)
        Path(job["out"], f"rank{result['rank']}.json").write_text(json.dumps(result))
        return 0
    import torch

    from xmrec.io import atomic_write_text
    from xmrec.provenance import as_markdown, provenance

    cuda = torch.cuda.is_available()
    if args.cuda_only and not cuda:
        print(
            "--cuda-only: no CUDA device here (torch.cuda.is_available() is False); nothing measured", file=sys.stderr
        )
        return 2
    prepare()
    rows = measure(None, cuda, cuda_only=True) if args.cuda_only else measure_against_baseline(args.baseline_rev, cuda)
    config = {"datasets": DATASETS, "models": MODELS, "word2vec_workers": WORD2VEC_WORKERS}
    config |= {"cuda_steps_factor": CUDA_STEPS_FACTOR} if cuda else {}
    config |= {} if args.cuda_only else {"baseline_rev": args.baseline_rev}
    record = provenance(config, "cuda and cpu" if cuda else "cpu")
    text = report(rows, record["command"]) + "\n" + as_markdown(record) + "\n"
    print(text)
    name = "train_throughput_cuda" if args.cuda_only else "train_throughput"
    atomic_write_text(RESULTS / f"{name}.md", text)
    atomic_write_text(RESULTS / f"{name}.json", json.dumps({"provenance": record, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
