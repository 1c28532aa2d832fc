"""Provenance records: git state, versions, config and command; notebook parameters only."""

import json
import subprocess

import pytest

import xmrec.provenance
from xmrec.provenance import OUTPUT_FOLDERS, PACKAGES, as_markdown, git_state, notebook_parameters, provenance


def test_provenance_carries_what_a_result_needs():
    rec = provenance({"lr": 0.001, "seeds": [1, 2]}, "cpu", command=["python", "x.py", "--flag"])
    assert rec["config"] == {"lr": 0.001, "seeds": [1, 2]} and rec["device"] == "cpu"
    assert rec["command"] == "python x.py --flag"
    assert set(PACKAGES) | {"python"} == set(rec["versions"]) and rec["versions"]["torch"]
    state = git_state()
    assert rec["commit"] == state["commit"] and (state["commit"] is None or len(state["commit"]) == 40)
    json.dumps(rec)  # a results file can store it as it is


def test_notebook_parameters_keep_plain_upper_case_values():
    class PCA:  # an import with an upper-case name is not a parameter
        pass

    ns = {"SMOKE": True, "SEEDS": [1], "FIGURES_DIR": None, "PCA": PCA, "lower": 1, "In": []}
    assert notebook_parameters(ns) == {"SMOKE": True, "SEEDS": [1], "FIGURES_DIR": None}


def test_markdown_form_names_commit_versions_command_and_config():
    rec = provenance({"epochs": 40}, "cuda", command="python benchmarks/x.py --seeds 1")
    text = as_markdown(rec)
    assert "`python benchmarks/x.py --seeds 1`" in text and '`{"epochs": 40}`' in text
    assert "device cuda" in text and f"torch {rec['versions']['torch']}" in text
    assert (rec["commit"] or "no git checkout")[:12] in text


def test_a_copy_without_git_takes_its_commit_from_the_variable_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(xmrec.provenance, "project_root", lambda: tmp_path)  # no .git above tmp_path
    monkeypatch.delenv("XMREC_COMMIT", raising=False)
    assert git_state() == {"commit": None, "dirty": None, "commit_from": None}
    commit = "0123456789abcdef0123456789abcdef01234567"
    monkeypatch.setenv("XMREC_COMMIT", commit)
    rec = provenance({}, "cuda", command="x")
    assert (rec["commit"], rec["dirty"], rec["commit_from"]) == (commit, None, "XMREC_COMMIT")
    assert "0123456789ab (named by $XMREC_COMMIT" in as_markdown(rec)
    monkeypatch.setenv("XMREC_COMMIT", "HEAD")
    with pytest.raises(ValueError, match="XMREC_COMMIT.*40-hex-digit"):
        git_state()


def test_a_git_checkout_ignores_the_variable(monkeypatch):
    monkeypatch.setenv("XMREC_COMMIT", "0123456789abcdef0123456789abcdef01234567")
    state = git_state()
    assert state["commit_from"] == "git" and state["commit"] != "0123456789abcdef0123456789abcdef01234567"


def test_dirty_means_code_changed_not_results_redrawn(tmp_path, monkeypatch):
    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True)

    for path in ["xmrec/model.py", *(f"{folder}/result.txt" for folder in OUTPUT_FOLDERS)]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("v1\n")
    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "start")
    monkeypatch.setattr(xmrec.provenance, "project_root", lambda: tmp_path)
    assert git_state()["dirty"] is False
    for folder in OUTPUT_FOLDERS:  # a run rewrites its tracked results and adds new ones
        (tmp_path / folder / "result.txt").write_text("v2\n")
        (tmp_path / folder / "new.png").write_bytes(b"png")
    assert git_state()["dirty"] is False
    (tmp_path / "xmrec" / "model.py").write_text("v2\n")
    assert git_state()["dirty"] is True
    (tmp_path / "xmrec" / "model.py").write_text("v1\n")
    (tmp_path / "notes.txt").write_text("an untracked file outside the results\n")
    assert git_state()["dirty"] is True
