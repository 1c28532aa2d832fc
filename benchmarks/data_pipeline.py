"""Time and peak memory of each data-pipeline stage, on ML-100K and on 10M synthetic interactions.

Each case runs in its own subprocess, so the memory figures are that case's alone: per stage the
wall time, the stage's peak resident memory (VmRSS sampled every 10 ms by a thread; tracemalloc
is not used: it slows gensim several-fold) and the process's high-water mark so far
(``VmHWM``, see ``peak_memory``). Targets (2-core machine):
ML-100K process + sample + word2vec under 10 s; 10M synthetic process + sample + save under
120 s and 6 GB peak (word2vec timed apart at L = 200). Baseline measured in the same run: a plain
per-row Python mixer sampler (the original's style) on ML-100K lists, against the vectorised one,
per list. Bounded training memory: one epoch (MF d=8, batch 1024: this measures memory, it
is not a training result) over the saved 10M L = 200 dataset, in a fresh process that memory-maps
it, against the size of its arrays on disk.

    .venv/bin/python benchmarks/data_pipeline.py            # all cases, appends to results/
    .venv/bin/python benchmarks/data_pipeline.py --quick    # 1M synthetic instead of 10M
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from peak_memory import peak_rss_kib

RESULTS = Path(__file__).resolve().parent / "results" / "data_pipeline.md"
TARGETS = {"ml-100k": ("process+sample+word2vec", 10.0, None), "synthetic": ("process+sample+save", 120.0, 6.0)}
APART = {"load", "word2vec"}  # stages outside the synthetic targets (word2vec: timed apart)


def _rss_peak_gb() -> float:
    return peak_rss_kib() / 1e6


def _rss_now_gb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1e6
    return 0.0


class RssSampler(threading.Thread):
    """Samples the resident set size every ``every`` seconds; ``take_peak()`` reads and resets the peak."""

    def __init__(self, every: float = 0.01):
        super().__init__(daemon=True)
        self.every, self.peak = every, _rss_now_gb()

    def run(self):
        while True:
            self.peak = max(self.peak, _rss_now_gb())
            time.sleep(self.every)

    def take_peak(self) -> float:
        peak, self.peak = max(self.peak, _rss_now_gb()), _rss_now_gb()
        return peak


def run_case(case: dict) -> dict:
    """Run the stages of one case in this process; return per-stage figures."""
    from xmrec.config import DataConfig, EmbeddingConfig, SamplerConfig
    from xmrec.data.embeddings import train_item_embeddings
    from xmrec.data.pipeline import load_raw
    from xmrec.data.process import process_interactions
    from xmrec.data.sampling import sample_negatives

    sampler = RssSampler()
    sampler.start()
    stages, state = [], {}

    def stage(name, fn):
        sampler.take_peak()
        t, cpu = time.perf_counter(), time.process_time()
        fn()
        stages.append(
            {
                "stage": name,
                "seconds": time.perf_counter() - t,
                "cpu_seconds": time.process_time() - cpu,
                "stage_peak_gb": sampler.take_peak(),
                "rss_peak_gb": _rss_peak_gb(),
            }
        )

    cfg = DataConfig(max_seq_len=case["max_seq_len"])
    stage("load", lambda: state.update(raw=load_raw(case["spec"], interactions=case.get("interactions", 0))))

    def process():
        raw = state.pop("raw")
        state["result"] = process_interactions(
            raw.interactions, cfg, item_categories=raw.item_categories, name=case["spec"]
        )

    stage("process", process)
    ds = state["result"].dataset
    stage("sample", lambda: sample_negatives(ds, SamplerConfig()))
    if case.get("save_to"):
        from xmrec.data.pipeline import write_dataset

        stage("save", lambda: write_dataset(ds, case["save_to"], original=False))
    if case["word2vec"]:
        inter = state["result"].interactions
        train = inter.training
        stage(
            "word2vec",
            lambda: train_item_embeddings(inter.user[train], inter.item[train], ds.n_items, EmbeddingConfig()),
        )
    keys = ("users", "items", "categories", "interactions", "train_instances", "valid_instances", "test_instances")
    out = {"case": case, "stages": stages, "stats": {k: ds.stats[k] for k in keys}}
    if case.get("baseline"):
        out["baseline"] = baseline_ratio(ds)
    return out


def stream_epoch(folder: str) -> dict:
    """One MF epoch over the memory-mapped dataset at ``folder`` (a run of the run layer, kept in memory):
    seconds (loading, the epoch, validation and test), samples per second, peak RSS, bytes on disk."""
    from xmrec.config import ModelConfig, TrainConfig
    from xmrec.runs import PreparedData, RunSpec, execute

    on_disk = sum(f.stat().st_size for f in Path(folder, "arrays").glob("*.npy"))
    t = time.perf_counter()
    train_cfg = TrainConfig(epochs=1, batch_size=1024, eval_batch_size=1024, device="cpu", seed=0)
    record = execute(RunSpec(PreparedData(folder), ModelConfig(name="MF", dim=8), train_cfg), None)
    return {
        "seconds": time.perf_counter() - t,
        "samples_per_s": record.history[0]["samples_per_s"],
        "rss_peak_gb": _rss_peak_gb(),
        "arrays_gb": on_disk / 1e9,
        "train_instances": record.summary["n_train"],
    }


def naive_mixer(ds, rows, rng: random.Random, n_neg=19, kmax=2):
    """The original's style: one list at a time in Python, sets for the rejections."""
    import numpy as np

    cats = {c: [] for c in range(1, ds.n_cates + 1)}
    for i in range(1, ds.n_items + 1):
        for c in ds.item_categories(i):
            cats[int(c)].append(i)
    weights = {c: [int(ds.item_pop[i]) for i in items] for c, items in cats.items()}
    usable = [c for c in cats if cats[c]]
    s = ds.train
    out = np.zeros((len(rows), n_neg), np.int64)
    for j, r in enumerate(rows):
        anchor = int(s.cate[r])
        others = rng.sample([c for c in usable if c != anchor], rng.randint(0, kmax))
        chosen = [anchor] + others
        popular = rng.random() < 0.5
        banned = set(s.item_seq[r].tolist()) | {int(s.item[r])}
        got: list[int] = []
        for _ in range(n_neg):
            c = rng.choice(chosen)
            while True:
                weighted = popular and sum(weights[c]) > 0
                item = rng.choices(cats[c], weights[c])[0] if weighted else rng.choice(cats[c])
                if item not in banned and item not in got:
                    break
            got.append(item)
        out[j] = got
    return out


