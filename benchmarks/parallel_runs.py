"""Wall time of a notebook grid trained one run at a time vs side by side in worker processes.

The grid is notebook 04's GRU4Rec half at the teaching configuration (ML-100K, 6,000 training
lists, L 50, batch 128, Adam 3e-3, cap 40 epochs, patience 3): base and Ada-Ranker for two seeds,
every run ending by early stopping. Baseline, in the same run: ``Experiment(workers=1)`` with all
of torch's threads; against it ``workers=2`` (one thread per process). Each mode trains into a
fresh runs folder, so nothing is reused. The test metrics of the two modes are compared too (a
1-thread and a 2-thread run may differ in the last float digits, and so stop at another epoch).

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

from xmrec import experiments as xp
from xmrec.config import TrainConfig, data_dir, resolve_device
from xmrec.io import atomic_write_text
from xmrec.provenance import as_markdown, provenance

RESULTS = Path(__file__).resolve().parent / "results"


def train_grid(workers: int, threads: int, args) -> dict:
    """Train the grid into a fresh folder; wall seconds, epochs and test metrics per run."""
    torch.set_num_threads(threads)
    train = TrainConfig(batch_size=128, lr=3e-3, epochs=args.epochs, patience=args.patience)
    with tempfile.TemporaryDirectory(prefix="xmrec-parallel-") as runs:
        exp = xp.Experiment(
            "ml-100k",
            max_seq_len=50,
            train=train,
            max_train_lists=6000,
            runs_dir=runs,
            data_out=data_dir() / "processed",
            progress=False,
            workers=workers,
        )
        exp.dataset()  # prepared (or read from the cache) before the clock starts
        start = time.perf_counter()
        exp.run_grid([xp.variant(args.model, "base"), xp.variant(args.model, "ada")], seeds=args.seeds)
        wall = time.perf_counter() - start
    table = exp.table()
    return {
        "workers": workers,
        "threads_per_process": max(1, threads // workers) if workers > 1 else threads,
        "wall_seconds": round(wall, 1),
        "epochs": int(table["epochs_run"].sum()),
        "stopped_early": bool((table["epochs_run"] - table["best_epoch"] >= args.patience).all()),
        "runs": table[["label", "seed", "gauc", "best_epoch", "epochs_run"]].to_dict(orient="records"),
    }


def report(one: dict, two: dict, args) -> str:
    ratio = two["wall_seconds"] / one["wall_seconds"]
    rows = [
        f"| {m['workers']} | {m['threads_per_process']} | {m['wall_seconds']:.0f} | {m['epochs']} | "
        f"{m['wall_seconds'] / m['epochs']:.2f} | {'yes' if m['stopped_early'] else 'NO'} |"
        for m in (one, two)
    ]
    gaps = [abs(a["gauc"] - b["gauc"]) for a, b in zip(one["runs"], two["runs"])]
    return "\n".join(
        [
            "# Parallel runs: one grid trained one run at a time vs in worker processes",
            "",
            f"`{' '.join(sys.argv)}` on {os.cpu_count()} cores, {resolve_device('auto')}; "
            f"{args.model} base + ada, seeds {args.seeds}, ML-100K teaching config (6,000 lists, L 50, batch 128, "
            f"Adam 3e-3, cap {args.epochs}, patience {args.patience}).",
            "",
            "| workers | threads each | wall s | epochs trained | wall s per epoch | all early-stopped |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            f"**workers=2 / workers=1 wall time: {ratio:.2f}x** (per epoch: "
            f"{(two['wall_seconds'] / two['epochs']) / (one['wall_seconds'] / one['epochs']):.2f}x). "
            f"Largest test-GAUC gap between the modes, run by run: {max(gaps):.4f}.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="GRU4Rec", help="base model of the grid (default GRU4Rec)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[2022, 2023], help="training seeds (default 2022 2023)")
    parser.add_argument("--epochs", type=int, default=40, help="epoch cap (default 40)")
    parser.add_argument("--patience", type=int, default=3, help="early-stopping patience (default 3)")
    args = parser.parse_args()
    threads = torch.get_num_threads()
    one, two = train_grid(1, threads, args), train_grid(2, threads, args)
    text = report(one, two, args)
    print(text)
    if not (one["stopped_early"] and two["stopped_early"]):
        print("not recorded: some run reached the epoch cap (a benchmark ends by early stopping)")
        return
    record = {
        "provenance": provenance(vars(args), str(resolve_device("auto"))),
        "one_process": one,
        "two_workers": two,
        "ratio": two["wall_seconds"] / one["wall_seconds"],
    }
    atomic_write_text(RESULTS / "parallel_runs.json", json.dumps(record, indent=2))
    atomic_write_text(RESULTS / "parallel_runs.md", text + "\n" + as_markdown(record["provenance"]))


if __name__ == "__main__":
    main()
