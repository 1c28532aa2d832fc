"""Converged results: each long recording read under a preset's stopping rule, with its certificate.

A recording (``shift_matrix.py`` or ``ablation.py`` run with ``xmrec.converged.RECORDING_SETS``)
keeps every epoch's validation and test metrics. This script replays the stopping rule of a preset
over every history (``xmrec.converged``): the test metrics at the epoch that rule restores. The same
replay with four times the rule's patience is the certificate: every lesson (a difference paired by
seed) is given with its spread over seeds and how far the certificate moves it; it *holds* when the
move is within the spread. The rule comes from the preset (protocols live in presets); the report
says whether it is the one ``benchmarks/results/stopping_rule.json`` chose.

Studies (``--study``), each from ``benchmarks/results/<recorded>.json`` to ``<out>.{json,md}``:

- ``shift``: the shift matrix (GRU4Rec and SASRec, base and Ada, trained on mixer and uniform, tested
  under six samplers): ``shift_matrix_recorded`` -> ``shift_matrix``;
- ``seven``: the paper's main-table protocol, seven models on matched mixer lists:
  ``seven_models_recorded`` -> ``seven_models``;
- ``ablation``: notebook 06's variants on its teaching set: ``ablation_recorded`` -> ``ablation``.

The recordings (resumable; they share the run store ``<data dir>/runs``, so the seven-model
table reads the shift matrix's mixer-trained GRU4Rec and SASRec runs back instead of training them):

    R="--patience 40 --epochs 300 --set train.test_every_epoch=true \\
       --set train.test_samplers=mixer,uniform,popularity,category,unpopular,other-category"
    .venv/bin/python benchmarks/shift_matrix.py $R                            # shift: 24 trainings
    .venv/bin/python benchmarks/shift_matrix.py $R --train-samplers mixer --seeds 2025 2026   # + 8
    .venv/bin/python benchmarks/shift_matrix.py $R --models MF GRU4Rec SASRec NARM NextItNet SRGNN SHAN \\
        --train-samplers mixer --seeds 2022 2023 --out benchmarks/results/seven_models_recorded   # seven: 28
    .venv/bin/python benchmarks/shift_matrix.py $R --models MF GRU4Rec SASRec NARM \\
        --train-samplers mixer --seeds 2024 --out benchmarks/results/seven_models_recorded        # + 8
    .venv/bin/python benchmarks/shift_matrix.py $R --models SRGNN \\
        --train-samplers mixer --seeds 2024 --out benchmarks/results/seven_models_recorded        # + 2
    .venv/bin/python benchmarks/ablation.py                                   # ablation: 18
    .venv/bin/python benchmarks/stopping_rule.py                              # the rule (small-data)
    .venv/bin/python benchmarks/stopping_rule.py --study ablation --out benchmarks/results/stopping_rule_teaching
    .venv/bin/python benchmarks/converged.py --study shift                    # and seven, ablation

The same commands with ``--patience 80 --fresh`` (``--fresh`` on the first of each study only: the
results file's protocol changes) extend every stored recording to the certificate of the
``small-data`` rule (patience 20 -> 80): each run resumes from its patience-40 recording
(``RunStore.extend``) and trains only the epochs it lacks.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PAPER = {"GRU4Rec": ("ML-10M", 0.9187, 0.9279)}  # Ada-Ranker paper, test GAUC base -> Ada (end-to-end)


@dataclass(frozen=True)
class Study:
    recorded: str  # the recording's results name
    out: str  # the converged results' name
    preset: str  # whose stopping rule is replayed
    keys: tuple  # what names a training
    arm: str  # the column that tells the runs compared within a model ("mode", or "variant")
    planned: int  # trainings the study's recording plans (its command's defaults)
    rule_study: str = "stopping_rule"  # the results name of the stopping-rule study that chose the preset's rule


TRAINING = ("model", "mode", "train_sampler", "seed")
STUDIES = {
    # 3 seeds of 8 trainings, and seeds 2025-2026 of the 4 mixer-trained ones (their spread was as large as the effect)
    "shift": Study("shift_matrix_recorded", "shift_matrix", "small-data", TRAINING, "mode", 32),
    # 7 models x 2 modes x 2 seeds, and a third seed where the spread was as large as the effect (MF, GRU4Rec,
    # SASRec, NARM: the shift matrix's store holds GRU4Rec's and SASRec's; SRGNN, whose certificate found one
    # seed of two leaving the collapse the other keeps)
    "seven": Study("seven_models_recorded", "seven_models", "small-data", TRAINING, "mode", 38),
    "ablation": Study(
        "ablation_recorded", "ablation", "teaching", ("variant", *TRAINING), "variant", 18, "stopping_rule_teaching"
    ),
}


# -- lessons ---------------------------------------------------------------------------------------
def _frame(group) -> pd.DataFrame:
    """Mean, spread (std over seeds) and seed count of each column of per-seed values, per group."""
    out = group.mean().add_suffix("_mean").join(group.std(ddof=1).add_suffix("_std"))
    out["n_seeds"] = group.size()
    return out


def shift_headline(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (model, training sampler): what shift costs base and Ada (matched minus the mean over the
    shifted test sets) and what Ada buys back there (Ada - base on the shifted sets), over seeds."""
    from xmrec.shift_matrix import paired_runs

    rows = paired_runs(rows)
    keys = ["model", "train_sampler", "seed"]
    matched = rows[rows.test_sampler == rows.train_sampler].pivot_table(index=keys, columns="mode", values="gauc")
    shifted = rows[rows.test_sampler != rows.train_sampler].pivot_table(index=keys, columns="mode", values="gauc")
    per_seed = pd.DataFrame(
        {
            "base_drop": matched["base"] - shifted["base"],
            "ada_drop": matched["ada"] - shifted["ada"],
            "diff": shifted["ada"] - shifted["base"],
        }
    ).reset_index()
    return _frame(per_seed.groupby(["model", "train_sampler"], sort=False)[["base_drop", "ada_drop", "diff"]])


