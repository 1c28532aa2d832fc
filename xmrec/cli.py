"""``python -m xmrec ...``: batch runs of the same steps the notebooks take.

The only place in the kit that parses command-line arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields, replace
from pathlib import Path

from xmrec.io import writable_file, writable_folder

PREPARE_FLAGS = {"data.max_seq_len": "max_seq_len"}  # config key -> argparse dest of the flag that sets it
TRAIN_FLAGS = {
    "model.name": "model",
    "train.mode": "mode",
    "train.freeze": "freeze",
    "train.init": "init",
    "train.epochs": "epochs",
    "train.seed": "seed",
    "train.device": "device",
    "train.batch_size": "batch_size",
    "train.patience": "patience",
    "train.amp": "amp",
}


def _configs(args, sections, flags: dict):
    """The configs a command runs with (preset, then the flags given, then ``--set``) and the keys set."""
    from xmrec.overrides import resolve

    given = {}
    for key, dest in flags.items():
        value = getattr(args, dest)
        given[key] = ("--" + dest.replace("_", "-"), str(value) if isinstance(value, Path) else value)
    return resolve(sections, args.preset, given, args.set or [])


def _prepare(args) -> int:
    from xmrec.data.pipeline import prepare_dataset

    cfg, _ = _configs(args, ("data", "sampler", "embedding"), PREPARE_FLAGS)
    kind = args.dataset.split(":", 1)[0]
    if args.interactions is not None and kind != "synthetic":
        raise ValueError(f"--interactions only applies to --dataset synthetic, not {args.dataset!r}")
    if args.data_dir is not None and kind != "xmrec":
        raise ValueError(f"--data-dir only applies to --dataset xmrec:MARKET, not {args.dataset!r}")
    writable_folder(args.out)
    ds = prepare_dataset(
        args.dataset,
        args.out,
        seed=args.seed,
        data_dir=args.data_dir,
        interactions=args.interactions or 100_000,
        data_cfg=cfg["data"],
        sampler_cfg=cfg["sampler"],
        emb_cfg=cfg["embedding"],
        progress=True,
    )
    print(json.dumps(ds.stats, indent=2))
    return 0


def _train(args) -> int:
    from xmrec.runs import PreparedData, RunSpec, RunStore, execute
    from xmrec.training import distributed

    cfg, explicit = _configs(args, ("model", "train"), TRAIN_FLAGS)
    world = distributed.setup(cfg["train"].device)  # joins torchrun's process group when launched by it
    try:
        callbacks = []
        if args.tensorboard is not None and world.main:
            from xmrec.training.tensorboard import tensorboard_callback

            try:
                callbacks.append(tensorboard_callback(writable_folder(args.tensorboard, "--tensorboard folder")))
            except ImportError as err:  # an optional dependency: say what to install, exit 2
                raise ValueError(str(err)) from None
        if cfg["train"].mode == "finetune" and cfg["train"].init is None:
            raise ValueError("mode 'finetune' needs --init, the base checkpoint to start from")
        data = PreparedData(str(args.data))
        model = cfg["model"]
        emb = data.load().item_emb
        if "model.dim" not in explicit and emb is not None:  # d follows the word2vec table
            model = replace(model, dim=int(emb.shape[1]))
        spec = RunSpec(data, model, cfg["train"])
        store = RunStore(writable_folder(args.out, "run folder"), single=True)
        finished = store.done(spec)
        record = execute(spec, store, progress=world.main, command=sys.argv, callbacks=callbacks)
    finally:
        distributed.shutdown()
    if world.main:
        if finished:
            print(f"xmrec: {args.out} holds this run, finished: read back, nothing trained", file=sys.stderr)
        print(json.dumps(record.metrics))
    return 0


def _grid(args) -> int:
    from xmrec.executors import make_executor
    from xmrec.grid import EXAMPLE, read_grid, specs_of
    from xmrec.runs import RunStore

    if args.example:
        given = [
            f"--{k}" for k in ("file", "out", "data", "executor", "scheduler", "threads", "set") if getattr(args, k)
        ]
        if given or args.workers != 1:
            raise ValueError(
                f"--example prints a grid file and runs nothing: {', '.join(given) or '--workers'} not used"
            )
        print(EXAMPLE, end="")
        return 0
    if args.file is None or args.out is None:
        raise ValueError("grid needs FILE and --out DIR (or --example for a file to start from)")
    specs = specs_of(read_grid(args.file), data=args.data, sets=args.set or [])
    executor = make_executor(args.executor, args.workers, args.scheduler, threads=args.threads)
    store = RunStore(writable_folder(args.out, "grid folder"))
    records = executor.run(specs, store, progress=True, command=sys.argv)
    _write_grid_results(store.root / "grid_results.json", records, executor, sys.argv)
    for r in records:
        how = "reused" if r.reused else "trained"
        metrics = ", ".join(f"{k} {r.metrics[k]:.4f}" for k in ("gauc", "ndcg@10", "hit@10", "mrr"))
        print(f"{r.spec.label} seed {r.spec.seed}: {metrics}; best epoch {r.best_epoch}/{len(r.history)} ({how})")
    print(f"{len(records)} runs ({sum(not r.reused for r in records)} trained here) in {store.root}")
    return 0


def _write_grid_results(path: Path, records, executor, command) -> None:
    """The grid's results file: provenance of this call, then every run with its full history."""
    from xmrec.io import atomic_write_text
    from xmrec.provenance import provenance

    config = {"executor": executor.name, "workers": executor.workers, "runs": [r.spec.describe() for r in records]}
    runs = [
        {
            "label": r.spec.label,
            "model": r.spec.model.name,
            "mode": r.spec.mode,
            "seed": r.spec.seed,
            **{k: v for k, v in r.metrics.items() if k != "world_size"},
            "best_epoch": r.best_epoch,
            "epochs_run": len(r.history),
            "folder": r.folder.name,
            "reused": r.reused,
            "executor": r.provenance.get("executor"),
            "worker": r.provenance.get("worker"),
            "history": r.history,
        }
        for r in records
    ]
    device = ", ".join(sorted({r.provenance.get("device", "?") for r in records}))
    atomic_write_text(path, json.dumps({"provenance": provenance(config, device, command), "runs": runs}, indent=1))


