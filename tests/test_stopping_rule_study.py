"""benchmarks/stopping_rule.py: rules replayed over recorded histories, and when a rule counts as stable."""

import importlib.util

import pytest

from xmrec.config import project_root

SCRIPT = project_root() / "benchmarks" / "stopping_rule.py"
spec = importlib.util.spec_from_file_location("stopping_rule_benchmark", SCRIPT)
study = importlib.util.module_from_spec(spec)
spec.loader.exec_module(study)

SAMPLERS = ("mixer", "uniform")


def history(curve: list[float], cap_gap: float = 0.0) -> list[dict]:
    """Epochs whose validation GAUC follows ``curve``; the test GAUC of each sampler follows it too
    (uniform lists are easier by 0.05), and the loss falls slowly throughout."""
    return [
        {
            "epoch": e,
            "gauc": v,
            "train_loss": 1.0 - 0.001 * e,
            "train_lists": 100,
            "test@mixer_gauc": v,
            "test@uniform_gauc": v + 0.05,
        }
        for e, v in enumerate(curve, 1)
    ]


def run(mode: str, seed: int, curve: list[float], epochs: int = 100) -> dict:
    return {
        "model": "GRU4Rec",
        "mode": mode,
        "train_sampler": "mixer",
        "seed": seed,
        "epochs": epochs,
        "run": f"{mode}-{seed}",
        "history": history(curve),
    }


def base_curve(seed: int) -> list[float]:  # learns at once, then plateaus and overfits
    return [0.70 + 0.01 * seed, 0.78, 0.80, 0.80, 0.79, *([0.78] * 60)]


def slow_ada_curve(seed: int) -> list[float]:  # a plateau of 5 epochs at its start, then it learns past the base
    return [0.60 + 0.001 * seed] * 5 + [0.70, 0.78, 0.82, 0.83 + 0.002 * seed, *([0.82] * 60)]


def test_a_slow_start_fools_a_short_patience_and_the_study_says_so():
    runs = [run(m, s, base_curve(s) if m == "base" else slow_ada_curve(s)) for s in (1, 2, 3) for m in ("base", "ada")]
    rules = {r["rule"]: r for r in study.study(runs)}
    short, long = rules["patience 3"], rules["patience 10"]
    assert not short["stable"] and short["doubled"]["unstable"]  # doubled (6), it outlasts the plateau
    cell = next(c for c in short["cells"] if c["test_sampler"] == "mixer")
    assert cell["diff_mean"] < 0  # under patience 3 Ada looks worse than its base: the false lesson
    assert long["stable"] and long["certificate"]["stable"]
    cell = next(c for c in long["cells"] if c["test_sampler"] == "mixer")
    assert cell["diff_mean"] > 0  # the converged lesson
    assert short["epochs"] < long["epochs"]


def test_a_rule_the_recording_cannot_replay_or_the_cap_ended_is_not_stable():
    runs = [run(m, s, base_curve(s)[:8], epochs=8) for s in (1, 2) for m in ("base", "ada")]
    rules = {r["rule"]: r for r in study.study(runs)}
    assert rules["patience 10"]["capped"] == len(runs) and not rules["patience 10"]["stable"]
    cut = [run(m, s, base_curve(s)[:8], epochs=100) for s in (1, 2) for m in ("base", "ada")]  # stopped early
    rules = {r["rule"]: r for r in study.study(cut)}
    assert rules["patience 10"]["incomplete"] == len(cut) and not rules["patience 10"]["stable"]
    assert rules["patience 3"]["certificate"]["incomplete"] == len(cut)  # 12 epochs of patience: past the recording
    assert not rules["patience 3"]["certificate"]["stable"]


def test_one_plateau_longer_than_twice_the_patience_needs_the_certificate_to_show():
    """Doubling 3 to 6 does not outlast a 7-epoch plateau; four times (12) does: the certificate."""
    slow = [
        run(m, s, base_curve(s) if m == "base" else [0.6 + 0.001 * s] * 7 + slow_ada_curve(s)[5:])
        for s in (1, 2, 3)
        for m in ("base", "ada")
    ]
    short = {r["rule"]: r for r in study.study(slow)}["patience 3"]
    assert short["stable"] and not short["certificate"]["stable"] and short["certificate"]["unstable"]


def test_trainings_without_per_epoch_test_metrics_are_refused():
    bare = run("base", 1, base_curve(1))
    bare["history"] = [{k: v for k, v in h.items() if not k.startswith("test@")} for h in bare["history"]]
    with pytest.raises(SystemExit, match="without per-epoch test metrics"):
        study.trainings({"runs": [bare]})


@pytest.mark.parametrize("name", ["shift", "ablation"])
def test_the_preset_stops_by_the_rule_its_recorded_study_chose(name):
    """Protocols live in presets: once a study has chosen a rule (or a provisional one stands in, said
    so), the preset it certifies uses it."""
    from xmrec.overrides import preset_configs

    spec = study.converged.STUDIES[name]
    settled = study.converged.chosen_rule(name)
    if settled is None:
        pytest.skip(f"{spec.rule_study}.json: no rule chosen yet")
    fields = settled[1]
    rule = preset_configs(spec.preset, "base")["train"].stopping
    assert {k: getattr(rule, k) for k in fields} == fields


def test_a_provisional_rule_needs_complete_replays_and_small_moves():
    def rule(move, incomplete=0, capped=0):
        doubled = {"max_change": move, "incomplete": incomplete, "capped": 0}
        return {"incomplete": 0, "capped": capped, "doubled": doubled}

    assert study.provisional_ok(rule(0.003))
    assert not study.provisional_ok(rule(0.03))  # doubling moved a lesson by 3 points
    assert not study.provisional_ok(rule(0.0, incomplete=2))  # the recording ended before the doubled rule
    assert not study.provisional_ok(rule(0.0, capped=1))  # the epoch cap, not the rule, ended a run
