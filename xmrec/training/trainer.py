"""The training loop: base / Ada end-to-end / fine-tune, Adam, early stopping on a validation metric.

``Trainer(model_cfg, train_cfg, out=...).fit(dataset)`` trains, keeps the best epoch (by the
validation metric ``TrainConfig.valid_metric``, default GAUC), stops when the config's stopping
rule says so (``xmrec.training.stopping``: one pure function of the history), restores the best
epoch at the end, and returns the per-epoch history. With ``out`` it writes
``out/checkpoint.pt`` (best model) and ``out/last.pt`` (everything needed to resume: model,
optimiser, epoch, random states, configs, history), each atomically; ``fit`` resumes from
``last.pt`` when it exists, and the resumed run gives the same numbers as an uninterrupted one.
A ``last.pt`` may also be *extended*: resumed under a larger epoch cap or a looser patience (the
stopping rule never changes what an epoch trains, so a run's history under a looser rule starts
with the whole history of the tighter one), which is how a recording is made longer without
training its first epochs again.

Under ``torchrun`` the same loop runs data-parallel (``xmrec.training.distributed``): the model is
wrapped in ``DistributedDataParallel`` for the training step, each rank takes its rows of every
global batch, evaluation is gathered across ranks, and only rank 0 writes files. Checkpoints hold
the unwrapped model's tensors, so a DDP checkpoint loads in a single process and the reverse.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from xmrec.config import ModelConfig, TrainConfig
from xmrec.data.store import ProcessedDataset, Split
from xmrec.metrics import evaluate
from xmrec.models import Ranker, build_model, canonical_name, list_bce
from xmrec.training import distributed
from xmrec.training.batches import SplitTensors, StreamedSplit, model_inputs
from xmrec.training.checkpoint import (
    load_base_weights,
    model_payload,
    read_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from xmrec.training.inference import autocast, score
from xmrec.training.stopping import best_epoch, should_stop

MODES = ("base", "ada", "finetune")
HEADLINE_METRICS = ("gauc", "ndcg@10", "hit@10", "mrr")  # what a history records of each extra test set
Callback = Callable[[dict, "Trainer"], "bool | None"]  # after each epoch; returning True stops training


def resolve_configs(model_cfg: ModelConfig, train_cfg: TrainConfig, max_seq_len: int) -> ModelConfig:
    """The model config a run trains: the mode decides ``ada``; positions match the data's history."""
    if train_cfg.mode not in MODES:
        raise ValueError(f"TrainConfig.mode must be one of {MODES}, got {train_cfg.mode!r}")
    if train_cfg.mode == "base" and model_cfg.ada:
        raise ValueError(
            "mode 'base' trains a model without Ada-Ranker components, but ModelConfig.ada "
            "is True: use mode 'ada' or 'finetune'"
        )
    if train_cfg.mode == "finetune" and not train_cfg.init:
        raise ValueError("mode 'finetune' needs TrainConfig.init, the base checkpoint to start from")
    if train_cfg.freeze and train_cfg.mode != "finetune":
        raise ValueError("freeze=True only applies to mode 'finetune'")
    return replace(
        model_cfg, name=canonical_name(model_cfg.name), ada=train_cfg.mode != "base", max_seq_len=max_seq_len
    )