def _evaluate(args) -> int:
    from xmrec.config import resolve_device
    from xmrec.training import evaluate_checkpoint

    resolve_device(args.device)  # a device this machine lacks is refused before any work
    if args.scores_out is not None:
        writable_file(args.scores_out, "--scores-out file")
    metrics = evaluate_checkpoint(
        args.checkpoint, args.data, split=args.split, device=args.device, scores_out=args.scores_out
    )
    print(json.dumps(metrics))
    return 0


def _crossmarket(args) -> int:
    from xmrec.crossmarket import CrossMarketConfig
    from xmrec.crossmarket.pipeline import run_crossmarket

    writable_folder(Path(args.out) / args.target, "crossmarket output folder")  # out/<target>, before the work
    base = CrossMarketConfig.smoke() if args.smoke else CrossMarketConfig()
    config = replace(base, ties=args.ties, protocol=args.protocol)
    result = run_crossmarket(
        target=args.target,
        data_dir=args.data_dir,
        out=args.out,
        valid_run=args.valid_run,
        test_run=args.test_run,
        seed=args.seed,
        config=config,
    )
    print(json.dumps(result))
    return 0


def _demo(args) -> int:
    from xmrec.notebook_runner import run_all

    return run_all(smoke=args.smoke, only=args.only)


def _strip(args) -> int:
    from xmrec.notebook_runner import strip_outputs

    for path in sorted(Path(args.folder).glob("*.ipynb")):
        if strip_outputs(path):
            print(f"stripped {path}")
    return 0


