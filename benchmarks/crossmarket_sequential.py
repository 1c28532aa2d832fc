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

from t1_study import default_t1

from xmrec.crossmarket.ablation import added_value
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
    lines = [
        "# Notebook 05's sequential rankers: stand-in and converged\n",
        as_markdown(record["provenance"]),
        f"Real t1, official validation lists; {MODEL}, base and Ada-Ranker, trained on t1's visible sequences "
        f"(`SequentialScorer`, preset `{PRESET}`). Ranker: the notebook's study ranker ({STUDY}). "
        "The gain of a ranker with a score is over the same ranker without it, in the same protocol.\n",
    ]
    for label, part in record["protocols"].items():
        lines += [f"## {label}: `{PRESET}` preset" + (f" with {', '.join(part['sets'])}" if part["sets"] else ""), ""]
        lines += ["| training | best epoch | epochs run | epoch cap | patience | validation GAUC (best) | ended by |"]
        lines += ["|---|---|---|---|---|---|---|"]
        for t in part["trainings"]:
            end = "the epoch cap (not converged)" if t["epochs_run"] == t["epochs"] else "the stopping rule"
            lines.append(
                f"| {t['label']} | {t['best_epoch']} | {t['epochs_run']} | {t['epochs']} | {t['patience']} | "
                f"{t['valid_gauc']:.4f} | {end} |"
            )
        base = next(r["ndcg@10"] for r in part["table"] if r["family"] == "ranker")
        lines += [
            "",
            "| method | features | NDCG@10 | HR@10 | gain over the ranker without it |",
            "|---|---|---|---|---|",
        ]
        for r in part["table"]:
            gain = (
                f"{r['ndcg@10'] - base:+.4f}"
                if r["family"] == "ranker" and r["features"] != "pipeline features"
                else ""
            )
            lines.append(f"| {r['method']} | {r['features']} | {r['ndcg@10']:.4f} | {r['hit@10']:.4f} | {gain} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--protocols", nargs="+", default=list(PROTOCOLS), choices=list(PROTOCOLS))
    p.add_argument("--out", type=Path, default=RESULTS, help="results path without suffix (.json, .md)")
    args = p.parse_args(argv)
    result, seconds = default_t1()
    protocols = {}
    for label in args.protocols:
        table, trainings = measure(result, PROTOCOLS[label])
        protocols[label] = {"sets": list(PROTOCOLS[label]), "table": table, "trainings": trainings}
        print(f"{label}: " + ", ".join(f"{r['method']} {r['features']} {r['ndcg@10']:.4f}" for r in table), flush=True)
    config = {"preset": PRESET, "protocols": {k: PROTOCOLS[k] for k in args.protocols}, "model": MODEL}
    config.update(targets=TARGETS, seed=SEED, study_ranker=STUDY, out=str(args.out))
    record = {"provenance": provenance(config, "cpu", sys.argv), "pipeline_seconds": seconds, "protocols": protocols}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(record, indent=1))
    text = report(record)
    atomic_write_text(args.out.with_suffix(".md"), text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
