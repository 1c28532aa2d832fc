"""The shift matrix on ML-100K: what a change of candidate distribution costs base and Ada-Ranker.

Trains GRU4Rec and SASRec, base and Ada-Ranker end-to-end, for several seeds, on candidate lists
from one sampler (validation lists drawn like the training lists, early stopping on their GAUC),
then tests every trained model on the same test users, targets and histories under every sampler:
mixer, uniform, popularity, category and the two test-only shifts, unpopular and other-category
(``xmrec.shift_matrix``). Protocol of ``benchmarks/adaranker_ml100k.py``: L = 50, 19 negatives,
batch 256, Adam 1e-3, patience 3.

Resumable: every finished training is written to ``shift_matrix.json`` at once (atomically); a
rerun with the same protocol trains only what is missing, and refuses a file written under
another protocol (``--fresh`` starts over). ``shift_matrix.md`` is rebuilt from the JSON each
time and says how many of the planned trainings it holds.

    .venv/bin/python benchmarks/shift_matrix.py                 # 2 models x 2 modes x 2 samplers x 3 seeds
    .venv/bin/python benchmarks/shift_matrix.py --max-runs 4    # four more trainings, then stop
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from xmrec.data.sampling import ALL_SAMPLERS, SAMPLERS
from xmrec.io import atomic_write_text

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "shift_matrix"
PROTOCOL_KEYS = ("epochs", "patience", "batch_size", "max_seq_len", "test_samplers", "device")
RUN_KEYS = ("model", "mode", "train_sampler", "seed")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["GRU4Rec", "SASRec"])
    p.add_argument("--modes", nargs="+", default=["base", "ada"], choices=["base", "ada"])
    p.add_argument("--train-samplers", nargs="+", default=["mixer", "uniform"], choices=SAMPLERS)
    p.add_argument("--test-samplers", nargs="+", default=list(ALL_SAMPLERS), choices=ALL_SAMPLERS)
    p.add_argument("--seeds", nargs="+", type=int, default=[2022, 2023, 2024])
    p.add_argument(
        "--epochs", type=int, default=100, help="upper bound; early stopping ends sooner (faithful Ada learns slowly)"
    )
    p.add_argument("--patience", type=int, default=3, help="epochs without a better valid GAUC")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--max-seq-len", type=int, default=50)
    p.add_argument("--device", default="cpu")
    p.add_argument("--jobs", type=int, default=2, help="trainings at once (child processes)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per training")
    p.add_argument("--max-runs", type=int, default=None, help="train at most this many missing runs, then stop")
    p.add_argument("--fresh", action="store_true", help="discard the recorded runs and start over")
    p.add_argument("--report", action="store_true", help="only rebuild the markdown report from the JSON")
    p.add_argument("--out", type=Path, default=RESULTS, help="results path without suffix (.json, .md)")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one job given as JSON
    return p.parse_args(argv)


def dataset_folder(sampler: str, max_seq_len: int) -> Path:
    from xmrec.config import data_dir

    return data_dir() / "processed" / (f"ml-100k-L{max_seq_len}-s2022" + ("" if sampler == "mixer" else f"-{sampler}"))


def prepare(sampler: str, max_seq_len: int):
    from xmrec.config import SamplerConfig
    from xmrec.data.pipeline import load_or_prepare

    return load_or_prepare(
        "ml-100k",
        dataset_folder(sampler, max_seq_len),
        seed=2022,
        max_seq_len=max_seq_len,
        sampler_cfg=SamplerConfig(kind=sampler),
        progress=False,
    )


def fingerprint(split) -> str:
    """A short hash of a test set's candidate lists and histories (every run must see the same ones)."""
    h = hashlib.sha256(split.candidates().tobytes())
    h.update(split.item_seq.tobytes())
    return h.hexdigest()[:12]


