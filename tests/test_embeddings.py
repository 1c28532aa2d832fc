"""word2vec item embeddings: training interactions only, zero rows, determinism."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from xmrec.config import DataConfig, EmbeddingConfig
from xmrec.data.embeddings import train_item_embeddings, user_sentences
from xmrec.data.process import ROLE_TEST, ROLE_VALID, process_interactions


@pytest.fixture(scope="module")
def ml100k():
    from xmrec.data.sources import load_movielens

    return load_movielens("ml-100k")


@pytest.fixture(scope="module")
def ml100k_result(ml100k):
    return process_interactions(ml100k, DataConfig())


@pytest.fixture(scope="module")
def ml100k_table(ml100k_result):
    inter, ds = ml100k_result.interactions, ml100k_result.dataset
    train = inter.training
    return train_item_embeddings(inter.user[train], inter.item[train], ds.n_items, EmbeddingConfig())


def test_sentences_are_chronological_training_items_without_valid_test_targets(ml100k, ml100k_result):
    inter, ds = ml100k_result.interactions, ml100k_result.dataset
    train = inter.training
    sentences = user_sentences(inter.user[train], inter.item[train])
    assert len(sentences) == ds.n_users
    # oracle: each user's interactions in time order, minus their last two (test, valid targets)
    d = ml100k.sort_values("timestamp", kind="stable").sort_values("user_id", kind="stable")
    expected = d.groupby("user_id")["item_id"].apply(lambda s: [str(x) for x in s.tolist()[:-2]])
    raw = ds.item_raw_ids
    for u, sent in zip(np.unique(inter.user[train]), sentences):
        assert [raw[int(t)] for t in sent] == expected[int(ds.user_raw_ids[u])]
    # nothing of a valid/test target reaches word2vec
    held_out = np.isin(inter.role, [ROLE_VALID, ROLE_TEST])
    assert held_out.sum() == 2 * ds.n_users
    assert sum(len(s) for s in sentences) == len(inter.item) - held_out.sum()


def test_table_shape_zero_rows_and_min_count(ml100k_result, ml100k_table):
    ds, inter = ml100k_result.dataset, ml100k_result.interactions
    table = ml100k_table
    assert table.shape == (ds.n_items + 1, 64) and table.dtype == np.float32
    assert not table[0].any()
    counts = np.bincount(inter.item[inter.training], minlength=ds.n_items + 1)
    has_vector = table.any(axis=1)
    assert (has_vector[1:] == (counts[1:] >= 3)).all()


def test_same_seed_identical_other_seed_differs(ml100k_result):
    inter = ml100k_result.interactions
    some = inter.training & (inter.user <= 300)

    def table(seed):
        return train_item_embeddings(
            inter.user[some], inter.item[some], ml100k_result.dataset.n_items, replace(EmbeddingConfig(), seed=seed)
        )

    first = table(2022)
    assert first.any() and np.array_equal(table(2022), first)
    assert not np.allclose(table(1), first)


def test_items_seen_only_as_valid_or_test_targets_get_zero_vectors():
    # "late" is every user's last item (a test target): held out, so no vector, although it
    # occurs 20 times (well above min_count)
    rows = [
        (f"u{u}", it, ["c"], t)
        for u in range(20)
        for t, it in enumerate([f"i{(u + k) % 8}" for k in range(12)] + ["late"])
    ]
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "cate_id", "timestamp"])
    res = process_interactions(df, DataConfig())
    inter, ds = res.interactions, res.dataset
    late = int(np.flatnonzero(ds.item_raw_ids == "late")[0])
    table = train_item_embeddings(inter.user[inter.training], inter.item[inter.training], ds.n_items)
    assert not table[late].any()
    assert table[1:].any(axis=1).sum() == ds.n_items - 1
    leaky = train_item_embeddings(inter.user, inter.item, ds.n_items)  # all interactions: the original's leak
    assert leaky[late].any()


def test_empty_input_gives_zero_table():
    table = train_item_embeddings(np.array([], np.int64), np.array([], np.int64), 5, EmbeddingConfig(dim=8))
    assert table.shape == (6, 8) and not table.any()
