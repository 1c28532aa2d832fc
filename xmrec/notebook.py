"""What every training notebook shares, in one object: folders, device, threads, figure style, the
experiment under the notebook's preset, saved figures and the results record.

    session = NotebookSession("03_train_base_vs_adaranker", globals())
    exp = session.experiment(DATASET, preset=PRESET, sets=SET, data_seed=DATA_SEED, workers=WORKERS)
    session.save(fig, "03_learning_curves")
    session.write_results({"model": MODEL, ...}, exp)

The namespace (the notebook's ``globals()``) supplies the parameters the session reads (``SMOKE``,
``DEVICE``, ``THREADS``, ``RUNS_DIR``, ``PROCESSED_DIR``, ``FIGURES_DIR``) and, through
:func:`xmrec.provenance.notebook_parameters`, the parameters the results record. A SMOKE run
trains under the ``smoke`` preset whatever the notebook names, and writes to
``runs/smoke-figures/``, never over the reference figures.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from xmrec.config import data_dir, resolve_device
from xmrec.experiments import Experiment
from xmrec.io import atomic_write_text
from xmrec.provenance import notebook_parameters, provenance

__all__ = ["NotebookSession"]


class NotebookSession:
    """One run of a notebook; see the module docstring."""

    def __init__(self, name: str, namespace: dict):
        import matplotlib.pyplot as plt
        import torch

        from xmrec import plots

        self.name, self.namespace = name, namespace
        self.smoke = bool(namespace.get("SMOKE", False))
        if namespace.get("THREADS"):
            torch.set_num_threads(namespace["THREADS"])
        plots.set_theme()
        if self.smoke:  # draft-quality figures: rendering is a large part of a smoke run
            plt.rcParams.update({"figure.dpi": 40, "savefig.dpi": 50})
        self.fig_dir = _folder(namespace.get("FIGURES_DIR")) or plots.figures_dir(smoke=self.smoke)
        self.runs_dir = _folder(namespace.get("RUNS_DIR")) or data_dir() / "runs"
        self.processed_dir = _folder(namespace.get("PROCESSED_DIR")) or data_dir() / "processed"
        self.device = resolve_device(namespace.get("DEVICE", "auto"))
        self.saved: list[Path] = []
        self.started = time.perf_counter()
        kind = "GPU" if self.device.type != "cpu" else "CPU"
        print(f"device: {self.device} ({kind}), torch threads: {torch.get_num_threads()}, figures -> {self.fig_dir}")

    def preset(self, preset: str) -> str:
        """The preset a run of this notebook trains under: ``smoke`` in a SMOKE run."""
        return "smoke" if self.smoke else preset

    def experiment(self, dataset: str, *, preset: str, sets=(), **kwargs) -> Experiment:
        """An :class:`Experiment` on the notebook's folders and device, under :meth:`preset`."""
        sets = [*sets, f"train.device={self.namespace.get('DEVICE', 'auto')}"]
        return Experiment(
            dataset,
            preset=self.preset(preset),
            sets=sets,
            runs_dir=self.runs_dir,
            data_cache=self.processed_dir,
            progress=True,
            **kwargs,
        )

    def save(self, fig, stem: str) -> Path:
        """Save ``fig`` as ``<figures>/<stem>.png`` and remember it for the results record."""
        from xmrec import plots

        path = plots.save_figure(fig, stem, self.fig_dir)
        self.saved.append(path)
        return path

    def write_results(self, record: dict, experiment: Experiment | None = None) -> Path:
        """``<figures>/<NN>_results.json``: provenance, the notebook's numbers (``record``), every run
        of ``experiment`` with its full history (unless ``record`` has ``runs``), figures, seconds."""
        full = {
            "provenance": provenance(
                notebook_parameters(self.namespace), str(self.device), command=f"notebooks/{self.name}.ipynb"
            ),
            "notebook": self.name,
            "smoke": self.smoke,
            "device": str(self.device),
            **record,
        }
        if experiment is not None:
            full.setdefault("runs", experiment.records())
            full.setdefault("preset", experiment.preset)
            full.setdefault("n_train_lists", len(experiment.dataset().train))
            full.setdefault("n_test_lists", len(experiment.dataset().test))
        full["figures"] = [p.name for p in self.saved]
        full["seconds"] = round(time.perf_counter() - self.started, 1)
        path = self.fig_dir / f"{self.name[:2]}_results.json"
        atomic_write_text(path, json.dumps(full, indent=2, default=float))
        print(f"wrote {path} and {len(self.saved)} figures in {full['seconds']:.0f} s")
        return path


def _folder(value) -> Path | None:
    return Path(value) if value else None