def arm_gains(rows: pd.DataFrame, arm: str, metric: str = "gauc") -> pd.DataFrame:
    """Per (model, arm) other than the base: ``metric`` of the arm minus the base of the same model and
    seed (``diff``, ``xmrec.stats.seed_differences``), over seeds, with how many seeds the arm is
    ahead (matched lists only)."""
    from xmrec.stats import seed_differences

    rows = rows[rows.test_sampler == rows.train_sampler]
    diffs = seed_differences(rows.assign(label=rows[arm]), [metric]).rename(columns={"label": arm, metric: "diff"})
    out = _frame(diffs.groupby(["model", arm], sort=False)[["diff"]])
    out["ahead"] = diffs.assign(ahead=diffs["diff"] > 0).groupby(["model", arm], sort=False)["ahead"].sum()
    return out


def lessons(study: str, rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The study's lessons as frames indexed by cell, with ``<lesson>_mean`` and ``<lesson>_std``."""
    from xmrec.shift_matrix import summarize

    if study == "shift":
        cells = summarize(rows, "gauc").set_index(["model", "train_sampler", "test_sampler"])
        return {"cells": cells, "headline": shift_headline(rows)}
    return {"gains": arm_gains(rows, STUDIES[study].arm)}


LESSON_COLUMNS = {
    "cells": ("diff", "base_drop", "ada_drop"),
    "headline": ("base_drop", "ada_drop", "diff"),
    "gains": ("diff",),
}


# -- the record --------------------------------------------------------------------------------------
def chosen_rule(study: str) -> tuple[str, dict] | None:
    """What the study's stopping-rule study settled on: ("chosen" or "provisional", the rule's fields)."""
    path = RESULTS / f"{STUDIES[study].rule_study}.json"
    if not path.exists():
        return None
    result = json.loads(path.read_text())
    for kind in ("choice", "provisional"):
        if result.get(kind):
            fields = next(r["fields"] for r in result["rules"] if r["rule"] == result[kind])
            return ("chosen" if kind == "choice" else "provisional"), fields
    return None


def describe(rule: dict) -> str:
    """A rule's fields in words."""
    stop = f"patience {rule['patience']}" if rule["patience_lists"] is None else f"{rule['patience_lists']:,} lists"
    if rule["min_loss_drop"] is not None:
        stop += f" (not while the training loss falls by more than {rule['min_loss_drop']:.0%} per epoch)"
    return f"{stop} on the validation {rule['valid_metric'].upper()}"


def preset_rule(preset: str):
    """The stopping rule of a preset (``TrainConfig.stopping``)."""
    from xmrec.overrides import preset_configs

    return preset_configs(preset, "base")["train"].stopping


def converged(study: str, recorded: dict, rule, preset: str) -> dict:
    """The converged record under ``rule`` (``preset``'s): the rule's rows and the certificate's (in
    ``runs``) and every lesson with what the certificate did to it."""
    from xmrec.converged import CERTIFICATE_FACTOR, cell_moves, replayed_rows, with_patience

    spec = STUDIES[study]
    trainings = [r for r in recorded["runs"] if r.get("history")]
    certificate = with_patience(rule, CERTIFICATE_FACTOR)
    rows = replayed_rows(trainings, rule, spec.keys)
    checks = replayed_rows(trainings, certificate, spec.keys, check=True)
    mine, theirs = lessons(study, pd.DataFrame(rows)), lessons(study, pd.DataFrame(checks))
    found = {}
    for name, frame in mine.items():
        moves = cell_moves(frame, theirs[name], LESSON_COLUMNS[name])
        certified = theirs[name].reindex(frame.index)
        frame = frame.copy()
        frame["certificate_pending"] = pending_cells(frame, checks)
        for lesson in LESSON_COLUMNS[name]:
            m = moves[moves.lesson == lesson].set_index("cell")
            for stat in ("mean", "std"):  # what the certificate reads: the lesson to give where it moves
                frame[f"{lesson}_certificate_{stat}"] = certified[f"{lesson}_{stat}"]
            frame[f"{lesson}_move"] = [m.move.get(c, np.nan) for c in frame.index]
            frame[f"{lesson}_holds"] = [
                None if pending else m.holds.get(c) for c, pending in zip(frame.index, frame.certificate_pending)
            ]
        found[name] = frame.reset_index().to_dict("records")
    incomplete = sorted({r["run"] for r in rows if not r["complete"]})
    pending = sorted({r["run"] for r in checks if not r["complete"]} - set(incomplete))
    status = None  # no stopping-rule study has settled on a rule
    if (settled := chosen_rule(study)) is not None:
        kind, fields = settled
        status = kind if all(asdict(rule)[k] == v for k, v in fields.items()) else "other"
    return {
        "rule": {"preset": preset, **asdict(rule), "study_status": status, "study": spec.rule_study},
        "certificate": asdict(certificate),
        "incomplete": incomplete,
        "certificate_pending": pending,
        "trainings": len(trainings),
        "planned": recorded.get("planned", spec.planned),
        "lessons": found,
        "runs": rows + checks,
    }


def pending_cells(frame: pd.DataFrame, checks: list[dict]) -> list[bool]:
    """Per cell of a lesson frame: whether a training of its model (and training sampler, when the
    cell has one) has a certificate replay that ran past the end of its recording. Such a
    certificate is *pending*: it cannot be read until the recording is extended (``RunStore.extend``)."""
    open_runs = [r for r in checks if not r["complete"]]
    keys = [k for k in ("model", "train_sampler") if k in frame.index.names]
    found = {tuple(r[k] for k in keys) for r in open_runs}
    return [tuple(c) in found for c in frame.index.to_frame(index=False)[keys].itertuples(index=False)]


# -- the report ----------------------------------------------------------------------------------------
def points(mean: float, std: float = float("nan")) -> str:
    """A difference in points (0.01 GAUC), signed, with its spread over seeds when there is one."""
    if mean != mean:
        return "not yet"
    return f"{mean * 100:+.2f}" + ("" if std != std else f" ± {std * 100:.2f}")


def verdict(row: dict, lesson: str) -> str:
    """What the certificate did to one lesson."""
    move, holds = row[f"{lesson}_move"], row[f"{lesson}_holds"]
    if row.get("certificate_pending"):
        return "pending (the recordings end first)"
    if move != move:
        return "not yet"
    if holds is None:
        return f"moves {move * 100:.2f} (one seed: no spread)"
    if holds:
        return f"holds (moves {move * 100:.2f})"
    certified = points(row[f"{lesson}_certificate_mean"], row[f"{lesson}_certificate_std"])
    return f"**moves {move * 100:.2f}, beyond its spread**: it reads {certified}"


def header(result: dict) -> list[str]:
    from xmrec.provenance import as_markdown, command_chain

    rule, cert, source = result["rule"], result["certificate"], result["source"]
    status = {
        None: "no rule is chosen yet",
        "chosen": "the stopping-rule study's choice",
        "provisional": "the stopping-rule study's provisional rule",
        "other": "NOT the study's rule",
    }
    lines = [
        as_markdown(result["provenance"]),
        f"Source: `{source['file']}` ({result['trainings']} trainings recorded"
        + (f" of {result['planned']} planned" if result["planned"] else "")
        + "; recorded by "
        + command_chain(source["commands"])
        + " at commit(s) "
        + f"{', '.join(source['commits'])}"
        + (
            "; its runs extend shorter recordings made by " + command_chain(source["extends"])
            if source.get("extends")
            else ""
        )
        + ").  ",
        f"Rule: the `{rule['preset']}` preset's, {describe(rule)} ({status[rule['study_status']]}, "
        f"`benchmarks/results/{rule['study']}.md`), replayed over each recorded history: the test metrics of the "
        f"epoch it restores. Certificate: the same replay with {describe(cert)}.\n",
        "Points = 0.01 GAUC. A difference is paired by seed (the two runs of a seed share their data and "
        "initialisation seed), shown as mean ± std over seeds. A lesson *holds* when the certificate moves it by no "
        "more than that spread; with one seed there is no spread to judge by.\n",
    ]
    if result["incomplete"]:
        lines.append(
            f"**{len(result['incomplete'])} training(s) ended before the rule would have stopped**: their rows are "
            f"not converged ({', '.join(result['incomplete'])}).\n"
        )
    if result.get("certificate_pending"):
        lines.append(
            f"**Certificates pending**: {len(result['certificate_pending'])} recording(s) end before the "
            f"certificate's {describe(cert)} would have stopped, so the lessons that read them are marked "
            "*pending*, neither holding nor moving. Extending the recordings to the certificate's patience "
            "(the recording command with a larger `--patience`: `RunStore.extend` trains only the epochs they "
            "lack) settles them.\n"
        )
    return lines


def shift_report(result: dict) -> list[str]:
    lessons = result["lessons"]
    lines = [
        "## Headline: what shift costs, and what Ada-Ranker buys back\n",
        "Drop = matched test GAUC minus the mean over the five shifted test sets (positive: the shift costs that "
        "much). Ada - base = the mean over the shifted sets.\n",
        "| model | trained on | seeds | base drop | Ada drop | Ada - base on shifted lists | certificate "
        "(base drop / Ada drop / Ada - base) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in lessons["headline"]:
        cells = [points(r[f"{k}_mean"], r[f"{k}_std"]) for k in ("base_drop", "ada_drop", "diff")]
        cert = " / ".join(verdict(r, k) for k in ("base_drop", "ada_drop", "diff"))
        lines.append(f"| {r['model']} | {r['train_sampler']} | {r['n_seeds']} | " + " | ".join(cells) + f" | {cert} |")
    for model in dict.fromkeys(r["model"] for r in lessons["cells"]):
        lines += [
            f"\n## {model}, test GAUC per cell\n",
            "| trained on | tested on | base | Ada | Ada - base (points) | Ada ahead | base drop | Ada drop | "
            "certificate of Ada - base |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in (c for c in lessons["cells"] if c["model"] == model):
            matched = " (matched)" if r["test_sampler"] == r["train_sampler"] else ""
            lines.append(
                f"| {r['train_sampler']} | {r['test_sampler']}{matched} | {r['base_mean']:.4f} | {r['ada_mean']:.4f} | "
                f"{points(r['diff_mean'], r['diff_std'])} | {int(r['ada_ahead'])}/{int(r['n_seeds'])} | "
                f"{points(r['base_drop_mean'], r['base_drop_std'])} | {points(r['ada_drop_mean'], r['ada_drop_std'])} | "
                f"{verdict(r, 'diff')} |"
            )
    return lines


def mean_std(values: pd.Series) -> str:
    from xmrec.stats import mean_spread

    return mean_spread(values.mean(), values.std(ddof=1) if len(values) > 1 else float("nan"))


def seven_report(result: dict) -> list[str]:
    from xmrec.converged import split_runs
    from xmrec.models import MODEL_NAMES

    rows, _ = split_runs(result["runs"])
    rows = rows[rows.test_sampler == rows.train_sampler]
    order = {"model": {m: i for i, m in enumerate(MODEL_NAMES)}, "mode": {"base": 0, "ada": 1}}  # the paper's order
    rows = rows.sort_values(["model", "mode"], key=lambda column: column.map(order[column.name]), kind="stable")
    gains = {r["model"]: r for r in sorted(result["lessons"]["gains"], key=lambda r: order["model"][r["model"]])}
    lines = [
        "## Base and Ada-Ranker (end-to-end) on matched mixer lists\n",
        "| model | mode | seeds | test GAUC | NDCG@10 | HR@10 | MRR | best epoch | epochs run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (model, mode), g in rows.groupby(["model", "mode"], sort=False):
        cells = " | ".join(mean_std(g[m]) for m in ("gauc", "ndcg@10", "hit@10", "mrr"))
        lines.append(
            f"| {model} | {mode} | {len(g)} | {cells} | {g.best_epoch.mean():.1f} | {g.epochs_run.mean():.1f} |"
        )
    lines += [
        "\n## Ada - base, paired by seed, beside the paper\n",
        "| model | seeds | Ada - base GAUC (points) | Ada ahead | certificate | paper: dataset, base -> Ada | "
        "paper Ada - base | same sign |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in gains.values():
        paper = PAPER.get(r["model"])
        if paper:
            data, base, ada = paper
            agrees = "yes" if np.sign(ada - base) == np.sign(r["diff_mean"]) else "no"
            ref = f"{data}, {base:.4f} -> {ada:.4f} | {points(ada - base)} | {agrees}"
        else:
            ref = "not known to the kit | | "
        lines.append(
            f"| {r['model']} | {int(r['n_seeds'])} | {points(r['diff_mean'], r['diff_std'])} | "
            f"{int(r['ahead'])}/{int(r['n_seeds'])} | {verdict(r, 'diff')} | {ref} |"
        )
    return lines


def ablation_report(result: dict) -> list[str]:
    from xmrec.converged import split_runs

    rows, _ = split_runs(result["runs"])
    gains = {r["variant"]: r for r in result["lessons"]["gains"]}
    lines = [
        "## Each variant against the base model (teaching set, matched mixer lists)\n",
        "| variant | seeds | test GAUC | NDCG@10 | best epoch | epochs run | variant - base GAUC (points) | ahead | "
        "certificate |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, g in rows.groupby("variant", sort=False):
        r = gains.get(variant)
        gain = (
            "the reference | |"
            if r is None
            else f"{points(r['diff_mean'], r['diff_std'])} | {int(r['ahead'])}/{int(r['n_seeds'])} | {verdict(r, 'diff')}"
        )
        lines.append(
            f"| {variant} | {len(g)} | {mean_std(g.gauc)} | {mean_std(g['ndcg@10'])} | {g.best_epoch.mean():.1f} | "
            f"{g.epochs_run.mean():.1f} | {gain} |"
        )
    return lines


TITLES = {
    "shift": ("# The shift matrix on ML-100K, converged", shift_report),
    "seven": ("# Seven base models and their Ada-Ranker on ML-100K, converged", seven_report),
    "ablation": ("# The ablation of notebook 06 on its teaching set, converged", ablation_report),
}


def main(argv=None) -> int:
    from xmrec.io import atomic_write_text
    from xmrec.provenance import provenance
    from xmrec.runs import lineage_commands

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--study", choices=list(STUDIES), required=True)
    p.add_argument("--preset", default=None, help="whose stopping rule to replay (default: the study's preset)")
    p.add_argument("--recorded", type=Path, default=None, help="the recording (default results/<recorded>.json)")
    p.add_argument("--out", type=Path, default=None, help="results path without suffix (default results/<out>)")
    args = p.parse_args(argv)
    spec = STUDIES[args.study]
    source = args.recorded or RESULTS / f"{spec.recorded}.json"
    out = args.out or RESULTS / spec.out
    recorded = json.loads(source.read_text())
    preset = args.preset or spec.preset
    result = converged(args.study, recorded, preset_rule(preset), preset)
    commits = sorted({str(r.get("commit") or recorded["provenance"]["commit"])[:10] for r in recorded["runs"]})
    result["source"] = {
        "file": str(source.relative_to(ROOT) if source.is_relative_to(ROOT) else source),
        "commands": recorded.get("commands") or [recorded["provenance"]["command"]],
        "commits": commits,
        "extends": lineage_commands(recorded["runs"]),
    }
    command = ["python", f"benchmarks/{Path(__file__).name}", *(argv if argv is not None else sys.argv[1:])]
    result = {"provenance": provenance({k: str(v) for k, v in vars(args).items()}, "cpu", command), **result}
    atomic_write_text(out.with_suffix(".json"), json.dumps(result, indent=1, default=float))
    title, body = TITLES[args.study]
    text = "\n".join([title + "\n", *header(result), *body(result)]) + "\n"
    atomic_write_text(out.with_suffix(".md"), text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
