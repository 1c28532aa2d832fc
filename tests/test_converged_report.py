"""benchmarks/converged.py: recordings read under a rule, lessons paired by seed, and the certificate's verdict."""

import importlib.util
import json
import sys

from xmrec.config import project_root
from xmrec.training.stopping import StoppingRule

SCRIPT = project_root() / "benchmarks" / "converged.py"
spec = importlib.util.spec_from_file_location("converged_benchmark", SCRIPT)
report = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = report  # its dataclasses look their module up
spec.loader.exec_module(report)

SAMPLERS = ("mixer", "uniform")


def history(curve: list[float]) -> list[dict]:
    """Validation GAUC follows ``curve``; so do the test metrics (uniform lists 0.05 easier)."""
    out = []
    for e, v in enumerate(curve, 1):
        test = {f"test@{s}_{m}": v + 0.05 * (s == "uniform") for s in SAMPLERS for m in ("gauc", "ndcg@10")}
        out.append({"epoch": e, "gauc": v, "train_loss": 0.2, "train_lists": 100, **test})
    return out


def training(model: str, mode: str, seed: int, curve: list[float], **extra) -> dict:
    keys = {"model": model, "mode": mode, "train_sampler": "mixer", "seed": seed, "run": f"{model}-{mode}-{seed}"}
    return {**keys, "epochs": 150, "history": history(curve), **extra}


def base_curve(seed: int) -> list[float]:
    return [0.70, 0.78, 0.80 + 0.002 * seed, *([0.79] * 60)]


def slow_curve(seed: int) -> list[float]:  # a 6-epoch plateau, then it learns past the base
    return [0.60] * 6 + [0.75, 0.82, 0.83 + 0.002 * seed, *([0.82] * 60)]


def test_a_lesson_cut_on_a_plateau_is_flagged_by_its_certificate():
    recorded = {
        "runs": [
            training("GRU4Rec", m, s, base_curve(s) if m == "base" else slow_curve(s))
            for s in (1, 2, 3)
            for m in ("base", "ada")
        ]
    }
    short = report.converged("seven", recorded, StoppingRule(patience=3), "test")
    gain = short["lessons"]["gains"][0]
    assert gain["diff_mean"] < 0 and gain["diff_holds"] is False  # 4x patience outlasts the plateau: Ada ahead
    long = report.converged("seven", recorded, StoppingRule(patience=10), "test")
    assert gain["diff_certificate_mean"] == long["lessons"]["gains"][0]["diff_mean"] > 0  # patience 12 = 10's reading
    assert report.verdict(gain, "diff").endswith(
        f"it reads {report.points(gain['diff_certificate_mean'], gain['diff_certificate_std'])}"
    )
    gain = long["lessons"]["gains"][0]
    assert gain["diff_mean"] > 0 and gain["diff_holds"] is True
    assert gain["ahead"] == 3 and gain["n_seeds"] == 3
    certificates = [r for r in long["runs"] if r["patience_check"]]
    assert len(certificates) == len(long["runs"]) / 2 and {r["patience"] for r in certificates} == {40}


def test_a_certificate_past_the_end_of_its_recording_is_pending_not_held():
    recorded = {"runs": [training("GRU4Rec", m, s, base_curve(s)[:20]) for s in (1, 2, 3) for m in ("base", "ada")]}
    result = report.converged("seven", recorded, StoppingRule(patience=10), "test")  # certificate: patience 40
    gain = result["lessons"]["gains"][0]
    assert gain["certificate_pending"] and gain["diff_holds"] is None
    assert report.verdict(gain, "diff").startswith("pending") and not result["incomplete"]
    assert len(result["certificate_pending"]) == 6
    whole = report.converged("seven", recorded, StoppingRule(patience=3), "test")  # 12 epochs: recorded whole
    assert not whole["certificate_pending"] and whole["lessons"]["gains"][0]["diff_holds"] is True


def test_the_shift_study_pairs_base_and_ada_per_cell_and_writes_its_report(tmp_path, monkeypatch):
    recorded = {
        "provenance": {"command": "python benchmarks/shift_matrix.py", "commit": "abc"},
        "runs": [training("SASRec", m, s, base_curve(s)) for s in (1, 2) for m in ("base", "ada")],
    }
    path = tmp_path / "rec.json"
    path.write_text(json.dumps(recorded))
    monkeypatch.setattr(report, "RESULTS", tmp_path)  # no stopping-rule study there
    assert report.main(["--study", "shift", "--recorded", str(path), "--out", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out.json").read_text())
    cells = {c["test_sampler"]: c for c in result["lessons"]["cells"]}
    assert set(cells) == set(SAMPLERS) and cells["uniform"]["base_drop_mean"] < 0  # easier lists: negative drop
    assert abs(cells["mixer"]["diff_mean"]) < 1e-12  # identical curves: no difference
    assert result["rule"]["study_status"] is None  # no study: said, not assumed
    text = (tmp_path / "out.md").read_text()
    assert "## SASRec, test GAUC per cell" in text and "no rule is chosen yet" in text
