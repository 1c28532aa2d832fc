"""Bad input, tried as a new user would: each case is refused with a message that names the problem,
exit code 2 on the command line, and no number printed or file written for work that was not done.

Elsewhere: malformed rows and archives (test_sources), interrupted atomic writes (test_io), foreign
or mismatched checkpoints (test_training), untrainable settings (test_training)."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest
from test_crossmarket_scorers import make_market
from test_models import random_dataset

from xmrec.cli import main
from xmrec.crossmarket.candidates import candidates_for
from xmrec.crossmarket.graph import VALID, CrossMarketData
from xmrec.data.store import save

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TRAIN = ["--model", "GRU4Rec", "--epochs", "1", "--batch-size", "64", "--device", "cpu"]


def named(seed: int, prefix: str):
    """A tiny dataset whose raw ids start with ``prefix``: same shape, another id space per prefix."""
    ds = random_dataset(seed)
    return replace(ds, item_raw_ids=np.array([""] + [f"{prefix}{i}" for i in range(1, ds.n_items + 1)]))


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-input")
    return {"a": save(named(0, "a"), root / "a"), "b": save(named(1, "b"), root / "b"), "root": root}


@pytest.fixture(scope="module")
def trained(folders):
    run = folders["root"] / "run-a"
    assert main(["train", *TRAIN, "--data", str(folders["a"]), "--out", str(run)]) == 0
    return run


def test_train_into_a_run_folder_of_other_data_is_refused(folders, trained, capsys):
    """Resuming there would train nothing and print the old model's figures on the new test split."""
    before = (trained / "metrics.json").read_text()
    assert main(["train", *TRAIN, "--data", str(folders["b"]), "--out", str(trained)]) == 2
    err = capsys.readouterr().err
    assert "was written by a run on other data" in err and "another out folder" in err
    assert (trained / "metrics.json").read_text() == before


def test_the_same_run_again_is_read_back_and_more_epochs_resume(folders, trained, capsys):
    before = {p.name: p.read_bytes() for p in trained.iterdir() if p.is_file()}
    assert main(["train", *TRAIN, "--data", str(folders["a"]), "--out", str(trained)]) == 0
    assert "finished: read back, nothing trained" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in trained.iterdir() if p.is_file()} == before
    more = [*TRAIN[: TRAIN.index("--epochs")], "--epochs", "2", *TRAIN[TRAIN.index("--epochs") + 2 :]]
    assert main(["train", *more, "--data", str(folders["a"]), "--out", str(trained)]) == 0
    assert "resumed" in capsys.readouterr().err
    assert json.loads((trained / "config.json").read_text())["resumed_epochs"] == 1


def test_evaluating_a_checkpoint_on_another_dataset_is_refused(folders, trained, capsys):
    """Same shape, so every id is in range: only the data fingerprint can tell."""
    args = ["evaluate", "--checkpoint", str(trained / "checkpoint.pt"), "--device", "cpu"]
    assert main(args + ["--data", str(folders["b"])]) == 2
    captured = capsys.readouterr()
    assert "was trained on another dataset" in captured.err and captured.out == ""
    assert main(args + ["--data", str(folders["a"])]) == 0


@pytest.mark.parametrize(
    "target, message", [("file", "is an existing file, not a folder"), ("/proc/xmrec-out", "is not writable")]
)
def test_unusable_output_folders_fail_before_the_work(folders, tmp_path, capsys, target, message):
    out = tmp_path / "a-file" if target == "file" else target
    if target == "file":
        out.write_text("keep me")
    assert main(["train", *TRAIN, "--data", str(folders["a"]), "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert main(["prepare", "--dataset", "synthetic", "--interactions", "2000", "--out", str(out)]) == 2
    assert message in capsys.readouterr().err


def test_scores_out_that_is_a_folder_fails_before_scoring(folders, trained, tmp_path, capsys):
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(trained / "checkpoint.pt"),
                "--data",
                str(folders["a"]),
                "--device",
                "cpu",
                "--scores-out",
                str(tmp_path),
            ]
        )
        == 2
    )
    captured = capsys.readouterr()
    assert "is a folder, not a file" in captured.err and captured.out == ""


