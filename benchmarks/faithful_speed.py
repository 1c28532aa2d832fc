"""Per-epoch training time of every model, base and Ada: the faithful models against the kit's previous ones.

One invocation measures, on ML-100K (L = 50, batch 256, one CPU thread, seed 0), one full training
epoch (16,069 lists, after a warm-up of ``WARMUP_STEPS`` steps) of each model and mode in a fresh
process, one configuration at a time, with the code of:

- ``faithful``: this tree, the ``ModelConfig`` defaults (the authors' function, issue 20);
- ``previous``: the kit before the faithful models (``--previous-rev``, a git worktree), its defaults;
- ``regression base``: for GRU4Rec base only, the commit ``--regression-rev`` (9cef56a), against
  which the previous code's GRU4Rec base step was 1.16x slower; and this tree with
  ``right_align_history`` and ``mask_padding`` (the function those commits compute, but for the
  authors' embedding dropout).

Runs alternate between the settings (``--repeats`` rounds, the order reversed every round), so
a slow spell of the machine falls on all of them; the table gives each setting's median and the
ratio to the faithful code measured in the same run. Speed only: nothing here is trained to a
result. The worker times the epoch with ``xmrec/training/timing.py`` of this tree, loaded by its path,
so that the same timing code runs each tree's ``xmrec``.

    .venv/bin/python benchmarks/faithful_speed.py            # about 30 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PREVIOUS_REV = "116ce14"  # the last commit before the faithful models
REGRESSION_REV = "9cef56a"  # the commit the issue timed GRU4Rec base against
FOLDER = "data/bench-ml-100k-L50"
BATCH, WARMUP_STEPS = 256, 5
MODELS = ("MF", "GRU4Rec", "SASRec", "NARM", "NextItNet", "SRGNN", "SHAN")
OLD_FUNCTION = {"right_align_history": True, "mask_padding": True}  # GRU4Rec as the previous kit computed it


def worker(job: dict) -> dict:
    """One full training epoch in this process, with whichever xmrec ``PYTHONPATH`` names."""
    import torch
    from train_throughput import load_timing, read_store

    import xmrec
    from xmrec.config import ModelConfig, TrainConfig

    torch.set_num_threads(1)
    ds = read_store(ROOT / job["folder"])
    cfg = TrainConfig(mode=job["mode"], batch_size=BATCH, device="cpu", seed=0)
    model_cfg = ModelConfig(name=job["model"], **job["fields"])
    timed = load_timing().time_epoch(model_cfg, cfg, ds, slice(0, WARMUP_STEPS * BATCH), slice(None))
    return {
        "seconds": timed.seconds,
        "loss": timed.loss,
        "lists": len(ds.train),
        "xmrec": str(Path(xmrec.__file__).parent),
    }


def run(job: dict, code: Path) -> dict:
    """``job`` in a fresh process with the xmrec package of ``code``."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(job)]
    env = {**os.environ, "PYTHONPATH": str(code)}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{job} with {code} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if Path(result["xmrec"]) != code / "xmrec":
        raise RuntimeError(f"the worker imported {result['xmrec']}, not {code / 'xmrec'}")
    return result


def settings(model: str, mode: str, trees: dict[str, Path]) -> list[tuple[str, Path, dict]]:
    """(label, code, ModelConfig fields) of each configuration timed for one case."""
    rows = [("faithful", ROOT, {}), ("previous", trees["previous"], {})]
    if (model, mode) == ("GRU4Rec", "base"):
        rows += [("regression base", trees["regression"], {}), ("faithful code, previous function", ROOT, OLD_FUNCTION)]
    return rows


def measure(trees: dict[str, Path], repeats: int, models=MODELS) -> list[dict]:
    rows = []
    for model in models:
        for mode in ("base", "ada"):
            cases = settings(model, mode, trees)
            for rep in range(repeats):
                for label, code, fields in cases if rep % 2 == 0 else cases[::-1]:
                    job = {"folder": FOLDER, "model": model, "mode": mode, "fields": fields}
                    result = run(job, code)
                    rows.append({"model": model, "mode": mode, "setting": label, "round": rep, **result})
                    print(f"{model} {mode} {label} round {rep}: {result['seconds']:.2f} s/epoch", flush=True)
    return rows


