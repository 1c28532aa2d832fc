"""Training, checkpoints and inference for the rankers of ``xmrec.models``.

- ``Trainer(model_cfg, train_cfg, out=None).fit(dataset) -> history``: the loop; callers outside this
  package train through the run layer (``xmrec.runs.execute``), the one place that builds a Trainer.
- ``evaluate_checkpoint(checkpoint, data, split)``: metrics of a saved model (the CLI's ``evaluate``).
- ``score(model, split)``, ``distributions(model, split)``, ``load_model(path)``.
"""

from xmrec.training.batches import SplitTensors, StreamedSplit, model_inputs
from xmrec.training.checkpoint import load_model, load_weights, read_checkpoint
from xmrec.training.inference import distributions, evaluate_checkpoint, load_split, score
from xmrec.training.trainer import MODES, Trainer

__all__ = [
    "MODES",
    "SplitTensors",
    "StreamedSplit",
    "Trainer",
    "distributions",
    "evaluate_checkpoint",
    "load_model",
    "load_split",
    "load_weights",
    "model_inputs",
    "read_checkpoint",
    "score",
]
