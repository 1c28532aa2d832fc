"""The command line: help shows every default from the config classes, choices are listed, `list` works."""
import pytest

from xmrec.cli import build_parser, main
from xmrec.config import TrainConfig, field_docs
from xmrec.data.sampling import ALL_SAMPLERS
from xmrec.experiments import ADA_SWITCHES
from xmrec.models import MODEL_NAMES


def subcommand_help(name: str) -> str:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[name]
    return " ".join(sub.format_help().split())  # one line: wrapping must not hide a phrase


def test_train_help_shows_the_config_defaults_and_their_meaning():
    text = subcommand_help("train")
    docs = field_docs(TrainConfig)
    for name in ("epochs", "batch_size", "patience", "seed", "device"):
        assert f"(default: {getattr(TrainConfig, name)})" in text, name
        assert " ".join(docs[name].split()) in text, name
    assert "{" + ",".join(MODEL_NAMES) + "}" in text


@pytest.mark.parametrize("command", ["prepare", "evaluate", "crossmarket"])
def test_every_option_has_help(command):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    for action in sub._actions:
        assert action.help, f"{command} {action.option_strings} has no help"


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
    for name in (*MODEL_NAMES, *ALL_SAMPLERS, *ADA_SWITCHES, "finetune", "xmrec:MARKET"):
        assert name in out, name
