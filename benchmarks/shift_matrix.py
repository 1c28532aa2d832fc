"""The shift matrix on ML-100K: what a change of candidate distribution costs base and Ada-Ranker.

Trains GRU4Rec and SASRec, base and Ada-Ranker end-to-end, for several seeds, on candidate lists
from one sampler (validation lists drawn like the training lists, early stopping on their GAUC),
then tests every trained model on the same test users, targets and histories under every sampler:
mixer, uniform, popularity, category and the two test-only shifts, unpopular and other-category
(``xmrec.shift_matrix``). The protocol is a preset of ``xmrec.overrides`` (``--preset``, default
``small-data``: L = 50, 19 negatives, batch 256, Adam 1e-3, patience 3, at most 100 epochs), then
the shorthands ``--epochs``, ``--patience``, ``--batch-size``, ``--max-seq-len``, ``--device``, then
``--set SECTION.FIELD=VALUE``.

Every training is a run of the run layer (``xmrec.runs``): one ``RunSpec`` per (model, mode,
training sampler, seed), trained by an executor (``--executor``, ``--jobs`` workers, ``--threads``
each) into the run store ``--runs`` (default ``<data dir>/runs``, shared with
``benchmarks/adaranker_ml100k.py``). A finished run is never trained again: an interrupted session
keeps every run it finished, and a rerun trains only what the store lacks (``--max-runs N``: at
most N of them, then stop). Every run the store holds is then scored on the test sets (scoring is
seeded: the same numbers every time) and written to ``shift_matrix_recorded.json`` (``--out``): one row per training and
test sampler, with the keys of ``RUN_KEYS``, the test metrics, ``best_epoch``, ``epochs_run``,
``lists`` (a fingerprint of the test lists), ``executor`` and ``worker`` (who trained it, from the
run's provenance), ``commit``/``dirty`` (the code that trained it) and ``run`` (its store folder).
``history``, the training's every epoch (loss, validation metrics, seconds), is on one row per
training only: the row of its matched test set (the first row when its sampler is not tested); with
``--set train.test_every_epoch=true`` it holds each epoch's test metrics too (for analysis only).
``wall_s`` is the sum of its epochs' training and validation seconds.

The JSON keeps rows of trainings the store does not hold (trained elsewhere); it refuses to mix
with a file written under another protocol, or one marked stale (``--fresh`` starts the file over;
the store's runs are kept: delete them to retrain). The ``.md`` beside it is rebuilt from the JSON
each time and says how many of the planned trainings it holds.

The kit's recording trains long and keeps every epoch's test metrics (the settings of
``xmrec.converged.RECORDING_SETS``), so that ``benchmarks/converged.py`` can read it under any
stopping rule, with a certificate; ``shift_matrix.json`` and ``.md`` are that converged reading:

    .venv/bin/python benchmarks/shift_matrix.py --patience 40 --epochs 300 --set train.test_every_epoch=true \\
        --set train.test_samplers=mixer,uniform,popularity,category,unpopular,other-category   # 24 trainings
    .venv/bin/python benchmarks/shift_matrix.py ... --max-runs 4    # four more trainings, then stop
    .venv/bin/python benchmarks/converged.py --study shift         # -> shift_matrix.{json,md}

The grid helpers (``add_protocol_options``, ``add_executor_options``, ``protocol_configs``,
``run_spec``, ``run_store``, ``mode_configs``, ``protocol_line``) serve ``adaranker_ml100k.py``
and ``parallel_runs.py`` too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
from dataclasses import asdict, replace
from pathlib import Path

from xmrec.data.sampling import ALL_SAMPLERS, SAMPLERS
from xmrec.executors import EXECUTORS
from xmrec.io import atomic_write_text
from xmrec.overrides import DEFAULT_PRESET, PRESETS, SECTIONS, default_of, resolve

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "shift_matrix_recorded"  # converged.py reads it under the chosen rule
PROTOCOL_KEYS = ("test_samplers",)  # with every mode's resolved configs: what the trainings of one file share
RUN_KEYS = ("model", "mode", "train_sampler", "seed")
DATA_SEED = 2022  # seeds the lists and word2vec: every model and seed meets the same data
SHORTHANDS = {  # option dest -> the config key it sets, over the preset (a --set contradicting it is refused)
    "epochs": "train.epochs",
    "patience": "train.patience",
    "batch_size": "train.batch_size",
    "max_seq_len": "data.max_seq_len",
    "device": "train.device",
}


# -- options every grid benchmark shares -----------------------------------------------------------
def add_protocol_options(p: argparse.ArgumentParser, preset: str = DEFAULT_PRESET) -> None:
    """``--preset``, ``--set`` and the shorthands of :data:`SHORTHANDS`."""
    p.add_argument("--preset", choices=list(PRESETS), default=preset, help=f"the protocol (default {preset})")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="any config field (data., sampler., embedding., model., train.), repeatable; applied last",
    )
    for dest, key in SHORTHANDS.items():
        p.add_argument(
            "--" + dest.replace("_", "-"),
            type=str if dest == "device" else int,
            default=None,
            help=f"shorthand for --set {key}=... (default: the preset's, {default_of(key, preset)})",
        )


def add_executor_options(p: argparse.ArgumentParser) -> None:
    """``--executor``, ``--jobs``, ``--threads``, ``--runs``: who trains the missing runs, and where they are kept."""
    p.add_argument(
        "--executor", choices=list(EXECUTORS), default="processes", help="xmrec.executors (default processes)"
    )
    p.add_argument("--jobs", type=int, default=2, help="runs at once: the executor's workers (default 2)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    p.add_argument("--runs", type=Path, default=None, help="the run store (default <data dir>/runs)")


def protocol_configs(args: argparse.Namespace, mode: str) -> dict:
    """Every section's config ({section: config}) of a run of ``mode``: preset, shorthands given, ``--set``."""
    flags = {key: ("--" + dest.replace("_", "-"), getattr(args, dest)) for dest, key in SHORTHANDS.items()}
    try:
        configs, _ = resolve(tuple(SECTIONS), args.preset, {**flags, "train.mode": ("mode", mode)}, args.set)
    except ValueError as err:
        raise SystemExit(str(err)) from None
    return configs