def _list(args) -> int:
    from xmrec.config import ModelConfig, TrainConfig, field_docs
    from xmrec.data.pipeline import DATASET_SPECS
    from xmrec.data.sampling import SAMPLERS, SHIFT_SAMPLERS
    from xmrec.executors import EXECUTORS
    from xmrec.models import MODEL_NAMES
    from xmrec.overrides import DEFAULT_PRESET, FIXED, PRESETS, SECTIONS
    from xmrec.runs import ADA_SWITCHES
    from xmrec.training import MODES

    docs = field_docs(ModelConfig)
    print("models:         " + ", ".join(MODEL_NAMES))
    print("training modes: " + ", ".join(MODES) + " (finetune: --init a base checkpoint, --freeze for Ada parts only)")
    print("samplers:       " + ", ".join(SAMPLERS) + "; test-only: " + ", ".join(SHIFT_SAMPLERS))
    print("datasets:       " + ", ".join(DATASET_SPECS))
    print("Ada-Ranker switches (ModelConfig):")
    for name in ADA_SWITCHES + ("n_patches",):
        print(f"  {name:22s} {getattr(ModelConfig, name)!s:6s} {docs[name]}")
    deviations = [f.name for f in fields(ModelConfig) if docs[f.name].startswith(("deviation", "the authors' defect"))]
    print("deviations from the authors' code (ModelConfig, docs/DESIGN.md section 9):")
    for name in deviations:
        print(f"  {name:28s} {getattr(ModelConfig, name)!s:6s} {docs[name]}")
    print(f"presets (--preset; default {DEFAULT_PRESET}):")
    for name, preset in PRESETS.items():
        by_mode = "".join(
            f"; {mode} runs: " + ", ".join(f"{k}={v}" for k, v in values.items())
            for mode, values in preset.by_mode.items()
        )
        print(f"  {name:14s} {preset.doc}: " + ", ".join(f"{k}={v}" for k, v in preset.values.items()) + by_mode)
    train_docs = field_docs(TrainConfig)
    print("stopping rule (TrainConfig; xmrec.training.stopping):")
    for name in ("valid_metric", "patience", "patience_lists", "min_epochs", "min_loss_drop"):
        print(f"  {name:16s} {getattr(TrainConfig, name)!s:6s} {train_docs[name]}")
    print("grid executors (grid --executor): " + ", ".join(EXECUTORS))
    print("--set SECTION.FIELD=VALUE keys (prepare: data, sampler, embedding; train: model, train):")
    for section, cls in SECTIONS.items():
        keys = [f.name for f in fields(cls) if f"{section}.{f.name}" not in FIXED]
        print(f"  {section + '.':11s}" + ", ".join(keys))
    return 0


def _doc(key: str) -> str:
    """The help of an option that sets config field ``key`` ("section.field"): its one-line doc and
    the default it takes (the default preset's value where the preset sets it)."""
    from xmrec.config import field_docs
    from xmrec.overrides import DEFAULT_PRESET, PRESETS, SECTIONS, default_of

    section, name = key.split(".", 1)
    others = [
        f"{label}: {preset.values[key]}"
        + "".join(f", {mode} runs {values[key]}" for mode, values in preset.by_mode.items() if key in values)
        for label, preset in PRESETS.items()
        if label != DEFAULT_PRESET and key in preset.values and preset.values[key] != default_of(key)
    ]
    return (
        f"{field_docs(SECTIONS[section])[name]} (default: {default_of(key)}"
        + (f"; {', '.join(others)}" if others else "")
        + ")"
    )


DISTRIBUTED_HELP = """distributed (data-parallel, PyTorch DDP): launch the same command with torchrun
  one machine, 2 processes:
    torchrun --nproc-per-node 2 -m xmrec train --model SASRec --data D --out RUN
  two machines (run on each, --node-rank 0 and 1; HOST is node 0's address):
    torchrun --nnodes 2 --node-rank 0 --nproc-per-node 1 --rdzv-backend c10d \\
      --rdzv-endpoint HOST:29500 -m xmrec train --model SASRec --data D --out RUN
  gloo on CPU, nccl on CUDA (one GPU per process); --batch-size is the global batch, split
  over the processes; rank 0 writes the run folder (metrics.json records world_size); a
  resumed run needs RUN on a filesystem every process sees."""


def _add_config_options(s, sections) -> None:
    """``--preset`` and ``--set`` for a command that reads the configs of ``sections``."""
    from xmrec.overrides import DEFAULT_PRESET, PRESETS, SECTIONS

    s.add_argument(
        "--preset",
        choices=list(PRESETS),
        default=DEFAULT_PRESET,
        help="named settings: "
        + "; ".join(f"{n}: {p.doc}" for n, p in PRESETS.items())
        + f" (default: {DEFAULT_PRESET})",
    )
    s.add_argument(
        "--set",
        action="append",
        metavar="SECTION.FIELD=VALUE",
        help="set any config field, repeatable: "
        + ", ".join(f"{x}.FIELD ({SECTIONS[x].__name__})" for x in sections)
        + "; `python -m xmrec list` shows every field",
    )


