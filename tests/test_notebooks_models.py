"""Notebooks 03, 04, 06 and 07 run top to bottom in SMOKE mode and record sensible results."""

import json
from pathlib import Path

import pytest

from xmrec.config import project_root
from xmrec.notebook_runner import run_notebook

pytestmark = pytest.mark.notebooks
NOTEBOOKS = project_root() / "notebooks"


@pytest.fixture(scope="module")
def processed(tmp_path_factory) -> Path:
    """One prepared-data cache for the three notebooks (ML-100K is prepared once, not in data/)."""
    return tmp_path_factory.mktemp("processed")


def run(name: str, tmp_path: Path, processed: Path, **extra) -> dict:
    """Execute ``name`` with SMOKE, figures and runs in ``tmp_path`` (and ``extra`` parameters); its recorded
    results."""
    params = {
        "SMOKE": True,
        "FIGURES_DIR": str(tmp_path),
        "RUNS_DIR": str(tmp_path / "runs"),
        "PROCESSED_DIR": str(processed),
        "THREADS": 1,
        **extra,
    }
    run_notebook(NOTEBOOKS / name, tmp_path / "executed", params)
    record = json.loads((tmp_path / f"{name[:2]}_results.json").read_text())
    assert record["smoke"] is True
    assert record["figures"], "no figure recorded"
    for fig in record["figures"]:
        path = tmp_path / fig
        assert path.is_file() and path.stat().st_size > 5_000, f"{fig} missing or empty"
    return record


def assert_metrics(metrics: dict, n_candidates: int = 20):
    """What the rank metrics guarantee of each other (a mislabelled or misplaced metric breaks it):
    per list NDCG@10 <= HR@10 and NDCG@10 >= MRR for ranks up to 10 (MRR <= 1/11 beyond); over
    lists the mean rank is N - GAUC (N - 1), and MRR >= 1 / mean rank (Jensen)."""
    gauc, ndcg, hit, mrr = (metrics[k] for k in ("gauc", "ndcg@10", "hit@10", "mrr"))
    assert ndcg <= hit + 1e-9, metrics
    assert ndcg >= mrr - 1 / 11 - 1e-9, metrics
    mean_rank = n_candidates - gauc * (n_candidates - 1)
    assert 1 <= mean_rank <= n_candidates and mrr >= 1 / mean_rank - 1e-9, metrics


def test_03_train_base_vs_adaranker(tmp_path, processed):
    rec = run("03_train_base_vs_adaranker.ipynb", tmp_path, processed)
    assert sorted(rec["modes"].values()) == ["ada", "base", "finetune", "finetune"]
    for metrics in rec["test_metrics"].values():
        assert_metrics(metrics)
    assert {"03_learning_curves.png", "03_test_metrics.png", "03_latent_z.png"} <= set(rec["figures"])
    probes = rec["latent_probes"]
    assert {"z -> sampler pool", "mu -> sampler pool"} <= set(probes)
    for probe in probes.values():  # SMOKE trains one epoch: the probe's skill is tested in test_experiments
        assert probe["majority"] >= 1 / 3 and probe["accuracy"] == probe["accuracy"], probe  # computed, not NaN


def test_04_compare_metrics(tmp_path, processed):
    rec = run("04_compare_metrics.ipynb", tmp_path, processed, MODELS=["GRU4Rec", "SASRec"])  # the default is one
    runs = rec["runs"]
    assert {r["model"] for r in runs} == set(rec["models"]) and len(rec["models"]) >= 2
    assert {r["mode"] for r in runs} >= {"base", "ada"}
    assert len({r["seed"] for r in runs}) >= 2  # spread over seeds
    for r in runs:
        assert_metrics(r)
    assert set(rec["ada_minus_base_gauc"]) == {f"{m} ada" for m in rec["models"]}
    from xmrec.data.sampling import ALL_SAMPLERS

    for model in rec["models"]:  # Ada - base per test sampler, all six, and per divergence quartile
        assert set(rec["per_list_gain"][f"{model} by test_sampler"]) == set(ALL_SAMPLERS)
        assert 1 <= len(rec["per_list_gain"][f"{model} by divergence_bin"]) <= 4
    assert {"04_metrics.png", "04_gain_by_list.png"} <= set(rec["figures"])


def test_06_ablation_explorer(tmp_path, processed):
    rec = run("06_ablation_explorer.ipynb", tmp_path, processed)
    labels = {r["label"] for r in rec["runs"]}
    assert {
        "GRU4Rec base",
        "GRU4Rec ada (faithful)",
        "GRU4Rec ada without FiLM",
        "GRU4Rec ada without patches",
        "GRU4Rec extractor only",
        "GRU4Rec ada (identity init)",
    } <= labels
    assert {"epochs", "patience", "seeds"} <= set(rec)
    for r in rec["runs"]:
        assert_metrics(r)
    assert len(rec["gain_over_base_gauc"]) == 5
    assert {"06_ablation.png", "06_ablation_gain.png", "06_ablation_curves.png"} <= set(rec["figures"])
    executed = json.loads((tmp_path / "executed" / "06_ablation_explorer.ipynb").read_text())
    panel_cell = next(c for c in executed["cells"] if "AblationPanel(" in "".join(c["source"]))
    mimes = {k for out in panel_cell["outputs"] for k in out.get("data", {})}
    assert "application/vnd.jupyter.widget-view+json" in mimes  # the panel rendered as a live widget


def test_07_shift_matrix(tmp_path, processed):
    rec = run("07_shift_matrix.ipynb", tmp_path, processed)
    assert rec["test_samplers"] == ["mixer", "uniform", "popularity", "category", "unpopular", "other-category"]
    trained = {(r["mode"], r["train_sampler"]) for r in rec["runs"]}
    assert trained == {(m, s) for m in ("base", "ada") for s in rec["train_samplers"]}
    for r in rec["runs"]:  # every run records what the convergence check needs
        assert {"epochs", "patience", "best_epoch", "epochs_run"} <= set(r)
        assert 1 <= r["best_epoch"] <= r["epochs_run"] <= r["epochs"]
    live = rec["live"]
    assert len(live) == len(rec["runs"]) * len(rec["test_samplers"])
    # one cell per trained run and test sampler
    cells = {(r["mode"], r["train_sampler"], r["test_sampler"]) for r in live}
    assert cells == {(m, s, t) for m, s in trained for t in rec["test_samplers"]}
    assert {
        "07_test_sets.png",
        "07_shift_matrix_live.png",
        "07_one_instance.png",
        "07_mechanism_by_sampler.png",
    } <= set(rec["figures"])