def run_spec(args: argparse.Namespace, mode: str, seed: int, model: dict, sampler: dict | None = None, data=None):
    """The run of ``mode`` and ``seed`` under the protocol: ``model`` changes its model config (the name at
    least), ``sampler`` the sampler of its ML-100K recipe; ``data`` (e.g. a ``PreparedData``) replaces the recipe."""
    from xmrec.runs import DataRecipe, RunSpec

    cfg = protocol_configs(args, mode)
    if data is None:
        sampler_cfg = replace(cfg["sampler"], **(sampler or {}))
        data = DataRecipe("ml-100k", DATA_SEED, cfg["data"], sampler_cfg, cfg["embedding"])
    return RunSpec(data, replace(cfg["model"], **model), replace(cfg["train"], seed=seed))


def run_store(args: argparse.Namespace):
    """The run store ``--runs`` (default ``<data dir>/runs``); datasets are cached in ``<data dir>/processed``."""
    from xmrec.config import data_dir
    from xmrec.runs import RunStore

    return RunStore(args.runs or data_dir() / "runs")


def mode_configs(args: argparse.Namespace) -> dict:
    """The resolved configs of a base and an Ada run, JSON-ready: {mode: {section: fields}}."""
    configs = {mode: {s: asdict(c) for s, c in protocol_configs(args, mode).items()} for mode in ("base", "ada")}
    return json.loads(json.dumps(configs))


