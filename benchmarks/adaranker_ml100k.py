"""Ada-Ranker vs its base ranker on ML-100K: quality over seeds, and training speed.

Trains GRU4Rec and SASRec, each as a base ranker and as an Ada-Ranker trained end-to-end, with
several seeds under a preset of ``xmrec.overrides`` (``--preset``, default ``small-data``: 19
distribution-mixer negatives, histories of the last 50 items, batch 256, Adam 1e-3, patience 3,
at most 100 epochs; the shorthands ``--epochs``, ``--patience``, ``--batch-size``,
``--max-seq-len``, ``--device`` and ``--set SECTION.FIELD=VALUE`` come after it). Records test
GAUC / NDCG@10 / HR@10 / MRR (mean and std over seeds), epochs, seconds per epoch and samples per
second per run, and every run's per-epoch ``history``; appends a table to
``benchmarks/results/adaranker_ml100k.md`` and writes every run to ``...json``.

Every run is a ``RunSpec`` of the run layer (``xmrec.runs``), trained by an executor
(``--executor``, ``--jobs`` workers, ``--threads`` torch threads each) into the run store
``--runs`` (default ``<data dir>/runs``, shared with ``benchmarks/shift_matrix.py``, whose
matched mixer runs are these: a run either benchmark finished is read back, not retrained). The
dataset (seed 2022, or a prepared folder with ``--data``) is prepared once; the seeds vary the
model's initialisation, batch order, dropout and z draws.

Memory is not recorded: runs share the executor's worker processes, so no process's peak belongs
to one run (``benchmarks/train_throughput.py`` measures the peak memory of training). CPU time is
given for the whole session only: this process and its finished workers (dataset preparation
included; a Dask cluster's workers count when they are its local processes).

    .venv/bin/python benchmarks/adaranker_ml100k.py                  # 2 models x {base, ada} x 3 seeds
    .venv/bin/python benchmarks/adaranker_ml100k.py --seeds 1 --epochs 2   # a quick look
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from shift_matrix import (
    DATA_SEED,
    add_executor_options,
    add_protocol_options,
    mode_configs,
    protocol_line,
    run_spec,
    run_store,
)

from xmrec.io import atomic_write_text
from xmrec.provenance import as_markdown, provenance

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "adaranker_ml100k"
METRICS = ("gauc", "ndcg@10", "hit@10", "mrr")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["GRU4Rec", "SASRec"])
    p.add_argument("--seeds", nargs="+", type=int, default=[2022, 2023, 2024])
    p.add_argument("--ada-config", default="{}", help="JSON of ModelConfig fields for the Ada runs")
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="a prepared dataset folder, used as it is (default: ML-100K prepared by the preset's data. and sampler.)",
    )
    add_protocol_options(p)
    add_executor_options(p)
    p.add_argument("--out", type=Path, default=RESULTS, help="results path without suffix (.md is appended to)")
    return p.parse_args(argv)


def specs_of(args: argparse.Namespace) -> list:
    """Every run: models x {base, ada} x seeds, seed by seed."""
    from xmrec.runs import PreparedData

    ada_fields = json.loads(args.ada_config)
    data = PreparedData(str(args.data), DATA_SEED) if args.data else None
    return [
        run_spec(args, mode, seed, {"name": model, **(ada_fields if mode == "ada" else {})}, data=data)
        for seed in args.seeds
        for model in args.models
        for mode in ("base", "ada")
    ]


def row_of(record) -> dict:
    """One run (``xmrec.runs.RunRecord``) as a results row, with its history."""
    history, prov = record.history, record.provenance
    row = {
        "model": record.spec.model.name,
        "mode": record.spec.mode,
        "seed": record.spec.seed,
        **{k: v for k, v in record.metrics.items() if k != "world_size"},
        "best_epoch": record.best_epoch,
        "epochs_run": len(history),
        "s_per_epoch": record.summary["seconds_per_epoch"],
        "samples_per_s": sum(h["samples_per_s"] for h in history) / len(history),
        "device": prov["device"],
        "description": record.summary["description"],
        "reused": record.reused,
        "executor": prov["executor"],
        "worker": prov["worker"],
        "commit": prov["commit"],
        "dirty": prov["dirty"],
        "run": record.spec.name,
        "history": history,
    }
    print(
        f"  {row['model']:8s} {row['mode']:4s} seed {row['seed']}: gauc {row['gauc']:.4f} "
        f"ndcg@10 {row['ndcg@10']:.4f} best epoch {row['best_epoch']}/{row['epochs_run']} "
        f"{row['s_per_epoch']:.1f} s/epoch" + (" (read back from the store)" if record.reused else ""),
        flush=True,
    )
    return row


def table(records: list[dict]) -> tuple[str, list[str]]:
    """Markdown rows per (model, mode), and the paired Ada - base GAUC difference per model."""
    import numpy as np
    import pandas as pd

    df = pd.DataFrame(records)
    head = (
        "| model | mode | test GAUC | NDCG@10 | HR@10 | MRR | best epoch | epochs run | s/epoch | samples/s "
        "|\n|---|---|---|---|---|---|---|---|---|---|"
    )
    rows = [head]
    for (model, mode), g in df.groupby(["model", "mode"], sort=False):
        cells = [f"{g[m].mean():.4f} ± {g[m].std(ddof=1) if len(g) > 1 else 0:.4f}" for m in METRICS]
        rows.append(
            f"| {model} | {mode} | " + " | ".join(cells) + f" | {g.best_epoch.mean():.1f} | "
            f"{g.epochs_run.mean():.1f} | {g.s_per_epoch.mean():.1f} | {g.samples_per_s.mean():.0f} |"
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


def cpu_seconds() -> float:
    """CPU seconds of this process and of its finished child processes (the executor's workers)."""
    return sum(
        usage.ru_utime + usage.ru_stime
        for usage in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    )


def report(args, rows: list[dict], wall: float, cpu: float, command: str) -> tuple[str, dict]:
    """The markdown section of this session, and its provenance record."""
    import torch

    table_rows, verdicts = table(rows)
    devices = [r["device"] for r in rows]
    device = ", ".join(sorted(set(devices)))
    trained = sum(not r["reused"] for r in rows)
    text = (
        f"\n## {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC — {device}\n\n"
        f"`{command.strip()}`  \n"
        + protocol_line(mode_configs(args), devices)
        + f"\nDataset seed {DATA_SEED}{f', prepared folder {args.data}' if args.data else ''}; seeds {args.seeds}; "
        f"preset {args.preset}, --set {args.set}; Ada config {args.ada_config}.  \n"
        f"Machine: {platform.machine()}, {platform.processor() or platform.system()}, torch {torch.__version__}, "
        f"executor {args.executor}, {args.jobs} runs at once x {args.threads} thread(s); {trained} of {len(rows)} runs "
        f"trained in this session (the rest read back from the run store); session wall {wall / 60:.1f} min, CPU "
        f"{cpu / 60:.1f} min (this process and its finished workers).\n\n{table_rows}\n\n" + "\n".join(verdicts) + "\n"
    )
    record = provenance({k: str(v) for k, v in vars(args).items()}, device, command)
    return text + "\n" + as_markdown(record), record


def main(argv=None) -> int:
    from xmrec.executors import make_executor

    args = parse_args(argv)
    specs, store = specs_of(args), run_store(args)
    command = "python benchmarks/adaranker_ml100k.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    print(f"{len(specs)} runs, {sum(store.done(s) for s in specs)} in the store {store.root}", flush=True)
    start, cpu = time.perf_counter(), cpu_seconds()
    executor = make_executor(args.executor, args.jobs, threads=args.threads)
    records = executor.run(specs, store, command=command)
    wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    rows = [row_of(r) for r in records]
    text, record = report(args, rows, wall, cpu, command)
    print(text)
    md = args.out.with_suffix(".md")
    before = (
        md.read_text()
        if md.exists()
        else ("# Ada-Ranker vs base on ML-100K\n\nWritten by `benchmarks/adaranker_ml100k.py`; newest last.\n")
    )
    atomic_write_text(md, before + text)
    atomic_write_text(args.out.with_suffix(".json"), json.dumps({"provenance": record, "runs": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
