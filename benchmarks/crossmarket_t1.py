"""Quality and time of the cross-market pipeline on the official t1 validation candidates.

Runs the default pipeline (``xmrec.crossmarket.pipeline.run_target``) on t1, timing each stage,
and prints NDCG@10 / HR@10 of every single scorer (each ranking alone) and of the LightGBM
ranker (out-of-fold, user-grouped CV). Extras, timed apart and not part of the pipeline time:
LightGCN as a single scorer (off in the default ranker), the ranker with the lambdarank
objective, and the ranker without the held-out training lists (the winners' recipe; the
baseline measured in the same run). Targets: ranker NDCG@10 >= 0.725 (aim 0.745), best single
scorer >= 0.686, whole pipeline under 600 s on 2 cores. Appends a section to
``benchmarks/results/crossmarket_t1.md``.

    .venv/bin/python benchmarks/crossmarket_t1.py            # default pipeline + extras
    .venv/bin/python benchmarks/crossmarket_t1.py --smoke    # the notebook's fast setting, no extras
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path

from xmrec.config import markets_dir, resolve_device
from xmrec.crossmarket.evaluation import list_metrics
from xmrec.crossmarket.features import build_features
from xmrec.crossmarket.graph import VALID
from xmrec.crossmarket.pipeline import run_target
from xmrec.crossmarket.ranker import cross_validate
from xmrec.crossmarket.scorers.lightgcn import LightGCN
from xmrec.crossmarket.settings import CrossMarketConfig
from xmrec.provenance import as_markdown, provenance

RESULTS = Path(__file__).resolve().parent / "results" / "crossmarket_t1.md"
TARGET_RANKER, AIM_RANKER, TARGET_SCORER, BUDGET_S = 0.725, 0.745, 0.686, 600.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="CrossMarketConfig.smoke(), no extras")
    ap.add_argument("--data-dir", type=Path, default=None, help="XMRec market folders (default: markets_dir())")
    ap.add_argument("--lightgcn-epochs", type=int, default=150, help="epochs of the single-scorer LightGCN extra")
    args = ap.parse_args(argv)
    data_dir = args.data_dir or markets_dir()
    if data_dir is None:
        print("XMRec data not found: set XMREC_MARKETS_DIR or pass --data-dir", file=sys.stderr)
        return 2
    cfg = CrossMarketConfig.smoke() if args.smoke else CrossMarketConfig()
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    result = run_target("t1", data_dir=data_dir, config=cfg)
    total = time.perf_counter() - start
    rows = [(r["method"], r["family"], r["ndcg@10"], r["hit@10"]) for _, r in result.metrics.iterrows()]
    extras: dict[str, float] = {}
    if not args.smoke:
        valid = result.candidates[VALID]
        view = result.data.view(VALID)
        t = time.perf_counter()
        lg = LightGCN(("t1",), epochs=args.lightgcn_epochs, seed=cfg.seed)
        table = build_features(view, valid, [lg])
        m = list_metrics(table.column(lg.primary), valid.positive)
        extras[f"{lg.name} single scorer ({args.lightgcn_epochs} epochs)"] = time.perf_counter() - t
        rows.append((f"{lg.primary} ({args.lightgcn_epochs} epochs, extra)", "scorer", m["ndcg@10"], m["hit@10"]))
        for label, objective, use_extra in (
            ("lightgbm_lambdarank (extra)", "lambdarank", True),
            ("lightgbm_binary on the validation lists only (the winners' recipe, honest protocol)", "binary", False),
        ):
            t = time.perf_counter()
            rcfg = replace(cfg.ranker, objective=objective, seed=cfg.seed)
            extra = result.heldout if use_extra else ()
            res = cross_validate(result.features[VALID], valid.labels(), valid.users, None, rcfg, extra=extra)
            m = list_metrics(res.valid_scores, valid.positive)
            extras[label.replace(" (extra)", "")] = time.perf_counter() - t
            rows.append((label, "ranker", m["ndcg@10"], m["hit@10"]))
    record = provenance({"args": vars(args), "config": asdict(cfg)}, str(resolve_device(cfg.device)))
    report = _report(args, cfg, result, rows, total, extras, load_before) + "\n" + as_markdown(record)
    print(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS, "a") as fh:
        fh.write(report + "\n")
    return 0


def _report(args, cfg, result, rows, total, extras, load_before) -> str:
    ranker = max(r[2] for r in rows if r[0] == f"lightgbm_{cfg.objectives[0]}")
    best = max((r for r in rows if r[1] == "scorer" and "extra" not in r[0]), key=lambda r: r[2])
    pop = next(r[2] for r in rows if r[0] == "pop:count_target")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## {stamp} — t1 {'smoke' if args.smoke else 'default'} pipeline",
        "",
        f"Command: `.venv/bin/python benchmarks/crossmarket_t1.py{' --smoke' if args.smoke else ''}` · "
        f"{platform.node()} ({os.cpu_count()} cores, load average before {load_before:.1f}, "
        f"after {os.getloadavg()[0]:.1f}; other processes shared the cores) · "
        f"candidates: valid={result.kinds[VALID]} · {len(result.features[VALID].names)} features · "
        f"{cfg.heldout_rounds} held-out rounds · {cfg.ranker.n_folds} folds",
        "",
        "| method | family | NDCG@10 | HR@10 | NDCG@10 / popularity |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {m} | {f} | {n:.4f} | {h:.4f} | {n / pop:.2f}x |" for m, f, n, h in rows]
    lines += ["", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in result.seconds.items() if ":" not in k]
    lines += [f"| **pipeline total** | **{total:.1f}** |"]
    lines += [f"| {k} (extra) | {v:.1f} |" for k, v in extras.items()]
    per_scorer = {}
    for k, v in result.seconds.items():
        if ":" in k:
            per_scorer[k.split(":", 1)[1]] = per_scorer.get(k.split(":", 1)[1], 0.0) + v
    lines += ["", "Scorer seconds (valid + test): " + ", ".join(f"{k} {v:.1f}" for k, v in per_scorer.items())]
    verdict = [
        f"ranker {ranker:.4f} vs target {TARGET_RANKER} ({'met' if ranker >= TARGET_RANKER else 'NOT met'}; "
        f"aim {AIM_RANKER})",
        f"best single scorer {best[0]} {best[2]:.4f} vs {TARGET_SCORER} "
        f"({'met' if best[2] >= TARGET_SCORER else 'NOT met'})",
        f"time {total:.0f} s vs {BUDGET_S:.0f} s ({'met' if total <= BUDGET_S else 'NOT met'})",
    ]
    lines += ["", "Targets: " + "; ".join(verdict), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
