"""A benchmark never mixes runs of a results file marked stale (the kit's earlier models) with new ones."""

import importlib.util
import json

import pytest

from xmrec.config import project_root

SCRIPT = project_root() / "benchmarks" / "shift_matrix.py"
spec = importlib.util.spec_from_file_location("shift_matrix_benchmark", SCRIPT)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_the_shift_matrix_benchmark_refuses_to_resume_onto_a_stale_record(tmp_path):
    out = tmp_path / "shift_matrix"
    args = bench.parse_args(["--out", str(out)])
    record = {"stale": "earlier models", "protocol": {k: getattr(args, k) for k in bench.PROTOCOL_KEYS}}
    out.with_suffix(".json").write_text(json.dumps({**record, "runs": [{"seed": 1}]}))
    with pytest.raises(SystemExit, match="marked stale"):
        bench.Record(args, ["shift_matrix.py"])
    assert bench.Record(bench.parse_args(["--out", str(out), "--fresh"]), ["shift_matrix.py"]).runs == []