@pytest.mark.parametrize(
    "text, message",
    [
        ("train.lrr=0.1", "TrainConfig has no field 'lrr'; valid keys: train.mode"),
        ("optim.lr=0.1", "unknown section 'optim'; this command takes model. (ModelConfig), train. (TrainConfig)"),
        ("train.lr", "expected SECTION.FIELD=VALUE"),
        ("train.epochs=2.5", "epochs of TrainConfig expects a whole number, got '2.5'"),
        ("model.film_per_dim=maybe", "expects true or false"),
        ("model.ada=true", "model.ada cannot be set: it follows --mode"),
        ("train.epochs=0", "TrainConfig.epochs must be a whole number >= 1"),
        ("model.n_patches=0", "ModelConfig.n_patches must be a whole number >= 1"),  # a constant scorer otherwise
        ("model.dim=0", "ModelConfig.dim must be a whole number >= 1"),
        ("train.valid_metric=accuracy", "TrainConfig.valid_metric must be gauc, auc, mrr, ndcg@k or hit@k"),
        ("train.patience_lists=0", "TrainConfig.patience_lists must be None or >= 1"),
    ],
)
def test_set_typos_exit_2_with_the_valid_keys_or_type(tmp_path, capsys, text, message):
    assert (
        main(["train", "--model", "MF", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "r"), "--set", text])
        == 2
    )
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # refused before anything is written


def test_set_that_contradicts_a_flag_is_refused(tmp_path, capsys):
    args = ["train", "--model", "MF", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--epochs", "5"]
    assert main(args + ["--set", "train.epochs=9"]) == 2
    assert "--set 'train.epochs=9' contradicts --epochs 5" in capsys.readouterr().err
    assert (
        main(
            [
                "train",
                "--model",
                "MF",
                "--data",
                str(tmp_path),
                "--out",
                str(tmp_path / "r"),
                "--set",
                "model.name=SASRec",
            ]
        )
        == 2
    )
    assert "contradicts --model MF" in capsys.readouterr().err


def test_set_model_dim_keeps_the_word2vec_check(folders, tmp_path, capsys):
    assert (
        main(["train", *TRAIN, "--data", str(folders["a"]), "--out", str(tmp_path / "r"), "--set", "model.dim=8"]) == 2
    )
    assert "item_emb has shape" in capsys.readouterr().err


def test_a_validation_positive_missing_from_its_list_is_refused():
    """Dropping that user would report a figure over the lists that happen to hold their answer."""
    t1 = make_market(
        "t1",
        [("A", "1"), ("A", "2"), ("B", "3")],
        qrel=[("A", "3"), ("B", "1")],
        run={"A": ["3", "2"], "B": ["2", "3"]},
    )
    data = CrossMarketData.from_markets([t1], "t1")
    with pytest.raises(
        ValueError,
        match=r"t1 valid_run: 1 of 2 users' valid_qrel positive is not in their "
        r"candidate list \(first: user B, item 1\)",
    ):
        candidates_for(data, VALID, "official")


def test_tensorboard_without_the_package_says_what_to_install(folders, tmp_path, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    out = tmp_path / "run"
    assert main(["train", *TRAIN, "--data", str(folders["a"]), "--out", str(out), "--tensorboard", str(tmp_path)]) == 2
    assert "pip install tensorboard" in capsys.readouterr().err
    assert not (out / "metrics.json").exists()


@pytest.mark.parametrize(
    "damage, message",
    [
        ("truncate", r"arrays/train\.item_seq\.npy differs from .*MANIFEST\.json \(changed or truncated\)"),
        ("remove", r"arrays/train\.item_seq\.npy is missing \(.*MANIFEST\.json lists it\)"),
        ("old-format", r"meta\.json differs from .*MANIFEST\.json"),
        ("no-meta", r"meta\.json is missing"),
        ("no-manifest", r"not a complete processed xmrec dataset: it has no valid MANIFEST\.json"),
    ],
)
def test_a_damaged_dataset_folder_is_named_before_training(folders, tmp_path, capsys, damage, message):
    data = save(named(0, "a"), tmp_path / "data")
    array, meta = data / "arrays" / "train.item_seq.npy", data / "meta.json"
    if damage == "truncate":
        array.write_bytes(array.read_bytes()[:200])
    elif damage == "remove":
        array.unlink()
    elif damage == "old-format":
        meta.write_text(json.dumps({**json.loads(meta.read_text()), "format_version": 1}))
    elif damage == "no-meta":
        meta.unlink()
    else:
        (data / "MANIFEST.json").unlink()
    assert main(["train", *TRAIN, "--data", str(data), "--out", str(tmp_path / "run")]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.parametrize(
    "text, message",
    [
        ("data.n_valid=0", "DataConfig.n_valid must be a whole number >= 1"),  # NaN validation metrics otherwise
        ("data.n_test=0", "DataConfig.n_test must be a whole number >= 1"),
        ("embedding.dim=0", "EmbeddingConfig.dim must be a whole number >= 1"),
        ("sampler.n_neg=0", "SamplerConfig.n_neg must be a whole number >= 1"),
        ("sampler.popularity_prob=1.5", "SamplerConfig.popularity_prob must lie in [0, 1]"),
    ],
)
def test_prepare_refuses_settings_that_mean_nothing(tmp_path, capsys, text, message):
    args = ["prepare", "--dataset", "synthetic", "--interactions", "2000", "--out", str(tmp_path / "d"), "--set", text]
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