def protocol_line(configs: dict, devices) -> str:
    """The protocol in words, from :func:`mode_configs`, and the devices trained on."""
    base, ada_batch = configs["base"], configs["ada"]["train"]["batch_size"]
    train = base["train"]
    batch = f"batch {train['batch_size']}" + (f" (Ada {ada_batch})" if ada_batch != train["batch_size"] else "")
    subsets = "".join(
        f", {train[f'max_{k}_lists']:,} {what} lists"
        for k, what in (("train", "training"), ("eval", "validation and test"))
        if train[f"max_{k}_lists"]
    )
    return (
        f"ML-100K, L = {base['data']['max_seq_len']}, {base['sampler']['n_neg']} negatives{subsets}, {batch}, Adam "
        f"{train['lr']:g}, early stopping on the validation {train['valid_metric'].upper()} of lists drawn like the "
        f"training lists (patience {train['patience']}, at most {train['epochs']} epochs), best epoch restored; device "
        f"{', '.join(sorted(set(devices)))}.  "
    )


# -- this benchmark ------------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["GRU4Rec", "SASRec"])
    p.add_argument("--modes", nargs="+", default=["base", "ada"], choices=["base", "ada"])
    p.add_argument("--train-samplers", nargs="+", default=["mixer", "uniform"], choices=SAMPLERS)
    p.add_argument("--test-samplers", nargs="+", default=list(ALL_SAMPLERS), choices=ALL_SAMPLERS)
    p.add_argument("--seeds", nargs="+", type=int, default=[2022, 2023, 2024])
    add_protocol_options(p)
    add_executor_options(p)
    p.add_argument("--max-runs", type=int, default=None, help="train at most this many missing runs, then stop")
    p.add_argument("--fresh", action="store_true", help="start the results file over (the store's runs are kept)")
    p.add_argument("--report", action="store_true", help="only rebuild the markdown report from the JSON")
    p.add_argument("--out", type=Path, default=RESULTS, help="results path without suffix (.json, .md)")
    return p.parse_args(argv)


def plan_of(args: argparse.Namespace) -> dict:
    """Every training the arguments ask for, by its :data:`RUN_KEYS`, seed by seed (whole seeds first)."""
    plan = {}
    for seed in args.seeds:
        for sampler in args.train_samplers:
            for model in args.models:
                for mode in args.modes:
                    spec = run_spec(args, mode, seed, {"name": model}, {"kind": sampler})
                    plan[(spec.model.name, mode, sampler, seed)] = spec
    return plan


def protocol_of(args: argparse.Namespace) -> dict:
    """What every training of a results file shares: the test samplers and each mode's resolved configs
    (the model name, the seed and the sampler kind in them vary per training)."""
    return {**{k: getattr(args, k) for k in PROTOCOL_KEYS}, "configs": mode_configs(args)}


def fingerprint(split) -> str:
    """A short hash of a test set's candidate lists and histories (every run must see the same ones)."""
    h = hashlib.sha256(split.candidates().tobytes())
    h.update(split.item_seq.tobytes())
    return h.hexdigest()[:12]


def rows_of(record, sets: dict, lineage: list[dict] = ()) -> list[dict]:
    """One row per test set for a finished run (``xmrec.runs.RunRecord``); its history and the
    shorter recordings it extends (``lineage``, ``RunStore.lineage``) on one row."""
    from xmrec.metrics import evaluate
    from xmrec.shift_matrix import evaluate_under_shift
    from xmrec.training import score

    spec, history, prov = record.spec, record.history, record.provenance
    best = next(h for h in history if h["epoch"] == record.best_epoch)
    common = {
        "model": spec.model.name,
        "mode": spec.mode,
        "train_sampler": spec.data.sampler.kind,
        "seed": spec.seed,
        "best_epoch": record.best_epoch,
        "epochs_run": len(history),
        "epochs": spec.train.epochs,
        "patience": spec.train.patience,
        "valid_gauc": best["gauc"],
        "s_per_epoch": record.summary["seconds_per_epoch"],
        "wall_s": sum(h["seconds"] + h["eval_seconds"] for h in history),
        "device": prov["device"],
        "description": record.summary["description"],
        "executor": prov["executor"],
        "worker": prov["worker"],
        "commit": prov["commit"],
        "dirty": prov["dirty"],
        "run": spec.name,
        "extends": (record.summary.get("extends") or {}).get("run"),  # the shorter recording it continued
    }
    model = record.model()
    scored = evaluate_under_shift(lambda split: evaluate(score(model, split, seed=spec.seed)), sets)
    rows = [{**common, **row, "lists": fingerprint(sets[row["test_sampler"]])} for row in scored]
    own = next((r for r in rows if r["test_sampler"] == spec.data.sampler.kind), rows[0])
    own.update(history=history, lineage=list(lineage))
    return rows


