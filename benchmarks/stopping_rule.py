"""Which stopping rule? Replay candidate rules over trainings recorded with a generous one.

The trainings come from a shift-matrix record made with a long patience and, at every epoch, the
test metrics of every test sampler's lists (they select nothing; ``xmrec.training.stopping``):

    .venv/bin/python benchmarks/shift_matrix.py --patience 40 --epochs 300 \\
        --set train.test_every_epoch=true \\
        --set train.test_samplers=mixer,uniform,popularity,category,unpopular,other-category \\
        --out benchmarks/results/shift_matrix_recorded
    .venv/bin/python benchmarks/stopping_rule.py      # -> benchmarks/results/stopping_rule.{md,json}

For every rule of :data:`RULES` and every recorded training, :func:`xmrec.training.stopping.replay`
gives the epoch the rule stops at and the epoch it restores; the test metrics there are read from
the history. A rule's *lessons* are the shift matrix's cells: per model, training sampler and test
sampler, Ada - base test GAUC paired by seed, and each mode's drop from its matched lists. A rule
is *stable* when the same rule with twice the patience moves no lesson by more than its seed
spread (std over seeds of the paired values; with one seed there is no spread and stability is
undecided). The choice is the stable rule that trains the fewest epochs in total; its lessons
stand once the same replay with four times its patience (the certificate) keeps them too. A replay is
valid only where the recording ran long enough for the rule to stop (``complete``), and a rule
that the epoch cap ended did not converge: a rule with either is not stable.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or loaded by path (the tests)
import converged  # noqa: E402 (the sibling benchmark: the studies and their lessons)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "stopping_rule"
PROVISIONAL_MOVE = 0.01  # without a stable rule: the cheapest valid one whose doubling moves no lesson by a point
RULES = {  # name -> StoppingRule fields; each is also replayed with 2x its patience (stability) and 4x (certificate)
    "patience 3": {"patience": 3},
    "patience 10": {"patience": 10},
    "patience 20": {"patience": 20},
    "patience 40": {"patience": 40},
    "patience 3 while the loss falls > 1%/epoch": {"patience": 3, "min_loss_drop": 0.01},
    "160,000 lists since the best (10 full ML-100K epochs)": {"patience_lists": 160_000},
}


def trainings(recorded: dict) -> list[dict]:
    """One entry per recorded training: its keys and its history (the row that carries it)."""
    out = [r for r in recorded["runs"] if r.get("history")]
    missing = [r["run"] for r in out if not any(k.startswith("test@") for k in r["history"][0])]
    if missing:
        raise SystemExit(
            f"{len(missing)} training(s) were recorded without per-epoch test metrics of every sampler "
            f"(train.test_every_epoch, train.test_samplers), e.g. {missing[0]}: nothing to replay"
        )
    return out


def replayed(runs: list[dict], rule, keys) -> tuple[list[dict], int, int, int]:
    """Rows (``xmrec.converged.replayed_rows``) at the epoch ``rule`` restores, the epochs it would have
    trained in total, how many replays ran past the recording, and how many the epoch cap ended (the
    rule had not stopped them: not converged)."""
    from xmrec.converged import replayed_rows

    rows = replayed_rows(runs, rule, keys)
    epochs, incomplete, capped = 0, 0, 0
    for run in runs:
        first = next(r for r in rows if r["run"] == run["run"])
        epochs += first["epochs_run"]
        incomplete += not first["complete"] and len(run["history"]) < run["epochs"]  # the recording stopped first
        capped += not first["complete"] and len(run["history"]) == run["epochs"]
    return rows, epochs, incomplete, capped


def compare(mine: dict, theirs: dict) -> dict:
    """How far a looser rule (``theirs``) moves each lesson of ``mine`` (``converged.lessons`` frames),
    against the seed spread of the rule's own."""
    import pandas as pd

    from xmrec.converged import cell_moves

    moves = pd.concat([cell_moves(mine[k], theirs[k], converged.LESSON_COLUMNS[k]) for k in mine], ignore_index=True)
    moved = moves[moves.holds == False]  # noqa: E712 (None: one seed, undecided)
    return {
        "max_change": float(moves.move.max()) if len(moves) else 0.0,
        "undecided": int(moves.holds.isna().sum()),
        "unstable": [
            f"{'/'.join(map(str, m.cell))} {m.lesson} {m.move * 100:+.2f} > {m.spread * 100:.2f} points"
            for m in moved.itertuples()
        ],
    }


def study(runs: list[dict], name: str = "shift") -> list[dict]:
    """Every rule: cost, completeness, the stability of its lessons (those of the study ``name`` of
    ``benchmarks/converged.py``) under doubled patience (the choice) and under four times its
    patience (the certificate every recorded lesson needs)."""
    import pandas as pd

    from xmrec.converged import with_patience
    from xmrec.training.stopping import StoppingRule

    keys = converged.STUDIES[name].keys
    out = []
    for rule_name, fields in RULES.items():
        rule = StoppingRule(**fields)
        rows, epochs, incomplete, capped = replayed(runs, rule, keys)
        own = converged.lessons(name, pd.DataFrame(rows))
        entry = {"rule": rule_name, "fields": fields, "epochs": epochs, "incomplete": incomplete, "capped": capped}
        for factor, key in ((2, "doubled"), (4, "certificate")):
            rows_k, _, incomplete_k, capped_k = replayed(runs, with_patience(rule, factor), keys)
            check = compare(own, converged.lessons(name, pd.DataFrame(rows_k)))
            valid = not incomplete and not capped and not incomplete_k and not capped_k
            stable = valid and not check["unstable"] and not check["undecided"]
            entry[key] = {**check, "incomplete": incomplete_k, "capped": capped_k, "stable": stable}
        entry["stable"] = entry["doubled"]["stable"]
        entry["cells"] = next(iter(own.values())).reset_index().to_dict("records")
        out.append(entry)
    return out


