"""Why SRGNN's faithful Ada-Ranker collapses to a constant scorer: a step-by-step probe of its first epochs.

The seven-model recording (``shift_matrix.py --models SRGNN``, small-data preset, mixer lists) saw the
faithful SRGNN Ada-Ranker end its first epoch as a constant scorer (GAUC 0.5, loss at the label prior)
and never leave it. This probe retrains the first epochs of that run, the same spec and seed, and
records at every optimiser step what each stage hands to the next:

1. FiLM's per-list gamma and beta (one scalar each, added at every column, padding included);
2. the history embeddings after FiLM, and SRGNN's node states after its gated graph step;
3. SRGNN's readout: the attention sum over columns (``glob``, no softmax in SR-GNN) and the last
   column's state, then the user vector u = W [glob; last];
4. the prediction MLP: the share of tanh units saturated (|pre-activation| > 3, where tanh' < 0.01)
   and the spread of the logits inside a list (0 = every candidate gets the same score).

It does so for the base, the faithful Ada-Ranker (also with the authors' session graph exactly:
``srgnn_skip_alias0``), and Ada-Rankers with one named switch of
docs/DESIGN.md that removes or restarts one part (FiLM, the parameter patches): a switch that keeps
the collapse clears its part; the order in which the stages grow says where it starts. Writes
``benchmarks/results/srgnn_collapse.{json,md,png}`` (provenance, per-step trace, per-epoch history, a figure).

    python benchmarks/srgnn_collapse.py                # seeds 2022 2023, 2 epochs: about 5 minutes on 2 free cores
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "srgnn_collapse"
VARIANTS = {  # label -> (training mode, ModelConfig switches of docs/DESIGN.md's deviation table)
    "base": ("base", {}),
    "faithful": ("ada", {}),
    "authors' graph": ("ada", {"srgnn_skip_alias0": True}),  # the kit's SRGNN graph default aside: the authors' exactly
    "no FiLM": ("ada", {"use_input_modulation": False}),
    "identity_film": ("ada", {"identity_film": True}),
    "no patches": ("ada", {"use_param_modulation": False}),
    "identity_patches": ("ada", {"identity_patches": True}),
}
STAGES = (  # what StepProbe records, in the order the forward pass computes it
    *("gamma", "beta", "history_std", "node_std", "alpha", "glob_std", "last_std", "user_std"),
    *("saturated", "logit_spread"),
)
SATURATED = 3.0  # |tanh pre-activation| above which tanh' < 0.01


class StepProbe:
    """Forward hooks on one SRGNN ranker that append, at every training step, one row of stage statistics."""

    def __init__(self):
        self.rows: list[dict] = []
        self._row: dict = {}

    def attach(self, model) -> None:
        enc = model.encoder
        if model.ada is not None and model.ada.film is not None:
            model.ada.film.register_forward_hook(self._film)
        enc.gnn.register_forward_hook(self._gnn)
        enc.linear_three.register_forward_hook(self._attention)
        enc.linear_transform.register_forward_hook(self._readout)
        model.predictor.register_forward_hook(self._predictor)

    def _film(self, module, inputs, output):
        if module.training:
            gamma, beta = (t.detach() for t in module.coefficients(inputs[1]))
            self._row.update(
                gamma=gamma.mean().item(), beta=beta.mean().item(), history_std=output.detach().std().item()
            )

    def _gnn(self, module, inputs, output):
        if module.training:
            self._row.update(node_std=output.detach().std().item(), node_in_std=inputs[0].detach().std().item())

    def _attention(self, module, inputs, output):
        if module.training:
            self._row.update(alpha=output.detach().mean().item(), alpha_std=output.detach().std().item())

    def _readout(self, module, inputs, output):
        if module.training:
            glob, last = inputs[0].detach().chunk(2, dim=-1)
            self._row.update(
                glob_std=glob.std().item(), last_std=last.std().item(), user_std=output.detach().std().item()
            )

    def _predictor(self, module, inputs, output):
        if not module.training:
            return
        u, cand, patcher, z = (list(inputs) + [None, None])[:4]
        x = torch.cat([u.unsqueeze(1).expand(-1, cand.size(1), -1), cand], dim=-1).detach()
        if patcher is None:
            pre = module.fc1(x)
        else:
            w1, b1, _, _ = patcher(z, module.tensors())
            pre = torch.einsum("bni,boi->bno", x, w1) + b1.unsqueeze(1)
        self._row.update(
            saturated=(pre.abs() > SATURATED).float().mean().item(),
            logit_spread=output.detach().std(dim=1).mean().item(),
        )
        self.rows.append({"step": len(self.rows) + 1, **self._row})
        self._row = {}


def probe_run(spec, data_cache: Path, epochs: int) -> dict:
    """Train ``spec`` for ``epochs`` epochs in memory with a :class:`StepProbe` attached."""
    from xmrec.training.trainer import Trainer

    probe = StepProbe()

    class ProbedTrainer(Trainer):
        def _build(self, ds):
            super()._build(ds)
            probe.attach(self.model)

    train = replace(spec.train, epochs=epochs, patience=epochs, test_every_epoch=False)
    trainer = ProbedTrainer(spec.model, train, out=None, progress=False)
    history = trainer.fit(spec.dataset(data_cache, False), resume=False)
    return {"steps": probe.rows, "history": history, "model_config": asdict(trainer.model_cfg)}


def build_specs(seeds: list[int], variants: list[str], sets: list[str]) -> dict:
    """The probe's runs: the seven-model recording's SRGNN spec (preset small-data, mixer lists), per variant."""
    from xmrec.overrides import preset_configs
    from xmrec.runs import DataRecipe, RunSpec

    specs = {}
    for label in variants:
        mode, switches = VARIANTS[label]
        cfg = preset_configs("small-data", mode, sets)
        data = DataRecipe("ml-100k", 2022, cfg["data"], replace(cfg["sampler"], kind="mixer"), cfg["embedding"])
        for seed in seeds:
            specs[label, seed] = RunSpec(
                data, replace(cfg["model"], name="SRGNN", **switches), replace(cfg["train"], seed=seed)
            )
    return specs


def summary_rows(runs: list[dict], last_steps: int = 10) -> list[dict]:
    """Per run: each stage's mean over the first and the last ``last_steps`` steps, and the validation GAUC."""
    rows = []
    for run in runs:
        first, last = run["steps"][:last_steps], run["steps"][-last_steps:]
        row = {
            "variant": run["variant"],
            "seed": run["seed"],
            "valid_gauc": [round(h["gauc"], 4) for h in run["history"]],
        }
        for key in STAGES:
            vals = [[s[key] for s in part if key in s] for part in (first, last)]
            row[key] = [float(np.mean(v)) if v else None for v in vals]
        rows.append(row)
    return rows


