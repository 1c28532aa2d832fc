"""xmrec.experiments: variants, grids with fine-tunes, run caching, tidy tables and their statistics."""

import os
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.spatial.distance import jensenshannon

from xmrec import experiments as xp
from xmrec import stats
from xmrec.config import ModelConfig, SamplerConfig

SMALL_SETS = [
    "data.max_seq_len=10",
    "data.small_category_max_items=20",
    "train.batch_size=128",
    "train.epochs=1",
    "train.patience=1",
    "train.max_train_lists=300",
    "train.max_eval_lists=120",
]


def small_experiment(runs_dir, **kwargs) -> xp.Experiment:
    cache = runs_dir.parent / f"{runs_dir.name}-data"
    return xp.Experiment(
        "synthetic",
        preset="small-data",
        sets=SMALL_SETS,
        interactions=20_000,
        runs_dir=runs_dir,
        data_cache=cache,
        progress=False,
        **kwargs,
    )


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def done(runs_dir):
    """One grid: base, ada and a frozen fine-tune of GRU4Rec for one seed."""
    exp = small_experiment(runs_dir)
    exp.run_grid(
        [xp.variant("GRU4Rec", "finetune", freeze=True), xp.variant("GRU4Rec", "base"), xp.variant("GRU4Rec", "ada")],
        seeds=[7],
    )
    return exp


# -- variants --------------------------------------------------------------------------------
def test_variant_labels_and_validation():
    assert xp.variant("SASRec", "finetune", freeze=True).label == "SASRec finetune (frozen)"
    assert xp.variant("GRU4Rec", "ada", identity_patches=True).label == "GRU4Rec ada +identity_patches"
    assert "[random init]" in xp.variant(embedding_init=False).label
    with pytest.raises(ValueError, match="freeze"):
        xp.variant("GRU4Rec", "ada", freeze=True)
    with pytest.raises(ValueError, match="mode"):
        xp.Variant("x", mode="adapt")
    with pytest.raises(ValueError, match="unknown mode"):
        xp.grid(["GRU4Rec"], ["base", "frozen"])


def test_base_variant_ignores_ada_switches():
    """A base run is the same run whatever the Ada switches say (one cached run, not several)."""
    a = xp.variant("GRU4Rec", "base", identity_patches=True, mean_z_at_eval=True)
    assert a.model == replace(ModelConfig(), name="GRU4Rec") and a.label == "GRU4Rec base"
    ft = xp.variant("NARM", "finetune", film_per_dim=True, dropout=0.2)
    base = ft.base_variant()
    assert base.mode == "base" and base.model.dropout == 0.2 and not base.model.film_per_dim


def test_grid_and_default_grids():
    g = xp.grid(["GRU4Rec", "SASRec"], ["base", "ada", "finetune-frozen"])
    assert [(v.model.name, v.mode, v.freeze) for v in g] == [
        ("GRU4Rec", "base", False),
        ("GRU4Rec", "ada", False),
        ("GRU4Rec", "finetune", True),
        ("SASRec", "base", False),
        ("SASRec", "ada", False),
        ("SASRec", "finetune", True),
    ]
    abl = {v.label: v for v in xp.ablation_variants("GRU4Rec")}
    assert [v.mode for v in abl.values()] == ["base"] + ["ada"] * 5
    parts = {
        label: (v.model.use_input_modulation, v.model.use_param_modulation)
        for label, v in abl.items()
        if v.mode == "ada"
    }
    assert set(parts.values()) == {(True, True), (False, True), (True, False), (False, False)}
    assert parts["GRU4Rec extractor only"] == (False, False)
    identity = abl["GRU4Rec ada (identity init)"].model
    assert identity.identity_patches and identity.identity_film
    assert not abl["GRU4Rec ada (faithful)"].model.identity_patches  # the authors' Xavier start


# -- runs ------------------------------------------------------------------------------------
def test_grid_runs_base_first_and_fine_tune_starts_from_it(done):
    table = done.table()
    assert list(table["label"]) == ["GRU4Rec base", "GRU4Rec ada", "GRU4Rec finetune (frozen)"]
    n = 1 + done.dataset().n_neg  # GAUC is the positive's mean rank read another way
    assert table["gauc"].tolist() == pytest.approx([(n - r.per_list["rank"].mean()) / (n - 1) for r in done.results])
    base = done.latest("GRU4Rec base").model.state_dict()
    frozen = done.latest("GRU4Rec finetune (frozen)").model.state_dict()
    shared = [k for k in base]  # every base tensor is still the base checkpoint's after a frozen fine-tune
    assert shared and all(torch.equal(base[k], frozen[k]) for k in shared)
    assert any(k.startswith("ada.") for k in frozen)


