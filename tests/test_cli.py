"""The command line: help shows every default from the config classes, choices are listed, `list` works."""

import pytest

from xmrec.cli import build_parser, main
from xmrec.config import ModelConfig, TrainConfig, field_docs
from xmrec.data.sampling import ALL_SAMPLERS
from xmrec.experiments import ADA_SWITCHES
from xmrec.models import MODEL_NAMES
from xmrec.overrides import PRESETS, SECTIONS, default_of, resolve


def subcommand_help(name: str) -> str:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[name]
    return " ".join(sub.format_help().split())  # one line: wrapping must not hide a phrase


def test_train_help_shows_the_config_defaults_and_their_meaning():
    text = subcommand_help("train")
    docs = field_docs(TrainConfig)
    for name in ("epochs", "batch_size", "patience", "seed", "device"):
        assert f"(default: {default_of('train.' + name)}" in text, name
        assert " ".join(docs[name].split()) in text, name
    assert (
        "(default: 256; paper-ml10m: 1024, ada runs 2048" in text
    )  # the small-data preset is the default, the paper's listed
    assert "{" + ",".join(MODEL_NAMES) + "}" in text
    assert "(default: 50; paper-ml10m: 200, scorer: 20)" in subcommand_help("prepare")  # teaching and smoke: 50


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_every_config_field_has_its_one_line_doc(section):
    """``--help``, ``list`` and the widgets read a field's doc from its comment (a wrapped line loses it)."""
    docs = field_docs(SECTIONS[section])
    assert all(docs.values()), [name for name, doc in docs.items() if not doc]


def test_presets_and_set_build_the_configs():
    cfg, explicit = resolve(
        ("model", "train"),
        "small-data",
        {"train.epochs": ("--epochs", 7)},
        ["model.use_param_modulation=false", "train.lr=0.003", "model.nextitnet_dilations=1,2", "train.init=none"],
    )
    small_data = PRESETS["small-data"].values
    assert cfg["train"] == TrainConfig(batch_size=256, patience=small_data["train.patience"], lr=0.003, epochs=7)
    assert cfg["model"] == ModelConfig(use_param_modulation=False, nextitnet_dilations=(1, 2))
    assert explicit == {
        "train.epochs",
        "model.use_param_modulation",
        "train.lr",
        "model.nextitnet_dilations",
        "train.init",
    }
    paper, _ = resolve(("data", "train"), "paper-ml10m")
    assert paper["data"].max_seq_len == 200 and paper["train"].batch_size == 1024
    assert resolve(("model",), "paper-ml10m")[0]["model"] == ModelConfig()  # a preset touches its sections only


def test_the_paper_preset_gives_ada_runs_their_own_batch():
    """The paper trains base rankers at batch 1024 and Ada-Ranker at 2048 (``Preset.by_mode``)."""

    def batch(preset, mode=None, sets=()):
        flags = {"train.mode": ("--mode", mode)}
        return resolve(("train",), preset, flags, sets)[0]["train"].batch_size

    assert (batch("paper-ml10m"), batch("paper-ml10m", "base")) == (1024, 1024)
    assert batch("paper-ml10m", "ada") == batch("paper-ml10m", "finetune") == 2048
    assert batch("paper-ml10m", sets=["train.mode=ada"]) == 2048
    assert batch("paper-ml10m", "ada", ["train.batch_size=512"]) == 512  # what is set explicitly wins
    assert batch("small-data", "ada") == 256


def test_model_names_are_checked_and_case_insensitive(capsys):
    parser = build_parser()
    args = parser.parse_args(["train", "--model", "gru4rec", "--data", "d", "--out", "o"])
    assert args.model == "GRU4Rec"
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["train", "--model", "NoSuchModel", "--data", "d", "--out", "o"])
    assert exc.value.code == 2


def test_list_prints_models_modes_samplers_and_switches(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in (
        *MODEL_NAMES,
        *ALL_SAMPLERS,
        *ADA_SWITCHES,
        "finetune",
        "xmrec:MARKET",
        "small-data",
        "paper-ml10m",
        "train.batch_size=1024",
        "ada runs: train.batch_size=2048",
        "right_align_history",
        "sasrec_pre_ln",
        "srgnn_skip_alias0",
        "lr, batch_size",
    ):
        assert name in out, name