class Trainer:
    """Train one ranker on a :class:`ProcessedDataset`; see the module docstring.

    After ``fit``: ``model`` (best epoch restored), ``history`` (one dict per epoch: ``epoch``,
    ``train_loss``, ``train_lists``, ``seconds``, ``samples_per_s``, the validation metrics, with
    ``TrainConfig.test_every_epoch`` the test metrics as ``test_<metric>`` (and ``test@<sampler>_<metric>``
    for each of ``test_samplers``), and ``best``),
    ``best_epoch`` and ``best_valid``. ``callbacks`` run after each epoch.
    """

    def __init__(
        self,
        model_cfg: ModelConfig = ModelConfig(),
        train_cfg: TrainConfig = TrainConfig(),
        *,
        out: str | Path | None = None,
        progress: bool = True,
        callbacks: Iterable[Callback] = (),
    ):
        self.model_cfg, self.train_cfg = model_cfg, train_cfg
        self.out = Path(out) if out is not None else None
        self.world = distributed.setup(train_cfg.device)
        self.progress = progress and self.world.main
        self.callbacks = list(callbacks)
        self.device = self.world.device
        self.model: Ranker | None = None
        self.history: list[dict] = []
        self.best_epoch = 0
        self.best_valid: dict = {}
        self.init_description: str | None = None
        self.fingerprints: dict[str, str] = {}
        self.resumed_epochs = 0  # epochs found in last.pt when fit() started

    # -- setup ------------------------------------------------------------------------------
    def _build(self, ds: ProcessedDataset) -> None:
        cfg, tc = resolve_configs(self.model_cfg, self.train_cfg, ds.max_seq_len), self.train_cfg
        self.model_cfg = cfg
        torch.manual_seed(tc.seed)
        model = build_model(cfg, ds.n_items, ds.n_users, item_emb=ds.item_emb)
        if tc.mode == "finetune":
            payload = read_checkpoint(tc.init)
            ids = payload.get("fingerprints", {}).get("ids")
            if ids is not None and ids != ds.fingerprint(()):
                raise ValueError(
                    f"--init {tc.init} was trained on another dataset (id-space fingerprint {ids}, this dataset's "
                    f"{ds.fingerprint(())}): its item and user rows would mean other items and users"
                )
            self.init_description = load_base_weights(model, payload, str(tc.init))
            if tc.freeze:
                for name, p in model.named_parameters():
                    p.requires_grad_(name.startswith("ada."))
        self.model = model.to(self.device)
        on_cuda = self.device.type == "cuda"
        for flag in ("amp", "compile"):
            if getattr(tc, flag) and not on_cuda:
                warnings.warn(f"TrainConfig.{flag} needs CUDA; ignored on {self.device}", stacklevel=3)
        self.amp = tc.amp and on_cuda
        self.forward = torch.compile(self.model) if tc.compile and on_cuda else self.model
        self.train_forward = self.forward
        if self.world.distributed:  # the training step all-reduces gradients; evaluation stays local
            ids = [self.device.index] if on_cuda else None
            ddp = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
            self.train_forward = torch.compile(ddp) if tc.compile and on_cuda else ddp
            torch.manual_seed(tc.seed + self.world.rank)  # each rank its own dropout stream
        self.optimizer = torch.optim.Adam(
            [p for p in self.model.parameters() if p.requires_grad], lr=tc.lr, weight_decay=tc.weight_decay
        )
        fp16 = self.amp and not torch.cuda.is_bf16_supported()
        self.scaler = torch.amp.GradScaler("cuda", enabled=fp16)
        self.shuffle = torch.Generator().manual_seed(tc.seed)

    def _payload(self, ds: ProcessedDataset, state: dict | None = None, epoch: int | None = None) -> dict:
        return model_payload(
            self.model,
            n_items=ds.n_items,
            n_users=ds.n_users,
            train_cfg=self.train_cfg,
            dataset=ds.name,
            epoch=self.best_epoch if epoch is None else epoch,
            valid=self.best_valid,
            state=state,
            fingerprints=self.fingerprints,
        )

    def _save_last(self, ds, best_state, stopped: bool) -> None:
        payload = self._payload(ds, epoch=len(self.history))
        payload.update(
            optimizer=self.optimizer.state_dict(),
            scaler=self.scaler.state_dict(),
            rng=rng_state(self.shuffle),
            history=self.history,
            best_state=best_state,
            best_epoch=self.best_epoch,
            best_valid=self.best_valid,
            stopped=stopped,
        )
        save_checkpoint(self.out / "last.pt", payload)

    def _resume(self, path: Path) -> tuple[dict | None, bool]:
        state = read_checkpoint(path)
        ignore = {"epochs", "device", "progress", "patience"}  # a longer cap or a looser patience extends the run
        mine = {k: v for k, v in asdict(self.train_cfg).items() if k not in ignore}
        theirs = {k: v for k, v in state["train_config"].items() if k not in ignore}
        if state["model_config"] != asdict(self.model_cfg) or mine != theirs:
            raise ValueError(
                f"{path} was written by a run with other settings; use another out folder "
                "or fit(..., resume=False) to start afresh"
            )
        patience = state["train_config"]["patience"]
        if patience > self.train_cfg.patience:
            raise ValueError(
                f"{path} was written with patience {patience}: a run with patience {self.train_cfg.patience} "
                "may have stopped before its last epoch, so it cannot resume it; use another out folder "
                "or fit(..., resume=False) to start afresh"
            )
        if state.get("fingerprints", {}).get("data") != self.fingerprints["data"]:
            raise ValueError(
                f"{path} was written by a run on other data (training/validation fingerprint "
                f"{state.get('fingerprints', {}).get('data')} here {self.fingerprints['data']}); "
                "use another out folder or fit(..., resume=False) to start afresh"
            )
        self.model.load_state_dict(state["model"], strict=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"], self.shuffle)
        self.history = list(state["history"])
        self.best_epoch, self.best_valid = state["best_epoch"], dict(state["best_valid"])
        if self.world.rank:  # rank 0's streams were saved; the others continue on their own
            torch.manual_seed(self.train_cfg.seed + self.world.rank + 1000 * len(self.history))
        # a looser patience decides afresh (the tighter rule's stop is not this rule's); otherwise the
        # stored decision stands (a callback may have made it)
        looser = patience < self.train_cfg.patience
        stopped = should_stop(self.history, self.train_cfg.stopping) if looser else state["stopped"]
        return state["best_state"], stopped

    def _analysis_tests(self, ds: ProcessedDataset) -> dict:
        """The test lists recorded every epoch: ``test_<metric>`` on the dataset's own, and with
        ``test_samplers`` ``test@<sampler>_<metric>`` (the headline metrics) on the same instances
        under each sampler's negatives (``xmrec.shift_matrix``: the lists the shift matrix tests on)."""
        from xmrec.shift_matrix import shift_test_sets

        tests = {"test_": (model_inputs(ds.test), None)}
        for kind, split in shift_test_sets(ds, self.train_cfg.test_samplers).items():
            tests[f"test@{kind}_"] = (model_inputs(split), HEADLINE_METRICS)
        return tests

    # -- loop -------------------------------------------------------------------------------
    def _train_epoch(self, data: SplitTensors | StreamedSplit) -> tuple[float, float]:
        tc, model = self.train_cfg, self.model
        model.train()
        order = torch.randperm(len(data), generator=self.shuffle)
        total = torch.zeros((), device=self.device)
        start = time.perf_counter()
        steps = range(0, len(data), tc.batch_size)
        for i in tqdm(steps, desc="batches", leave=False, disable=not self.progress):
            rows, weight = distributed.shard(order[i : i + tc.batch_size], self.world)
            batch = data.batch(rows, self.device)
            with autocast(self.device, self.amp):
                loss = list_bce(self.train_forward(batch))
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss * weight).backward()  # weight 1.0 in one process: exact
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if weight:
                total += loss.detach() * len(rows)
        if self.world.distributed:
            torch.distributed.all_reduce(total)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return float(total) / max(len(data), 1), time.perf_counter() - start

    def evaluate(self, split: Split | SplitTensors | StreamedSplit) -> dict[str, float]:
        """Metrics of the current model on ``split`` (seeded: z samples repeat exactly); under DDP
        computed once by rank 0 from the gathered scores and broadcast to every rank."""
        scores = self.score(split)
        return self.world.broadcast(evaluate(scores) if self.world.main else None)

    def score(self, split: Split | SplitTensors | StreamedSplit) -> np.ndarray:
        """Logits ``[n_lists, n_candidates]`` of the current model on ``split``; under DDP each rank
        scores a contiguous block and every rank gets all of them. A model that samples z at
        evaluation draws its noise per block there (``mean_at_eval`` scores deterministically)."""
        if self.model is None:
            raise RuntimeError("call fit() first")
        data = split if isinstance(split, (SplitTensors, StreamedSplit)) else model_inputs(split)
        block = distributed.eval_shard(len(data), self.world) if self.world.distributed else slice(None)
        part = score(
            self.model,
            data.rows(block),
            batch_size=self.train_cfg.eval_batch_size,
            seed=self.train_cfg.seed,
            amp=self.amp,
            forward=self.forward,
        )
        return distributed.gather_rows(torch.from_numpy(part), len(data), self.world).numpy()

    def fit(self, ds: ProcessedDataset, *, resume: bool = True) -> list[dict]:
        """Train on ``ds.train``, early-stop on ``ds.valid`` GAUC, restore the best epoch; the history."""
        tc = self.train_cfg
        self._build(ds)
        self.history, self.best_epoch, self.best_valid = [], 0, {}
        self.fingerprints = {"ids": ds.fingerprint(()), "data": ds.fingerprint(("train", "valid"))}
        best_state, stopped = None, False
        if resume and self.out is not None and (self.out / "last.pt").is_file():
            best_state, stopped = self._resume(self.out / "last.pt")
        self.resumed_epochs = len(self.history)
        train, valid = model_inputs(ds.train), model_inputs(ds.valid)
        for name, data in (("train", train), ("valid", valid), ("test", model_inputs(ds.test))):
            data.check_ids(ds.n_items, ds.n_users, f"dataset {ds.name!r}, {name} split")  # before any work
        tests = self._analysis_tests(ds) if tc.test_every_epoch else {}
        if self.device.type == "cuda":  # resident on the GPU when small: a step copies its index only
            train, valid = (d.to(self.device) if isinstance(d, SplitTensors) else d for d in (train, valid))
        bar = tqdm(total=tc.epochs, initial=len(self.history), desc=self.model.describe(), disable=not self.progress)
        rule = tc.stopping
        while not stopped and len(self.history) < tc.epochs:
            loss, seconds = self._train_epoch(train)
            t0 = time.perf_counter()
            metrics = self.evaluate(valid)
            record = {
                "epoch": len(self.history) + 1,
                "train_loss": loss,
                "train_lists": len(train),
                "seconds": seconds,
                "samples_per_s": len(train) / seconds if seconds > 0 else float("nan"),
                "eval_seconds": time.perf_counter() - t0,
                **metrics,
            }
            for prefix, (split, keep) in tests.items():  # for analysis only: the rule reads validation metrics alone
                record.update({f"{prefix}{k}": v for k, v in self.evaluate(split).items() if keep is None or k in keep})
            record["best"] = best_epoch(self.history + [record], rule.valid_metric) == record["epoch"]
            self.history.append(record)
            if record["best"]:
                best_state = copy.deepcopy(self.model.state_dict())
                self.best_epoch, self.best_valid = record["epoch"], metrics
                if self.out is not None and self.world.main:
                    save_checkpoint(self.out / "checkpoint.pt", self._payload(ds, best_state))
            stopped = should_stop(self.history, rule)
            for callback in self.callbacks:
                stopped = bool(callback(record, self)) or stopped
            stopped = self.world.broadcast(stopped)  # rank 0's callbacks decide for every rank
            if self.out is not None and self.world.main:
                self._save_last(ds, best_state, stopped)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", gauc=f"{metrics['gauc']:.4f}", best=self.best_epoch)
        bar.close()
        if best_state is not None:
            self.model.load_state_dict(best_state)
        return self.history