def score_records(records: list, store, test_samplers: list[str]) -> list[dict]:
    """Every run's rows; the test sets are drawn once per dataset (and printed for the runs trained now)."""
    from xmrec.shift_matrix import shift_test_sets

    sets, rows = {}, []
    for record in records:
        spec = record.spec
        key = json.dumps([spec.data.key(), spec.train.max_eval_lists], sort_keys=True)
        if key not in sets:
            sets[key] = shift_test_sets(spec.dataset(store.data_cache), test_samplers)
        mine = rows_of(record, sets[key], store.lineage(spec))
        rows += mine
        if not record.reused:
            r = mine[0]
            print(
                f"  {r['model']:8s} {r['mode']:4s} on {r['train_sampler']:8s} seed {r['seed']}: best epoch "
                f"{r['best_epoch']}/{r['epochs_run']}, "
                + ", ".join(f"{x['test_sampler']} {x['gauc']:.4f}" for x in mine),
                flush=True,
            )
    return rows


def differences(old, new, prefix: str = "") -> str:
    """Where two JSON-ready protocols differ, as ``key: old -> new`` items."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return "" if old == new else f"{prefix or 'protocol'}: {old} -> {new}"
    items = (differences(old.get(k), new.get(k), f"{prefix}.{k}" if prefix else k) for k in sorted({*old, *new}))
    return "; ".join(item for item in items if item)


class Record:
    """The JSON results file: protocol, provenance of the session and rows, rewritten atomically."""

    def __init__(self, args: argparse.Namespace, command: list[str]):
        from xmrec.provenance import provenance

        self.path = args.out.with_suffix(".json")
        self.protocol = protocol_of(args)
        self.runs: list[dict] = []
        self.commands = [shlex.join(command)]  # every command that wrote this file, oldest first
        if self.path.exists() and not args.fresh:
            old = json.loads(self.path.read_text())
            if old.get("stale"):
                raise SystemExit(
                    f"{self.path} is marked stale ({old['stale']}): its runs must not be mixed with new ones; "
                    "rerun with --fresh, or --out elsewhere"
                )
            if old.get("protocol") != self.protocol:
                changed = differences(old.get("protocol"), self.protocol)
                raise SystemExit(
                    f"{self.path} was written under another protocol ({changed}): rerun with the same settings, "
                    "or --fresh to start over"
                )
            self.runs = old["runs"]
            earlier = old.get("commands") or [old["provenance"]["command"]]
            self.commands = [c for c in earlier if c != self.commands[0]] + self.commands
        config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        device = self.protocol["configs"]["base"]["train"]["device"]
        self.provenance = provenance({**config, "protocol": self.protocol}, device, command)

    def done(self) -> set[tuple]:
        return {tuple(r[k] for k in RUN_KEYS) for r in self.runs}

    def merge(self, rows: list[dict]) -> None:
        """``rows`` replace the rows of the same trainings; the file is saved."""
        new = {tuple(r[k] for k in RUN_KEYS) for r in rows}
        self.runs = [r for r in self.runs if tuple(r[k] for k in RUN_KEYS) not in new] + rows
        atomic_write_text(
            self.path,
            json.dumps(
                {
                    "provenance": self.provenance,
                    "commands": self.commands,
                    "protocol": self.protocol,
                    "runs": self.runs,
                },
                indent=1,
            ),
        )


def _cell(mean: float, std: float, n: int) -> str:
    if mean != mean:  # NaN: that training is not recorded yet
        return "not yet"
    return f"{mean:.4f}" + (f" ± {std:.4f}" if n > 1 and std == std else "")


def _points(mean: float, std: float, n: int) -> str:
    if mean != mean:
        return "not yet"
    return f"{mean * 100:+.2f}" + (f" ± {std * 100:.2f}" if n > 1 and std == std else "")


def metric_table(summary, model: str) -> str:
    """One markdown table: a row per (train sampler, test sampler) of one model."""
    rows = [
        "| trained on | tested on | base | Ada | Ada - base (points) | Ada ahead | base drop | Ada drop |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in summary[summary.model == model].itertuples():
        n = int(r.n_seeds)
        matched = " (matched)" if r.test_sampler == r.train_sampler else ""
        ahead = "not yet" if r.diff_mean != r.diff_mean else f"{int(r.ada_ahead)}/{n}"
        rows.append(
            f"| {r.train_sampler} | {r.test_sampler}{matched} | {_cell(r.base_mean, r.base_std, n)} | "
            f"{_cell(r.ada_mean, r.ada_std, n)} | {_points(r.diff_mean, r.diff_std, n)} | "
            f"{ahead} | {_points(r.base_drop_mean, r.base_drop_std, n)} | "
            f"{_points(r.ada_drop_mean, r.ada_drop_std, n)} |"
        )
    return "\n".join(rows)


def headline(runs) -> str:
    """Per model and training sampler: the mean drop over the shifted test sets, base and Ada."""
    from xmrec.shift_matrix import summarize

    summary = summarize(runs, "gauc")
    shifted = summary[summary.test_sampler != summary.train_sampler]
    rows = [
        "## Headline: mean over the five shifted test sets (test GAUC points)\n",
        "| model | trained on | base drop | Ada drop | Ada - base | seeds |",
        "|---|---|---|---|---|---|",
    ]
    for (model, train), g in shifted.groupby(["model", "train_sampler"], sort=False):
        cells = [_points(g[c].mean(), float("nan"), 1) for c in ("base_drop_mean", "ada_drop_mean", "diff_mean")]
        rows.append(f"| {model} | {train} | " + " | ".join(cells) + f" | {int(g.n_seeds.min())} |")
    return "\n".join(rows) + "\n"


def matched_table(runs) -> str:
    """The matched mixer cells: the protocol of benchmarks/adaranker_ml100k.py, with every metric."""
    from xmrec.stats import mean_spread

    mixer = runs[(runs.train_sampler == "mixer") & (runs.test_sampler == "mixer")]
    rows = [
        "## Ada-Ranker vs base on matched mixer lists (the Ada-Ranker benchmark's protocol)\n",
        "| model | mode | seeds | test GAUC | NDCG@10 | HR@10 | MRR | best epoch | epochs run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (model, mode), g in mixer.groupby(["model", "mode"], sort=False):
        n = len(g)
        cells = [
            mean_spread(g[m].mean(), g[m].std(ddof=1) if n > 1 else float("nan"))
            for m in ("gauc", "ndcg@10", "hit@10", "mrr")
        ]
        rows.append(
            f"| {model} | {mode} | {n} | " + " | ".join(cells) + f" | {g.best_epoch.mean():.1f} | "
            f"{g.epochs_run.mean():.1f} |"
        )
    return "\n".join(rows) + "\n"


def write_report(json_path: Path, md_path: Path, plan: dict) -> str:
    """Rebuild the markdown report from the JSON record; returns its text. Planned: ``plan``'s trainings
    and every recorded one (an earlier command may have added seeds or samplers this one does not ask for)."""
    import pandas as pd

    from xmrec.provenance import command_chain
    from xmrec.runs import lineage_commands
    from xmrec.shift_matrix import paired_runs, summarize

    data = json.loads(json_path.read_text())
    if data.get("stale"):
        raise SystemExit(f"{json_path} is marked stale ({data['stale']}): its report stays as it was written")
    recorded, prov = pd.DataFrame(data["runs"]), data["provenance"]
    trained = recorded.drop_duplicates(list(RUN_KEYS))
    planned = len(set(plan) | set(trained[list(RUN_KEYS)].itertuples(index=False, name=None)))
    runs = paired_runs(recorded)
    stopped = (
        (trained.epochs_run - trained.best_epoch >= trained.patience) & (trained.epochs_run < trained.epochs)
    ).sum()
    same_lists = recorded.groupby("test_sampler")["lists"].nunique().max() == 1
    unpaired = len(trained) - len(runs.drop_duplicates(list(RUN_KEYS)))
    commits = {str(c)[:10] + (" (dirty)" if d else "") for c, d in zip(recorded.commit, recorded.dirty)}
    extended = [r for r in data["runs"] if r.get("lineage")]
    earlier = lineage_commands(extended)
    parts = [
        "# The shift matrix on ML-100K: what a change of candidate distribution costs a ranker\n",
        "Written by "
        + command_chain(data.get("commands") or [prov["command"]])
        + f" (rebuilt from `{json_path.name}` after every session)"
        + (
            f"; {len(extended)} of its runs extend shorter recordings (`RunStore.extend`) made by "
            + command_chain(earlier)
            if extended
            else ""
        )
        + ".  ",
        protocol_line(data["protocol"]["configs"], recorded.device),
        f"**{len(trained)} of {planned} planned trainings recorded**; {stopped} of {len(trained)} ended by early "
        f"stopping. Every run met the same test lists per test sampler: {'yes' if same_lists else 'NO'}. "
        f"The tables pair base and Ada by seed: {unpaired} training(s) whose twin is not recorded yet are left out.  ",
        f"Commits: {', '.join(sorted(commits))}; versions {prov['versions']}; machine {prov['machine']}; trained by "
        f"executor(s) {', '.join(sorted(set(recorded.executor.dropna())))}.\n",
        "A quality benchmark, not a speed one: the runs shared the machine with other work, so the wall-clock "
        "seconds stored in the JSON are not training speeds.\n",
        "Each test set keeps the test users, targets and histories; only the negatives change. *Drop* = "
        "matched test set minus this one, paired by seed (positive: the shift costs that much). "
        "Mean ± std over seeds; points = 0.01.\n",
    ]
    parts += [headline(runs), matched_table(runs)]
    for metric, name in (("gauc", "GAUC"), ("ndcg@10", "NDCG@10")):
        summary = summarize(runs, metric)
        for model in runs.model.unique():
            parts.append(f"## {model}, test {name}\n\n{metric_table(summary, model)}\n")
    text = "\n".join(parts)
    atomic_write_text(md_path, text)
    return text


def main(argv=None) -> int:
    from xmrec.executors import make_executor

    args = parse_args(argv)
    command = ["python", f"benchmarks/{Path(__file__).name}", *(argv if argv is not None else sys.argv[1:])]
    plan = plan_of(args)
    if args.report:
        print(write_report(args.out.with_suffix(".json"), args.out.with_suffix(".md"), plan))
        return 0
    record, store = Record(args, command), run_store(args)
    stored = {key: spec for key, spec in plan.items() if store.done(spec)}
    missing = [spec for key, spec in plan.items() if key not in stored and key not in record.done()]
    todo = missing[: args.max_runs] if args.max_runs is not None else missing
    print(
        f"{len(plan)} trainings planned, {len(stored)} in the store {store.root}, "
        f"{len(plan) - len(stored) - len(missing)} recorded in {record.path.name} only, {len(todo)} to train now "
        f"({args.executor}, {args.jobs} worker(s) x {args.threads} thread(s))",
        flush=True,
    )
    executor = make_executor(args.executor, args.jobs, threads=args.threads)
    records = executor.run([*stored.values(), *todo], store, command=command)
    record.merge(score_records(records, store, args.test_samplers))
    if not record.runs:
        print(f"nothing recorded in {record.path} yet")
        return 0
    print(write_report(record.path, args.out.with_suffix(".md"), plan))
    return 0


if __name__ == "__main__":
    sys.exit(main())
