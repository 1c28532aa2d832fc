"""The shift matrix and the look inside Ada-Ranker: same test instances under every sampler, the
paired summary checked by hand, the shift lesson on synthetic data, and the per-list internals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from test_models import DIM, random_dataset

from xmrec.config import DataConfig, ModelConfig, SamplerConfig, TrainConfig
from xmrec.data.process import process_interactions
from xmrec.data.sampling import ALL_SAMPLERS, sample_negatives
from xmrec.data.synthetic import generate_interactions
from xmrec.mechanism import PATCHED_TENSORS, inside_lists, mechanism_frame
from xmrec.models import build_model
from xmrec.shift_matrix import evaluate_under_shift, shift_test_sets, summarize
from xmrec.training import SplitTensors, Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def focused():
    """Synthetic users who stay in their favourite category (a strong, learnable category signal),
    candidate lists drawn uniformly over the catalogue."""
    raw = generate_interactions(24_000, n_categories=8, user_focus=0.9, seed=11)
    ds = process_interactions(raw, DataConfig(small_category_max_items=0, max_seq_len=20)).dataset
    return sample_negatives(ds, SamplerConfig(kind="uniform", n_neg=9, seed=11))


def test_shift_test_sets_keep_instances_and_change_only_negatives(focused):
    lists = shift_test_sets(focused)
    assert list(lists) == list(ALL_SAMPLERS)
    test = focused.test
    for split in lists.values():
        np.testing.assert_array_equal(split.item, test.item)
        np.testing.assert_array_equal(split.item_seq, test.item_seq)
        np.testing.assert_array_equal(split.user, test.user)
    assert (lists["uniform"].neg_items != lists["category"].neg_items).mean() > 0.9
    again = shift_test_sets(focused, ["category", "uniform"])
    for kind in again:  # one seed: every model meets exactly these lists, whatever else is asked for
        np.testing.assert_array_equal(again[kind].neg_items, lists[kind].neg_items)


def test_summarize_by_hand():
    rows = []
    for seed, (b_m, b_u, a_m, a_u) in {1: (0.80, 0.70, 0.82, 0.75), 2: (0.78, 0.72, 0.79, 0.71)}.items():
        for mode, matched, shifted in (("base", b_m, b_u), ("ada", a_m, a_u)):
            rows += [
                {"model": "M", "mode": mode, "train_sampler": "mixer", "test_sampler": t, "seed": seed, "gauc": v}
                for t, v in (("mixer", matched), ("uniform", shifted))
            ]
    s = summarize(pd.DataFrame(rows)).set_index("test_sampler")
    assert list(s.index) == ["mixer", "uniform"]  # matched first
    assert s.loc["uniform", "base_drop_mean"] == pytest.approx(np.mean([0.10, 0.06]))
    assert s.loc["uniform", "ada_drop_mean"] == pytest.approx(np.mean([0.07, 0.08]))
    assert s.loc["uniform", "diff_mean"] == pytest.approx(np.mean([0.05, -0.01]))
    assert s.loc["uniform", "diff_std"] == pytest.approx(np.std([0.05, -0.01], ddof=1))
    assert s.loc["uniform", "ada_ahead"] == 1 and s.loc["mixer", "ada_ahead"] == 2
    assert s.loc["mixer", "base_drop_mean"] == 0 and s.loc["mixer", "n_seeds"] == 2
    # a base run whose Ada twin is not recorded yet does not count
    extra = [
        {"model": "M", "mode": "base", "train_sampler": "mixer", "test_sampler": t, "seed": 3, "gauc": 0.1}
        for t in ("mixer", "uniform")
    ]
    again = summarize(pd.DataFrame(rows + extra)).set_index("test_sampler")
    pd.testing.assert_frame_equal(again, s)


def test_a_ranker_trained_on_one_sampler_loses_on_a_shifted_one(focused):
    """Trained on uniform lists, where the positive is usually more popular than its negatives, the
    ranker leans on popularity: strong on its own lists, much weaker on popularity-weighted ones."""
    cfg = TrainConfig(batch_size=128, lr=3e-3, epochs=40, patience=2, device="cpu", seed=3)
    trainer = Trainer(ModelConfig(name="GRU4Rec", dim=DIM, dropout=0.0), cfg, progress=False)  # no dropout: 22 epochs
    trainer.fit(focused)
    assert len(trainer.history) < cfg.epochs  # ended by early stopping
    sets = shift_test_sets(focused, ["uniform", "popularity"])
    rows = {r["test_sampler"]: r["gauc"] for r in evaluate_under_shift(trainer.evaluate, sets)}
    assert rows["uniform"] > 0.7  # well above chance on its own kind of list
    assert rows["popularity"] < rows["uniform"] - 0.03  # about 3 standard errors over the ~600 test lists


@pytest.fixture(scope="module")
def ada_model():
    ds = random_dataset(seed=4)
    torch.manual_seed(0)
    cfg = ModelConfig(name="GRU4Rec", dim=DIM, ada=True, max_seq_len=ds.max_seq_len)
    return ds, build_model(cfg, ds.n_items, ds.n_users, item_emb=ds.item_emb)


def test_inside_lists_matches_the_components(ada_model):
    ds, model = ada_model
    inside = inside_lists(model, ds.test, batch_size=16)  # several batches
    n = len(ds.test)
    assert inside["scores"].shape == (n, ds.n_neg + 1) and inside["gamma"].shape == (n, 1)
    batch = SplitTensors.from_split(ds.test).batch(slice(None), torch.device("cpu"))
    model.eval()
    with torch.no_grad():
        mu = model.distribution(batch["candidates"]).mu
        gamma, beta = model.ada.film.coefficients(mu)
        weights = model.ada.patcher.attention(mu)
    np.testing.assert_allclose(inside["mu"], mu.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(inside["gamma"], gamma.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(inside["beta"], beta.numpy(), rtol=1e-5, atol=1e-6)
    for name, w in zip(PATCHED_TENSORS, weights):
        np.testing.assert_allclose(inside[f"attention.{name}"], w.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(inside[f"attention.{name}"].sum(axis=1), 1, rtol=1e-5)
    assert not model.ada.extractor.mean_at_eval  # z = mu only while looking
    assert inside["gamma"].std() > 0  # lists are read differently


def test_mechanism_frame_hand_computed():
    w = np.array([[0.5, 0.5, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    inside = {
        "scores": np.array([[0.2, 0.9, 0.1], [0.9, 0.2, 0.1]]),
        "gamma": np.array([[1.0], [2.0]]),
        "beta": np.array([[0.0], [-1.0]]),
        "attention.W1": w,
    }
    frame = mechanism_frame({"uniform": inside})
    assert frame["attention_entropy"].tolist() == pytest.approx([1.0, 0.0], abs=1e-9)
    assert frame["top_patch"].tolist() == [0, 0]
    assert frame["positive_rank"].tolist() == [2, 1]
    assert frame["gamma"].tolist() == [1.0, 2.0] and frame["beta"].tolist() == [0.0, -1.0]


def test_shift_matrix_figure_has_one_scale_and_one_colour_meaning():
    """A cost of the shift (positive drop) and Ada behind its base (negative difference) are both a
    lower metric: they must land on the same side of one shared colour scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from xmrec import plots

    cells = [("mixer", "mixer"), ("mixer", "uniform")]
    summary = pd.DataFrame(
        {
            "model": "M",
            "train_sampler": [t for t, _ in cells],
            "test_sampler": [s for _, s in cells],
            "base_drop_mean": [0.0, 0.05],
            "ada_drop_mean": [0.0, 0.02],
            "diff_mean": [-0.05, 0.01],
            **{f"{c}_std": [0.01, 0.01] for c in ("base_drop", "ada_drop", "diff")},
        }
    )
    fig, axes = plt.subplots(1, 3)
    plots.shift_matrix(summary, "M", axes)
    meshes = [ax.collections[0] for ax in axes]
    assert {(m.norm.vmin, m.norm.vmax) for m in meshes} == {(-5.0, 5.0)}  # one scale for the three panels
    base_cost, diff = meshes[0].get_array().ravel()[1], meshes[2].get_array().ravel()[0]
    assert base_cost == pytest.approx(-5.0) and diff == pytest.approx(-5.0)  # the same colour: lower
    texts = [t.get_text() for t in axes[0].texts]
    assert texts[0] == "matched" and "±1.0" in texts[1]  # the spread over seeds under each mean
    plt.close(fig)


def test_per_list_under_shift_averages_to_the_summary_metric(ada_model):
    """Kept list by list, the GAUC of a run on a test set averages to what evaluate gives that set."""
    from types import SimpleNamespace

    from xmrec.metrics import evaluate
    from xmrec.shift_matrix import per_list_under_shift
    from xmrec.training import score

    ds, model = ada_model
    model.eval()
    sets = shift_test_sets(ds, ["uniform", "category"])
    run = SimpleNamespace(model=model, seed=5, variant=SimpleNamespace(label="M ada", mode="ada", model=model.cfg))
    rows = per_list_under_shift([run], sets, ds)
    assert set(rows["test_sampler"]) == {"uniform", "category"} and rows["divergence"].ge(0).all()
    for kind, split in sets.items():
        mine = rows[rows["test_sampler"] == kind]
        assert len(mine) == len(split)
        assert mine["gauc"].mean() == pytest.approx(evaluate(score(model, split, seed=5))["gauc"])
