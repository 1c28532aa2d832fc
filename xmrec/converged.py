"""Long recorded trainings read under a stopping rule: converged results and their certificates.

A *recording* trains with a generous patience and keeps, at every epoch, the validation metrics
(which select the epoch) and the test metrics of every test sampler's lists (which select
nothing: ``train.test_every_epoch``, ``train.test_samplers``). Replaying a stopping rule over a
history (:func:`xmrec.training.stopping.replay`) gives the test metrics at the epoch that rule
would have restored, with no training of its own. The same replay with
:data:`CERTIFICATE_FACTOR` times the rule's patience is the rule's *convergence certificate*: a
lesson (a difference between two groups of runs, paired by seed) stands only if the certificate
moves it by no more than its spread over seeds.

A results file of converged runs holds, in ``runs``, one entry per training and test sampler under
the rule, and the certificate's entries beside them, marked ``"patience_check": true`` with their
own ``patience``. :func:`split_runs` separates the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pandas as pd

from xmrec.training.stopping import StoppingRule, replay

__all__ = [
    "RECORDING_SETS",
    "CERTIFICATE_FACTOR",
    "METRICS",
    "with_patience",
    "replayed_rows",
    "split_runs",
    "cell_moves",
]

RECORDING_SETS = (  # over any preset: train long, and keep every epoch's test metrics under every sampler
    "train.patience=40",
    "train.epochs=300",
    "train.test_every_epoch=true",
    "train.test_samplers=mixer,uniform,popularity,category,unpopular,other-category",
)
CERTIFICATE_FACTOR = 4  # the certificate replays the rule with this many times its patience
METRICS = ("gauc", "ndcg@10", "hit@10", "mrr")  # the test metrics recorded per sampler at every epoch


def with_patience(rule: StoppingRule, factor: int) -> StoppingRule:
    """``rule`` with ``factor`` times its patience (in epochs, or in lists when it counts lists)."""
    if rule.patience_lists is not None:
        return replace(rule, patience_lists=rule.patience_lists * factor)
    return replace(rule, patience=rule.patience * factor)


def _test_samplers(history: Sequence[dict]) -> list[str]:
    """The test samplers whose metrics a recorded history holds (``test@<sampler>_gauc`` keys)."""
    return [k[len("test@") : -len("_gauc")] for k in history[0] if k.startswith("test@") and k.endswith("_gauc")]


def replayed_rows(
    trainings: Sequence[dict], rule: StoppingRule, keys: Sequence[str], check: bool = False
) -> list[dict]:
    """One row per training and test sampler: the test metrics at the epoch ``rule`` restores.

    ``trainings`` are recorded rows that carry a ``history`` (recorded with every test sampler's
    metrics) and the ``keys`` that name a training (e.g. model, mode, train sampler, seed).
    Each row also says ``best_epoch``, ``epochs_run`` (where the rule stopped), ``complete``
    (False: the recording ended before the rule would have stopped, so the row is not valid),
    ``patience`` and ``patience_check`` (``check``: a certificate's row). The history goes on the
    training's matched row (its own sampler) of a rule's rows, never on a certificate's.
    """
    rows = []
    for training in trainings:
        history = training["history"]
        samplers = _test_samplers(history)
        if not samplers:
            raise ValueError(
                f"training {training.get('run', '?')} was recorded without per-sampler test metrics "
                "(train.test_every_epoch, train.test_samplers): there is nothing to replay"
            )
        r = replay(history, rule)
        common = {k: training[k] for k in keys}
        common.update(
            best_epoch=r["best_epoch"],
            epochs_run=r["stopped_at"],
            complete=r["complete"],
            patience=rule.patience if rule.patience_lists is None else None,
            patience_lists=rule.patience_lists,
            patience_check=check,
            run=training.get("run"),
        )
        mine = [
            {**common, "test_sampler": s, **{m: r["best"][k] for m in METRICS if (k := f"test@{s}_{m}") in r["best"]}}
            for s in samplers
        ]
        if not check:
            own = training.get("train_sampler")
            next((row for row in mine if row["test_sampler"] == own), mine[0])["history"] = history
        rows += mine
    return rows


def split_runs(runs: Sequence[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A converged results file's ``runs``: (the rule's rows, the certificate's rows)."""
    df = pd.DataFrame(list(runs))
    if "patience_check" not in df:
        df["patience_check"] = False
    check = df["patience_check"].fillna(False).astype(bool)
    return df[~check].drop(columns="history", errors="ignore"), df[check]


def cell_moves(rule: pd.DataFrame, certificate: pd.DataFrame, lessons: Sequence[str]) -> pd.DataFrame:
    """Per cell (the index both frames share) and lesson: the rule's mean (``<lesson>_mean``), the
    spread over seeds it must stay within, how far the certificate moves the mean (``move``) and
    whether the lesson ``holds`` (move within the spread; None with a single seed: no spread).

    The spread is the smaller of the two readings' std over seeds (``<lesson>_std``): a rule that
    cuts one seed on a plateau and not the other inflates its own spread, and must not certify
    itself by it."""
    out = []
    for cell in rule.index.intersection(certificate.index):
        for lesson in lessons:
            mean = rule.loc[cell, f"{lesson}_mean"]
            spread = min(rule.loc[cell, f"{lesson}_std"], certificate.loc[cell, f"{lesson}_std"])
            move = abs(certificate.loc[cell, f"{lesson}_mean"] - mean)
            holds = None if spread != spread else bool(move <= spread)
            out.append({"cell": cell, "lesson": lesson, "mean": mean, "spread": spread, "move": move, "holds": holds})
    return pd.DataFrame(out, columns=["cell", "lesson", "mean", "spread", "move", "holds"])