def run_one(job: dict) -> list[dict]:
    """Train one (model, mode, train sampler, seed) here and test it under every test sampler."""
    import torch

    from xmrec.config import ModelConfig, TrainConfig
    from xmrec.shift_matrix import evaluate_under_shift, shift_test_sets
    from xmrec.training import Trainer

    torch.set_num_threads(job["threads"])
    ds = prepare(job["train_sampler"], job["max_seq_len"])
    train_cfg = TrainConfig(
        mode=job["mode"],
        batch_size=job["batch_size"],
        epochs=job["epochs"],
        patience=job["patience"],
        seed=job["seed"],
        device=job["device"],
    )
    start = time.perf_counter()
    trainer = Trainer(ModelConfig(name=job["model"]), train_cfg, progress=False)
    history = trainer.fit(ds)
    lists = shift_test_sets(ds, job["test_samplers"])
    common = {
        **{k: job[k] for k in RUN_KEYS},
        "best_epoch": trainer.best_epoch,
        "epochs_run": len(history),
        "epochs": job["epochs"],
        "patience": job["patience"],
        "valid_gauc": trainer.best_valid["gauc"],
        "s_per_epoch": sum(h["seconds"] for h in history) / len(history),
        "wall_s": time.perf_counter() - start,
        "device": str(trainer.device),
        "description": trainer.model.describe(),
    }
    rows = evaluate_under_shift(trainer.evaluate, lists)
    return [{**common, **row, "lists": fingerprint(lists[row["test_sampler"]])} for row in rows]


class Record:
    """The JSON results file: protocol, provenance and runs, rewritten atomically after each training."""

    def __init__(self, args: argparse.Namespace, command: list[str]):
        from dataclasses import asdict

        from xmrec.config import ModelConfig, TrainConfig
        from xmrec.provenance import provenance

        self.path = args.out.with_suffix(".json")
        self.protocol = {k: getattr(args, k) for k in PROTOCOL_KEYS}
        self.runs: list[dict] = []
        if self.path.exists() and not args.fresh:
            old = json.loads(self.path.read_text())
            if old.get("stale"):
                raise SystemExit(
                    f"{self.path} is marked stale ({old['stale']}): its runs must not be mixed with new ones; "
                    "rerun with --fresh, or --out elsewhere"
                )
            if old.get("protocol") != self.protocol:
                raise SystemExit(
                    f"{self.path} was written under protocol {old.get('protocol')}, not "
                    f"{self.protocol}: rerun with the same settings, or --fresh to start over"
                )
            self.runs = old["runs"]
        train = TrainConfig(batch_size=args.batch_size, epochs=args.epochs, patience=args.patience, device=args.device)
        config = {
            **vars(args),
            "out": str(args.out),
            "model_config": asdict(ModelConfig()),
            "train_config (mode, seed per run)": asdict(train),
        }
        self.provenance = provenance(config, args.device, command)
        self.lock = threading.Lock()

    def done(self) -> set[tuple]:
        return {tuple(r[k] for k in RUN_KEYS) for r in self.runs}

    def add(self, rows: list[dict]) -> None:
        with self.lock:
            commit = self.provenance["commit"]
            self.runs.extend({**r, "commit": commit, "dirty": self.provenance["dirty"]} for r in rows)
            self.save()

    def save(self) -> None:
        atomic_write_text(
            self.path,
            json.dumps({"provenance": self.provenance, "protocol": self.protocol, "runs": self.runs}, indent=1),
        )


def spawn(job: dict, record: Record) -> None:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", json.dumps(job)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise RuntimeError(f"run {job} failed:\n{done.stderr[-3000:]}")
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    record.add(rows)
    r = rows[0]
    print(
        f"  {r['model']:8s} {r['mode']:4s} on {r['train_sampler']:8s} seed {r['seed']}: best epoch "
        f"{r['best_epoch']}/{r['epochs_run']}, " + ", ".join(f"{x['test_sampler']} {x['gauc']:.4f}" for x in rows),
        flush=True,
    )


