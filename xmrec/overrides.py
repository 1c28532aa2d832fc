"""Presets and ``SECTION.FIELD=VALUE`` overrides: how the command line sets any config field.

``train`` takes ``model.`` (:class:`ModelConfig`) and ``train.`` (:class:`TrainConfig`) keys;
``prepare`` takes ``data.``, ``sampler.`` and ``embedding.``. The prefix removes the ambiguity of
fields that exist twice (``seed``, ``dim``, ``max_seq_len``). A value is parsed by the field's
type (``true``/``false`` for switches, ``none`` for an optional field, ``1,4,1,4`` for a tuple).

A preset is a named set of values. ``small-data`` (the kit's ML-100K benchmark protocol) is the
command line's default, ``paper-ml10m`` the Ada-Ranker paper's ML-10M settings, ``teaching`` the
notebooks' protocol (``smoke`` its seconds-long check) and ``scorer`` a ranker as a cross-market
feature. Protocols live here and nowhere else: notebooks, benchmarks and the scorer name a preset. Order: config
defaults, then the preset, then the flags given, then ``--set``; a ``--set`` that contradicts a
flag given on the same line is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import get_args, get_origin, get_type_hints

from xmrec.config import DataConfig, EmbeddingConfig, ModelConfig, SamplerConfig, TrainConfig

__all__ = [
    "SECTIONS",
    "PRESETS",
    "DEFAULT_PRESET",
    "FIXED",
    "Preset",
    "default_of",
    "parse_set",
    "resolve",
    "preset_configs",
]

SECTIONS = {
    "data": DataConfig,
    "sampler": SamplerConfig,
    "embedding": EmbeddingConfig,
    "model": ModelConfig,
    "train": TrainConfig,
}
FIXED = {
    "model.ada": "it follows --mode",
    "model.max_seq_len": "it follows the dataset's history length",
    "sampler.seed": "it follows --seed",
    "embedding.seed": "it follows --seed",
}  # keys --set refuses
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


@dataclass(frozen=True)
class Preset:
    """A named set of config values (``"section.field": value``); ``by_mode`` holds the values that
    depend on the training mode (``{"ada": {"train.batch_size": 2048}}``), applied over ``values``."""

    doc: str
    values: dict
    by_mode: dict = field(default_factory=dict)

    def values_for(self, mode: str) -> dict:
        """The preset's values for a run of ``mode``."""
        return {**self.values, **self.by_mode.get(mode, {})}


PRESETS = {
    "small-data": Preset(
        "ML-100K-sized data, the kit's benchmark protocol: histories of 50, batch 256, Adam 1e-3, patience 20 "
        "(the stopping-rule study's choice, benchmarks/results/stopping_rule.md), at most 300 epochs (the "
        "recordings' cap: some faithful Ada-Ranker trainings still improve past epoch 150)",
        {"data.max_seq_len": 50, "train.batch_size": 256, "train.lr": 1e-3, "train.patience": 20, "train.epochs": 300},
    ),
    "paper-ml10m": Preset(
        "the Ada-Ranker paper on ML-10M: histories of 200, batch 1024 (Ada-Ranker 2048), Adam 1e-3, patience 10",
        {
            "data.max_seq_len": 200,
            "train.batch_size": 1024,
            "train.lr": 1e-3,
            "train.patience": 10,
            "train.epochs": 100,
        },
        by_mode={"ada": {"train.batch_size": 2048}, "finetune": {"train.batch_size": 2048}},
    ),
}
PRESETS["teaching"] = Preset(
    "the notebooks' ML-100K protocol on a 2-core laptop: histories of 50, 6,000 training lists, batch 128, "
    "Adam 3e-3, patience 3 but never while the training loss still falls by more than 1 percent per epoch (the rule "
    "chosen on this set, benchmarks/results/stopping_rule_teaching.md), at most 100 epochs",
    {
        "data.max_seq_len": 50,
        "train.max_train_lists": 6000,
        "train.batch_size": 128,
        "train.lr": 3e-3,
        "train.patience": 3,
        "train.min_loss_drop": 0.01,
        "train.epochs": 100,
    },
)
PRESETS["smoke"] = Preset(
    "a check that everything runs, in seconds (the notebooks' SMOKE): the teaching protocol on 400 training "
    "and 200 evaluation lists, one epoch",
    {**PRESETS["teaching"].values, "train.max_train_lists": 400, "train.max_eval_lists": 200, "train.epochs": 1},
)
PRESETS["scorer"] = Preset(
    "a kit ranker as a cross-market scorer feature: histories of 20, batch 256, Adam 1e-3, patience 10 (at "
    "patience 2 its rankers stopped by epoch 7, far from done), at most 30 epochs (the notebook's time budget: a "
    "stand-in, benchmarks/results/crossmarket_sequential.md records them converged)",
    {"data.max_seq_len": 20, "train.batch_size": 256, "train.lr": 1e-3, "train.patience": 10, "train.epochs": 30},
)
DEFAULT_PRESET = "small-data"


