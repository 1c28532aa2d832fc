"""Committed notebooks carry no outputs, cell ids, and exactly one tagged `parameters` cell with SMOKE;
their committed reference results say where they came from."""

import json
import re

import pytest

from xmrec.notebook_runner import has_outputs, notebooks, select, strip_outputs
from xmrec.plots import figures_dir

NOTEBOOKS = notebooks()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_committed_without_outputs(path):
    assert not has_outputs(path), f"{path.name} has outputs: run `make clean-notebooks`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_has_one_parameters_cell_with_smoke(path):
    cells = json.loads(path.read_text())["cells"]
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged 'parameters'"
    assert "SMOKE" in "".join(tagged[0]["source"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_every_cell_has_a_unique_id(path):
    """nbformat 4.5 requires cell ids (a missing one is a validation warning today, an error later)."""
    cells = json.loads(path.read_text())["cells"]
    ids = [c.get("id") for c in cells]
    assert None not in ids, f"{path.name}: cells {[i for i, x in enumerate(ids) if x is None]} have no id"
    assert len(set(ids)) == len(ids), f"{path.name}: repeated cell ids"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_reference_results_come_from_committed_code(path):
    """``figures/NN_results.json`` names the commit, the full (not SMOKE) parameters and its notebook,
    and was written by a tree without code changes: regenerate it with `make demo` after a commit."""
    record = json.loads((figures_dir() / f"{path.name[:2]}_results.json").read_text())
    prov = record["provenance"]
    assert re.fullmatch(r"[0-9a-f]{40}", prov["commit"]) and prov["dirty"] is False, prov
    assert prov["command"] == f"notebooks/{path.name}" and prov["config"]["SMOKE"] is False
    assert prov["versions"]["torch"] and prov["versions"]["numpy"]


def test_strip_outputs_removes_outputs(tmp_path):
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "source": "1",
                "metadata": {},
                "execution_count": 3,
                "outputs": [{"output_type": "stream", "name": "stdout", "text": "1"}],
            }
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    p = tmp_path / "01_x.ipynb"
    p.write_text(json.dumps(nb))
    assert has_outputs(p)
    assert strip_outputs(p) is True
    assert not has_outputs(p)
    assert strip_outputs(p) is False


def test_a_smoke_run_never_writes_into_the_reference_figures():
    from xmrec.plots import figures_dir

    assert figures_dir().name == "figures"
    assert figures_dir(smoke=True) != figures_dir() and "runs" in figures_dir(smoke=True).parts
    for path in NOTEBOOKS:  # every notebook picks its default folder by SMOKE, itself or through its session
        source = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"])
        assert "figures_dir(smoke=SMOKE)" in source or "NotebookSession(" in source, path.name
    import matplotlib

    from xmrec.notebook import NotebookSession

    with matplotlib.rc_context():  # a session styles matplotlib for its notebook: keep that out of other tests
        assert NotebookSession("03_x", {"SMOKE": True}).fig_dir == figures_dir(smoke=True)
        assert NotebookSession("03_x", {"SMOKE": False}).fig_dir == figures_dir()
        assert NotebookSession("03_x", {"SMOKE": True}).preset("teaching") == "smoke"


def test_demo_only_runs_the_named_notebooks_in_order(monkeypatch, capsys):
    import xmrec.notebook_runner as runner
    from xmrec.cli import main

    ran = []
    monkeypatch.setattr(
        runner, "run_notebook", lambda path, out, params: ran.append((path.name, params["SMOKE"])) or path
    )
    monkeypatch.setattr(runner, "to_html", lambda executed: executed.with_suffix(".html"))
    assert main(["demo", "--smoke", "--only", "05", "02_distribution_shift.ipynb"]) == 0
    assert ran == [(NOTEBOOKS[1].name, True), (NOTEBOOKS[4].name, True)]  # run order, not the order given
    assert select(NOTEBOOKS, None) == NOTEBOOKS and select(NOTEBOOKS, [NOTEBOOKS[0].stem]) == NOTEBOOKS[:1]
    ran.clear()
    assert main(["demo", "--only", "09"]) == 2 and not ran
    assert "no notebook ['09']; the numbered notebooks are ['01'" in capsys.readouterr().err


def test_an_executed_notebook_becomes_a_browsable_html_page(tmp_path):
    import nbformat

    from xmrec.notebook_runner import to_html

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(6 * 7)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="forty-two 42\n")]
    nb.cells = [nbformat.v4.new_markdown_cell("# A title"), cell]
    executed = tmp_path / "05_x.ipynb"
    nbformat.write(nb, str(executed))
    page = to_html(executed)
    assert page == tmp_path / "05_x.html"
    text = page.read_text()
    assert "forty-two 42" in text and "A title" in text  # the outputs, not only the code


def test_every_sampler_has_one_colour_of_its_own():
    from xmrec.data.sampling import ALL_SAMPLERS
    from xmrec.plots import sampler_colors

    colors = sampler_colors()
    assert set(ALL_SAMPLERS) <= set(colors)
    assert len({tuple(colors[k]) for k in (*ALL_SAMPLERS, "positives")}) == len(ALL_SAMPLERS) + 1


def test_learning_curves_never_average_runs_of_different_lengths_unmarked():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from xmrec.plots import learning_curves

    history = pd.DataFrame(
        [{"label": "A", "seed": 1, "epoch": e, "gauc": 0.5 + 0.01 * e} for e in range(1, 11)]
        + [{"label": "A", "seed": 2, "epoch": e, "gauc": 0.6} for e in range(1, 5)]
    )
    fig, ax = learning_curves(history, "gauc")
    mean_line = next(line for line in ax.get_lines() if line.get_label() == "A")
    assert list(mean_line.get_xdata()) == [1, 2, 3, 4]  # the mean stops where the shorter run stops
    assert max(max(line.get_xdata()) for line in ax.get_lines()) == 10  # the longer run is still drawn
    plt.close(fig)