def test_tables_are_tidy_and_consistent(done):
    table, history, per_list = done.table(), done.history(), done.per_list()
    assert len(history) == table["epochs_run"].sum()
    n_test = len(done.dataset().test)
    assert len(per_list) == len(table) * n_test
    means = per_list.groupby("label", sort=False)[list(xp.METRICS)].mean()
    for m in xp.METRICS:  # per-list metrics average to the table's metrics
        np.testing.assert_allclose(means.loc[table["label"], m].to_numpy(), table[m].to_numpy())
    assert set(per_list["pool"].astype(str)) <= {"uniform", "popularity"}


def test_finished_runs_are_reused(done, runs_dir):
    again = small_experiment(runs_dir)
    result = again.run(xp.variant("GRU4Rec", "ada"), seed=7)
    assert result.reused
    assert result.metrics == pytest.approx(done.latest("GRU4Rec ada").metrics)


def test_workers_train_the_same_runs_side_by_side(tmp_path, done):
    """Two spawned worker processes train the grid's runs (fine-tune after its base) to the same
    numbers as one process; the runs count as trained in this session, not reused."""
    exp = small_experiment(tmp_path / "runs", workers=2, executor="processes")
    exp.run_grid(
        [xp.variant("GRU4Rec", "finetune", freeze=True), xp.variant("GRU4Rec", "base"), xp.variant("GRU4Rec", "ada")],
        seeds=[7],
    )
    mine, theirs = exp.table(), done.table()
    assert list(mine["label"]) == list(theirs["label"])
    assert not mine["reused"].any()
    assert {r.record.provenance["worker"]["pid"] for r in exp.results}.isdisjoint({os.getpid()})
    for m in xp.METRICS:
        np.testing.assert_allclose(mine[m], theirs[m], atol=1e-6)
    assert list(mine["epochs_run"]) == list(theirs["epochs_run"])


def test_an_experiment_refuses_what_it_cannot_run(tmp_path):
    with pytest.raises(ValueError, match="at least 1"):
        small_experiment(tmp_path, workers=0)
    with pytest.raises(ValueError, match="unknown preset"):
        xp.Experiment("synthetic", preset="nope")
    with pytest.raises(ValueError, match="n_patches"):
        xp.Experiment("synthetic", sets=["model.n_patches=0"])


def test_results_records_carry_each_runs_history(done):
    records = done.records()
    assert [r["label"] for r in records] == list(done.table()["label"])
    for r, result in zip(records, done.results):
        assert r["history"] == result.history and len(r["history"]) == r["epochs_run"]
        assert r["digest"] == result.record.spec.digest()


def test_fine_tune_alone_trains_its_base_and_seeds_repeat(tmp_path, done):
    """A fresh folder: the fine-tune trains its base first, with the same numbers as before."""
    exp = small_experiment(tmp_path)
    exp.run(xp.variant("GRU4Rec", "finetune", freeze=True), seed=7)
    assert [r.variant.label for r in exp.results] == ["GRU4Rec base", "GRU4Rec finetune (frozen)"]
    assert not exp.results[0].reused
    assert exp.results[0].metrics == pytest.approx(done.latest("GRU4Rec base").metrics)
    assert exp.control_of("GRU4Rec finetune (frozen)") == "GRU4Rec base"


def test_sampler_and_embedding_variants_change_the_data(done):
    ds = done.dataset()
    uniform = done.dataset(SamplerConfig(kind="uniform", n_neg=9))
    assert uniform.n_neg == 9 and ds.n_neg == 19
    assert np.array_equal(uniform.test.item, ds.test.item)  # same instances, other negatives
    assert done.dataset(embedding_init=False).item_emb is None and ds.item_emb is not None


def test_latent_of_ada_only(done):
    ds = done.dataset()
    mu = xp.latent_of(done.latest("GRU4Rec ada"), ds, key="mu")
    assert mu.shape == (len(ds.test), 64) and np.isfinite(mu).all()
    with pytest.raises(ValueError, match="base model"):
        xp.latent_of(done.latest("GRU4Rec base"), ds)


# -- statistics ------------------------------------------------------------------------------
def test_list_features_divergence_matches_scipy(done):
    ds = done.dataset()
    feats = xp.list_features(ds)
    ptr, idx = ds.item_cate_ptr, ds.item_cate_idx
    ref = np.zeros(ds.n_cates + 1)
    for item in range(ds.n_items + 1):
        ref[idx[ptr[item] : ptr[item + 1]]] += ds.item_pop[item]
    for row in (0, 5, len(ds.test) - 1):
        hist = np.zeros(ds.n_cates + 1)
        for item in ds.test.candidates()[row]:
            hist[idx[ptr[item] : ptr[item + 1]]] += 1
        assert feats["divergence"][row] == pytest.approx(jensenshannon(hist, ref, base=2) ** 2, abs=1e-9)
    assert (feats["pool"].astype(str) == np.where(ds.test.neg_pool == 1, "popularity", "uniform")).all()
    assert (feats["n_cates"] == ds.test.neg_n_cates).all()


