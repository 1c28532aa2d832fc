"""Notebooks 01 (prepare data) and 02 (distribution shift) run in SMOKE mode; their results make sense.

Both run once per module into a temporary folder (figures, results json and processed data), so
the committed reference figures and the data cache are never touched. 02 reads the dataset 01
saved, as in a real session.
"""

import json

import numpy as np
import pytest

from xmrec.config import markets_dir, project_root
from xmrec.data.markets import list_markets
from xmrec.notebook_runner import run_notebook

pytestmark = pytest.mark.notebooks

NOTEBOOKS = project_root() / "notebooks"
FIGURES_01 = {"01_category_merge.png", "01_funnel.png", "01_history_length.png", "01_samplers.png", "01_embeddings.png"}
FIGURES_02 = {
    "02_popularity_pos_neg.png",
    "02_category_mix.png",
    "02_list_space.png",
    "02_list_divergence.png",
    "02_market_popularity.png",
    "02_market_overlap.png",
    "02_market_divergence.png",
    "02_market_embeddings.png",
}


def _market_available(name: str = "t1") -> bool:
    root = markets_dir()
    return root is not None and (root / name).is_dir()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run 01 then 02 with SMOKE, writing figures and processed data under one temporary folder."""
    tmp = tmp_path_factory.mktemp("notebooks_data")
    params = {"SMOKE": True, "FIGURES_DIR": str(tmp / "figures"), "PROCESSED_DIR": str(tmp / "processed")}
    for name in ("01_prepare_data.ipynb", "02_distribution_shift.ipynb"):
        run_notebook(NOTEBOOKS / name, tmp / "executed", params)
    figures = tmp / "figures"
    return {
        "figures": figures,
        "processed": tmp / "processed",
        "01": json.loads((figures / "01_results.json").read_text()),
        "02": json.loads((figures / "02_results.json").read_text()),
    }


@pytest.mark.parametrize("nb, expected", [("01", FIGURES_01), ("02", FIGURES_02)])
def test_figures_written_and_recorded(runs, nb, expected):
    assert set(runs[nb]["figures"]) == expected
    for name in expected:
        path = runs["figures"] / name
        assert path.is_file() and path.stat().st_size > 5_000, f"{name} missing or empty"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert runs[nb]["smoke"] is True
    prov = runs[nb]["provenance"]  # where the numbers came from: its notebook, run with these parameters
    assert prov["command"].startswith(f"notebooks/{nb}_") and prov["config"]["SMOKE"] is True
    assert prov["config"]["SEED"] == runs[nb]["seed"] and prov["versions"]["numpy"]


def test_01_processing_counts_are_consistent(runs):
    res = runs["01"]
    assert res["market"]["present"] == _market_available(res["market"]["name"])
    expected_datasets = {res["dataset"]} | ({f"xmrec:{res['market']['name']}"} if res["market"]["present"] else set())
    assert set(res["steps"]) == expected_datasets == set(res["instances"])
    for name, steps in res["steps"].items():
        order = ["raw", "category_merge", "user_filter", "dedup"]
        for q in ("users", "items", "interactions"):
            counts = [steps[s][q] for s in order]
            assert counts[0] > 0 and counts[-1] > 0, (name, q)
            assert all(a >= b for a, b in zip(counts, counts[1:])), f"{name}: {q} grows along the funnel {counts}"
        assert steps["category_merge"]["categories"] <= steps["raw"]["categories"]
        inst = res["instances"][name]
        assert inst["users"] == steps["dedup"]["users"]
        assert inst["valid_targets"] == inst["test_targets"] == inst["users"]  # one each per user
        assert inst["train_targets"] <= 8 * inst["users"]
        for split in ("train", "valid", "test"):
            assert inst[f"{split}_instances"] >= inst[f"{split}_targets"] > 0
        assert 0.0 <= res["history_at_cap"][name] <= 1.0
        assert (runs["processed"] / name.replace(":", "-") / "meta.json").is_file()
    if res["dataset"] == "ml-100k":  # the published size of MovieLens-100K
        raw = res["steps"]["ml-100k"]["raw"]
        assert (raw["users"], raw["items"], raw["interactions"]) == (943, 1682, 100_000)


def test_01_samplers_differ_as_designed(runs):
    s = runs["01"]["samplers"]
    assert set(s) == {"uniform", "popularity", "category", "mixer"}
    for kind, v in s.items():
        assert v["n_lists"] > 0
        assert 0.0 <= v["divergence_mean"] <= 1.0 and v["divergence_std"] > 0, kind
        assert 0.0 <= v["anchor_share_mean"] <= 1.0
    assert s["category"]["anchor_share_mean"] == pytest.approx(1.0)
    assert s["uniform"]["anchor_share_mean"] < s["mixer"]["anchor_share_mean"] < 1.0
    assert s["popularity"]["negative_pop_median"] > s["uniform"]["negative_pop_median"]
    assert s["mixer"]["divergence_std"] > s["uniform"]["divergence_std"]
    assert sum(runs["01"]["mixer_categories_drawn"].values()) == pytest.approx(1.0)


def test_01_embeddings_cover_items_and_list_neighbours(runs):
    emb = runs["01"]["embeddings"]
    assert 0 < emb["items_with_vector"] <= emb["n_items"]
    assert len(emb["neighbours"]) == 10 and emb["query"] not in emb["neighbours"]


def test_02_candidate_list_shift(runs):
    shift = runs["02"]["list_shift"]
    for kind, v in shift.items():
        assert 0.0 <= v["divergence_min"] <= v["divergence_mean"] <= v["divergence_max"] <= 1.0, kind
        assert 0.0 <= v["popularity_gauc"] <= 1.0
    assert shift["mixer"]["divergence_std"] > shift["uniform"]["divergence_std"]
    assert shift["mixer"]["divergence_iqr"] > shift["uniform"]["divergence_iqr"]
    # popularity is a strong shortcut against uniform negatives, a weak one against popular negatives
    assert shift["uniform"]["popularity_gauc"] > shift["popularity"]["popularity_gauc"] > 0.4
    by_pool = runs["02"]["mixer_popularity_gauc_by_pool"]
    assert by_pool["mixer, uniform pool"] > by_pool["mixer, popularity pool"]


def test_02_reads_the_lists_that_01_saved(runs):
    first, second = runs["01"]["samplers"], runs["02"]["list_shift"]
    for kind in first:
        assert second[kind]["divergence_mean"] == pytest.approx(first[kind]["divergence_mean"])


def test_02_market_shift(runs):
    m = runs["02"]["markets"]
    root = markets_dir()
    real = root is not None and root.is_dir() and bool(list_markets(root))
    assert m["source"] == ("real" if real else "synthetic")
    assert ("SYNTHETIC" in m["note"]) == (m["source"] == "synthetic")
    n = len(m["names"])
    assert n >= 2
    for key in ("jaccard", "popularity_js"):
        mat = np.array(m[key])
        assert mat.shape == (n, n)
        np.testing.assert_allclose(mat, mat.T)
        assert ((mat >= 0) & (mat <= 1)).all()
    np.testing.assert_allclose(np.diag(m["jaccard"]), 1.0)
    np.testing.assert_allclose(np.diag(m["popularity_js"]), 0.0, atol=1e-9)
    off = ~np.eye(n, dtype=bool)
    assert (np.array(m["popularity_js"])[off] > 0).all()  # markets differ
    assert all(0.0 <= g <= 1.0 for g in m["gini"].values())
    assert all(m["interactions"][k] >= m["items"][k] > 0 for k in m["names"])
    assert m["embedded_items"] > 0
    assert sum(m["dominant_market_items"].values()) == m["embedded_items"]
