"""Training modes, early stopping, checkpoints (strict, resumable), inference and the CLI round trip."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from test_models import DIM, random_dataset

from xmrec.cli import main
from xmrec.config import ModelConfig, TrainConfig
from xmrec.data.store import save
from xmrec.metrics import evaluate
from xmrec.models import build_model
from xmrec.runs import InMemoryData, RunSpec, RunStore, execute
from xmrec.training import (
    Trainer,
    distributions,
    evaluate_checkpoint,
    load_model,
    load_weights,
    read_checkpoint,
    score,
)

MODEL = ModelConfig(name="GRU4Rec", dim=DIM)
FAST = TrainConfig(batch_size=64, epochs=3, patience=10, device="cpu", seed=7)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def dataset():
    return random_dataset(seed=1)


@pytest.fixture(scope="module")
def base_run(dataset, tmp_path_factory):
    """A trained base GRU4Rec run folder (checkpoint.pt, last.pt)."""
    out = tmp_path_factory.mktemp("base")
    trainer = Trainer(MODEL, FAST, out=out, progress=False)
    trainer.fit(dataset)
    return out, trainer


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_fit_records_history_and_restores_the_best_epoch(base_run, dataset):
    out, trainer = base_run
    history = trainer.history
    assert [h["epoch"] for h in history] == [1, 2, 3]
    for h in history:
        assert {"train_loss", "seconds", "samples_per_s", "gauc", "ndcg@10", "mrr", "best"} <= set(h)
        assert np.isfinite(h["train_loss"])
    best = max(history, key=lambda h: h["gauc"])
    assert trainer.best_epoch == best["epoch"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    # the model in hand is the best epoch's: its validation metrics reproduce exactly
    assert trainer.evaluate(dataset.valid)["gauc"] == pytest.approx(best["gauc"], abs=1e-12)
    model, payload = load_model(out / "checkpoint.pt")
    assert payload["epoch"] == best["epoch"]
    np.testing.assert_array_equal(score(model, dataset.valid, seed=FAST.seed), trainer.score(dataset.valid))


def test_same_seed_same_numbers_other_seed_other_numbers(dataset):
    cfg = TrainConfig(mode="ada", batch_size=64, epochs=2, device="cpu", seed=3)
    runs = [Trainer(MODEL, cfg, progress=False) for _ in range(2)]
    hist = [
        [{k: v for k, v in h.items() if "seconds" not in k and k != "samples_per_s"} for h in r.fit(dataset)]
        for r in runs
    ]
    assert hist[0] == hist[1]
    for k, v in weights(runs[0].model).items():
        assert torch.equal(v, runs[1].model.state_dict()[k]), k
    other = Trainer(MODEL, TrainConfig(mode="ada", batch_size=64, epochs=2, device="cpu", seed=4), progress=False)
    other.fit(dataset)
    assert not torch.equal(other.model.predictor.fc1.weight, runs[0].model.predictor.fc1.weight)


def test_resume_gives_the_uninterrupted_result(dataset, tmp_path):
    cfg = TrainConfig(mode="ada", batch_size=64, epochs=4, device="cpu", seed=5)
    full = Trainer(MODEL, cfg, out=tmp_path / "full", progress=False)
    full.fit(dataset)
    first = Trainer(MODEL, TrainConfig(**{**cfg.__dict__, "epochs": 2}), out=tmp_path / "cut", progress=False)
    first.fit(dataset)
    assert read_checkpoint(tmp_path / "cut" / "last.pt")["epoch"] == 2
    resumed = Trainer(MODEL, cfg, out=tmp_path / "cut", progress=False)
    resumed.fit(dataset)
    strip = lambda hs: [{k: v for k, v in h.items() if "seconds" not in k and k != "samples_per_s"} for h in hs]  # noqa: E731
    assert strip(resumed.history) == strip(full.history)
    for k, v in weights(full.model).items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    with pytest.raises(ValueError, match="other settings"):
        Trainer(MODEL, TrainConfig(**{**cfg.__dict__, "lr": 0.5}), out=tmp_path / "cut", progress=False).fit(dataset)
    tighter = TrainConfig(**{**cfg.__dict__, "patience": cfg.patience - 1})  # it might have stopped earlier
    with pytest.raises(ValueError, match="written with patience 10"):
        Trainer(MODEL, tighter, out=tmp_path / "cut", progress=False).fit(dataset)


def test_early_stopping_and_callbacks(dataset):
    frozen = TrainConfig(batch_size=64, epochs=20, patience=2, lr=0.0, device="cpu")  # nothing improves
    assert len(Trainer(MODEL, frozen, progress=False).fit(dataset)) == 3
    seen = []
    stop_at_two = lambda record, trainer: seen.append(record["epoch"]) or record["epoch"] == 2  # noqa: E731
    Trainer(MODEL, FAST, progress=False, callbacks=[stop_at_two]).fit(dataset)
    assert seen == [1, 2]


@pytest.mark.parametrize("freeze", [True, False])
def test_finetune_from_base_and_freeze(freeze, base_run, dataset):
    out, base = base_run
    cfg = TrainConfig(
        mode="finetune", freeze=freeze, init=str(out / "checkpoint.pt"), batch_size=64, epochs=2, device="cpu"
    )
    tuned = Trainer(MODEL, cfg, progress=False)
    tuned.fit(dataset)
    assert "base GRU4Rec" in tuned.init_description
    before = read_checkpoint(out / "checkpoint.pt")["model"]
    after = tuned.model.state_dict()
    base_changed = {k: not torch.equal(before[k], after[k]) for k in before}
    assert any(k.startswith("ada.") for k in after)
    if freeze:
        assert not any(base_changed.values()), [k for k, v in base_changed.items() if v]
        trainable = {n for n, p in tuned.model.named_parameters() if p.requires_grad}
        assert trainable and all(n.startswith("ada.") for n in trainable)
    else:
        assert base_changed["predictor.fc1.weight"] and base_changed["encoder.gru.weight_hh_l0"]


def test_loading_is_strict_and_says_what_it_loaded(base_run, dataset, tmp_path):
    out, _ = base_run
    ada_run = Trainer(
        MODEL, TrainConfig(mode="ada", batch_size=64, epochs=1, device="cpu"), out=tmp_path, progress=False
    )
    ada_run.fit(dataset)
    ada_payload = read_checkpoint(tmp_path / "checkpoint.pt")
    base_model = build_model(MODEL, dataset.n_items, dataset.n_users)
    with pytest.raises(ValueError, match="holds an Ada-Ranker GRU4Rec.*refusing"):
        load_weights(base_model, ada_payload, "ada.pt")
    ada_model = build_model(ModelConfig(name="GRU4Rec", dim=DIM, ada=True), dataset.n_items, dataset.n_users)
    with pytest.raises(ValueError, match="holds a base GRU4Rec"):
        load_weights(ada_model, read_checkpoint(out / "checkpoint.pt"), "base.pt")
    model, payload = load_model(tmp_path / "checkpoint.pt")
    assert model.ada is not None and payload["description"].startswith("Ada-Ranker GRU4Rec")
    with pytest.raises(ValueError, match="fine-tuning starts from a base checkpoint"):
        Trainer(
            MODEL, TrainConfig(mode="finetune", init=str(tmp_path / "checkpoint.pt"), epochs=1), progress=False
        ).fit(dataset)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        load_model(tmp_path / "junk.pt")
    z = distributions(model, dataset.test)
    assert z["z"].shape == (len(dataset.test), DIM)


@pytest.mark.parametrize(
    "model_cfg, train_cfg, message",
    [
        (ModelConfig(ada=True), TrainConfig(mode="base"), "mode 'base'"),
        (ModelConfig(), TrainConfig(mode="finetune"), "needs TrainConfig.init"),
        (ModelConfig(), TrainConfig(mode="ada", freeze=True), "freeze"),
        (ModelConfig(), TrainConfig(mode="adaptive"), "mode must be one of"),
    ],
)
def test_bad_settings_raise_clear_errors(model_cfg, train_cfg, message, dataset):
    with pytest.raises(ValueError, match=message):
        Trainer(model_cfg, train_cfg, progress=False).fit(dataset)


def test_cli_train_then_evaluate_round_trip(dataset, tmp_path, capsys):
    from xmrec.data.export import export_original

    data = save(dataset, tmp_path / "data")
    run = tmp_path / "run"
    args = [
        "train",
        "--model",
        "SASRec",
        "--mode",
        "ada",
        "--data",
        str(data),
        "--out",
        str(run),
        "--epochs",
        "2",
        "--batch-size",
        "64",
        "--device",
        "cpu",
        "--seed",
        "11",
    ]
    assert main(args) == 0
    trained = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    written = json.loads((run / "metrics.json").read_text())
    assert trained == {k: v for k, v in written.items() if k != "provenance"}  # metric keys stay at the top
    record = written["provenance"]
    assert record["config"]["train"]["seed"] == 11 and record["config"]["model"]["name"] == "SASRec"
    assert {"commit", "dirty", "versions", "device", "command"} <= set(record) and "torch" in record["versions"]
    assert {"gauc", "auc", "mrr", "ndcg@1", "ndcg@3", "ndcg@10", "hit@1", "hit@3", "hit@10"} <= set(trained)
    assert len(json.loads((run / "history.json").read_text())) == 2
    assert json.loads((run / "config.json").read_text())["model"]["ada"] is True
    scores_out = tmp_path / "scores.npy"
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(run / "checkpoint.pt"),
                "--data",
                str(data),
                "--device",
                "cpu",
                "--scores-out",
                str(scores_out),
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "loaded Ada-Ranker SASRec" in captured.err
    evaluated = json.loads(captured.out.strip().splitlines()[-1])
    assert trained.pop("world_size") == 1
    assert evaluated == pytest.approx(trained, abs=1e-12)
    assert evaluate(np.load(scores_out)) == pytest.approx(trained, abs=1e-12)
    # the same test set in the original pickle layout gives the same figures
    export_original(dataset, tmp_path / "original")
    from_pickle = evaluate_checkpoint(
        run / "checkpoint.pt", tmp_path / "original" / "test.pkl", device="cpu", verbose=False
    )
    assert from_pickle == pytest.approx(trained, abs=1e-12)
    assert main(["evaluate", "--checkpoint", str(tmp_path / "missing.pt"), "--data", str(data)]) == 2


def test_a_run_in_memory_data_with_model_switches_writes_its_folder(dataset, tmp_path):
    spec = RunSpec(
        InMemoryData(dataset),
        ModelConfig(name="MF", dim=DIM, identity_patches=True, mean_z_at_eval=True),
        TrainConfig(mode="ada", epochs=1, device="cpu", batch_size=64),
    )
    metrics = execute(spec, RunStore(tmp_path, single=True)).metrics
    assert metrics["gauc"] == pytest.approx(
        evaluate_checkpoint(tmp_path / "checkpoint.pt", save(dataset, tmp_path / "d"), device="cpu", verbose=False)[
            "gauc"
        ],
        abs=1e-12,
    )
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["model"]["identity_patches"] and cfg["n_ada_params"] > 0


@pytest.mark.parametrize(
    "flag, value", [("--epochs", "0"), ("--epochs", "-1"), ("--batch-size", "-5"), ("--patience", "0")]
)
def test_cli_refuses_settings_that_train_nothing(dataset, tmp_path, capsys, flag, value):
    data = save(dataset, tmp_path / "data")
    run = tmp_path / "run"
    assert (
        main(["train", "--model", "GRU4Rec", "--data", str(data), "--out", str(run), "--device", "cpu", flag, value])
        == 2
    )
    err = capsys.readouterr().err
    assert "TrainConfig." in err and ">= 1" in err
    assert not (run / "metrics.json").exists()  # no figures for a model that was never trained


def test_cli_prints_key_errors_without_quotes(tmp_path, capsys, monkeypatch):
    import xmrec.data.store

    def missing(*args, **kwargs):
        raise KeyError("no run labelled 'x'; runs: []")

    monkeypatch.setattr(xmrec.data.store, "read_meta", missing)
    assert main(["train", "--model", "MF", "--data", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err == "error: no run labelled 'x'; runs: []\n"  # str(KeyError) would quote it


def test_tensorboard_callback_writes_every_number_of_every_epoch(dataset, tmp_path, monkeypatch):
    """With a stand-in SummaryWriter (the tensorboard package is an optional extra)."""
    import sys
    import types

    written = []

    class Writer:
        def __init__(self, log_dir):
            self.log_dir = log_dir

        def add_scalar(self, key, value, step):
            written.append((key, value, step))

        def flush(self):
            pass

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=Writer))
    from xmrec.training.tensorboard import tensorboard_callback

    spec = RunSpec(
        InMemoryData(dataset), ModelConfig(name="MF", dim=DIM), TrainConfig(epochs=2, batch_size=64, device="cpu")
    )
    execute(spec, RunStore(tmp_path / "run", single=True), callbacks=[tensorboard_callback(tmp_path / "tb")])
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert {(k, h[k], h["epoch"]) for h in history for k in ("train_loss", "gauc", "ndcg@10")} <= set(written)
    assert {step for _, _, step in written} == {1, 2}


def test_a_memory_mapped_dataset_streams_the_same_batches_and_trains_identically(dataset, tmp_path, monkeypatch):
    from xmrec.data.store import load
    from xmrec.training import SplitTensors, StreamedSplit, model_inputs
    from xmrec.training import batches as batches_module

    mapped = load(save(dataset, tmp_path / "data"))
    assert isinstance(mapped.train.item_seq, np.memmap)
    rows = torch.randperm(len(mapped.train), generator=torch.Generator().manual_seed(0))[:50]
    resident, streamed = SplitTensors.from_split(dataset.train), StreamedSplit(mapped.train)
    cpu = torch.device("cpu")
    for key, value in streamed.batch(rows, cpu).items():
        assert value.dtype == torch.int64 and torch.equal(value, resident.batch(rows, cpu)[key]), key
    block = streamed.rows(slice(10, 60))  # a contiguous block, positions relative to it
    assert len(block) == 50 and torch.equal(
        block.batch(slice(0, 5), cpu)["candidates"], resident.batch(slice(10, 15), cpu)["candidates"]
    )
    streamed.release()  # pages let go; the data reads the same afterwards
    assert torch.equal(streamed.batch(rows, cpu)["item_seq"], resident.batch(rows, cpu)["item_seq"])
    assert isinstance(model_inputs(mapped.train), SplitTensors)  # small: converted once
    monkeypatch.setattr(batches_module, "RESIDENT_BYTES", 0)  # every split streams
    assert isinstance(model_inputs(mapped.train), StreamedSplit)
    history = Trainer(MODEL, FAST, progress=False).fit(mapped)
    monkeypatch.undo()
    reference = Trainer(MODEL, FAST, progress=False).fit(dataset)
    assert [h["train_loss"] for h in history] == [h["train_loss"] for h in reference]
    assert [h["gauc"] for h in history] == [h["gauc"] for h in reference]


def test_recorded_test_metrics_change_nothing_and_match_the_restored_model(dataset):
    """test_every_epoch records the test lists (and each test_samplers' lists) every epoch, for
    replaying other stopping rules later; the training itself is unchanged, and the record at the
    best epoch is what the restored model scores."""
    from xmrec.shift_matrix import shift_test_sets

    cfg = TrainConfig(epochs=3, patience=3, batch_size=64, device="cpu", seed=5)
    plain = Trainer(MODEL, cfg, progress=False)
    plain.fit(dataset)
    recording = Trainer(
        MODEL, replace(cfg, test_every_epoch=True, test_samplers=("uniform", "unpopular")), progress=False
    )
    recording.fit(dataset)
    keys = ("epoch", "train_loss", "gauc", "ndcg@10", "best")
    assert [{k: h[k] for k in keys} for h in recording.history] == [{k: h[k] for k in keys} for h in plain.history]
    best = recording.history[recording.best_epoch - 1]
    assert best["test_gauc"] == pytest.approx(evaluate(recording.score(dataset.test))["gauc"], abs=1e-12)
    shifted = shift_test_sets(dataset, ("uniform", "unpopular"))
    for kind, split in shifted.items():
        assert best[f"test@{kind}_gauc"] == pytest.approx(evaluate(recording.score(split))["gauc"], abs=1e-12)
    assert "test@mixer_gauc" not in best and "test@uniform_auc" not in best  # headline metrics only