def baseline_ratio(ds) -> dict:
    """Seconds per list: naive Python loop vs the vectorised sampler (ML-100K train lists)."""
    import copy

    from xmrec.config import SamplerConfig
    from xmrec.data.sampling import sample_negatives

    rows = list(range(0, len(ds.train), max(1, len(ds.train) // 2000)))
    t = time.perf_counter()
    naive_mixer(ds, rows, random.Random(0))
    naive = (time.perf_counter() - t) / len(rows)
    fresh = copy.deepcopy(ds)
    t = time.perf_counter()
    sample_negatives(fresh, SamplerConfig())
    n = sum(len(fresh.split(s)) for s in ("train", "valid", "test"))
    vec = (time.perf_counter() - t) / n
    return {"naive_us_per_list": naive * 1e6, "vectorised_us_per_list": vec * 1e6, "speedup": naive / vec}


def run_in_subprocess(case: dict) -> dict:
    env = dict(os.environ, PYTHONHASHSEED="0")
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(case)], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        raise RuntimeError(f"case {case} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(results: list[dict], command: str) -> str:
    load1, load5, _ = os.getloadavg()
    lines = [
        f"\n## {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC — `{command}`",
        "",
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; load average at the end {load1:.1f} / {load5:.1f} (1 / 5 min: "
        "other jobs share the machine when this is above the core count)",
        "",
        "| case | stage | wall s | CPU s | stage peak RSS GB | RSS high-water GB |",
        "|---|---|---:|---:|---:|---:|",
    ]
    verdicts = []
    for res in results:
        c = res["case"]
        size = f"-{c['interactions']:,}" if c["spec"] == "synthetic" else ""
        name = f"{c['spec']}{size} L={c['max_seq_len']}"
        for st in res["stages"]:
            lines.append(
                f"| {name} | {st['stage']} | {st['seconds']:.2f} | {st['cpu_seconds']:.2f} | "
                f"{st['stage_peak_gb']:.2f} | {st['rss_peak_gb']:.2f} |"
            )
        what, limit_s, limit_gb = TARGETS[c["spec"]]
        timed = [st for st in res["stages"] if st["stage"] not in (APART if c["spec"] == "synthetic" else {"load"})]
        total = sum(st["seconds"] for st in timed)
        cpu = sum(st["cpu_seconds"] for st in timed)
        peak = max(st["stage_peak_gb"] for st in timed)  # the targeted stages' own peaks (word2vec apart)
        ok = total < limit_s and (limit_gb is None or peak < limit_gb)
        verdicts.append(
            f"- {name}: {what} {total:.1f} s wall, {cpu:.1f} s CPU (target < {limit_s:.0f} s)"
            + (f", peak RSS {peak:.2f} GB (target < {limit_gb:.0f} GB)" if limit_gb else "")
            + f": **{'met' if ok else 'NOT met'}**; "
            + ", ".join(f"{k} {v:,}" for k, v in res["stats"].items())
        )
        if "stream" in res:
            st = res["stream"]
            verdicts.append(
                f"- one MF epoch (d=8, batch 1024; a memory check, not a training result) over the saved {name} dataset "
                f"in a fresh process: arrays {st['arrays_gb']:.2f} GB on disk, peak RSS {st['rss_peak_gb']:.2f} GB "
                f"(**{st['arrays_gb'] / st['rss_peak_gb']:.1f}x smaller**), {st['seconds']:.0f} s, "
                f"{st['samples_per_s']:,.0f} lists/s over {st['train_instances']:,} training lists"
            )
        if "baseline" in res:
            b = res["baseline"]
            verdicts.append(
                f"- mixer sampler per list: naive Python {b['naive_us_per_list']:.0f} us, vectorised "
                f"{b['vectorised_us_per_list']:.1f} us: **{b['speedup']:.0f}x**"
            )
    return "\n".join(lines + [""] + verdicts) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--quick", action="store_true", help="1M synthetic interactions instead of 10M")
    p.add_argument("--no-append", action="store_true", help="print only; do not append to results/")
    args = p.parse_args(argv)
    if args.worker:
        case = json.loads(args.worker)
        print(json.dumps(stream_epoch(case["stream"]) if "stream" in case else run_case(case)))
        return 0
    n = 1_000_000 if args.quick else 10_000_000
    cases = [
        {"spec": "ml-100k", "max_seq_len": 200, "word2vec": True, "baseline": True},
        {"spec": "synthetic", "interactions": n, "max_seq_len": 50, "word2vec": False},
        {"spec": "synthetic", "interactions": n, "max_seq_len": 200, "word2vec": True},
    ]
    results = []
    with tempfile.TemporaryDirectory(prefix="xmrec-bench-") as tmp:
        cases[-1]["save_to"] = str(Path(tmp) / "paper-scale")
        for case in cases:
            print(f"running {case} ...", flush=True)
            results.append(run_in_subprocess(case))
        results[-1]["stream"] = run_in_subprocess({"stream": cases[-1]["save_to"]})
    from xmrec.provenance import as_markdown, provenance

    text = report(results, "python benchmarks/data_pipeline.py" + (" --quick" if args.quick else ""))
    text += "\n" + as_markdown(provenance({"args": vars(args), "cases": cases}, "cpu"))
    print(text)
    if not args.no_append:
        from xmrec.io import atomic_write_text

        old = (
            RESULTS.read_text()
            if RESULTS.exists()
            else ("# Data pipeline benchmark\n\nAppended by `benchmarks/data_pipeline.py`; newest last.\n")
        )
        atomic_write_text(RESULTS, old + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
