"""The cross-market ranking pipeline for one target market, end to end.

1. load every market of the data directory (or take given ``Market`` objects); the target's run
   files may be overridden by path, and a target without ``valid_run`` gets sampled lists;
2. index all markets together (``graph``) and build the validation view (no target
   validation positives) and the test view (with them);
3. compute every scorer's features on the validation and test candidates, and on lists held
   out from the target's own training interactions (``augment``: extra training lists);
4. evaluate each scorer alone on the labelled validation lists;
5. fit the LightGBM ranker with user-grouped CV on the validation lists plus the held-out lists
   (out-of-fold validation scores, fold-mean test scores) for each objective; the first objective's scores are the submitted predictions;
6. optionally write ``OUT/<target>/valid_pred.tsv``, ``test_pred.tsv``, ``metrics.tsv``,
   ``importance.tsv`` and ``summary.json``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pandas as pd

from xmrec.config import resolve_device
from xmrec.data.markets import Market, list_markets, load_market, read_run
from xmrec.io import atomic_path, atomic_write_text
from xmrec.provenance import provenance

from .augment import heldout_lists
from .candidates import Candidates, candidates_for, with_runs
from .evaluation import candidate_metrics
from .features import FeatureTable, build_features
from .graph import TEST, VALID, CrossMarketData
from .protocol import protocol_inputs
from .ranker import RankerResult, TrainingLists, cross_validate
from .settings import CrossMarketConfig, make_scorers
from .submission import PRED_FILES, predictions_frame, write_predictions

__all__ = ["CrossMarketResult", "run_target", "write_outputs", "run_crossmarket", "load_all_markets"]


@dataclass
class CrossMarketResult:
    """Everything one run produced; ``metrics`` is the table to read first."""

    target: str
    kinds: dict[str, str]  # candidate kind per stage: official, given or sampled
    metrics: pd.DataFrame  # method, family (scorer/ranker), market, candidates, ndcg@10, hit@10, mrr, n_users
    data: CrossMarketData
    candidates: dict[str, Candidates]  # per stage present
    features: dict[str, FeatureTable]  # per stage present
    rankers: dict[str, RankerResult]  # per objective
    predictions: dict[str, pd.DataFrame]  # per stage: userId, itemId, score (the submitted ranker)
    heldout: list[TrainingLists] = field(default_factory=list)  # the extra training lists (augment)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per stage
    config: CrossMarketConfig = field(default_factory=CrossMarketConfig)

    @property
    def best_scorer(self) -> pd.Series:
        scorers = self.metrics[self.metrics["family"] == "scorer"]
        return scorers.loc[scorers["ndcg@10"].idxmax()]

    def summary(self) -> dict:
        """A JSON-ready digest: candidate kinds, ranker and best-scorer figures, stage times."""
        ranker = self.metrics[self.metrics["family"] == "ranker"]
        best = self.best_scorer
        return {
            "target": self.target,
            "candidates": self.kinds,
            "ranker": {
                r["method"]: {"ndcg@10": round(r["ndcg@10"], 4), "hit@10": round(r["hit@10"], 4)}
                for _, r in ranker.iterrows()
            },
            "best_scorer": {
                "method": best["method"],
                "ndcg@10": round(best["ndcg@10"], 4),
                "hit@10": round(best["hit@10"], 4),
            },
            "n_valid_users": int(best["n_users"]),
            "ties": self.config.ties,
            "protocol": self.config.protocol,
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        }


def load_all_markets(data_dir=None, target: str | None = None) -> list[Market]:
    """Every market of ``data_dir``; a missing target is reported with the markets found."""
    names = list_markets(data_dir)
    if target is not None and target not in names:
        raise FileNotFoundError(
            f"target market {target!r} not found in {data_dir or 'the XMRec data directory'}; markets there: {names}"
        )
    return [load_market(n, data_dir) for n in names]


def _as_run(run) -> pd.DataFrame | None:
    if run is None or isinstance(run, pd.DataFrame):
        return run
    return read_run(run, n_candidates=None)


def run_target(
    target: str,
    markets: Sequence[Market] | None = None,
    data_dir=None,
    config: CrossMarketConfig | None = None,
    valid_run=None,
    test_run=None,
) -> CrossMarketResult:
    """Run the pipeline (module docstring) for ``target``; ``valid_run``/``test_run`` are paths or frames."""
    cfg = config or CrossMarketConfig()
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = seconds.get(name, 0.0) + now - clock
        clock = now

    markets = list(markets) if markets is not None else load_all_markets(data_dir, target)
    by_name = {m.name: m for m in markets}
    if target not in by_name:
        raise ValueError(f"target market {target!r} is not among {sorted(by_name)}")
    by_name[target], kinds = with_runs(
        by_name[target], _as_run(valid_run), _as_run(test_run), cfg.n_candidates, cfg.seed
    )
    lap("load")
    data = CrossMarketData.from_markets(by_name.values(), target)
    cands = {stage: c for stage in (VALID, TEST) if (c := candidates_for(data, stage, kinds[stage])) is not None}
    if not cands[VALID].labelled.any():
        raise ValueError(f"{target}: no validation list contains its valid_qrel positive; nothing to evaluate")
    kinds = {stage: kinds[stage] for stage in cands}
    scorers = make_scorers(cfg, data)
    lap("index")

    features: dict[str, FeatureTable] = {}
    for stage, c in cands.items():
        features[stage] = build_features(data.view(stage), c, scorers, progress=cfg.progress)
        lap(f"features_{stage}")
        for name, sec in features[stage].seconds.items():
            seconds[f"{stage}:{name}"] = sec
    extra = []
    for view, lists in heldout_lists(data, cands[VALID], cfg.heldout_rounds, cfg.seed):
        table = build_features(view, lists, scorers, progress=cfg.progress)
        extra.append(TrainingLists(table, lists.labels(), lists.users, lists.items))
    if extra:
        lap("features_heldout")

    valid = cands[VALID]
    rows = []
    for scorer in scorers:
        m = candidate_metrics(features[VALID].column(scorer.primary), valid, data, cfg.ties)
        rows.append({"method": scorer.primary, "family": "scorer", **m})
    rankers: dict[str, RankerResult] = {}
    ranker_cfg, inputs, ranker_extra = protocol_inputs(cfg.protocol, cfg.ranker, features, cands, extra)
    for objective in cfg.objectives:
        rcfg = replace(ranker_cfg, objective=objective, seed=cfg.seed)
        rankers[objective] = cross_validate(
            inputs[VALID],
            valid.labels(),
            valid.users,
            inputs.get(TEST),
            rcfg,
            extra=ranker_extra,
            progress=cfg.progress,
        )
        m = candidate_metrics(rankers[objective].valid_scores, valid, data, cfg.ties)
        rows.append({"method": f"lightgbm_{objective}", "family": "ranker", **m})
        lap(f"ranker_{objective}")
    metrics = pd.DataFrame(rows)
    metrics.insert(2, "market", target)
    metrics.insert(3, "candidates", kinds[VALID])
    metrics["ties"], metrics["protocol"] = cfg.ties, cfg.protocol

    submitted = rankers[cfg.objectives[0]]
    predictions = {VALID: predictions_frame(data, valid, submitted.valid_scores)}
    if TEST in cands:
        predictions[TEST] = predictions_frame(data, cands[TEST], submitted.test_scores)
    lap("predictions")
    return CrossMarketResult(target, kinds, metrics, data, cands, features, rankers, predictions, extra, seconds, cfg)


def write_outputs(result: CrossMarketResult, out: str | Path) -> list[Path]:
    """Write predictions, metrics, importances and the summary under ``out/<target>/``."""
    folder = Path(out) / result.target
    paths = [write_predictions(pred, folder / PRED_FILES[stage]) for stage, pred in result.predictions.items()]
    with atomic_path(folder / "metrics.tsv") as tmp:
        result.metrics.to_csv(tmp, sep="\t", index=False, float_format="%.6f")
    paths.append(folder / "metrics.tsv")
    for objective, ranker in result.rankers.items():
        path = folder / f"importance_{objective}.tsv"
        with atomic_path(path) as tmp:
            ranker.importance.to_csv(tmp, sep="\t", index=False, float_format="%.4f")
        paths.append(path)
    record = provenance(asdict(result.config), str(resolve_device(result.config.device)))
    atomic_write_text(folder / "summary.json", json.dumps({**result.summary(), "provenance": record}, indent=2))
    paths.append(folder / "summary.json")
    return paths


def run_crossmarket(
    target: str,
    data_dir=None,
    out=None,
    valid_run=None,
    test_run=None,
    seed: int = 2022,
    smoke: bool = False,
    config: CrossMarketConfig | None = None,
) -> dict:
    """The CLI entry: run ``target``, write ``out/<target>/...`` when ``out`` is given, return the summary."""
    cfg = config or (CrossMarketConfig.smoke() if smoke else CrossMarketConfig())
    cfg = replace(cfg, seed=seed)
    result = run_target(target, data_dir=data_dir, config=cfg, valid_run=valid_run, test_run=test_run)
    summary = result.summary()
    if out is not None:
        summary["files"] = [str(p) for p in write_outputs(result, out)]
    return summary
