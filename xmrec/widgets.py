"""ipywidgets panels bound to config fields, for the ablation explorer (notebook 06).

Every control is built from a dataclass field: its type picks the widget (checkbox, number,
dropdown), its name is the label and its one-line comment in the source
(:func:`xmrec.config.field_docs`) is the tooltip and the grey help text beside it. So a field
added to a config, with its comment, shows up here explained, with no second copy of the docs.

:class:`AblationPanel` assembles the controls that define a :class:`xmrec.experiments.Variant`
(base model, mode, Ada-Ranker components and deviations, sampler mixture, negatives count,
embedding init), runs it with an :class:`xmrec.experiments.Experiment` when the button is
pressed, and keeps every run in a results table and a comparison plot.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable, Sequence
from dataclasses import fields, replace

import ipywidgets as widgets
import pandas as pd

from xmrec.config import ModelConfig, SamplerConfig, TrainConfig, field_docs
from xmrec.data.sampling import SAMPLERS
from xmrec.experiments import ADA_SWITCHES, METRICS, Experiment, RunResult, Variant, variant
from xmrec.models import MODEL_NAMES
from xmrec.stats import summarize
from xmrec.training import MODES

__all__ = ["control_for", "ConfigControls", "AblationPanel", "SAMPLER_FIELDS"]

SAMPLER_FIELDS = ("kind", "n_neg", "max_extra_categories", "popularity_prob")  # the seed comes from the experiment
_STYLE = {"description_width": "190px"}
_LAYOUT = {"width": "360px"}


def control_for(
    cls, name: str, value=None, *, choices: Sequence | None = None, bounds: tuple[float, float] | None = None
) -> widgets.ValueWidget:
    """A widget for field ``name`` of dataclass ``cls``: label = field name, tooltip = its doc.

    ``bool`` -> Checkbox, ``int`` -> BoundedIntText, ``float`` -> BoundedFloatText (or a slider
    within ``bounds``), ``str`` (or any field with ``choices``) -> Dropdown. ``value`` defaults to
    the field's default.
    """
    spec = {f.name: f for f in fields(cls)}
    if name not in spec:
        raise KeyError(f"{cls.__name__} has no field {name!r}; fields: {', '.join(spec)}")
    f = spec[name]
    value = f.default if value is None else value
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    common = {"description": name, "tooltip": field_docs(cls)[name], "style": _STYLE, "layout": _LAYOUT}
    if choices is not None:
        return widgets.Dropdown(options=list(choices), value=value, **common)
    if kind == "bool":
        return widgets.Checkbox(value=bool(value), indent=False, **common)
    if kind == "int":
        lo, hi = bounds or (0, 10_000)
        return widgets.BoundedIntText(value=int(value), min=int(lo), max=int(hi), **common)
    if kind == "float":
        if bounds is not None:
            return widgets.FloatSlider(value=float(value), min=bounds[0], max=bounds[1], step=0.05, **common)
        return widgets.FloatText(value=float(value), **common)
    if kind == "str":
        return widgets.Text(value=str(value), **common)
    raise TypeError(f"{cls.__name__}.{name}: no widget for type {kind!r}; pass choices=")


def _with_help(control: widgets.Widget) -> widgets.HBox:
    doc = html.escape(getattr(control, "tooltip", "") or "")
    return widgets.HBox([control, widgets.HTML(f"<span style='color:#666'>{doc}</span>")])


class ConfigControls:
    """Controls for some fields of one config dataclass; :meth:`value` builds the config back."""

    def __init__(
        self, cls, names: Sequence[str], base=None, *, choices: dict | None = None, bounds: dict | None = None
    ):
        self.cls, self.base = cls, base if base is not None else cls()
        choices, bounds = choices or {}, bounds or {}
        self.controls = {
            n: control_for(cls, n, getattr(self.base, n), choices=choices.get(n), bounds=bounds.get(n)) for n in names
        }
        self.box = widgets.VBox([_with_help(c) for c in self.controls.values()])

    def value(self):
        """``base`` with the controls' values (a frozen config; invalid values raise there)."""
        return replace(self.base, **{n: c.value for n, c in self.controls.items()})

    def observe(self, callback: Callable[[dict], None]) -> None:
        """Call ``callback(change)`` whenever any control's value changes."""
        for c in self.controls.values():
            c.observe(callback, names="value")

    def set_disabled(self, disabled: bool) -> None:
        for c in self.controls.values():
            c.disabled = disabled


