"""The distance to the published t1 figure, element by element: the protocol table.

Runs the default t1 pipeline (real WSDM Cup 2022 data, official validation lists), then the
LightGBM ranker under each reporting protocol of ``xmrec.crossmarket.protocol.settings``: the
kit's honest default, each element of the first-place team's reporting switched on alone (folds
over rows, early stopping on the reported fold, id codes as features), all three together, and
all three with leaky validation features as an upper bound. Two seeds each (folds and LightGBM).

Resumable: every finished (protocol, seed) is written at once to
``results/crossmarket_protocol.json``; a rerun trains only what is missing and refuses a file
written by another pipeline configuration. ``--report`` rebuilds the markdown from the JSON.

    .venv/bin/python benchmarks/crossmarket_protocol.py            # about an hour on 2 cores
    .venv/bin/python benchmarks/crossmarket_protocol.py --report   # tables from the recorded runs
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from functools import partial
from pathlib import Path

from xmrec.config import markets_dir
from xmrec.crossmarket.leakage import leaky_features
from xmrec.crossmarket.pipeline import run_target
from xmrec.crossmarket.protocol import protocol_run, protocol_table, settings
from xmrec.crossmarket.settings import CrossMarketConfig
from xmrec.io import atomic_write_text
from xmrec.provenance import as_markdown, provenance

RESULTS = Path(__file__).resolve().parent / "results"
JSON, MD = RESULTS / "crossmarket_protocol.json", RESULTS / "crossmarket_protocol.md"
PUBLISHED = 0.725  # third-place team's t1 validation NDCG@10 (their code is not public)


def load_record(config: dict) -> dict:
    """The recorded runs, or a new record; another pipeline configuration is refused."""
    if not JSON.is_file():
        return {"config": config, "runs": []}
    record = json.loads(JSON.read_text())
    if record["config"] != config:
        raise SystemExit(f"{JSON} holds runs of another configuration; move it away or rerun with --fresh")
    return record


def timed_run(result, elements, leaky, seed: int) -> dict:
    """:func:`protocol_run` with its wall seconds."""
    start = time.perf_counter()
    return {**protocol_run(result, elements, seed, leaky), "seconds": round(time.perf_counter() - start, 1)}


def report(record: dict) -> str:
    table = protocol_table(record["runs"])
    lines = [
        "# The protocol table: what each reporting choice adds to the printed t1 validation NDCG@10",
        "",
        "`.venv/bin/python benchmarks/crossmarket_protocol.py`. Real t1, 2,697 official validation lists "
        "(1 positive among 100), the default pipeline's 105 features and held-out training lists; the ranker "
        "is LightGBM binary. NDCG@10 with the mean tied rank; se = standard error over users (mean over seeds); "
        "spread = max - min over seeds.",
        "",
        "| protocol | NDCG@10 | gain over honest | se (users) | seed spread | seeds | rounds per fold |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in table.to_dict(orient="records"):
        lines.append(
            f"| {r['protocol']} | {r['ndcg@10']:.4f} | {r['gain']:+.4f} | {r['se_users']:.4f} | "
            f"{r['seed_spread']:.4f} | {', '.join(map(str, r['seeds']))} | {r['rounds']:.0f} |"
        )
    honest = table["ndcg@10"].iloc[0]
    lines += ["", f"Distance from the honest figure to the published {PUBLISHED}: {PUBLISHED - honest:+.4f}.", ""]
    lines.append(as_markdown(record["provenance"]))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[2022, 2023], help="ranker seeds (default 2022 2023)")
    ap.add_argument("--report", action="store_true", help="rebuild the markdown from the recorded JSON")
    ap.add_argument("--fresh", action="store_true", help="start a new record (the old JSON is replaced)")
    args = ap.parse_args(argv)
    cfg = CrossMarketConfig(progress=False)
    config = {"pipeline": json.loads(json.dumps(asdict(cfg), default=str)), "target": "t1"}
    record = {"config": config, "runs": []} if args.fresh else load_record(config)
    if not args.report:
        record["provenance"] = provenance(config, "cpu")
        if markets_dir() is None:
            print("XMRec data not found: set XMREC_MARKETS_DIR", file=sys.stderr)
            return 2
        result = run_target("t1", config=cfg)
        leaky = None
        done = {(r["protocol"], r["seed"]) for r in record["runs"]}
        for label, elements, leak in settings():
            missing = [seed for seed in args.seeds if (label, seed) not in done]
            if not missing:
                continue
            if leak and leaky is None:
                leaky = leaky_features(result)

            # LightGBM (one thread per model) releases the GIL: the seeds train side by side
            with ThreadPoolExecutor(len(missing)) as pool:
                for run in pool.map(partial(timed_run, result, elements, leaky if leak else None), missing):
                    run.update(protocol=label, elements=", ".join(elements) or "none", leak=leak)
                    record["runs"].append(run)
                    atomic_write_text(JSON, json.dumps(record, indent=2))
                    print(
                        f"{label} seed {run['seed']}: NDCG@10 {run['ndcg@10']:.4f} ({run['seconds']:.0f} s)", flush=True
                    )
    text = report(record)
    print(text)
    atomic_write_text(MD, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
