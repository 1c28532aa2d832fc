"""Do ranker ensembles beat noise on t1? Seed-averaged and objective-averaged LightGBM rankers.

Runs the default t1 pipeline once (features, held-out training lists), then for two repetitions
(disjoint seed sets) cross-validates the ranker as the pipeline does and compares, on the official
validation lists, the same-run baseline (one binary ranker) with: two binary seeds averaged,
binary + lambdarank of one seed, and two seeds of each objective. Members are averaged after
standardising their scores within each list (``xmrec.crossmarket.ensemble``). A gain counts only if
it has the same sign in both repetitions and exceeds twice the baseline's spread between them.

    .venv/bin/python benchmarks/crossmarket_ensembles.py     # about 20 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

from t1_study import default_t1, verdict

from xmrec.crossmarket.ensemble import ensemble_scores
from xmrec.crossmarket.evaluation import list_metrics
from xmrec.crossmarket.graph import VALID
from xmrec.crossmarket.ranker import cross_validate
from xmrec.io import atomic_write_text
from xmrec.provenance import as_markdown, provenance

RESULTS = Path(__file__).resolve().parent / "results"
REPETITIONS = ((2022, 2023), (2032, 2033))  # disjoint seed sets, one per repetition
ENSEMBLES = {  # name -> members as (objective, index of the seed in the repetition's set)
    "binary, one seed (baseline)": [("binary", 0)],
    "binary, two seeds averaged": [("binary", 0), ("binary", 1)],
    "binary + lambdarank, one seed": [("binary", 0), ("lambdarank", 0)],
    "binary + lambdarank, two seeds each": [("binary", 0), ("binary", 1), ("lambdarank", 0), ("lambdarank", 1)],
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.parse_args(argv)
    result, _ = default_t1()
    cfg = result.config
    valid = result.candidates[VALID]
    jobs = sorted({(obj, seeds[i]) for seeds in REPETITIONS for members in ENSEMBLES.values() for obj, i in members})

    def fit(job):
        objective, seed = job
        rcfg = replace(cfg.ranker, objective=objective, seed=seed)
        res = cross_validate(result.features[VALID], valid.labels(), valid.users, None, rcfg, extra=result.heldout)
        return job, res.valid_scores

    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:  # LightGBM (one thread per model) releases the GIL
        scores = dict(pool.map(fit, jobs))
    rows = []
    for rep, seeds in enumerate(REPETITIONS):
        for name, members in ENSEMBLES.items():
            ens = ensemble_scores([scores[(obj, seeds[i])] for obj, i in members])
            rows.append(
                {
                    "ensemble": name,
                    "repetition": rep,
                    "seeds": seeds,
                    "ndcg@10": list_metrics(ens, valid.positive)["ndcg@10"],
                }
            )
    text = report(rows, time.perf_counter() - start)
    record = provenance({"pipeline": asdict(cfg), "repetitions": REPETITIONS}, "cpu")
    text += "\n" + as_markdown(record)
    print(text)
    atomic_write_text(RESULTS / "crossmarket_ensembles.md", text)
    atomic_write_text(
        RESULTS / "crossmarket_ensembles.json", json.dumps({"provenance": record, "rows": rows}, indent=2, default=str)
    )
    return 0


def report(rows: list[dict], seconds: float) -> str:
    base = {r["repetition"]: r["ndcg@10"] for r in rows if r["ensemble"].endswith("(baseline)")}
    noise = abs(base[0] - base[1])
    lines = [
        "# Ranker ensembles on t1 (official validation lists)",
        "",
        "`.venv/bin/python benchmarks/crossmarket_ensembles.py`: members averaged after list-wise "
        f"standardisation; two repetitions with disjoint seeds; rankers trained in {seconds / 60:.1f} min.",
        "",
        "| ensemble | NDCG@10 rep. 1 | rep. 2 | gain rep. 1 | gain rep. 2 | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for name in ENSEMBLES:
        v = [r["ndcg@10"] for r in rows if r["ensemble"] == name]
        gains = [v[0] - base[0], v[1] - base[1]]
        said = "baseline" if name.endswith("(baseline)") else verdict(gains, noise)
        lines.append(f"| {name} | {v[0]:.4f} | {v[1]:.4f} | {gains[0]:+.4f} | {gains[1]:+.4f} | {said} |")
    lines += [
        "",
        f"Noise: the baseline moves by {noise:.4f} between the repetitions' seeds; a gain must exceed "
        f"{2 * noise:.4f} in both.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