class AblationPanel:
    """Controls for one variant, a Run button, and the table and plot of every run so far.

    ``panel.widget`` is the root to display. ``panel.run()`` (what the button does) trains the
    current variant and refreshes the table and plot; ``panel.run_variants(list)`` runs a grid
    through the same path (notebook 06 does this when it runs without a person at the controls).
    """

    def __init__(
        self,
        experiment: Experiment,
        *,
        seed: int = 2022,
        models: Sequence[str] = MODEL_NAMES,
        metric: str = "gauc",
        plot: bool = True,
    ):
        self.experiment, self.metric, self.plot = experiment, metric, plot
        self.model = control_for(ModelConfig, "name", choices=models)
        self.model.description = "model"
        self.mode = control_for(TrainConfig, "mode", "ada", choices=MODES)
        self.freeze = control_for(TrainConfig, "freeze")
        self.ada = ConfigControls(ModelConfig, ADA_SWITCHES)
        self.sampler = ConfigControls(
            SamplerConfig,
            SAMPLER_FIELDS,
            choices={"kind": SAMPLERS},
            bounds={"n_neg": (1, 99), "max_extra_categories": (0, 10), "popularity_prob": (0.0, 1.0)},
        )
        self.embedding_init = control_for(Variant, "embedding_init")
        self.seed = control_for(TrainConfig, "seed", seed, bounds=(0, 2**31 - 1))
        self.label = control_for(Variant, "label", "")
        self.label.placeholder = "automatic"
        self.preview = widgets.HTML()
        self.run_button = widgets.Button(
            description="Run", button_style="primary", icon="play", tooltip="train this variant and add it to the table"
        )
        self.status = widgets.HTML()
        self.progress_out = widgets.Output()  # the training progress bars of the current run
        self.table_out, self.plot_out = widgets.Output(), widgets.Output()

        for control in (self.model, self.mode, self.freeze, self.embedding_init, self.label):
            control.observe(self._on_change, names="value")
        self.ada.observe(self._on_change)
        self.sampler.observe(self._on_change)
        self.run_button.on_click(lambda _button: self.run())
        self._on_change()
        self.widget = self._layout()

    def _layout(self) -> widgets.VBox:
        section = lambda text: widgets.HTML(f"<b>{text}</b>")  # noqa: E731
        return widgets.VBox(
            [
                section("Model and training mode"),
                _with_help(self.model),
                _with_help(self.mode),
                _with_help(self.freeze),
                _with_help(self.embedding_init),
                section("Ada-Ranker components and deviations (mode ada / finetune)"),
                self.ada.box,
                section("Candidate lists (sampler)"),
                self.sampler.box,
                section("Run"),
                widgets.HBox([self.seed, self.label]),
                widgets.HBox([self.run_button, self.preview]),
                self.status,
                self.progress_out,
                widgets.VBox([self.table_out, self.plot_out]),  # stacked: the plot gets the full width
            ]
        )

    # -- state ------------------------------------------------------------------------------
    def current_variant(self) -> Variant:
        """The variant the controls describe."""
        mode = self.mode.value
        ada = {k: c.value for k, c in self.ada.controls.items()} if mode != "base" else {}
        return variant(
            self.model.value,
            mode,
            freeze=self.freeze.value and mode == "finetune",
            label=self.label.value.strip() or None,
            sampler=self.sampler.value(),
            embedding_init=self.embedding_init.value,
            **ada,
        )

    def _on_change(self, change: dict | None = None) -> None:
        mode = self.mode.value
        self.freeze.disabled = mode != "finetune"
        self.ada.set_disabled(mode == "base")
        try:
            self.preview.value = f"next run: <code>{html.escape(self.current_variant().label)}</code>"
            self.run_button.disabled = False
        except (ValueError, TypeError) as err:
            self.preview.value = f"<span style='color:#b00'>{html.escape(str(err))}</span>"
            self.run_button.disabled = True

    # -- runs -------------------------------------------------------------------------------
    def run(self, v: Variant | None = None) -> RunResult:
        """Train ``v`` (default: the controls' variant) for the seed control; refresh table and plot."""
        v = v or self.current_variant()
        self.run_button.disabled = True
        self.status.value = f"training <code>{html.escape(v.label)}</code> (seed {self.seed.value}) ..."
        self.progress_out.clear_output()
        try:
            with self.progress_out:  # a button callback has no cell output: show progress here
                result = self.experiment.run(v, self.seed.value)
        except Exception as err:
            self.status.value = f"<span style='color:#b00'>failed: {html.escape(str(err))}</span>"
            raise
        finally:
            self.run_button.disabled = False
        how = "reused a finished run" if result.reused else f"trained {len(result.history)} epochs"
        self.status.value = (
            f"<code>{html.escape(v.label)}</code>: test {self.metric} "
            f"{result.metrics[self.metric]:.4f} ({how}, {result.seconds:.0f} s)"
        )
        self.refresh()
        return result

    def run_variants(self, variants: Sequence[Variant], seeds: Sequence[int] | None = None) -> list[RunResult]:
        """Run each variant for each seed (default: the seed control's) as one grid of the
        experiment (its executor trains the missing runs, side by side with ``workers`` > 1), then
        refresh the table and plot."""
        self.run_button.disabled = True
        self.status.value = f"training {len(variants)} variant(s) x {len(seeds or [self.seed.value])} seed(s) ..."
        self.progress_out.clear_output()
        try:
            with self.progress_out:
                out = self.experiment.run_grid(variants, seeds or [self.seed.value])
        finally:
            self.run_button.disabled = False
        trained = sum(not r.reused for r in out)
        self.status.value = f"{len(out)} run(s): {trained} trained, {len(out) - trained} reused"
        self.refresh()
        return out

    def results(self) -> pd.DataFrame:
        """Every run so far, averaged over seeds: ``summarize`` of the experiment's table."""
        table = self.experiment.table()
        return summarize(table, METRICS) if len(table) else pd.DataFrame()

    def table_view(self):
        """The results table as shown: one row per variant, cells that never wrap."""
        results = self.results()
        shown = results[["label", "n_seeds", *METRICS]] if len(results) else results
        nowrap = [{"selector": "td, th", "props": [("white-space", "nowrap")]}]  # "0.47 ± 0.01" on one line
        return shown.style.set_table_styles(nowrap).hide(axis="index")

    def plot_png(self) -> bytes:
        """The comparison plot as PNG bytes, 1,100 px wide: wider than the table above it.

        Drawn outside pyplot on purpose: JupyterLab 4 with ipykernel 7 sends widget messages on a
        kernel subshell (setting commsOverSubshells), i.e. another thread, and each one ends with
        matplotlib-inline's flush_figures, which draws and closes every pyplot figure: a pyplot
        figure drawn here meanwhile (a Run click) came out blank or cut.
        """
        from matplotlib.figure import Figure

        from xmrec.plots import metric_points

        table = self.experiment.table()
        fig = Figure(figsize=(11, 0.6 * table["label"].nunique() + 1.8))
        metric_points(table, self.metric, ax=fig.subplots())
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=fig.dpi, bbox_inches="tight")  # as the inline backend does
        return png.getvalue()

    def refresh(self) -> None:
        """Redraw the results table and, under it, the comparison plot."""
        from IPython.display import Image, display

        self.table_out.clear_output(wait=True)
        with self.table_out:
            display(self.table_view())
        if not self.plot or not len(self.experiment.results):
            return
        self.plot_out.clear_output(wait=True)
        with self.plot_out:
            display(Image(self.plot_png()))
