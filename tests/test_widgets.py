"""xmrec.widgets: controls built from config fields, observers, and the ablation panel's Run button."""

import ipywidgets as widgets
import numpy as np
import pytest

from xmrec import experiments as xp
from xmrec.config import ModelConfig, SamplerConfig, field_docs
from xmrec.widgets import AblationPanel, ConfigControls, control_for


def test_control_types_and_tooltips_come_from_the_fields():
    docs = field_docs(ModelConfig)
    box = control_for(ModelConfig, "identity_patches")
    assert isinstance(box, widgets.Checkbox) and box.value is False
    assert box.description == "identity_patches" and box.tooltip == docs["identity_patches"] != ""
    n_neg = control_for(SamplerConfig, "n_neg", bounds=(1, 99))
    assert isinstance(n_neg, widgets.BoundedIntText) and (n_neg.value, n_neg.min, n_neg.max) == (19, 1, 99)
    prob = control_for(SamplerConfig, "popularity_prob", bounds=(0.0, 1.0))
    assert isinstance(prob, widgets.FloatSlider) and prob.value == 0.5
    kind = control_for(SamplerConfig, "kind", choices=["mixer", "uniform"])
    assert isinstance(kind, widgets.Dropdown) and kind.value == "mixer"
    assert isinstance(control_for(xp.Variant, "embedding_init"), widgets.Checkbox)
    with pytest.raises(KeyError, match="no field 'nope'"):
        control_for(ModelConfig, "nope")


def test_config_controls_round_trip_and_observe():
    controls = ConfigControls(SamplerConfig, ["kind", "n_neg"], choices={"kind": ["mixer", "uniform"]})
    seen = []
    controls.observe(seen.append)
    controls.controls["n_neg"].value = 9
    controls.controls["kind"].value = "uniform"
    assert [c["name"] for c in seen] == ["value", "value"]
    assert controls.value() == SamplerConfig(kind="uniform", n_neg=9)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def panel(tmp_path_factory):
    exp = xp.Experiment(
        "synthetic",
        preset="small-data",
        sets=[
            "data.max_seq_len=10",
            "data.small_category_max_items=20",
            "train.batch_size=128",
            "train.epochs=1",
            "train.patience=1",
            "train.max_train_lists=200",
            "train.max_eval_lists=100",
        ],
        interactions=20_000,
        runs_dir=tmp_path_factory.mktemp("runs"),
        data_cache=tmp_path_factory.mktemp("data"),
        progress=False,
    )
    return AblationPanel(exp, seed=3)


def test_panel_observers_follow_the_controls(panel):
    panel.mode.value = "base"
    assert panel.freeze.disabled and all(c.disabled for c in panel.ada.controls.values())
    assert panel.current_variant().mode == "base"
    panel.mode.value = "finetune"
    assert not panel.freeze.disabled
    panel.freeze.value = True
    panel.ada.controls["identity_patches"].value = True
    assert "GRU4Rec finetune (frozen) +identity_patches" in panel.preview.value
    v = panel.current_variant()
    assert v.freeze and v.model.identity_patches
    panel.sampler.controls["n_neg"].value = 9
    assert panel.current_variant().sampler.n_neg == 9
    assert isinstance(panel.widget, widgets.VBox)


def test_run_button_trains_and_updates_the_table(panel):
    panel.mode.value = "ada"
    panel.freeze.value = False
    panel.ada.controls["identity_patches"].value = False
    panel.sampler.controls["n_neg"].value = 19
    panel.label.value = "my ada"
    before = len(panel.experiment.results)
    panel.run_button.click()  # what a click in JupyterLab does
    assert len(panel.experiment.results) == before + 1
    results = panel.results()
    assert "my ada" in set(results["label"])
    table = panel.experiment.table()
    assert results.set_index("label").loc["my ada", "gauc_mean"] == pytest.approx(
        table.loc[table["label"] == "my ada", "gauc"].mean()
    )  # the panel shows the run's own figure
    assert panel.experiment.latest("my ada").metrics["gauc"] == pytest.approx(
        float(np.mean(panel.experiment.latest("my ada").per_list["gauc"]))
    )
    assert "my ada" in panel.status.value and "gauc" in panel.status.value
    assert not panel.run_button.disabled
    assert "white-space: nowrap" in panel.table_view().to_html()  # "0.4703 ± 0.0012" never wraps


def test_plot_is_stacked_under_the_table_and_wider_than_it(panel):
    import struct

    stack = next(w for w in panel.widget.children if isinstance(w, widgets.VBox) and panel.table_out in w.children)
    assert list(stack.children) == [panel.table_out, panel.plot_out]
    png = panel.plot_png()
    width = struct.unpack(">I", png[16:20])[0]  # the PNG header's IHDR width
    assert width >= 900, width


def test_run_variants_covers_every_seed_and_restores_the_seed_control(panel):
    before = len(panel.experiment.results)
    done = panel.run_variants([xp.variant("GRU4Rec", "base")], seeds=[5, 6])
    assert [r.seed for r in done] == [5, 6] and len(panel.experiment.results) == before + 2
    assert panel.seed.value == 3
    assert panel.results().set_index("label").loc["GRU4Rec base", "n_seeds"] >= 2
