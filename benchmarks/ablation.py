"""Notebook 06's ablation, recorded long: every variant of its default grid, over seeds, on its teaching set.

The variants are ``xmrec.experiments.ablation_variants`` (base, the faithful Ada-Ranker, without
FiLM, without parameter patches, the extractor alone, and the identity start against the
authors'), trained under the ``teaching`` preset (6,000 training lists of ML-100K, batch 128,
Adam 3e-3) with the recording settings of ``xmrec.converged.RECORDING_SETS`` over it: a generous
patience, a high epoch cap, and every epoch's test metrics on the mixer's test lists (they select
nothing). ``benchmarks/converged.py --study ablation`` then replays the chosen stopping rule over
the histories, with its certificate.

Every run goes through the run layer into the run store (``--runs``, default ``<data dir>/runs``):
an interrupted session keeps its finished runs, and a killed run resumes from its last epoch.
``--max-runs N`` trains at most N missing runs, then records what the store holds.

    .venv/bin/python benchmarks/ablation.py                       # 6 variants x 3 seeds, 2 at a time
    .venv/bin/python benchmarks/ablation.py --max-runs 0          # only record the finished runs
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "ablation_recorded"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="GRU4Rec")
    p.add_argument("--seeds", nargs="+", type=int, default=[2022, 2023, 2024])
    p.add_argument("--preset", default="teaching", help="the protocol under the recording settings (default teaching)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE", help="applied last")
    p.add_argument("--jobs", type=int, default=2, help="runs at once (processes; default 2)")
    p.add_argument("--max-runs", type=int, default=None, help="train at most this many missing runs")
    p.add_argument("--runs", type=Path, default=None, help="the run store (default <data dir>/runs)")
    p.add_argument("--out", type=Path, default=RESULTS, help="results path without suffix (.json)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    from xmrec.config import data_dir
    from xmrec.converged import RECORDING_SETS
    from xmrec.experiments import Experiment, ablation_variants
    from xmrec.io import atomic_write_text
    from xmrec.provenance import provenance

    args = parse_args(argv)
    command = ["python", f"benchmarks/{Path(__file__).name}", *(argv if argv is not None else sys.argv[1:])]
    sets = [*RECORDING_SETS, "train.test_samplers=mixer", *args.set]
    exp = Experiment(
        "ml-100k",
        preset=args.preset,
        sets=sets,
        runs_dir=args.runs or data_dir() / "runs",
        workers=args.jobs,
        executor="processes",
    )
    jobs = [(v, s) for s in args.seeds for v in ablation_variants(args.model)]
    missing = [(v, s) for v, s in jobs if not exp.is_done(v, s)]
    todo = missing[: args.max_runs] if args.max_runs is not None else missing
    print(f"{len(jobs)} runs planned, {len(jobs) - len(missing)} in the store {exp.runs_dir}, {len(todo)} to train now")
    if todo:
        exp.executor.run([exp.spec_of(v, s) for v, s in todo], exp.store, command=command)
    for v, s in jobs:
        if exp.is_done(v, s):
            exp.run(v, s)  # read back from the store
    config = {**{k: str(v) for k, v in vars(args).items()}, "sets": sets}
    record = {
        "provenance": provenance(config, exp.train_cfg.device, command),
        "planned": len(jobs),
        "runs": [
            {
                **row,
                "variant": row["label"],
                "run": result.record.spec.name,
                "extends": (result.record.summary.get("extends") or {}).get("run"),
                "commit": result.record.provenance["commit"],
            }
            for result, row in zip(exp.results, exp.records())
        ],
    }
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(record, indent=1))
    print(f"{len(record['runs'])} of {len(jobs)} runs recorded in {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
