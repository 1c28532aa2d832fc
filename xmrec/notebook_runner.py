"""Run the numbered notebooks top to bottom (``make demo``) and keep committed notebooks clean."""

from __future__ import annotations

import json
import time
from pathlib import Path

from xmrec.config import project_root
from xmrec.io import atomic_write_text


def notebooks(folder: Path | None = None) -> list[Path]:
    """The numbered notebooks ``NN_*.ipynb`` of ``folder`` (default ``notebooks/``), in order."""
    folder = folder or project_root() / "notebooks"
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def run_notebook(path: Path, out_dir: Path, parameters: dict | None = None, timeout: int = 1800) -> Path:
    """Execute one notebook with papermill from the repository root; return the executed copy."""
    import papermill as pm

    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / path.name
    pm.execute_notebook(
        str(path),
        str(out),
        parameters=parameters or {},
        kernel_name="python3",
        cwd=str(project_root()),
        progress_bar=False,
        request_save_on_cell_execute=False,
        execution_timeout=timeout,
    )
    return out


def to_html(executed: Path) -> Path:
    """Write an executed notebook as a standalone HTML page beside it (figures embedded), so a reader
    can browse a demo's outputs without Jupyter; return its path."""
    import nbconvert
    import nbformat

    html, _ = nbconvert.HTMLExporter().from_notebook_node(nbformat.read(str(executed), as_version=4))
    out = Path(executed).with_suffix(".html")
    atomic_write_text(out, html)
    return out


def select(found: list[Path], only: list[str] | None) -> list[Path]:
    """The notebooks of ``found`` named in ``only`` by number (``"05"``) or file name, in run order;
    all of them when ``only`` is empty. An unknown name raises ``ValueError`` listing the numbers."""
    if not only:
        return found
    by_key = {key: nb for nb in found for key in (nb.name[:2], nb.name, nb.stem)}
    unknown = [name for name in only if name not in by_key]
    if unknown:
        raise ValueError(f"no notebook {unknown}; the numbered notebooks are {[nb.name[:2] for nb in found]}")
    chosen = {by_key[name] for name in only}
    return [nb for nb in found if nb in chosen]


def run_all(smoke: bool = False, out_dir: Path | None = None, only: list[str] | None = None) -> int:
    """Run the numbered notebooks (those of ``only`` when given) in order with ``SMOKE`` set;
    executed copies go to ``runs/notebooks``, each with an HTML page beside it (:func:`to_html`).

    A SMOKE run writes its draft figures to ``runs/smoke-figures``, never over the reference
    figures in ``figures/``.
    """
    out_dir = out_dir or project_root() / "runs" / "notebooks"
    from xmrec.plots import figures_dir

    params = {"SMOKE": smoke} | ({"FIGURES_DIR": str(figures_dir(smoke=True))} if smoke else {})
    found = notebooks()
    if not found:
        raise FileNotFoundError(f"no numbered notebooks (NN_*.ipynb) in {project_root() / 'notebooks'}")
    for nb in select(found, only):
        start = time.perf_counter()
        print(f"running {nb.name} (SMOKE={smoke}) ...", flush=True)
        executed = run_notebook(nb, out_dir, params)
        page = to_html(executed)
        print(f"  done in {time.perf_counter() - start:.0f} s -> {executed}, {page.name}", flush=True)
    print(f"figures in {figures_dir(smoke=smoke)}")
    return 0


def _code_cells_with_outputs(nb: dict) -> list[dict]:
    return [
        c
        for c in nb.get("cells", [])
        if c.get("cell_type") == "code" and (c.get("outputs") or c.get("execution_count") is not None)
    ]


def has_outputs(path: Path) -> bool:
    """True when any code cell of the notebook carries outputs or an execution count."""
    return bool(_code_cells_with_outputs(json.loads(Path(path).read_text())))


def strip_outputs(path: Path) -> bool:
    """Remove outputs and execution counts in place (atomically); True if anything changed."""
    nb = json.loads(Path(path).read_text())
    dirty = _code_cells_with_outputs(nb)
    for c in dirty:
        c["outputs"], c["execution_count"] = [], None
    if dirty:
        atomic_write_text(path, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return bool(dirty)
