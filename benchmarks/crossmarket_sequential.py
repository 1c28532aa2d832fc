"""Notebook 05's sequential rankers trained to convergence: the recorded result its section 5 shows beside its stand-in.

Notebook 05 trains a base and an Ada-Ranker SASRec on t1 as cross-market scorers under the ``scorer``
preset (patience 10, at most 30 epochs, to fit the notebook's time); both reach the 30-epoch cap still
improving. This benchmark runs the same section on real t1 twice, in one run:

- **stand-in**: the notebook's protocol, the ``scorer`` preset as it is;
- **converged**: the same preset with 4x its patience (40) and an epoch cap of 300.

and records, per protocol: each ranker alone on the official validation lists (NDCG@10, HR@10), the
notebook's study ranker (3 folds, 150 rounds at 0.1) on the pipeline's features with and without each
ranker's score, and each training's full per-epoch history. Writes
``benchmarks/results/crossmarket_sequential.{json,md}``.

    .venv/bin/python benchmarks/crossmarket_sequential.py      # about 40 minutes on one free core
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
from t1_study import default_t1

from xmrec.crossmarket.ablation import added_value, recorded_protocols
from xmrec.crossmarket.scorers.sequential import SequentialScorer
from xmrec.io import atomic_write_text
from xmrec.overrides import PRESETS
from xmrec.provenance import as_markdown, provenance

RESULTS = Path(__file__).resolve().parent / "results" / "crossmarket_sequential"
PRESET = "scorer"
PROTOCOLS = {  # label -> "section.field=value" over the preset
    "stand-in": (),
    "converged": (f"train.patience={4 * PRESETS[PRESET].values['train.patience']}", "train.epochs=300"),
}
MODEL, TARGETS, SEED = "SASRec", 5, 2022  # notebook 05's SEQUENTIAL_MODEL, SEQUENTIAL_TARGETS, SEED
STUDY = {"n_folds": 3, "n_estimators": 150, "learning_rate": 0.1}  # notebook 05's study ranker


def measure(result, sets: tuple[str, ...]) -> tuple[list[dict], list[dict]]:
    """Section 5 of notebook 05 under ``sets``: its table rows and its trainings (with histories)."""
    scorers = [
        SequentialScorer(("t1",), model=MODEL, ada=ada, preset=PRESET, sets=sets, n_targets=TARGETS, seed=SEED)
        for ada in (False, True)
    ]
    table, _ = added_value(result, scorers, ranker=replace(result.config.ranker, **STUDY))
    return json.loads(table.to_json(orient="records")), [t for s in scorers for t in s.trainings]


def report(record: dict) -> str:
    results, trainings = recorded_protocols(record)
    lines = [
        "# Notebook 05's sequential rankers: stand-in and converged\n",
        as_markdown(record["provenance"]),
        f"Real t1, official validation lists; {MODEL}, base and Ada-Ranker, trained on t1's visible sequences "
        f"(`SequentialScorer`, preset `{PRESET}`). Ranker: the notebook's study ranker ({STUDY}). "
        "The gain of a ranker with a score is over the same ranker without it, in the same protocol.\n",
    ]
    for label, sets in record["provenance"]["config"]["protocols"].items():
        lines += [f"## {label}: `{PRESET}` preset" + (f" with {', '.join(sets)}" if sets else ""), ""]
        lines += ["| training | best epoch | epochs run | epoch cap | patience | validation GAUC (best) | ended by |"]
        lines += ["|---|---|---|---|---|---|---|"]
        for t in trainings[trainings.protocol == label].itertuples():
            lines.append(
                f"| {t.label} | {t.best_epoch} | {t.epochs_run} | {t.epochs} | {t.patience} | {t.valid_gauc:.4f} | "
                f"{t.ended_by} |"
            )
        lines += [
            "",
            "| method | features | NDCG@10 | HR@10 | gain over the ranker without it |",
            "|---|---|---|---|---|",
        ]
        for r in results[results.protocol == label].to_dict("records"):
            gain = "" if pd.isna(r["gain"]) else f"{r['gain']:+.4f}"
            lines.append(f"| {r['method']} | {r['features']} | {r['ndcg@10']:.4f} | {r['hit@10']:.4f} | {gain} |")
        lines.append("")
    return "\n".join(lines)


def write_report(record: dict, out: Path) -> None:
    """The markdown report of ``record`` beside its JSON, and on the terminal."""
    text = report(record)
    atomic_write_text(out.with_suffix(".md"), text)
    print(text)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--protocols", nargs="+", default=list(PROTOCOLS), choices=list(PROTOCOLS))
    p.add_argument("--out", type=Path, default=RESULTS, help="results path without suffix (.json, .md)")
    p.add_argument("--report", action="store_true", help="only rebuild the markdown report from the JSON")
    args = p.parse_args(argv)
    if args.report:
        write_report(json.loads(args.out.with_suffix(".json").read_text()), args.out)
        return 0
    config = {"preset": PRESET, "protocols": {k: PROTOCOLS[k] for k in args.protocols}, "model": MODEL}
    config.update(targets=TARGETS, seed=SEED, study_ranker=STUDY, out=str(args.out))
    command = ["python", f"benchmarks/{Path(__file__).name}", *(argv if argv is not None else sys.argv[1:])]
    record = {"provenance": provenance(config, "cpu", command)}  # the code as it starts, not as it ends
    result, record["pipeline_seconds"] = default_t1()
    record["protocols"] = {}
    for label in args.protocols:
        table, trainings = measure(result, PROTOCOLS[label])
        record["protocols"][label] = {"sets": list(PROTOCOLS[label]), "table": table, "trainings": trainings}
        print(f"{label}: " + ", ".join(f"{r['method']} {r['features']} {r['ndcg@10']:.4f}" for r in table), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(record, indent=1))
    write_report(record, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
