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
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pandas as pd

from xmrec.config import resolve_device
from xmrec.data.markets import Market, list_markets, load_market, read_run
from xmrec.folders import transaction
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


class _StageClock:
    """Wall seconds per pipeline stage: ``lap(name)`` charges the time since the previous lap to ``name``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self._last
        self._last = now


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
    clock = _StageClock()
    markets, kinds = _target_markets(target, markets, data_dir, cfg, valid_run, test_run)
    clock.lap("load")
    data = CrossMarketData.from_markets(markets, target)
    cands, kinds = _candidate_lists(data, kinds)
    scorers = make_scorers(cfg, data)
    clock.lap("index")
    features = _stage_features(data, cands, scorers, cfg, clock)
    heldout = _heldout_training_lists(data, cands[VALID], scorers, cfg)
    if heldout:
        clock.lap("features_heldout")
    rows = [_scorer_row(scorer, features[VALID], cands[VALID], data, cfg) for scorer in scorers]
    rankers, ranker_rows = _fit_rankers(cfg, features, cands, heldout, data, clock)
    table = _metrics_table(rows + ranker_rows, target, kinds[VALID], cfg)
    predictions = _predictions(data, cands, rankers[cfg.objectives[0]])
    clock.lap("predictions")
    return CrossMarketResult(
        target, kinds, table, data, cands, features, rankers, predictions, heldout, clock.seconds, cfg
    )


def _target_markets(target, markets, data_dir, cfg, valid_run, test_run) -> tuple[list[Market], dict[str, str]]:
    """Every market, the target's run files overridden (or its lists sampled), and the candidate kind per stage."""
    markets = list(markets) if markets is not None else load_all_markets(data_dir, target)
    by_name = {m.name: m for m in markets}
    if target not in by_name:
        raise ValueError(f"target market {target!r} is not among {sorted(by_name)}")
    by_name[target], kinds = with_runs(
        by_name[target], _as_run(valid_run), _as_run(test_run), cfg.n_candidates, cfg.seed
    )
    return list(by_name.values()), kinds


def _candidate_lists(data: CrossMarketData, kinds: dict[str, str]) -> tuple[dict[str, Candidates], dict[str, str]]:
    """The candidate lists of each stage that has them (validation must, with a positive to evaluate)."""
    cands = {stage: c for stage in (VALID, TEST) if (c := candidates_for(data, stage, kinds[stage])) is not None}
    if not cands[VALID].labelled.any():
        raise ValueError(f"{data.target}: no validation list contains its valid_qrel positive; nothing to evaluate")
    return cands, {stage: kinds[stage] for stage in cands}


def _stage_features(data, cands, scorers, cfg, clock: _StageClock) -> dict[str, FeatureTable]:
    """Every scorer's features on each stage's candidates, in that stage's view; per-scorer seconds into ``clock``."""
    features = {}
    for stage, c in cands.items():
        features[stage] = build_features(data.view(stage), c, scorers, progress=cfg.progress)
        clock.lap(f"features_{stage}")
        for name, sec in features[stage].seconds.items():
            clock.seconds[f"{stage}:{name}"] = sec
    return features


def _heldout_training_lists(data, valid: Candidates, scorers, cfg) -> list[TrainingLists]:
    """Extra ranker training lists held out from the target's training interactions (``augment``)."""
    extra = []
    for view, lists in heldout_lists(data, valid, cfg.heldout_rounds, cfg.seed):
        table = build_features(view, lists, scorers, progress=cfg.progress)
        extra.append(TrainingLists(table, lists.labels(), lists.users, lists.items))
    return extra


def _scorer_row(scorer, valid_features: FeatureTable, valid: Candidates, data, cfg) -> dict:
    """One scorer alone on the labelled validation lists."""
    metrics = candidate_metrics(valid_features.column(scorer.primary), valid, data, cfg.ties)
    return {"method": scorer.primary, "family": "scorer", **metrics}


def _fit_rankers(cfg, features, cands, heldout, data, clock: _StageClock) -> tuple[dict[str, RankerResult], list[dict]]:
    """The LightGBM ranker per objective (user-grouped CV under ``cfg.protocol``) and its validation metrics row."""
    rankers, rows = {}, []
    ranker_cfg, inputs, ranker_extra = protocol_inputs(cfg.protocol, cfg.ranker, features, cands, heldout)
    valid = cands[VALID]
    for objective in cfg.objectives:
        rcfg = replace(ranker_cfg, objective=objective, seed=cfg.seed)
        fitted = cross_validate(
            inputs[VALID],
            valid.labels(),
            valid.users,
            inputs.get(TEST),
            rcfg,
            extra=ranker_extra,
            progress=cfg.progress,
        )
        rankers[objective] = fitted
        metrics = candidate_metrics(fitted.valid_scores, valid, data, cfg.ties)
        rows.append({"method": f"lightgbm_{objective}", "family": "ranker", **metrics})
        clock.lap(f"ranker_{objective}")
    return rankers, rows


def _metrics_table(rows: list[dict], target: str, kind: str, cfg: CrossMarketConfig) -> pd.DataFrame:
    table = pd.DataFrame(rows)
    table.insert(2, "market", target)
    table.insert(3, "candidates", kind)
    table["ties"], table["protocol"] = cfg.ties, cfg.protocol
    return table


def _predictions(data, cands: dict[str, Candidates], submitted: RankerResult) -> dict[str, pd.DataFrame]:
    """The submitted ranker's scores as prediction frames, per stage present."""
    predictions = {VALID: predictions_frame(data, cands[VALID], submitted.valid_scores)}
    if TEST in cands:
        predictions[TEST] = predictions_frame(data, cands[TEST], submitted.test_scores)
    return predictions


def write_outputs(result: CrossMarketResult, out: str | Path) -> list[Path]:
    """Write predictions, metrics, importances and the summary under ``out/<target>/``, as one
    transaction (:mod:`xmrec.folders`): the previous folder stays whole until the new one is."""
    folder = Path(out) / result.target
    with transaction(folder, kind="crossmarket", command=sys.argv) as tmp:
        names = [write_predictions(pred, tmp / PRED_FILES[stage]).name for stage, pred in result.predictions.items()]
        result.metrics.to_csv(tmp / "metrics.tsv", sep="\t", index=False, float_format="%.6f")
        names.append("metrics.tsv")
        for objective, ranker in result.rankers.items():
            ranker.importance.to_csv(tmp / f"importance_{objective}.tsv", sep="\t", index=False, float_format="%.4f")
            names.append(f"importance_{objective}.tsv")
        record = provenance(asdict(result.config), str(resolve_device(result.config.device)))
        (tmp / "summary.json").write_text(json.dumps({**result.summary(), "provenance": record}, indent=2))
        names.append("summary.json")
    return [folder / name for name in names]


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
