"""Wall time of one grid trained by each executor: one run at a time here vs side by side in worker processes.

The grid is notebook 04's GRU4Rec half under the ``teaching`` preset (ML-100K, 6,000 training
lists, L 50, batch 128, Adam 3e-3, cap 40 epochs, patience 3; ``--preset``, ``--set`` and the
shorthands ``--epochs`` etc. change it): base and Ada-Ranker for two seeds, every run ending by
early stopping. Baseline, in the same run: the ``inprocess`` executor, one run after another with
all of torch's threads; against it each of ``--executors`` (default ``processes`` and ``dask``, a
``LocalCluster``) with two workers of one thread each (``xmrec.executors``).
Each executor trains into a fresh temporary run store, so nothing is reused; the dataset is
prepared (or read from the cache) before the clocks start. The test metrics are compared run by
run too (a 1-thread and a 2-thread run may differ in the last float digits, and so stop at another
epoch).

    .venv/bin/python benchmarks/parallel_runs.py             # writes results/parallel_runs.{md,json}
    .venv/bin/python benchmarks/parallel_runs.py --seeds 2022 --epochs 3   # a quick look (capped: not recorded)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from shift_matrix import add_protocol_options, mode_configs, protocol_line, run_spec

from xmrec.config import data_dir
from xmrec.io import atomic_write_text
from xmrec.provenance import as_markdown, provenance

RESULTS = Path(__file__).resolve().parent / "results"
BASELINE = "inprocess"  # one worker, all of torch's threads
WORKERS = 2  # of each compared executor, one thread each


def train_grid(name: str, workers: int, threads: int | None, specs: list) -> dict:
    """Train ``specs`` with executor ``name`` into a fresh store; wall seconds, epochs and test metrics per run."""
    from xmrec.executors import make_executor
    from xmrec.runs import RunStore

    with tempfile.TemporaryDirectory(prefix="xmrec-parallel-") as runs:
        store = RunStore(runs, data_cache=data_dir() / "processed")
        start = time.perf_counter()
        records = make_executor(name, workers, threads=threads).run(specs, store, progress=False)
        wall = time.perf_counter() - start
    return {
        "executor": name,
        "workers": workers,
        "threads_per_process": threads or torch.get_num_threads(),
        "device": ", ".join(sorted({r.provenance["device"] for r in records})),
        "wall_seconds": round(wall, 1),
        "epochs": sum(len(r.history) for r in records),
        "stopped_early": all(len(r.history) - r.best_epoch >= r.spec.train.patience for r in records),
        "runs": [
            {
                "label": r.spec.label,
                "seed": r.spec.seed,
                "gauc": r.metrics["gauc"],
                "best_epoch": r.best_epoch,
                "epochs_run": len(r.history),
                "worker": r.provenance["worker"],
            }
            for r in records
        ],
    }


def report(one: dict, others: dict[str, dict], args) -> str:
    """The markdown table, each executor's wall time against the baseline's, and the largest metric gap."""
    rows = [
        f"| {m['executor']} | {m['workers']} | {m['threads_per_process']} | {m['wall_seconds']:.0f} | {m['epochs']} | "
        f"{m['wall_seconds'] / m['epochs']:.2f} | {'yes' if m['stopped_early'] else 'NO'} |"
        for m in (one, *others.values())
    ]
    ratios = []
    for name, m in others.items():
        per_epoch = (m["wall_seconds"] / m["epochs"]) / (one["wall_seconds"] / one["epochs"])
        gap = max(abs(a["gauc"] - b["gauc"]) for a, b in zip(one["runs"], m["runs"]))
        ratio = m["wall_seconds"] / one["wall_seconds"]
        ratios.append(
            f"**{name} ({m['workers']} workers) / {BASELINE} wall time: {ratio:.2f}x** (per epoch: {per_epoch:.2f}x); "
            f"largest test-GAUC gap to {BASELINE}, run by run: {gap:.4f}.  "
        )
    return "\n".join(
        [
            "# Parallel runs: one grid trained one run at a time vs in worker processes",
            "",
            f"`{' '.join(sys.argv)}` on {os.cpu_count()} cores; {args.model} base + ada, seeds {args.seeds}, preset "
            f"{args.preset}: " + protocol_line(mode_configs(args), [one["device"]]),
            "",
            "| executor | workers | threads each | wall s | epochs trained | wall s per epoch | all early-stopped |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            *ratios,
            "",
        ]
    )


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="GRU4Rec", help="base model of the grid (default GRU4Rec)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[2022, 2023], help="training seeds (default 2022 2023)")
    parser.add_argument(
        "--executors", nargs="+", default=["processes", "dask"], choices=["processes", "dask"], help="against inprocess"
    )
    add_protocol_options(parser, preset="teaching")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    specs = [run_spec(args, mode, seed, {"name": args.model}) for seed in args.seeds for mode in ("base", "ada")]
    specs[0].data.load(data_dir() / "processed", progress=True)  # prepared before the clocks start
    one = train_grid(BASELINE, 1, None, specs)
    others = {name: train_grid(name, WORKERS, 1, specs) for name in args.executors}
    text = report(one, others, args)
    print(text)
    if not all(m["stopped_early"] for m in (one, *others.values())):
        print("not recorded: some run reached the epoch cap (a benchmark ends by early stopping)")
        return
    record = {
        "provenance": provenance(vars(args), one["device"]),
        "one_process": one,
        "two_workers": others,
        "ratio": {name: m["wall_seconds"] / one["wall_seconds"] for name, m in others.items()},
    }
    atomic_write_text(RESULTS / "parallel_runs.json", json.dumps(record, indent=2))
    atomic_write_text(RESULTS / "parallel_runs.md", text + "\n" + as_markdown(record["provenance"]))


if __name__ == "__main__":
    main()
