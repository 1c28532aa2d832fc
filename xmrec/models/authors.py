"""The authors' published Ada-Ranker models, as kit models: their parameters and their batches.

``load_authors_model(name, ada, state)`` builds the kit's ranker in its faithful configuration
(the ``ModelConfig`` defaults, with z = mu and the authors' SRGNN graph) from a state_dict of the
authors' code, under the authors' names, and loads it strictly: every authors' tensor lands on
exactly one kit tensor (renamed, or by the documented reshape or concatenation below), or is named
in :data:`UNUSED` with the reason; every kit tensor comes from the authors'. ``authors_batch``
turns the authors' loader fields into the kit's batch. ``tests/test_authors_parity.py`` checks the
pair against reference numbers computed by the authors' code (``../shared/parity``).

Reshapes and concatenations (all row-major):
- ``mem_w1.array`` [n, out * in] -> ``ada.patcher.patches.0`` [n, out, in]; likewise ``mem_b1``
  [n, out] -> [n, out], ``mem_w2`` [n, in] -> [n, 1, in], ``mem_b2`` [n, 1] -> [n, 1];
- SASRec's ``query``, ``key``, ``value`` -> one ``qkv`` Linear, their rows stacked in that order;
- NextItNet's Conv2d kernels [d, d, 1, k] -> Conv1d kernels [d, d, k].
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import torch

from xmrec.config import ModelConfig
from xmrec.models.ranker import Ranker
from xmrec.models.registry import build_model, canonical_name

AUTHORS_SASREC_HEADS = 2  # n_heads of the authors' SASRec.yaml: not readable from the tensors
AUTHORS_NEXTITNET_DILATIONS = (1, 4)  # dilations of the authors' NextItNet.yaml, repeated per block
AUTHORS_SHAN_SHORT_ITEMS = 2  # short_item_length of the authors' SHAN.yaml

_SHARED = [
    (r"item_embedding\.", "item_emb."),
    (r"user_embedding\.", "user_emb."),
    (r"mlp_layers\.1\.", "predictor.fc1."),
    (r"mlp_layers\.3\.", "predictor.fc2."),
    (r"extract_distribution_layer\.input_to_hidden\.", "ada.extractor.item_mlp."),
    (r"extract_distribution_layer\.z_to_hidden\.", "ada.extractor.hidden."),
    (r"extract_distribution_layer\.hidden_to_mu\.", "ada.extractor.mu."),
    (r"extract_distribution_layer\.hidden_to_logsigma\.", "ada.extractor.logvar."),
    (r"film_affine_emb_scale\.", "ada.film.gamma."),
    (r"film_affine_emb_bias\.", "ada.film.beta."),
    (r"mem_(w1|b1|w2|b2)\.index", "ada.patcher.keys.{}"),
    (r"mem_(w1|b1|w2|b2)\.array", "ada.patcher.patches.{}"),
]
_POOLS = {"w1": "0", "b1": "1", "w2": "2", "b2": "3"}  # the kit's pool order: W1, b1, W2, b2
_ENCODER = {
    "MF": [],
    "GRU4Rec": [(r"gru_layers\.", "encoder.gru."), (r"dense\.", "encoder.dense.")],
    "SASRec": [
        (r"position_embedding\.", "encoder.positions."),
        (r"LayerNorm\.", "encoder.norm."),
        (r"trm_encoder\.layer\.(\d+)\.multi_head_attention\.dense\.", "encoder.blocks.{}.proj."),
        (r"trm_encoder\.layer\.(\d+)\.multi_head_attention\.LayerNorm\.", "encoder.blocks.{}.ln_attn."),
        (r"trm_encoder\.layer\.(\d+)\.feed_forward\.dense_1\.", "encoder.blocks.{}.ff.0."),
        (r"trm_encoder\.layer\.(\d+)\.feed_forward\.dense_2\.", "encoder.blocks.{}.ff.2."),
        (r"trm_encoder\.layer\.(\d+)\.feed_forward\.LayerNorm\.", "encoder.blocks.{}.ln_ff."),
    ],
    "NARM": [(r"(gru|a_1|a_2|v_t|b)\.", "encoder.{}.")],
    "NextItNet": [
        (r"residual_blocks\.(\d+)\.conv1\.", "encoder.blocks.{}.convs.0."),
        (r"residual_blocks\.(\d+)\.conv2\.", "encoder.blocks.{}.convs.1."),
        (r"residual_blocks\.(\d+)\.ln1\.", "encoder.blocks.{}.norms.0."),
        (r"residual_blocks\.(\d+)\.ln2\.", "encoder.blocks.{}.norms.1."),
        (r"final_layer\.", "encoder.final_layer."),
    ],
    "SRGNN": [
        (r"gnn\.linear_edge_in\.", "encoder.gnn.edge_in."),
        (r"gnn\.linear_edge_out\.", "encoder.gnn.edge_out."),
        (r"gnn\.(b_iah|b_ioh|w_ih|w_hh|b_ih|b_hh)$", "encoder.gnn.{}"),
        (r"(linear_one|linear_two|linear_three|linear_transform)\.", "encoder.{}."),
    ],
    "SHAN": [(r"(long_w|long_short_w)\.", "encoder.{}."), (r"(long_b|long_short_b)$", "encoder.{}")],
}
UNUSED = {
    "user_embedding.weight": "the authors build a user table in every model; only MF and SHAN read it",
    "film_affine_emb_scale.": "the authors create FiLM for MF too, but MF has no history to modulate",
    "film_affine_emb_bias.": "the authors create FiLM for MF too, but MF has no history to modulate",
}  # authors' tensors (by name or name prefix) that the kit's model has no place for, and why


def authors_config(name: str, ada: bool, state: Mapping[str, np.ndarray]) -> ModelConfig:
    """The faithful ``ModelConfig`` of the authors' model ``name``, sizes read from ``state``."""
    name = canonical_name(name)
    sizes: dict = {"dim": state["item_embedding.weight"].shape[1]}
    if ada:
        sizes["n_patches"] = state["mem_w1.array"].shape[0]
    if name == "SASRec":
        layers = {int(m.group(1)) for k in state if (m := re.match(r"trm_encoder\.layer\.(\d+)\.", k))}
        sizes.update(
            max_seq_len=state["position_embedding.weight"].shape[0],
            sasrec_layers=len(layers),
            sasrec_heads=AUTHORS_SASREC_HEADS,
            sasrec_inner=state["trm_encoder.layer.0.feed_forward.dense_1.weight"].shape[0],
        )
    if name == "NARM":
        sizes["narm_hidden"] = state["gru.weight_hh_l0"].shape[1]
    if name == "NextItNet":  # the authors' blocks are their dilations repeated block_num times
        blocks = len({k.split(".")[1] for k in state if k.startswith("residual_blocks.")})
        sizes.update(
            nextitnet_dilations=AUTHORS_NEXTITNET_DILATIONS * (blocks // len(AUTHORS_NEXTITNET_DILATIONS)),
            nextitnet_kernel=state["residual_blocks.0.conv1.weight"].shape[-1],
        )
    if name == "SHAN":
        sizes["shan_short_items"] = AUTHORS_SHAN_SHORT_ITEMS
    # z = mu: the reference numbers were computed without the extractor's noise;
    # srgnn_skip_alias0: the authors' graph, whose defect the kit fixes by default
    return ModelConfig(name=name, ada=ada, mean_z_at_eval=True, srgnn_skip_alias0=True, **sizes)


def kit_state(name: str, state: Mapping[str, np.ndarray]) -> dict[str, tuple[str, torch.Tensor]]:
    """Each authors' tensor (by its name) with the kit's name for it; SASRec's query, key and value
    come back stacked, under the query's name."""
    rules = _SHARED + _ENCODER[canonical_name(name)]
    out: dict[str, tuple[str, torch.Tensor]] = {}
    for key, value in state.items():
        tensor = _array(value)
        attention = re.match(
            r"(trm_encoder\.layer\.(\d+)\.multi_head_attention)\.(query|key|value)\.(weight|bias)$", key
        )
        if attention:
            prefix, layer, part, kind = attention.groups()
            if part == "query":
                stacked = torch.cat([tensor] + [_array(state[f"{prefix}.{p}.{kind}"]) for p in ("key", "value")])
                out[key] = (f"encoder.blocks.{layer}.qkv.{kind}", stacked)
            continue
        target = _kit_name(key, rules)
        if target is None:
            raise ValueError(f"authors' {name} tensor {key!r} has no place in the kit's model")
        out[key] = (target, tensor)
    return out


def _array(value) -> torch.Tensor:
    return torch.from_numpy(np.array(value, dtype=np.float32))


def _kit_name(key: str, rules) -> str | None:
    for pattern, target in rules:
        m = re.match(pattern, key)
        if m:
            return target.format(*[_POOLS.get(g, g) for g in m.groups()]) + key[m.end() :]
    return None


def load_authors_model(name: str, ada: bool, state: Mapping[str, np.ndarray]) -> Ranker:
    """The kit's faithful ``name`` ranker holding the authors' parameters, in eval mode with z = mu.

    ``state``: the authors' state_dict as arrays, under their names. Raises ValueError naming any
    authors' tensor without a place (and not in :data:`UNUSED`), any kit tensor the authors' do
    not fill, and any shape that does not match. ``model.unused_authors_tensors`` names the
    authors' tensors left out, with the reason.
    """
    cfg = authors_config(name, ada, state)
    items = state["item_embedding.weight"]
    model = build_model(cfg, items.shape[0] - 1, state["user_embedding.weight"].shape[0] - 1, item_emb=items)
    own = model.state_dict()
    tensors, unused = {}, {}
    for key, (target, tensor) in kit_state(cfg.name, state).items():
        if target in own:
            if tensor.numel() != own[target].numel():
                raise ValueError(
                    f"authors' {key} {tuple(tensor.shape)} does not fit the kit's {target} {tuple(own[target].shape)}"
                )
            tensors[target] = tensor.reshape(own[target].shape)
        elif why := next((why for prefix, why in UNUSED.items() if key.startswith(prefix)), None):
            unused[key] = why
        else:
            raise ValueError(f"authors' {cfg.name} tensor {key!r} ({target}) has no place in the kit's model")
    missing = sorted(set(own) - set(tensors))
    if missing:
        raise ValueError(f"the authors' {cfg.name} state leaves the kit's tensors {missing} unfilled")
    model.load_state_dict(tensors, strict=True)
    model.unused_authors_tensors = unused
    return model.eval()


def authors_batch(fields: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """The kit's batch from the authors' loader fields (``user_id``, ``item_seq``, ``item_seq_len``,
    ``item_id``, ``neg_items``): candidates are the positive, then the negatives in their order.
    SRGNN's derived fields are not needed: the kit builds the session graph from ``item_seq``."""

    def ids(key: str) -> torch.Tensor:
        return torch.from_numpy(np.asarray(fields[key], dtype=np.int64))

    return {
        "user": ids("user_id"),
        "item_seq": ids("item_seq"),
        "item_seq_len": ids("item_seq_len"),
        "candidates": torch.cat([ids("item_id").unsqueeze(1), ids("neg_items")], dim=1),
    }