def test_paired_difference_pairs_by_seed_and_list():
    rows = []
    for seed in (1, 2):
        for lst in range(3):
            rows.append(
                {
                    "label": "base",
                    "seed": seed,
                    "list": lst,
                    "gauc": 0.1 * lst,
                    "pool": "uniform",
                    "n_cates": 1,
                    "divergence": 0.0,
                }
            )
            rows.append(
                {
                    "label": "ada",
                    "seed": seed,
                    "list": lst,
                    "gauc": 0.1 * lst + seed,
                    "pool": "uniform",
                    "n_cates": 1,
                    "divergence": 0.0,
                }
            )
    df = pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # order must not matter
    d = stats.paired_difference(df, "ada", "base").sort_values(["seed", "list"])
    assert d["diff"].tolist() == pytest.approx([1, 1, 1, 2, 2, 2])
    with pytest.raises(KeyError, match="missing"):
        stats.paired_difference(df, "missing", "base")


def test_summarize_mean_and_std():
    table = pd.DataFrame({"label": ["a", "a", "a", "b"], "gauc": [0.1, 0.2, 0.6, 0.5]})
    s = stats.summarize(table, ["gauc"]).set_index("label")
    assert s.loc["a", "gauc_mean"] == pytest.approx(0.3)
    assert s.loc["a", "gauc_std"] == pytest.approx(np.std([0.1, 0.2, 0.6], ddof=1))
    assert s.loc["b", "gauc_std"] == 0 and s.loc["a", "n_seeds"] == 3
    assert s.loc["a", "gauc"] == f"0.3000 ± {np.std([0.1, 0.2, 0.6], ddof=1):.4f}"
    assert s.loc["b", "gauc"] == "0.5000"  # one seed: no spread to show
    assert stats.mean_spread(0.0123, 0.004, signed=True) == "+0.0123 ± 0.0040"


def test_divergence_bins():
    bins = stats.divergence_bins(np.arange(100.0), 4)
    assert list(pd.Series(bins).value_counts(sort=False)) == [25, 25, 25, 25]
    assert list(bins.categories)[0] == "0.00-24.75"
    assert len(stats.divergence_bins(np.zeros(7)).categories) == 1


def test_latent_probe_reads_separable_labels():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    latent = rng.normal(size=(300, 4))
    latent[:, 0] += 4 * labels
    assert stats.latent_probe(latent, labels)["accuracy"] > 0.95
    noise = stats.latent_probe(rng.normal(size=(300, 4)), labels)
    assert noise["accuracy"] < 0.65 and noise["majority"] == pytest.approx(max(labels.mean(), 1 - labels.mean()))


def test_seed_gains_pair_by_model_and_seed():
    rows = [
        ("M", "base", "M base", 1, 0.70),
        ("M", "base", "M base", 2, 0.74),
        ("M", "ada", "M ada", 1, 0.75),
        ("M", "ada", "M ada", 2, 0.73),
        ("N", "base", "N base", 1, 0.50),
        ("N", "ada", "N ada", 1, 0.60),
    ]
    table = pd.DataFrame(rows, columns=["model", "mode", "label", "seed", "gauc"])
    g = stats.seed_gains(table, ["gauc"]).set_index("label")
    assert g.loc["M ada", "gauc_gain"] == pytest.approx(0.02)  # (0.05 - 0.01) / 2
    assert g.loc["M ada", "gauc_gain_std"] == pytest.approx(np.std([0.05, -0.01], ddof=1))
    assert g.loc["M ada", "wins"] == 1 and g.loc["M ada", "n_seeds"] == 2
    assert g.loc["N ada", "gauc_gain"] == pytest.approx(0.10) and np.isnan(g.loc["N ada", "gauc_gain_std"])


def test_latent_probe_reads_a_label_that_is_there_and_not_one_that_is_not():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    readable = np.c_[labels + rng.normal(0, 0.3, 400), rng.normal(size=(400, 5))]
    found = stats.latent_probe(readable, labels)
    assert found["accuracy"] > 0.9 and abs(found["majority"] - np.bincount(labels).max() / 400) < 1e-12
    noise = stats.latent_probe(rng.normal(size=(400, 6)), labels)
    assert noise["accuracy"] < found["majority"] + 0.1  # nothing to read: about the majority guess
