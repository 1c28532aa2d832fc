"""benchmarks/srgnn_collapse.py: the step probe reads what each SRGNN stage really hands to the next."""

import importlib.util

import torch
from test_models import batch, dataset, make  # noqa: F401 (fixtures)

from xmrec.config import project_root

SCRIPT = project_root() / "benchmarks" / "srgnn_collapse.py"
spec = importlib.util.spec_from_file_location("srgnn_collapse_benchmark", SCRIPT)
probe_module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(probe_module)


def test_probe_records_one_row_per_training_step_with_the_stages_values(dataset, batch):  # noqa: F811
    model = make("SRGNN", True, dataset, dropout=0.0)
    probe = probe_module.StepProbe()
    probe.attach(model)
    model.train()
    torch.manual_seed(1)
    logits = model(batch)
    model.eval()
    model(batch)  # evaluation passes are not training steps
    assert len(probe.rows) == 1
    row = probe.rows[0]
    torch.manual_seed(1)  # the same draw of z as the step above
    z = model.ada.extractor(model.item_emb(batch["candidates"])).z
    gamma, beta = model.ada.film.coefficients(z)
    assert row["gamma"] == torch.mean(gamma).item() and row["beta"] == torch.mean(beta).item()
    assert abs(row["logit_spread"] - logits.std(dim=1).mean().item()) < 1e-6
    assert 0.0 <= row["saturated"] <= 1.0 and row["user_std"] > 0


def test_probe_reads_a_base_srgnn_without_film(dataset, batch):  # noqa: F811
    model = make("SRGNN", False, dataset)
    probe = probe_module.StepProbe()
    probe.attach(model)
    model.train()
    model(batch)
    assert "gamma" not in probe.rows[0] and {"alpha", "glob_std", "user_std", "saturated"} <= set(probe.rows[0])