def default_of(key: str, preset: str = DEFAULT_PRESET, mode: str = "base"):
    """The value ``key`` (``"section.field"``) takes in a run of ``mode`` when nothing else sets it."""
    section, name = key.split(".", 1)
    return PRESETS[preset].values_for(mode).get(key, getattr(SECTIONS[section], name))


def _type_name(hint) -> str:
    return getattr(hint, "__name__", None) or str(hint)


def _parse(cls, name: str, text: str):
    """``text`` as a value of ``cls.name``'s type; ValueError naming the expected type."""
    hint = get_type_hints(cls)[name]
    args = get_args(hint)
    if type(None) in args:
        if text.strip().lower() in ("none", "null"):
            return None
        hint = next(a for a in args if a is not type(None))
    try:
        if hint is bool:
            if text.lower() not in _TRUE + _FALSE:
                raise ValueError
            return text.lower() in _TRUE
        if get_origin(hint) is tuple:
            item = get_args(hint)[0]
            return tuple(item(part.strip()) for part in text.split(",") if part.strip())
        return hint(text)
    except ValueError:
        expected = {
            "bool": "true or false",
            "tuple": "comma-separated values, e.g. 1,4,1,4 or mixer,uniform",
            "int": "a whole number",
            "float": "a number",
        }.get(_type_name(get_origin(hint) or hint))
        raise ValueError(f"{name} of {cls.__name__} expects {expected or _type_name(hint)}, got {text!r}") from None


def parse_set(text: str, sections) -> tuple[str, str, object]:
    """``"section.field=value"`` -> (section, field, parsed value), checked against ``sections``."""
    key, sep, value = text.partition("=")
    section, dot, name = key.strip().partition(".")
    if not sep or not dot:
        raise ValueError(f"--set {text!r}: expected SECTION.FIELD=VALUE, e.g. train.lr=0.003")
    if section not in sections:
        raise ValueError(
            f"--set {text!r}: unknown section {section!r}; this command takes "
            + ", ".join(f"{s}. ({SECTIONS[s].__name__})" for s in sections)
        )
    cls = SECTIONS[section]
    valid = [f.name for f in fields(cls)]
    if name not in valid:
        raise ValueError(
            f"--set {text!r}: {cls.__name__} has no field {name!r}; valid keys: "
            + ", ".join(f"{section}.{v}" for v in valid)
        )
    if f"{section}.{name}" in FIXED:
        raise ValueError(f"--set {text!r}: {section}.{name} cannot be set: {FIXED[f'{section}.{name}']}")
    try:
        return section, name, _parse(cls, name, value.strip())
    except ValueError as err:
        raise ValueError(f"--set {text!r}: {err}") from None


def resolve(sections, preset: str = DEFAULT_PRESET, flags: dict | None = None, sets=()) -> tuple[dict, set[str]]:
    """The configs of ``sections`` ({section: config}) and the keys set explicitly (flags, ``--set``).

    ``flags`` maps ``"section.field"`` to ``(option string, value)``; a value of None means the
    flag was not given.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
    given = {k: v for k, v in (flags or {}).items() if v[1] is not None}
    parsed_sets = [(text, *parse_set(text, sections)) for text in sets]
    values = {s: {} for s in sections}
    for key, value in PRESETS[preset].values_for(_mode(preset, given, parsed_sets)).items():
        section, name = key.split(".", 1)
        if section in values:
            values[section][name] = value
    for key, (_, value) in given.items():
        section, name = key.split(".", 1)
        values[section][name] = value
    explicit = set(given)
    for text, section, name, value in parsed_sets:
        key = f"{section}.{name}"
        if key in given and given[key][1] != value:
            option, flag_value = given[key]
            raise ValueError(f"--set {text!r} contradicts {option} {flag_value} on the same command line")
        values[section][name] = value
        explicit.add(key)
    return {s: SECTIONS[s](**values[s]) for s in sections}, explicit


def preset_configs(preset: str = DEFAULT_PRESET, mode: str = "base", sets=()) -> dict:
    """Every section's config ({section: config}) for a run of ``mode`` under ``preset``, then ``sets``
    (``"section.field=value"`` strings, as ``--set`` takes them)."""
    configs, _ = resolve(tuple(SECTIONS), preset, {"train.mode": ("mode", mode)}, sets)
    return configs


def _mode(preset: str, given: dict, parsed_sets) -> str:
    """The training mode a command line asks for (``--set train.mode``, ``--mode``, the preset, the default)."""
    for _, section, name, value in reversed(parsed_sets):
        if (section, name) == ("train", "mode"):
            return value
    if "train.mode" in given:
        return given["train.mode"][1]
    return PRESETS[preset].values.get("train.mode", TrainConfig.mode)
