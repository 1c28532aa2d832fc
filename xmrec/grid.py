"""Grid files: a small TOML file that names a dataset, a preset, seeds and runs; ``python -m xmrec grid FILE``.

Top-level keys: ``preset`` (a protocol of :mod:`xmrec.overrides`), ``dataset`` (a dataset spec,
prepared and cached on first use), ``data_seed``, ``interactions`` (synthetic data only),
``seeds`` and ``set`` (``"section.field=value"`` strings applied to every run). Each ``[[runs]]``
entry has ``model``, ``mode`` and optionally ``label``, ``freeze`` and its own ``set``. Every run
is trained for every seed. The command line's ``--set`` comes last; ``--data DIR`` runs every run
on that one prepared dataset instead of the file's.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from xmrec.overrides import preset_configs
from xmrec.runs import DataRecipe, PreparedData, RunSpec

__all__ = ["EXAMPLE", "read_grid", "specs_of"]

EXAMPLE = """\
# An xmrec grid: every [[runs]] entry for every seed, on one dataset.
# python -m xmrec grid THIS_FILE --out runs/grid [--executor dask --workers 2 | --scheduler tcp://host:8786]
preset = "small-data"   # the protocol: python -m xmrec list shows every preset
dataset = "ml-100k"     # prepared and cached on first use (or: python -m xmrec grid FILE --data DIR)
data_seed = 2022        # seeds the negative sampler and word2vec
seeds = [2022, 2023]    # model seeds: initialisation, batch order, dropout
set = ["train.epochs=30"]  # SECTION.FIELD=VALUE for every run (data., sampler., embedding., model., train.)

[[runs]]
label = "GRU4Rec base"
model = "GRU4Rec"
mode = "base"

[[runs]]
label = "GRU4Rec ada"
model = "GRU4Rec"
mode = "ada"
"""

TOP_KEYS = {"preset", "dataset", "data_seed", "interactions", "seeds", "set", "runs"}
RUN_KEYS = {"label", "model", "mode", "freeze", "set"}


def _toml(path: Path) -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"grid file {path}: no such file") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"grid file {path}: not valid TOML ({err})") from None


def read_grid(path: str | Path) -> dict:
    """The grid file at ``path``, checked: known keys, at least one run, each with a model and a mode."""
    grid = _toml(Path(path))
    unknown = sorted(set(grid) - TOP_KEYS)
    if unknown:
        raise ValueError(f"grid file {path}: unknown key(s) {unknown}; known: {sorted(TOP_KEYS)}")
    runs = grid.get("runs")
    if not isinstance(runs, list) or not runs:
        raise ValueError(f"grid file {path}: needs at least one [[runs]] entry (python -m xmrec grid --example)")
    for k, run in enumerate(runs, 1):
        bad = sorted(set(run) - RUN_KEYS)
        if bad:
            raise ValueError(f"grid file {path}: run {k} has unknown key(s) {bad}; known: {sorted(RUN_KEYS)}")
        for key in ("model", "mode"):
            if key not in run:
                raise ValueError(f"grid file {path}: run {k} needs a {key!r}")
    seeds = grid.get("seeds", [2022])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise ValueError(f"grid file {path}: seeds must be a non-empty list of whole numbers, got {seeds!r}")
    return grid


def specs_of(grid: dict, *, data: str | Path | None = None, sets=()) -> list[RunSpec]:
    """Every run of ``grid`` for every seed, in file order, seed by seed. ``sets`` (the command
    line's ``--set``) apply to every run, after the file's; ``data`` replaces the file's dataset."""
    preset, seed = grid.get("preset", "small-data"), grid.get("data_seed", 2022)
    # one prepared dataset for every run: read (and fingerprinted, for the digests) once
    prepared = PreparedData(str(data), seed) if data is not None else None
    width = _table_width(prepared) if prepared is not None else None
    specs = []
    for s in grid.get("seeds", [2022]):
        for run in grid["runs"]:
            given = [*grid.get("set", []), *run.get("set", []), *sets]
            cfg = preset_configs(preset, run["mode"], given)
            train = replace(cfg["train"], mode=run["mode"], freeze=bool(run.get("freeze", False)), seed=s)
            if prepared is not None:
                source = prepared
            else:
                extra = {"interactions": grid["interactions"]} if "interactions" in grid else {}
                source = DataRecipe(
                    grid.get("dataset", "ml-100k"), seed, cfg["data"], cfg["sampler"], cfg["embedding"], **extra
                )
            model = replace(cfg["model"], name=run["model"])
            if not any(text.strip().startswith("model.dim") for text in given):  # d follows the word2vec table
                model = replace(model, dim=width or cfg["embedding"].dim)
            specs.append(RunSpec(source, model, train, run.get("label", ""), True))
    return specs


def _table_width(prepared: PreparedData) -> int | None:
    """The width of a prepared folder's word2vec table (None: it has none)."""
    emb = prepared.load().item_emb
    return int(emb.shape[1]) if emb is not None else None
