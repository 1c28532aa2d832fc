"""The seven base rankers and the Ada-Ranker components on a small random dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xmrec.config import ModelConfig
from xmrec.data.store import ProcessedDataset, Split
from xmrec.models import MODEL_NAMES, build_model
from xmrec.models.srgnn import session_graph
from xmrec.training import SplitTensors

DIM, L, N_NEG = 16, 8, 19


def random_split(rng: np.random.Generator, n: int, n_users: int, n_items: int, seq_len: int) -> Split:
    """Random lists with a learnable signal: items fall in 4 groups; a user's history and positive
    come from the user's group, the negatives from anywhere else."""
    group = lambda items: items % 4  # noqa: E731
    user = rng.integers(1, n_users + 1, n)
    pool = np.arange(1, n_items + 1)
    item_seq = np.zeros((n, seq_len), np.int64)
    lens = rng.integers(1, seq_len + 1, n)
    item, negs = np.zeros(n, np.int64), np.zeros((n, N_NEG), np.int64)
    for r in range(n):
        mine = pool[group(pool) == user[r] % 4]
        picks = rng.choice(mine, lens[r] + 1, replace=False)
        item_seq[r, seq_len - lens[r] :], item[r] = picks[:-1], picks[-1]
        negs[r] = rng.choice(pool[group(pool) != user[r] % 4], N_NEG, replace=False)
    return Split(
        user=user,
        item=item,
        cate=group(item) + 1,
        item_seq=item_seq,
        item_seq_len=lens,
        neg_items=negs,
        neg_pool=rng.integers(0, 2, n).astype(np.int8),
        neg_n_cates=np.ones(n, np.int8),
    )


def random_dataset(
    seed: int = 0,
    n_users: int = 24,
    n_items: int = 80,
    seq_len: int = L,
    dim: int = DIM,
    n_train: int = 192,
    n_eval: int = 48,
) -> ProcessedDataset:
    """A tiny :class:`ProcessedDataset` (random word2vec table included) for model and training tests."""
    rng = np.random.default_rng(seed)
    emb = rng.normal(0, 0.3, (n_items + 1, dim)).astype(np.float32)
    emb[0] = 0
    cates = (np.arange(n_items + 1) % 4) + 1
    return ProcessedDataset(
        name="random",
        n_users=n_users,
        n_items=n_items,
        n_cates=4,
        item_cate_ptr=np.concatenate([[0, 0], np.arange(1, n_items + 1)]).astype(np.int64),
        item_cate_idx=cates[1:].astype(np.int64),
        item_pop=np.ones(n_items + 1, np.int64),
        train=random_split(rng, n_train, n_users, n_items, seq_len),
        valid=random_split(rng, n_eval, n_users, n_items, seq_len),
        test=random_split(rng, n_eval, n_users, n_items, seq_len),
        item_emb=emb,
    )


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def dataset() -> ProcessedDataset:
    return random_dataset()


@pytest.fixture(scope="module")
def batch(dataset) -> dict[str, torch.Tensor]:
    return SplitTensors.from_split(dataset.train).batch(slice(0, 32), torch.device("cpu"))


def make(name: str, ada: bool, ds: ProcessedDataset, **kw):
    torch.manual_seed(0)
    cfg = ModelConfig(name=name, dim=DIM, ada=ada, max_seq_len=ds.max_seq_len, **kw)
    return build_model(cfg, ds.n_items, ds.n_users, item_emb=ds.item_emb)


@pytest.mark.parametrize("ada", [False, True], ids=["base", "ada"])
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_model_trains_on_a_fixed_batch(name, ada, dataset, batch):
    model = make(name, ada, dataset)
    logits = model(batch)
    assert logits.shape == (32, 1 + N_NEG)
    assert torch.isfinite(logits).all()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(12):
        loss = model.loss(batch)
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.02, losses
    if ada:
        out = model.outputs(batch)
        assert out["z"].shape == out["mu"].shape == (32, DIM)


def test_word2vec_table_initialises_items_except_nextitnets_own_table(dataset):
    model = make("GRU4Rec", False, dataset)
    np.testing.assert_allclose(model.item_emb.weight.detach().numpy(), dataset.item_emb)
    own = make("NextItNet", False, dataset)  # the authors' NextItNet builds a fresh table of its own
    assert not np.allclose(own.item_emb.weight.detach().numpy(), dataset.item_emb)
    assert (own.item_emb.weight[0] == 0).all()
    shared = make("NextItNet", False, dataset, nextitnet_shared_table=True)
    np.testing.assert_allclose(shared.item_emb.weight.detach().numpy(), dataset.item_emb)
    with pytest.raises(ValueError, match="item_emb has shape"):
        build_model(ModelConfig(dim=DIM + 1), dataset.n_items, dataset.n_users, item_emb=dataset.item_emb)


