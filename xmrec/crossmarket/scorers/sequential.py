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
is never a target; every training is recorded in ``trainings`` (cap, patience, best epoch, epochs
run). Then the model scores each candidate list with the user's whole visible
history (its last ``max_seq_len`` items). Candidates the model never saw rank last in their list (score = the
list's lowest known score minus 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from xmrec.config import DataConfig, ModelConfig, SamplerConfig, TrainConfig
from xmrec.data.process import process_interactions
from xmrec.data.sampling import sample_negatives
from xmrec.data.store import ProcessedDataset

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
    """A kit ranker (``model``, Ada-Ranker when ``ada``) trained on the view; its logit is the feature."""

    markets: tuple[str, ...] | None = None  # whose users' sequences train the model (None: every market)
    model: str = "SASRec"
    ada: bool = True
    epochs: int = 8  # upper bound; early stopping on the view's own validation instances
    patience: int = 2  # epochs without a better validation GAUC before training stops
    max_seq_len: int = 20  # history length L
    n_targets: int = 5  # last interactions of a user used as training/validation targets
    n_neg: int = 19  # mixer negatives per training list
    batch_size: int = 256
    seed: int = 2022
    device: str = "auto"
    progress: bool = False
    primary_feature: str = "score"
    trainings: list = field(default_factory=list, compare=False, repr=False)  # one record per trained view

    @property
    def name(self) -> str:
        return f"{'ada' if self.ada else 'base'}_{self.model.lower()}[{market_label(self.markets)}]"

    def train(self, view: GraphView):
        """The trained :class:`xmrec.training.trainer.Trainer` and its dataset."""
        from xmrec.training.trainer import Trainer

        ds = view_dataset(view, self.markets, self.max_seq_len, self.n_targets, self.n_neg, self.seed)
        trainer = Trainer(
            ModelConfig(name=self.model),
            TrainConfig(
                mode="ada" if self.ada else "base",
                epochs=self.epochs,
                patience=self.patience,
                batch_size=self.batch_size,
                seed=self.seed,
                device=self.device,
            ),
            progress=self.progress,
        )
        trainer.fit(ds)
        self.trainings.append(
            {
                "label": self.name,
                "view": view.stage,
                "epochs": self.epochs,
                "patience": self.patience,
                "best_epoch": trainer.best_epoch,
                "epochs_run": len(trainer.history),
                "valid_gauc": trainer.best_valid["gauc"],
            }
        )
        return trainer, ds

    def _features(self, view: GraphView, cands: Candidates) -> dict[str, np.ndarray]:
        import torch

        from xmrec.training.batches import SplitTensors

        trainer, ds = self.train(view)
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
        scores = trainer.score(tensors).astype(np.float64)
        unknown = cand_ids == 0
        lowest = np.where(unknown, np.inf, scores).min(axis=1, keepdims=True)
        scores = np.where(unknown, np.where(np.isfinite(lowest), lowest, 0.0) - 1.0, scores)
        return {"score": scores}