def build_parser() -> argparse.ArgumentParser:
    """``python -m xmrec``: one subcommand per task, each with its own ``--help``."""
    p = argparse.ArgumentParser(prog="python -m xmrec", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    for add in (_add_prepare, _add_train, _add_grid, _add_evaluate, _add_crossmarket):
        add(sub)

    s = sub.add_parser(
        "list", help="models, training modes, samplers, dataset specs, Ada-Ranker switches, presets and --set keys"
    )
    s.set_defaults(func=_list)

    s = sub.add_parser("demo", help="run every notebook top to bottom, writing figures/")
    s.add_argument("--smoke", action="store_true", help="SMOKE parameters (fast)")
    s.add_argument(
        "--only", nargs="+", metavar="NN", help="run only these notebooks, by number (05) or file name, in order"
    )
    s.set_defaults(func=_demo)

    s = sub.add_parser("strip-notebooks", help="remove outputs from the notebooks of a folder")
    s.add_argument("folder", type=Path)
    s.set_defaults(func=_strip)
    return p


def _add_prepare(sub) -> None:
    """The ``prepare`` subcommand."""
    from xmrec.config import SamplerConfig
    from xmrec.data.pipeline import DATASET_SPECS

    s = sub.add_parser("prepare", help="process a dataset: filter, remap, split, sample negatives, word2vec")
    s.add_argument("--dataset", required=True, help=f"one of: {' | '.join(DATASET_SPECS)}")
    s.add_argument("--out", required=True, type=Path, help="output folder")
    s.add_argument(
        "--seed",
        type=int,
        default=SamplerConfig.seed,
        help=f"seeds the sampler, word2vec and the synthetic generator (default: {SamplerConfig.seed})",
    )
    s.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder holding the XMRec market folders (default: XMREC_MARKETS_DIR or ../shared)",
    )
    s.add_argument(
        "--interactions", type=int, default=None, help="synthetic only: number of interactions (default: 100000)"
    )
    s.add_argument("--max-seq-len", type=int, default=None, help=_doc("data.max_seq_len"))
    _add_config_options(s, ("data", "sampler", "embedding"))
    s.set_defaults(func=_prepare)


def _add_train(sub) -> None:
    """The ``train`` subcommand."""
    from xmrec.models import MODEL_NAMES, canonical_name
    from xmrec.training import MODES

    s = sub.add_parser(
        "train",
        help="train a base or Ada-Ranker model on a prepared dataset",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=DISTRIBUTED_HELP,
    )
    s.add_argument("--model", required=True, type=canonical_name, choices=MODEL_NAMES, help="base model")
    s.add_argument("--mode", choices=list(MODES), default=None, help=_doc("train.mode"))
    s.add_argument("--freeze", action="store_true", default=None, help=_doc("train.freeze"))
    s.add_argument("--init", type=Path, default=None, help=_doc("train.init"))
    s.add_argument("--data", required=True, type=Path, help="output folder of `xmrec prepare`")
    s.add_argument("--out", required=True, type=Path, help="run folder (checkpoint, metrics, history)")
    for flag, key, kind in (
        ("--epochs", "train.epochs", int),
        ("--seed", "train.seed", int),
        ("--device", "train.device", str),
        ("--batch-size", "train.batch_size", int),
        ("--patience", "train.patience", int),
    ):
        s.add_argument(flag, type=kind, default=None, help=_doc(key))
    s.add_argument("--amp", action="store_true", default=None, help=_doc("train.amp"))
    s.add_argument(
        "--tensorboard",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write the per-epoch history as TensorBoard scalars to DIR (needs tensorboard)",
    )
    _add_config_options(s, ("model", "train"))
    s.set_defaults(func=_train)


GRID_HELP = """examples:
  python -m xmrec grid --example > grid.toml          # a base and its Ada-Ranker twin, two seeds
  python -m xmrec grid grid.toml --out runs/grid      # one run after another, here
  python -m xmrec grid grid.toml --out runs/grid --workers 2           # a Dask LocalCluster of 2 workers
  python -m xmrec grid grid.toml --out runs/grid --scheduler tcp://HOST:8786   # an existing Dask cluster
A rerun trains only what runs/grid lacks. With --scheduler every worker must see --out and the data
cache (XMREC_DATA_DIR) at the same paths; Slurm or PBS clusters come from dask-jobqueue (untested here)."""