@pytest.mark.parametrize("frozen", [False, True], ids=["authors", "frozen_padding_row"])
def test_padding_row_trains_as_the_authors_unless_frozen(frozen, dataset, batch):
    """The authors' pretrained table is [a zero row; the vectors] without padding_idx: padded
    positions read row 0 and train it. ``frozen_padding_row`` keeps it at zero."""
    model = make("GRU4Rec", False, dataset, frozen_padding_row=frozen)
    assert (batch["item_seq"] == 0).any()
    model.loss(batch).backward()
    row0_grad = model.item_emb.weight.grad[0].abs().sum().item()
    assert (row0_grad == 0) == frozen


def test_unknown_model_name_lists_the_choices():
    with pytest.raises(ValueError, match="GRU4Rec"):
        build_model(ModelConfig(name="Transformer4Rec"), 10, 10)
    assert build_model(ModelConfig(name="gru4rec", dim=8), 10, 10).cfg.name == "gru4rec"


PADDING_BLIND = {
    "frozen_padding_row": True,
    "mask_padding": True,
    "right_align_history": True,
    "sasrec_positions_from_newest": True,
    "nextitnet_zero_padding": True,
}  # the deviation switches that keep padding out of every encoder (the authors' models read it)


def with_more_padding(model, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """A model's logits on ``batch``, then with 5 more padding columns and junk in the padding row."""
    extra = {**batch, "item_seq": torch.cat([torch.zeros(32, 5, dtype=torch.long), batch["item_seq"]], 1)}
    with torch.no_grad():
        a = model(batch)
        model.item_emb.weight[0] = torch.randn(DIM)
        return a, model(extra)


@pytest.mark.parametrize("ada", [False, True], ids=["base", "ada"])
@pytest.mark.parametrize("name", [n for n in MODEL_NAMES if n != "MF"])
def test_padding_never_reaches_the_user_vector_with_the_padding_switches(name, ada, dataset, batch):
    """With the switches on, more left padding and junk in the padding row change no output."""
    torch.manual_seed(0)
    cfg = ModelConfig(name=name, dim=DIM, ada=ada, mean_z_at_eval=True, max_seq_len=L + 5, **PADDING_BLIND)
    a, b = with_more_padding(build_model(cfg, dataset.n_items, dataset.n_users).eval(), batch)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["GRU4Rec", "NARM", "SASRec", "NextItNet"])
def test_the_authors_models_read_the_padding(name, dataset, batch):
    """Without the switches these models see the padding (as the authors' code): the test above can fail."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(name=name, dim=DIM, max_seq_len=L + 5), dataset.n_items, dataset.n_users)
    a, b = with_more_padding(model.eval(), batch)
    assert not torch.allclose(a, b, rtol=1e-4, atol=1e-4)


def test_extractor_is_permutation_invariant_and_ranker_equivariant(dataset, batch):
    model = make("GRU4Rec", True, dataset, mean_z_at_eval=True).eval()
    perm = torch.randperm(1 + N_NEG, generator=torch.Generator().manual_seed(1))
    shuffled = {**batch, "candidates": batch["candidates"][:, perm]}
    with torch.no_grad():
        d1, d2 = model.distribution(batch["candidates"]), model.distribution(shuffled["candidates"])
        torch.testing.assert_close(d1.mu, d2.mu)
        torch.testing.assert_close(d1.logvar, d2.logvar)
        torch.testing.assert_close(model(batch)[:, perm], model(shuffled))
        # the latent does depend on which items are in the list
        other = model.distribution(torch.roll(batch["candidates"], 1, dims=0)).mu
        assert not torch.allclose(d1.mu, other)


def test_z_is_sampled_at_evaluation_unless_mean_z_at_eval(dataset, batch):
    sampled = make("GRU4Rec", True, dataset).eval()
    with torch.no_grad():
        assert not torch.equal(sampled(batch), sampled(batch))
    mean = make("GRU4Rec", True, dataset, mean_z_at_eval=True).eval()
    with torch.no_grad():
        torch.testing.assert_close(mean(batch), mean(batch))


def test_ada_parameter_count_matches_the_paper():
    """Derivation at d = 64, 10 patches: extractor 2 x (64*64+64) [item MLP] + 3 x (64*64+64) [W, mu,
    logvar] = 20,800; scalar FiLM 2 x 65 = 130; patching keys 4 x 10 x 64 = 2,560 + patches
    10 x (128*64 + 64 + 64 + 1) = 83,210. Total 106,700 (the paper: about 107k)."""
    model = build_model(ModelConfig(name="GRU4Rec", dim=64, ada=True, max_seq_len=10), 100, 10)
    assert model.ada_parameter_count() == 106_700
    assert abs(model.ada_parameter_count() - 107_000) < 1_000
    per_dim = build_model(ModelConfig(name="GRU4Rec", dim=64, ada=True, film_per_dim=True), 100, 10)
    assert per_dim.ada_parameter_count() == 106_700 - 130 + 2 * (64 * 64 + 64)
    mf = build_model(ModelConfig(name="MF", dim=64, ada=True), 100, 10)
    assert mf.ada is not None and mf.ada.film is None  # MF has no history to modulate
    assert mf.ada_parameter_count() == 106_700 - 130


@pytest.mark.parametrize("switch, part", [("use_input_modulation", "film"), ("use_param_modulation", "patcher")])
def test_each_component_switches_off(switch, part, dataset, batch):
    model = make("SASRec", True, dataset, **{switch: False})
    assert getattr(model.ada, part) is None
    assert model(batch).shape == (32, 1 + N_NEG)


def test_identity_initialisation_starts_ada_as_its_base(dataset, batch):
    base = make("NARM", False, dataset).eval()
    ada = make("NARM", True, dataset, identity_patches=True, identity_film=True).eval()
    missing, unexpected = ada.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("ada.") for k in missing)
    with torch.no_grad():
        torch.testing.assert_close(ada(batch), base(batch))
    random_start = make("NARM", True, dataset).eval()
    random_start.load_state_dict(base.state_dict(), strict=False)
    with torch.no_grad():
        assert not torch.allclose(random_start(batch), base(batch))


def test_faithful_patch_pools_and_keys_are_xavier_uniform_over_the_flattened_pool():
    """The authors' start: pool t as an (n_patches, numel) matrix, U(-b, b), b = sqrt(6 / (n + numel))."""
    torch.manual_seed(0)
    patcher = build_model(ModelConfig(name="GRU4Rec", dim=64, ada=True, max_seq_len=10), 100, 10).ada.patcher
    for shape, keys, pool in zip(patcher.shapes, patcher.keys, patcher.patches):
        numel = int(np.prod(shape))
        bound = (6 / (10 + numel)) ** 0.5
        assert pool.abs().max() <= bound, shape
        if numel >= 64:  # 640+ draws reach the edge of their interval
            assert pool.abs().max() > 0.9 * bound, shape
        assert keys.abs().max() <= (6 / (10 + 64)) ** 0.5
        assert keys.abs().max() > 0.9 * (6 / (10 + 64)) ** 0.5
    w1 = patcher.patches[0]
    assert tuple(w1.shape) == (10, 64, 128) and w1.abs().max() < 0.0271  # +-0.027 for W1 at d = 64