def summary(rows: list[dict]) -> list[dict]:
    """Median seconds per setting, and the ratio to the faithful code's median of the same case."""
    out = []
    keys = dict.fromkeys((r["model"], r["mode"], r["setting"]) for r in rows)
    for model, mode, setting in keys:
        mine = [r["seconds"] for r in rows if (r["model"], r["mode"], r["setting"]) == (model, mode, setting)]
        ref = [r["seconds"] for r in rows if (r["model"], r["mode"], r["setting"]) == (model, mode, "faithful")]
        med = statistics.median(mine)
        out.append(
            {
                "model": model,
                "mode": mode,
                "setting": setting,
                "median_s": med,
                "runs_s": mine,
                "ratio_to_faithful": med / statistics.median(ref),
            }
        )
    return out


def report(table: list[dict], command: str, revs: dict[str, str]) -> str:
    lines = [
        "# Per-epoch training time: the faithful models against the kit's previous ones",
        "",
        f"`{command}`. ML-100K, L = 50, batch {BATCH}, one CPU thread, one full epoch after {WARMUP_STEPS} "
        f"warm-up steps, each run in a fresh process, settings alternating. `previous` = the code at "
        f"{revs['previous']}, `regression base` = the code at {revs['regression']}.",
        "",
        "| model | mode | setting | median s / epoch | runs | time / faithful |",
        "|---|---|---|---:|---|---:|",
    ]
    for r in table:
        runs = ", ".join(f"{s:.2f}" for s in r["runs_s"])
        lines.append(
            f"| {r['model']} | {r['mode']} | {r['setting']} | {r['median_s']:.2f} | {runs} | {r['ratio_to_faithful']:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def worktree(rev: str, tmp: Path) -> Path:
    path = tmp / rev
    subprocess.run(["git", "worktree", "add", "--detach", str(path), rev], cwd=ROOT, check=True, capture_output=True)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--previous-rev", default=PREVIOUS_REV, help=f"the kit before (default {PREVIOUS_REV})")
    ap.add_argument(
        "--regression-rev", default=REGRESSION_REV, help=f"GRU4Rec base reference (default {REGRESSION_REV})"
    )
    ap.add_argument("--repeats", type=int, default=3, help="rounds per setting (default 3)")
    ap.add_argument("--models", nargs="*", default=list(MODELS), help="models to time (default all seven)")
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    from xmrec.config import DataConfig
    from xmrec.data.pipeline import load_or_prepare
    from xmrec.io import atomic_write_text
    from xmrec.provenance import as_markdown, provenance

    load_or_prepare("ml-100k", ROOT / FOLDER, data_cfg=DataConfig(max_seq_len=50), progress=True)
    revs = {"previous": args.previous_rev, "regression": args.regression_rev}
    with tempfile.TemporaryDirectory(prefix="xmrec-speed-") as tmp:
        trees = {k: worktree(rev, Path(tmp)) for k, rev in revs.items()}
        try:
            rows = measure(trees, args.repeats, args.models)
        finally:
            for path in trees.values():
                subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, check=True)
    table = summary(rows)
    config = {"folder": FOLDER, "batch_size": BATCH, "warmup_steps": WARMUP_STEPS, "repeats": args.repeats}
    config |= {"revs": revs, "models": args.models, "old_function_fields": OLD_FUNCTION, "threads": 1}
    record = provenance(config, "cpu")
    text = report(table, record["command"], revs) + "\n" + as_markdown(record) + "\n"
    print(text)
    atomic_write_text(RESULTS / "faithful_speed.md", text)
    atomic_write_text(
        RESULTS / "faithful_speed.json", json.dumps({"provenance": record, "summary": table, "runs": rows}, indent=2)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