def plan_of(args: argparse.Namespace) -> list[dict]:
    """Every training the arguments ask for, seed by seed (a resumed run fills whole seeds first)."""
    return [
        {"model": m, "mode": mode, "train_sampler": t, "seed": s}
        for s in args.seeds
        for t in args.train_samplers
        for m in args.models
        for mode in args.modes
    ]


def _cell(mean: float, std: float, n: int) -> str:
    if mean != mean:  # NaN: that training is not recorded yet
        return "not yet"
    return f"{mean:.4f}" + (f" ± {std:.4f}" if n > 1 and std == std else "")


def _points(mean: float, std: float, n: int) -> str:
    if mean != mean:
        return "not yet"
    return f"{mean * 100:+.2f}" + (f" ± {std * 100:.2f}" if n > 1 and std == std else "")


def metric_table(summary, model: str) -> str:
    """One markdown table: a row per (train sampler, test sampler) of one model."""
    rows = [
        "| trained on | tested on | base | Ada | Ada - base (points) | Ada ahead | base drop | Ada drop |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in summary[summary.model == model].itertuples():
        n = int(r.n_seeds)
        matched = " (matched)" if r.test_sampler == r.train_sampler else ""
        ahead = "not yet" if r.diff_mean != r.diff_mean else f"{int(r.ada_ahead)}/{n}"
        rows.append(
            f"| {r.train_sampler} | {r.test_sampler}{matched} | {_cell(r.base_mean, r.base_std, n)} | "
            f"{_cell(r.ada_mean, r.ada_std, n)} | {_points(r.diff_mean, r.diff_std, n)} | "
            f"{ahead} | {_points(r.base_drop_mean, r.base_drop_std, n)} | "
            f"{_points(r.ada_drop_mean, r.ada_drop_std, n)} |"
        )
    return "\n".join(rows)


def headline(runs) -> str:
    """Per model and training sampler: the mean drop over the shifted test sets, base and Ada."""
    from xmrec.shift_matrix import summarize

    summary = summarize(runs, "gauc")
    shifted = summary[summary.test_sampler != summary.train_sampler]
    rows = [
        "## Headline: mean over the five shifted test sets (test GAUC points)\n",
        "| model | trained on | base drop | Ada drop | Ada - base | seeds |",
        "|---|---|---|---|---|---|",
    ]
    for (model, train), g in shifted.groupby(["model", "train_sampler"], sort=False):
        cells = [_points(g[c].mean(), float("nan"), 1) for c in ("base_drop_mean", "ada_drop_mean", "diff_mean")]
        rows.append(f"| {model} | {train} | " + " | ".join(cells) + f" | {int(g.n_seeds.min())} |")
    return "\n".join(rows) + "\n"


def matched_table(runs) -> str:
    """The matched mixer cells: the protocol of benchmarks/adaranker_ml100k.py, with every metric."""
    from xmrec.experiments import mean_spread

    mixer = runs[(runs.train_sampler == "mixer") & (runs.test_sampler == "mixer")]
    rows = [
        "## Ada-Ranker vs base on matched mixer lists (the Ada-Ranker benchmark's protocol)\n",
        "| model | mode | seeds | test GAUC | NDCG@10 | HR@10 | MRR | best epoch | epochs run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (model, mode), g in mixer.groupby(["model", "mode"], sort=False):
        n = len(g)
        cells = [
            mean_spread(g[m].mean(), g[m].std(ddof=1) if n > 1 else float("nan"))
            for m in ("gauc", "ndcg@10", "hit@10", "mrr")
        ]
        rows.append(
            f"| {model} | {mode} | {n} | " + " | ".join(cells) + f" | {g.best_epoch.mean():.1f} | "
            f"{g.epochs_run.mean():.1f} |"
        )
    return "\n".join(rows) + "\n"


def write_report(json_path: Path, md_path: Path, planned: int) -> str:
    """Rebuild the markdown report from the JSON record; returns its text."""
    import pandas as pd

    from xmrec.shift_matrix import paired_runs, summarize

    data = json.loads(json_path.read_text())
    recorded, prov, proto = pd.DataFrame(data["runs"]), data["provenance"], data["protocol"]
    trained = recorded.drop_duplicates(list(RUN_KEYS))
    runs = paired_runs(recorded)
    stopped = (
        (trained.epochs_run - trained.best_epoch >= trained.patience) & (trained.epochs_run < trained.epochs)
    ).sum()
    same_lists = recorded.groupby("test_sampler")["lists"].nunique().max() == 1
    unpaired = len(trained) - len(runs.drop_duplicates(list(RUN_KEYS)))
    parts = [
        "# The shift matrix on ML-100K: what a change of candidate distribution costs a ranker\n",
        f"Written by `{prov['command']}` (rebuilt from `{json_path.name}` after every session).  ",
        f"ML-100K, L = {proto['max_seq_len']}, 19 negatives, batch {proto['batch_size']}, Adam 1e-3, early stopping "
        f"on the validation GAUC of lists drawn like the training lists (patience {proto['patience']}, at most "
        f"{proto['epochs']} epochs), best epoch restored; device {proto['device']}.  ",
        f"**{len(trained)} of {planned} planned trainings recorded**; {stopped} of {len(trained)} ended by early "
        f"stopping. Every run met the same test lists per test sampler: {'yes' if same_lists else 'NO'}. "
        f"The tables pair base and Ada by seed: {unpaired} training(s) whose twin is not recorded yet are left out.  ",
        f"Commits: {', '.join(sorted({str(c)[:10] + (' (dirty)' if d else '') for c, d in zip(recorded.commit, recorded.dirty)}))}; "
        f"versions {prov['versions']}; machine {prov['machine']}.\n",
        "A quality benchmark, not a speed one: the runs shared the machine with other work, so the wall-clock "
        "seconds stored in the JSON are not training speeds.\n",
        "Each test set keeps the test users, targets and histories; only the negatives change. *Drop* = "
        "matched test set minus this one, paired by seed (positive: the shift costs that much). "
        "Mean ± std over seeds; points = 0.01.\n",
    ]
    parts += [headline(runs), matched_table(runs)]
    for metric, name in (("gauc", "GAUC"), ("ndcg@10", "NDCG@10")):
        summary = summarize(runs, metric)
        for model in runs.model.unique():
            parts.append(f"## {model}, test {name}\n\n{metric_table(summary, model)}\n")
    text = "\n".join(parts)
    atomic_write_text(md_path, text)
    return text


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.one:
        print(json.dumps(run_one(json.loads(args.one))))
        return 0
    command = ["python", f"benchmarks/{Path(__file__).name}", *(argv if argv is not None else sys.argv[1:])]
    if args.report:
        print(write_report(args.out.with_suffix(".json"), args.out.with_suffix(".md"), planned=len(plan_of(args))))
        return 0
    record = Record(args, command)
    for sampler in args.train_samplers:  # prepare each training dataset once, before the children
        prepare(sampler, args.max_seq_len)
    plan = plan_of(args)
    missing = [p for p in plan if tuple(p[k] for k in RUN_KEYS) not in record.done()]
    todo = missing[: args.max_runs] if args.max_runs is not None else missing
    print(
        f"{len(plan)} trainings planned, {len(plan) - len(missing)} recorded, {len(todo)} to run now "
        f"({args.jobs} at a time)",
        flush=True,
    )
    shared = {
        k: getattr(args, k)
        for k in ("epochs", "patience", "batch_size", "max_seq_len", "device", "threads", "test_samplers")
    }
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for future in [pool.submit(spawn, {**job, **shared}, record) for job in todo]:
            future.result()
    record.save()
    text = write_report(record.path, args.out.with_suffix(".md"), planned=len(plan))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