def test_parameter_modulation_gives_each_list_its_own_mlp(dataset, batch):
    """Two lists of one batch get different patched MLPs, and permuting the batch permutes the outputs."""
    model = make("GRU4Rec", True, dataset, mean_z_at_eval=True, use_input_modulation=False).eval()
    mlp = model.predictor
    with torch.no_grad():
        z = model.distribution(batch["candidates"]).z
        w1, b1, w2, b2 = model.ada.patcher(z, mlp.tensors())
        assert not torch.allclose(w1[0], w1[1]) and not torch.allclose(b1[0], b1[1])
        perm = torch.randperm(len(z), generator=torch.Generator().manual_seed(2))
        permuted = {k: v[perm] for k, v in batch.items()}
        torch.testing.assert_close(model(batch)[perm], model(permuted))
        # the same list scored alone gets the same MLP: nothing leaks between lists of a batch
        one = {k: v[3:4] for k, v in batch.items()}
        torch.testing.assert_close(model(one), model(batch)[3:4])


@pytest.mark.parametrize("mask", [False, True], ids=["authors", "mask_padding"])
def test_film_modulates_history_at_padding_unless_masked(mask, dataset, batch):
    """The authors' FiLM turns a padding column into gamma * e_0 + beta; ``mask_padding`` keeps it zero."""
    model = make("GRU4Rec", True, dataset, film_per_dim=True, mean_z_at_eval=True, mask_padding=mask).eval()
    seq = batch["item_seq"]
    captured = {}
    model.encoder.register_forward_hook(lambda m, args, out: captured.update(emb=args[0]))
    with torch.no_grad():
        model(batch)
        z = model.distribution(batch["candidates"]).z
        film = model.ada.film
        expected = film.gamma(z).unsqueeze(1) * model.item_emb(seq) + film.beta(z).unsqueeze(1)
        if mask:
            expected = expected * (seq != 0)[..., None]
    torch.testing.assert_close(captured["emb"], expected)
    assert (captured["emb"][seq == 0] == 0).all() == mask


@pytest.mark.parametrize("count_repeats", [False, True], ids=["authors", "srgnn_count_repeats"])
def test_session_graph_counts_a_transition_once_unless_counting_repeats(count_repeats):
    seq = torch.tensor([[0, 0, 5, 7, 5, 7, 9]])
    alias, counts = session_graph(seq, count_repeats=count_repeats)
    node = {int(seq[0, j]): int(alias[0, j]) for j in range(7)}
    assert len(set(node.values())) == 4  # padding, 5, 7, 9
    c = counts[0]
    assert c[node[5], node[7]] == (2 if count_repeats else 1) and c[node[7], node[5]] == 1 and c[node[7], node[9]] == 1
    assert c.sum() == (4 if count_repeats else 3)  # transitions between consecutive real items, none from padding
