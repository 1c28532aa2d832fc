"""The XMRec market loader: the real WSDM Cup 2022 folders and bad input on small files."""

from __future__ import annotations

import gzip

import pytest

from xmrec.config import markets_dir
from xmrec.data.markets import RUN_LENGTH, list_markets, load_market, merge_train, read_interactions, read_run

REAL = markets_dir()
needs_real = pytest.mark.skipif(
    REAL is None, reason="XMRec data absent: set XMREC_MARKETS_DIR or provide ../shared/data/xmrec-wsdm22"
)


def _write(path, text, gz=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def _run_line(user, items):
    return f"{user}\t{','.join(items)}\n"


@pytest.fixture(scope="module")
def t1():
    if REAL is None:
        pytest.skip("XMRec data absent: set XMREC_MARKETS_DIR or provide ../shared/data/xmrec-wsdm22")
    return load_market("t1")


@needs_real
def test_lists_the_real_markets():
    names = list_markets()
    assert {"s1", "s2", "s3", "t1", "t2"} <= set(names)
    assert "t1t2" not in names  # only a combined qrel, no training file


@needs_real
def test_t1_union_and_runs(t1):
    raw_pairs = set(zip(t1.train_raw.userId, t1.train_raw.itemId))
    core_pairs = set(zip(t1.train_5core.userId, t1.train_5core.itemId))
    assert len(t1.train) == len(raw_pairs | core_pairs)
    assert not t1.train.duplicated(["userId", "itemId"]).any()
    # train.tsv rows first, in file order, with their own rating
    first = t1.train_raw.drop_duplicates(["userId", "itemId"]).reset_index(drop=True)
    head = t1.train.iloc[: len(first)].reset_index(drop=True)
    assert head.equals(first)
    assert set(t1.train.columns) == {"userId", "itemId", "rating"}
    for run in (t1.valid_run, t1.test_run):
        assert run["items"].map(len).eq(RUN_LENGTH).all()
        assert run["userId"].is_unique
    qrel = dict(zip(t1.valid_qrel.userId, t1.valid_qrel.itemId))
    assert all(qrel[u] in items for u, items in zip(t1.valid_run.userId, t1.valid_run["items"]))


@needs_real
def test_partial_markets_give_none_for_absent_files():
    s1 = load_market("s1")
    assert (
        s1.train_raw is None
        and s1.train_5core is not None
        and len(s1.train) == len(s1.train_5core.drop_duplicates(["userId", "itemId"]))
    )
    t2 = load_market("t2")
    assert t2.valid_run is None and t2.test_run is None and t2.valid_qrel is not None


def _market(tmp_path, gz=False, **files):
    suffix = ".tsv.gz" if gz else ".tsv"
    for stem, text in files.items():
        _write(tmp_path / "m1" / f"{stem}{suffix}", text, gz=gz)
    return tmp_path


HEAD = "userId\titemId\trating\n"


@pytest.mark.parametrize("gz", [False, True])
def test_small_market_union_rating_wins_and_gzip(tmp_path, gz):
    items = [f"P{k}" for k in range(RUN_LENGTH)]
    root = _market(
        tmp_path,
        gz=gz,
        train=HEAD + "u1\tP1\t5.0\nu1\tP2\t3\nu1\tP1\t2\n",
        train_5core=HEAD + "u2\tP1\t1.0\nu1\tP2\t1.0\nu1\tP3\t1.0\n",
        valid_qrel=HEAD + "u1\tP4\t1\n",
        valid_run=_run_line("u1", items),
    )
    m = load_market("m1", root)
    assert list(zip(m.train.userId, m.train.itemId, m.train.rating)) == [
        ("u1", "P1", 5.0),
        ("u1", "P2", 3.0),
        ("u2", "P1", 1.0),
        ("u1", "P3", 1.0),
    ]
    assert m.test_run is None and m.valid_run["items"].iat[0] == items
    assert list(m.valid_qrel.columns) == ["userId", "itemId"]
    assert list_markets(root) == ["m1"]


def test_missing_train_files_named(tmp_path):
    root = _market(tmp_path, valid_qrel=HEAD + "u1\tP4\t1\n")
    with pytest.raises(FileNotFoundError, match=r"'m1'.*train\.tsv.*train_5core\.tsv"):
        load_market("m1", root)
    with pytest.raises(FileNotFoundError, match=r"'zz': no folder"):
        load_market("zz", root)


def test_missing_data_dir_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_market("t1", tmp_path / "nowhere")


@pytest.mark.parametrize(
    "text, match",
    [
        (HEAD + "u1\tP1\t5\nu1\tP2\n", r"train\.tsv, line 3: 2 tab-separated fields"),
        (HEAD + "u1\tP1\t5\nu1\tP2\tfive\n", r"train\.tsv, line 3: rating 'five' is not a finite number"),
        (HEAD + "u1\tP1\tinf\n", r"train\.tsv, line 2: rating 'inf' is not a finite number"),
        (HEAD + "u1\tP1\t5\nu2\tP1\tnan\n", r"train\.tsv, line 3: rating 'nan' is not a finite number"),
        ("user\titem\trating\nu1\tP1\t5\n", r"train\.tsv, line 1: header"),
        ("", r"train\.tsv: file is empty"),
    ],
)
def test_malformed_interactions_name_file_and_line(tmp_path, text, match):
    root = _market(tmp_path, train=text)
    with pytest.raises(ValueError, match=match):
        load_market("m1", root)


def test_empty_market(tmp_path):
    root = _market(tmp_path, train=HEAD, train_5core=HEAD)
    with pytest.raises(ValueError, match="'m1'.*no interactions"):
        load_market("m1", root)
    with pytest.raises(ValueError, match="neither"):
        merge_train(None, None)


def test_malformed_run_lines(tmp_path):
    good = [f"P{k}" for k in range(RUN_LENGTH)]
    cases = {
        _run_line("u1", good) + _run_line("u2", good[:99]): r"line 2: 99 candidate items, expected 100",
        _run_line("u1", good) + "u2\n": r"line 2: 1 tab-separated fields",
        _run_line("u1", good) + _run_line("u1", good): r"line 2: user u1 already listed on line 1",
        _run_line("u1", good[:99] + ["P0"]): r"line 1: the candidate list repeats an item",
    }
    for k, (text, match) in enumerate(cases.items()):
        path = _write(tmp_path / f"run{k}.tsv", text)
        with pytest.raises(ValueError, match=match):
            read_run(path)
    short = _write(tmp_path / "short.tsv", _run_line("u1", good[:5]) + _run_line("u2", good[5:10]))
    assert read_run(short, n_candidates=None)["items"].map(len).tolist() == [5, 5]
    with pytest.raises(FileNotFoundError, match="absent.tsv"):
        read_run(tmp_path / "absent.tsv")


def test_duplicate_qrel_user_is_an_error(tmp_path):
    root = _market(tmp_path, train=HEAD + "u1\tP1\t5\n", valid_qrel=HEAD + "u1\tP4\t1\nu1\tP5\t1\n")
    with pytest.raises(ValueError, match=r"valid_qrel\.tsv, line 3"):
        load_market("m1", root)


def test_read_interactions_types(tmp_path):
    df = read_interactions(_write(tmp_path / "x.tsv", HEAD + "u1\tP1\t4\n"))
    assert df.rating.dtype == "float64" and df.userId.iat[0] == "u1"