def plot_trace(runs: list[dict], path: Path) -> None:
    """Per step: the readout's attention weight, the user vector's std and the logits' in-list spread."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (
        ("alpha", "readout: mean attention weight alpha", "linear"),
        ("user_std", "user vector u: std", "log"),
        ("saturated", "prediction MLP: share of tanh saturated", "linear"),
        ("logit_spread", "logits: std inside a list", "log"),
    )
    colours = dict(zip(VARIANTS, plt.get_cmap("tab10").colors))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6))
    first_seed = min(r["seed"] for r in runs)  # solid lines; the other seeds dashed
    for ax, (key, title, scale) in zip(axes, panels):
        for run in runs:
            steps = [s for s in run["steps"] if key in s]
            style = "-" if run["seed"] == first_seed else "--"
            ax.plot(
                [s["step"] for s in steps],
                [s[key] for s in steps],
                style,
                color=colours[run["variant"]],
                lw=1.2,
                label=f"{run['variant']} (seed {run['seed']})",
            )
        ax.set(title=title, xlabel="training step (batch of 256 lists)", yscale=scale)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="center right", fontsize=7)
    fig.suptitle("SRGNN on ML-100K, trained on mixer lists: the faithful Ada-Ranker's first epochs, step by step")
    fig.tight_layout(rect=(0, 0, 0.88, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def as_table(rows: list[dict]) -> str:
    def fmt(pair):
        return " -> ".join("-" if v is None else f"{v:.3g}" for v in pair)

    keys = STAGES
    lines = ["| variant | seed | " + " | ".join(keys) + " | valid GAUC by epoch |", "|---" * (len(keys) + 3) + "|"]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['seed']} | " + " | ".join(fmt(r[k]) for k in keys) + f" | {r['valid_gauc']} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", nargs="+", type=int, default=[2022, 2023])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--epochs", type=int, default=2, help="epochs per probed run (default 2)")
    p.add_argument("--set", action="append", default=[], help="section.field=value over the preset, as the CLI")
    p.add_argument("--out", type=Path, default=RESULTS, help="results path without suffix (.json, .md)")
    args = p.parse_args(argv)

    from tqdm.auto import tqdm

    from xmrec.config import data_dir
    from xmrec.io import atomic_write_text
    from xmrec.provenance import as_markdown, provenance

    torch.set_num_threads(1)
    specs = build_specs(args.seeds, args.variants, args.set)
    runs = []
    for (label, seed), spec in tqdm(specs.items(), desc="probed runs", unit="run"):
        runs.append({"variant": label, "seed": seed, **probe_run(spec, data_dir() / "processed", args.epochs)})
    rows = summary_rows(runs)
    config = {"preset": "small-data", "train_sampler": "mixer", "model": "SRGNN", **vars(args), "out": str(args.out)}
    config["variants"] = {k: VARIANTS[k] for k in args.variants}
    record = provenance(config, "cpu", command=sys.argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        args.out.with_suffix(".json"), json.dumps({"provenance": record, "summary": rows, "runs": runs}, indent=1)
    )
    table = as_table(rows)
    text = (
        "# SRGNN's faithful Ada-Ranker: where the first epochs go\n\n"
        f"Written by `python benchmarks/srgnn_collapse.py {' '.join(sys.argv[1:])}`. ML-100K, small-data preset, "
        "trained on mixer lists (Ada variants end-to-end). Each cell: mean over the first 10 training steps -> over the last 10 "
        "(standard deviations over all entries of the batch's tensor; `saturated`: share of the prediction MLP's tanh "
        f"units with |pre-activation| > {SATURATED:g}; `logit_spread`: std of the logits inside a list, mean over lists).\n\n"
        f"{table}\n\n{as_markdown(record)}\n"
    )
    atomic_write_text(args.out.with_suffix(".md"), text)
    plot_trace(runs, args.out.with_suffix(".png"))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