def _add_grid(sub) -> None:
    """The ``grid`` subcommand."""
    from xmrec.executors import EXECUTORS

    s = sub.add_parser(
        "grid",
        help="train a grid of runs described in a TOML file (base and Ada-Ranker, seeds), here or on a Dask cluster",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=GRID_HELP,
    )
    s.add_argument("file", nargs="?", type=Path, help="grid file (TOML; --example prints one)")
    s.add_argument("--example", action="store_true", help="print a valid example grid file and exit")
    s.add_argument("--out", type=Path, help="run store: one folder per run, and grid_results.json")
    s.add_argument(
        "--data", type=Path, default=None, help="run every run on this prepared dataset (default: the file's)"
    )
    s.add_argument(
        "--executor",
        choices=list(EXECUTORS),
        default=None,
        help="inprocess (alias local), processes or dask (default: dask with --workers > 1 or --scheduler, else inprocess)",
    )
    s.add_argument("--workers", type=int, default=1, help="runs trained at once (default: 1)")
    s.add_argument("--scheduler", default=None, metavar="ADDRESS", help="a Dask scheduler, e.g. tcp://host:8786")
    s.add_argument("--threads", type=int, default=None, help="torch threads per run (default: 1 in workers)")
    s.add_argument(
        "--set",
        action="append",
        metavar="SECTION.FIELD=VALUE",
        help="set any config field of every run, after the file's (repeatable; `python -m xmrec list` shows them)",
    )
    s.set_defaults(func=_grid)


def _add_evaluate(sub) -> None:
    """The ``evaluate`` subcommand."""
    s = sub.add_parser("evaluate", help="score a split with a trained checkpoint")
    s.add_argument("--checkpoint", required=True, type=Path, help="checkpoint.pt of a training run")
    s.add_argument(
        "--data",
        required=True,
        type=Path,
        help="output folder of `xmrec prepare`, or a test.pkl in the original layout",
    )
    s.add_argument("--split", default="test", choices=["train", "valid", "test"], help="split to score (default: test)")
    s.add_argument("--device", default="auto", help="auto (cuda > mps > cpu) or a torch device string (default: auto)")
    s.add_argument("--scores-out", type=Path, default=None, help="also save the score matrix (.npy)")
    s.set_defaults(func=_evaluate)


def _add_crossmarket(sub) -> None:
    """The ``crossmarket`` subcommand."""
    s = sub.add_parser("crossmarket", help="WSDM Cup 2022 cross-market ranking for one target market")
    s.add_argument("--target", required=True, help="target market, e.g. t1")
    s.add_argument("--data-dir", type=Path, default=None, help="folder holding the market folders")
    s.add_argument("--out", required=True, type=Path, help="output folder (features, predictions, submission)")
    s.add_argument("--valid-run", type=Path, default=None, help="override the market's valid_run.tsv")
    s.add_argument("--test-run", type=Path, default=None, help="override the market's test_run.tsv")
    s.add_argument(
        "--seed", type=int, default=2022, help="seeds candidate sampling, scorers, folds and LightGBM (default: 2022)"
    )
    s.add_argument("--smoke", action="store_true", help="small and fast settings")
    s.add_argument(
        "--ties",
        choices=["mean", "trec"],
        default="mean",
        help="tie rule of the validation metrics: mean (mean tied rank) or trec (the official scorer's "
        "trec_eval, needs pytrec-eval-terrier) (default: mean)",
    )
    s.add_argument(
        "--protocol",
        choices=["honest", "published"],
        default="honest",
        help="how the ranker's validation figure is obtained: honest (folds grouped by user, fixed rounds, scorer "
        "features) or published (the first-place team's reporting: 10 folds over rows, early stopping on the "
        "reported fold, user/item id codes as features; no leak) (default: honest)",
    )
    s.set_defaults(func=_crossmarket)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (OSError, ValueError, KeyError) as exc:  # bad input, missing or unreadable files, permissions
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc  # str(KeyError) adds quotes
        print(f"error: {message}", file=sys.stderr)
        return 2
