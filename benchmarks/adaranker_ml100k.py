"""Ada-Ranker vs its base ranker on ML-100K: quality over seeds, and training speed.

Trains GRU4Rec and SASRec, each as a base ranker and as an Ada-Ranker trained end-to-end, with
several seeds on the default ML-100K protocol (19 distribution-mixer negatives, histories of the
last 50 items). Records test GAUC / NDCG@10 / HR@10 / MRR (mean and std over seeds), epochs,
seconds per epoch, samples per second, CPU seconds and peak memory per run; appends a table to
``benchmarks/results/adaranker_ml100k.md`` and writes every run to ``...json``.

Each run is a child process (its peak memory is its own); ``--jobs`` runs that many at once,
each with ``--threads`` torch threads. The dataset is prepared once (seed 2022) and reused; the
seeds vary the model's initialisation, batch order, dropout and z draws.

    .venv/bin/python benchmarks/adaranker_ml100k.py                  # 2 models x {base, ada} x 3 seeds
    .venv/bin/python benchmarks/adaranker_ml100k.py --seeds 1 --epochs 2   # a quick look
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

from xmrec.io import atomic_write_text
from xmrec.provenance import as_markdown, provenance

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "adaranker_ml100k"
METRICS = ("gauc", "ndcg@10", "hit@10", "mrr")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["GRU4Rec", "SASRec"])
    p.add_argument("--seeds", nargs="+", type=int, default=[2022, 2023, 2024])
    p.add_argument(
        "--epochs", type=int, default=100, help="upper bound; early stopping ends sooner (faithful Ada needs ~45)"
    )
    p.add_argument("--patience", type=int, default=3, help="epochs without a better valid GAUC")
    p.add_argument("--batch-size", type=int, default=256, help="small data: 256 (the paper's 1024 is for ML-10M)")
    p.add_argument("--ada-config", default="{}", help="JSON of ModelConfig fields for the Ada runs")
    p.add_argument("--max-seq-len", type=int, default=50)
    p.add_argument("--data", type=Path, default=None, help="prepared dataset folder (default: data dir cache)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--jobs", type=int, default=2, help="runs at once (child processes)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--out", type=Path, default=RESULTS, help="results path without suffix (.md is appended to)")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one job given as JSON
    return p.parse_args(argv)


def run_one(job: dict) -> dict:
    """Train and test one (model, mode, seed) in this process; the record of the run."""
    import torch
    from peak_memory import peak_rss_kib

    from xmrec.config import ModelConfig, TrainConfig
    from xmrec.data.store import load
    from xmrec.training import Trainer

    torch.set_num_threads(job["threads"])
    ds = load(job["data"])
    model_cfg = ModelConfig(name=job["model"], **(job["ada_config"] if job["mode"] == "ada" else {}))
    train_cfg = TrainConfig(
        mode=job["mode"],
        batch_size=job["batch_size"],
        epochs=job["epochs"],
        patience=job["patience"],
        seed=job["seed"],
        device=job["device"],
    )
    wall, cpu = time.perf_counter(), time.process_time()
    trainer = Trainer(model_cfg, train_cfg, progress=False)
    history = trainer.fit(ds)
    test = trainer.evaluate(ds.test)
    cuda = trainer.device.type == "cuda"
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else peak_rss_kib() / 1024
    return {
        **{k: job[k] for k in ("model", "mode", "seed")},
        **test,
        "best_epoch": trainer.best_epoch,
        "epochs_run": len(history),
        "s_per_epoch": sum(h["seconds"] for h in history) / len(history),
        "samples_per_s": sum(h["samples_per_s"] for h in history) / len(history),
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
        "peak_mb": peak,
        "device": str(trainer.device),
        "description": trainer.model.describe(),
    }


def spawn(job: dict) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", json.dumps(job)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise RuntimeError(f"run {job['model']} {job['mode']} seed {job['seed']} failed:\n{done.stderr[-3000:]}")
    record = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"  {record['model']:8s} {record['mode']:4s} seed {record['seed']}: gauc {record['gauc']:.4f} "
        f"ndcg@10 {record['ndcg@10']:.4f} best epoch {record['best_epoch']}/{record['epochs_run']} "
        f"{record['s_per_epoch']:.1f} s/epoch",
        flush=True,
    )
    return record


def prepare(args) -> Path:
    from xmrec.config import data_dir
    from xmrec.data.pipeline import load_or_prepare

    folder = args.data or data_dir() / "processed" / f"ml-100k-L{args.max_seq_len}-s2022"
    load_or_prepare("ml-100k", folder, seed=2022, max_seq_len=args.max_seq_len, progress=True)
    return folder


def table(records: list[dict]) -> tuple[str, list[str]]:
    """Markdown rows per (model, mode), and the paired Ada - base GAUC difference per model."""
    import numpy as np
    import pandas as pd

    df = pd.DataFrame(records)
    head = (
        "| model | mode | test GAUC | NDCG@10 | HR@10 | MRR | best epoch | epochs run | s/epoch | samples/s "
        "| CPU s/run | peak MB |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    rows = [head]
    for (model, mode), g in df.groupby(["model", "mode"], sort=False):
        cells = [f"{g[m].mean():.4f} ± {g[m].std(ddof=1) if len(g) > 1 else 0:.4f}" for m in METRICS]
        rows.append(
            f"| {model} | {mode} | " + " | ".join(cells) + f" | {g.best_epoch.mean():.1f} | "
            f"{g.epochs_run.mean():.1f} | {g.s_per_epoch.mean():.1f} | {g.samples_per_s.mean():.0f} | "
            f"{g.cpu_s.mean():.0f} | {g.peak_mb.max():.0f} |"
        )
    verdicts = []
    for model, g in df.groupby("model", sort=False):
        pivot = g.pivot(index="seed", columns="mode", values="gauc")
        if {"base", "ada"} <= set(pivot.columns):
            diff = (pivot["ada"] - pivot["base"]).dropna()
            verdicts.append(
                f"- {model}: Ada - base test GAUC = {diff.mean() * 100:+.2f} points "
                f"(± {np.std(diff, ddof=1) * 100 if len(diff) > 1 else 0:.2f} over seeds; "
                f"Ada ahead in {(diff > 0).sum()}/{len(diff)} seeds)"
            )
    return "\n".join(rows), verdicts


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.one:
        print(json.dumps(run_one(json.loads(args.one))))
        return 0
    data = prepare(args)
    jobs = [
        {
            "model": m,
            "mode": mode,
            "seed": s,
            "data": str(data),
            "epochs": args.epochs,
            "patience": args.patience,
            "batch_size": args.batch_size,
            "device": args.device,
            "threads": args.threads,
            "ada_config": json.loads(args.ada_config),
        }
        for s in args.seeds
        for m in args.models
        for mode in ("base", "ada")
    ]
    print(f"{len(jobs)} runs, {args.jobs} at a time", flush=True)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        records = list(pool.map(spawn, jobs))
    wall = time.perf_counter() - start
    rows, verdicts = table(records)
    import torch

    command = "python benchmarks/adaranker_ml100k.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    text = (
        f"\n## {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC — {records[0]['device']}\n\n"
        f"`{command.strip()}`  \n"
        f"ML-100K, L = {args.max_seq_len}, 19 mixer negatives, dataset seed 2022; seeds {args.seeds}; "
        f"batch {args.batch_size}, Adam lr 1e-3, early stopping on valid GAUC with patience {args.patience} "
        f"(at most {args.epochs} epochs), best epoch restored; Ada config {args.ada_config}.  \n"
        f"Machine: {platform.machine()}, {platform.processor() or platform.system()}, torch {torch.__version__}, "
        f"{args.jobs} runs at once x {args.threads} thread(s); total wall {wall / 60:.1f} min, "
        f"total CPU {sum(r['cpu_s'] for r in records) / 60:.1f} min.\n\n{rows}\n\n" + "\n".join(verdicts) + "\n"
    )
    record = provenance({k: str(v) for k, v in vars(args).items()}, records[0]["device"], command)
    text += "\n" + as_markdown(record)
    print(text)
    md = args.out.with_suffix(".md")
    before = (
        md.read_text()
        if md.exists()
        else ("# Ada-Ranker vs base on ML-100K\n\nWritten by `benchmarks/adaranker_ml100k.py`; newest last.\n")
    )
    atomic_write_text(md, before + text)
    atomic_write_text(args.out.with_suffix(".json"), json.dumps({"provenance": record, "runs": records}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
