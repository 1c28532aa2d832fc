"""The faithful models compute the authors' function: reference numbers of the authors' code.

Each fixture of ``../shared/parity`` (``$XMREC_PARITY_DIR``) holds the parameters of one of the
authors' models, one batch as their loader hands it over, and what their code computed from it in
eval mode with z = mu. The kit's model, built by ``load_authors_model`` from those parameters,
must give the same logits, and the same extractor mu and FiLM gamma and beta where the file has them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xmrec.config import parity_dir
from xmrec.models import MODEL_NAMES
from xmrec.models.authors import authors_batch, load_authors_model
from xmrec.models.srgnn import session_graph

ATOL = 1e-4  # float32 with another op order: the fixtures' README expects about 1e-5
CASES = [(name, mode) for name in MODEL_NAMES for mode in ("base", "ada")]
FOLDER = parity_dir()

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.skipif(
        FOLDER is None or not FOLDER.is_dir(),
        reason=f"no parity fixtures: $XMREC_PARITY_DIR names {FOLDER}, not a folder"
        if FOLDER is not None
        else "no parity fixtures: ../shared/parity beside the project is absent and $XMREC_PARITY_DIR is unset",
    ),
]


def fixture(name: str, mode: str) -> dict[str, dict[str, np.ndarray]]:
    """The file's ``param/``, ``input/`` and ``output/`` arrays, each under its short name."""
    path = FOLDER / f"{name}_{mode}.npz"
    assert path.is_file(), f"{path} is missing from the parity fixtures"
    with np.load(path) as z:
        parts = {"param": {}, "input": {}, "output": {}}
        for key in z.files:
            part, _, short = key.partition("/")
            if part in parts:
                parts[part][short] = z[key]
    return parts


@pytest.mark.parametrize("name, mode", CASES, ids=[f"{n}-{m}" for n, m in CASES])
def test_the_kit_computes_the_authors_function(name, mode):
    ref = fixture(name, mode)
    model = load_authors_model(name, mode == "ada", ref["param"])
    batch = authors_batch(ref["input"])
    with torch.no_grad():
        out = model.outputs(batch)
        np.testing.assert_allclose(out["logits"].numpy(), ref["output"]["logits"], atol=ATOL, rtol=0)
        if "z_mu" in ref["output"]:
            np.testing.assert_allclose(out["mu"].numpy(), ref["output"]["z_mu"], atol=ATOL, rtol=0)
        if "film_gamma" in ref["output"]:
            gamma, beta = model.ada.film.coefficients(out["mu"])
            np.testing.assert_allclose(gamma.squeeze(-1).numpy(), ref["output"]["film_gamma"], atol=ATOL, rtol=0)
            np.testing.assert_allclose(beta.squeeze(-1).numpy(), ref["output"]["film_beta"], atol=ATOL, rtol=0)
    # every authors' tensor was used, or is named as unused with a reason
    assert set(model.unused_authors_tensors) <= set(ref["param"])
    assert all(model.unused_authors_tensors.values())


def test_the_authors_parameters_matter_so_the_comparison_can_fail():
    """A wrong padding convention (the kit's former right-aligned GRU) misses the reference."""
    ref = fixture("GRU4Rec", "ada")
    model = load_authors_model("GRU4Rec", True, ref["param"])
    model.encoder.right_align = True
    with torch.no_grad():
        logits = model(authors_batch(ref["input"])).numpy()
    assert np.abs(logits - ref["output"]["logits"]).max() > 100 * ATOL


def test_the_srgnn_graph_is_the_authors_and_the_kit_fixes_its_defect():
    """With ``skip_alias0`` the kit's graph is the authors' ``A``; without it, only the unpadded
    lists (where node 0 is a real item) gain edges, and only their scores change."""
    ref = fixture("SRGNN", "base")
    seq = torch.from_numpy(ref["input"]["item_seq"])
    alias, edges = session_graph(seq, skip_alias0=True)
    np.testing.assert_array_equal(alias.numpy(), ref["input"]["alias_item_seq"])
    a_out = edges / edges.sum(2, keepdim=True).clamp(min=1)
    incoming = edges.transpose(1, 2)
    a_in = incoming / incoming.sum(2, keepdim=True).clamp(min=1)
    np.testing.assert_allclose(torch.cat([a_in, a_out], dim=2).numpy(), ref["input"]["A"], atol=1e-7, rtol=0)

    _, fixed = session_graph(seq)
    changed = (fixed != edges).flatten(1).any(1).numpy()
    unpadded = (ref["input"]["item_seq"] != 0).all(1)
    assert changed.any() and (changed <= unpadded).all()

    model = load_authors_model("SRGNN", False, ref["param"])
    model.encoder.skip_alias0 = False
    with torch.no_grad():
        logits = model(authors_batch(ref["input"])).numpy()
    moved = np.abs(logits - ref["output"]["logits"]).max(1) > ATOL
    np.testing.assert_array_equal(moved, changed)