LESSON_TEXT = {
    "shift": "A lesson is a shift-matrix cell (Ada - base test GAUC, base drop, Ada drop; paired by seed) or a "
    "headline (their means over the shifted test sets).",
    "seven": "A lesson is a model's Ada - base test GAUC on matched mixer lists, paired by seed.",
    "ablation": "A lesson is a variant's test GAUC minus its base model's, paired by seed (the teaching set).",
}


def provisional_ok(rule: dict) -> bool:
    """A rule that may stand in while none is stable (too few seeds to judge every lesson by its own
    spread): its replays and its doubled replays are complete, and doubling moves no lesson by more
    than :data:`PROVISIONAL_MOVE`."""
    d = rule["doubled"]
    valid = not (rule["incomplete"] or rule["capped"] or d["incomplete"] or d["capped"])
    return valid and d["max_change"] <= PROVISIONAL_MOVE


def report(result: dict) -> str:
    """The markdown report of :func:`main`'s JSON."""
    from xmrec.provenance import as_markdown

    lines = [
        "# Which stopping rule? Rules replayed over long recorded trainings\n",
        as_markdown(result["provenance"]),
        f"Recording: `{result['recorded']['file']}`, {result['recorded']['trainings']} trainings, "
        f"{result['recorded']['seeds']} seed(s); "
        f"recorded with patience {result['recorded']['patience']} and at most {result['recorded']['epochs']} epochs.\n",
        f"{LESSON_TEXT[result['study']]} "
        "*Stable*: doubling the rule's patience moves no lesson by more than its seed spread. "
        "Points = 0.01 GAUC.\n",
        "| rule | epochs trained (all runs) | ended by the epoch cap | replays past the recording (2x, 4x) "
        "| largest move at 2x / 4x (points) | lessons without a spread (one seed) "
        "| moved beyond their spread at 2x / 4x | stable at 2x | certified at 4x |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rules"]:
        d, c = r["doubled"], r["certificate"]
        lines.append(
            f"| {r['rule']} | {r['epochs']} | {r['capped']} | {d['incomplete']}, {c['incomplete']} | "
            f"{d['max_change'] * 100:.2f} / {c['max_change'] * 100:.2f} | {d['undecided']} | "
            f"{len(d['unstable'])} / {len(c['unstable'])} | {'yes' if d['stable'] else 'no'} | "
            f"{'yes' if c['stable'] else 'no'} |"
        )
    lines.append(
        f"\n**Choice:** {result['choice'] or 'none yet: no rule is stable on the trainings recorded so far'}\n"
    )
    if result.get("provisional"):
        lines.append(
            f"**Provisional:** {result['provisional']}: the cheapest rule whose replays are complete and whose "
            f"doubled patience moves no lesson by more than {PROVISIONAL_MOVE * 100:.0f} point; it stands in until "
            "more seeds let every lesson be judged by its own spread.\n"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from xmrec.io import atomic_write_text
    from xmrec.provenance import provenance

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--study", choices=list(converged.STUDIES), default="shift", help="whose lessons (default shift)")
    p.add_argument("--recorded", type=Path, default=None, help="the recording (default: the study's)")
    p.add_argument("--out", type=Path, default=RESULTS, help="results path without suffix (.json, .md)")
    args = p.parse_args(argv)
    source = args.recorded or converged.RESULTS / f"{converged.STUDIES[args.study].recorded}.json"
    runs = trainings(json.loads(source.read_text()))
    rules = study(runs, args.study)
    stable = sorted((r for r in rules if r["stable"]), key=lambda r: r["epochs"])
    provisional = sorted((r for r in rules if provisional_ok(r)), key=lambda r: r["epochs"])
    command = ["python", f"benchmarks/{Path(__file__).name}", *(argv if argv is not None else sys.argv[1:])]
    result = {
        "provenance": provenance({"recorded": str(source), "study": args.study, "rules": RULES}, "cpu", command),
        "study": args.study,
        "recorded": {
            "file": str(source.relative_to(ROOT) if source.is_relative_to(ROOT) else source),
            "trainings": len(runs),
            "seeds": len({r["seed"] for r in runs}),
            "patience": sorted({r["patience"] for r in runs}),
            "epochs": sorted({r["epochs"] for r in runs}),
        },
        "rules": rules,
        "choice": stable[0]["rule"] if stable else None,
        "provisional": None if stable or not provisional else provisional[0]["rule"],
    }
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(result, indent=1, default=float))
    text = report(result)
    atomic_write_text(args.out.with_suffix(".md"), text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
