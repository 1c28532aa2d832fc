"""A sequential ranker of the kit (base or Ada-Ranker) as a cross-market scorer.

The models of notebooks 03/04 rank candidate lists from a user's item sequence. Here one is
trained on the visible interactions of ``markets`` (a ``GraphView``, so validation features never
see the target's validation positives) with the Ada-Ranker data protocol: pseudo-time = file
order (the XMRec files carry no timestamps; train rows, then the 5-core-only rows, then other
markets' qrels), an item's categories = the markets where it is visible, leave-last-out
instances, distribution-mixer negatives over those market pools. On the real files that order
is effectively random within a user (ItemCF over a user's first k items ranks as well as over
the last k), so a sequence model learns item co-occurrence here, not order. The validation
instances (each user's second-to-last interaction) early-stop the training; the last interaction
is never a target; every training is recorded in ``trainings`` (preset, cap, patience, best epoch,
epochs run, its history). Then the model scores each candidate list with the user's whole visible
history (its last ``max_seq_len`` items). Candidates the model never saw rank last in their list (score = the
list's lowest known score minus 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from xmrec.config import DataConfig, SamplerConfig
from xmrec.data.process import process_interactions
from xmrec.data.sampling import sample_negatives
from xmrec.data.store import ProcessedDataset
from xmrec.overrides import preset_configs
from xmrec.runs import InMemoryData, RunSpec, execute

from ..candidates import Candidates
from ..graph import GraphView
from .base import Scorer, market_label

__all__ = ["SequentialScorer", "view_dataset"]


def view_dataset(
    view: GraphView, markets: tuple[str, ...] | None, max_seq_len: int, n_targets: int, n_neg: int, seed: int
) -> ProcessedDataset:
    """The visible interactions of ``markets``' users as a processed, negative-sampled dataset.

    Raw ids are the userId/itemId strings (so ids, and the model, do not depend on how
    ``view.data`` happens to be indexed); users need at least three visible interactions (a train,
    a valid and a test target).
    """
    data = view.data
    inter = data.interactions[view.visible]
    inter = inter[view.user_mask(markets)[inter["u"].to_numpy()]]
    items = data.item_ids.to_numpy()[inter["i"].to_numpy()]
    raw = pd.DataFrame(
        {
            "user_id": data.user_ids.to_numpy()[inter["u"].to_numpy()],
            "item_id": items,
            "timestamp": np.arange(len(inter), dtype=np.int64),
        }
    )
    market_of_user = data.user_market[inter["u"].to_numpy()]
    cats = pd.DataFrame({"item_id": items, "cate_id": np.asarray(data.market_names)[market_of_user]}).drop_duplicates()
    cfg = DataConfig(
        min_user_interactions=2,
        n_targets=n_targets,
        max_seq_len=max_seq_len,
        small_category_max_items=0,
        instance_per_category=False,
    )
    ds = process_interactions(raw, cfg, item_categories=cats, name=f"{view.stage} view").dataset
    return sample_negatives(ds, SamplerConfig(n_neg=n_neg, seed=seed))


def _new_ids(raw_ids: np.ndarray, ids: pd.Index) -> np.ndarray:
    """Global index (position in ``ids``) -> processed id, 0 where the dataset does not have it."""
    out = np.zeros(len(ids), np.int64)
    out[ids.get_indexer(raw_ids[1:])] = np.arange(1, len(raw_ids))
    return out


@dataclass(frozen=True)
class SequentialScorer(Scorer):
    """A kit ranker (``model``, Ada-Ranker when ``ada``) trained on the view; its logit is the feature.

    Its protocol is a preset (``scorer`` unless ``preset`` names another: ``xmrec.overrides.PRESETS``),
    with ``sets`` (``"section.field=value"``) over it; it trains through the run layer, in memory.
    """

    markets: tuple[str, ...] | None = None  # whose users' sequences train the model (None: every market)
    model: str = "SASRec"
    ada: bool = True
    preset: str = "scorer"  # the training protocol (xmrec.overrides.PRESETS)
    sets: tuple[str, ...] = ()  # "section.field=value" over the preset, e.g. ("train.epochs=2",)
    n_targets: int = 5  # last interactions of a user used as training/validation targets
    n_neg: int = 19  # mixer negatives per training list
    seed: int = 2022
    device: str = "auto"
    progress: bool = False
    primary_feature: str = "score"
    trainings: list = field(default_factory=list, compare=False, repr=False)  # one record per trained view

    @property
    def name(self) -> str:
        return f"{'ada' if self.ada else 'base'}_{self.model.lower()}[{market_label(self.markets)}]"

    def configs(self) -> dict:
        """The preset's configs with ``sets``, for this scorer's mode, seed and device."""
        mode = "ada" if self.ada else "base"
        cfg = preset_configs(self.preset, mode, self.sets)
        cfg["train"] = replace(cfg["train"], mode=mode, seed=self.seed, device=self.device)
        return cfg

    @property
    def max_seq_len(self) -> int:
        return self.configs()["data"].max_seq_len

    def train(self, view: GraphView):
        """The trained run (:class:`xmrec.runs.RunRecord`, model in memory) and its dataset."""
        cfg = self.configs()
        ds = view_dataset(view, self.markets, cfg["data"].max_seq_len, self.n_targets, self.n_neg, self.seed)
        spec = RunSpec(InMemoryData(ds, self.seed), replace(cfg["model"], name=self.model), cfg["train"], self.name)
        record = execute(spec, None, progress=self.progress)
        self.trainings.append(
            {
                "label": self.name,
                "view": view.stage,
                "preset": self.preset,
                "epochs": spec.train.epochs,
                "patience": spec.train.patience,
                "best_epoch": record.best_epoch,
                "epochs_run": len(record.history),
                "valid_gauc": record.history[record.best_epoch - 1]["gauc"],
                "history": record.history,
            }
        )
        return record, ds

    def _features(self, view: GraphView, cands: Candidates) -> dict[str, np.ndarray]:
        import torch

        from xmrec.training import SplitTensors, score

        record, ds = self.train(view)
        data = view.data
        item_id = _new_ids(ds.item_raw_ids, data.item_ids)
        user_id = _new_ids(ds.user_raw_ids, data.user_ids)
        inter = data.interactions[view.visible]
        inter = inter[np.isin(inter["u"].to_numpy(), cands.users)]
        seq_of = inter.groupby("u", sort=False)["i"].agg(list)
        L = self.max_seq_len
        item_seq = np.zeros((len(cands), L), np.int64)
        for row, u in enumerate(cands.users):
            hist = item_id[np.asarray(seq_of.get(u, []), np.int64)]
            hist = hist[hist > 0][-L:]
            if len(hist):
                item_seq[row, L - len(hist) :] = hist
        seq_len = (item_seq > 0).sum(axis=1)
        cand_ids = item_id[cands.items]
        tensors = SplitTensors(
            user=torch.from_numpy(user_id[cands.users]),
            item_seq=torch.from_numpy(item_seq),
            item_seq_len=torch.from_numpy(np.maximum(seq_len, 1)),
            candidates=torch.from_numpy(cand_ids),
        )
        model = record.model()
        scores = score(model, tensors, seed=self.seed).astype(np.float64)
        unknown = cand_ids == 0
        lowest = np.where(unknown, np.inf, scores).min(axis=1, keepdims=True)
        scores = np.where(unknown, np.where(np.isfinite(lowest), lowest, 0.0) - 1.0, scores)
        return {"score": scores}
