"""Output folders as transactions: a folder is complete and consistent, or the previous one is intact.

A writer builds the new contents in a staging folder beside the target (``.NAME.staging-PID-XXXX``),
writes ``MANIFEST.json`` there last (format, kind, every file's relative path, size and sha256,
the command), then swaps it in: the old folder is renamed aside (``.NAME.previous``), the new one
renamed into place, the old one removed. Renames within one filesystem are atomic, so a kill at
any moment leaves the target as it was, as it is meant to be, or (between the two renames) absent
with the old folder aside; :func:`recover`, which every writer and reader calls first, puts the
old folder back and removes the staging folders of writers that no longer run, and says so
(one machine: a writer on another host sharing the folder looks dead). A reader accepts a folder only with a valid manifest (:func:`check`:
every listed file present with its size; ``full=True`` also compares every sha256).

A folder written over many minutes (a training run) is also held by one writer at a time:
:func:`exclusive` keeps a lock file beside it (``.NAME.lock``: host, process id, since when), so a
second process asked for the same folder fails at once, naming the holder, instead of training it
twice over the first one's checkpoints. A lock whose process no longer runs on this host is taken over.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

from xmrec.io import umask
from xmrec.provenance import utc_now, worker_identity

__all__ = [
    "FORMAT",
    "MANIFEST",
    "file_sha256",
    "file_entries",
    "manifest_of",
    "check",
    "recover",
    "transaction",
    "staging_folder",
    "swap_in",
    "exclusive",
]

FORMAT = "xmrec-folder/1"
MANIFEST = "MANIFEST.json"


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes (hex)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such file")
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_entries(folder: Path, names=None) -> dict:
    """``{relative path: {bytes, sha256}}`` of ``names`` (default: every file under ``folder`` but the manifest)."""
    folder = Path(folder)
    if names is None:
        names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)
    return {n: {"bytes": (folder / n).stat().st_size, "sha256": file_sha256(folder / n)} for n in names}


def manifest_of(folder: Path) -> dict | None:
    """The folder's manifest if it parses and is of this format (its files are not checked)."""
    try:
        found = json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) and found.get("format") == FORMAT else None


def check(folder: str | os.PathLike, what: str, rebuild: str, *, full: bool = False) -> dict:
    """The manifest of ``folder``, a complete ``what``; one clear sentence (naming ``rebuild``, the
    command that makes it again) when it is missing, of another kind, or a listed file differs."""
    folder = Path(folder)
    for message in recover(folder):
        warnings.warn(message, stacklevel=2)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such {what} (make it with `{rebuild}`)")
    manifest = manifest_of(folder)
    if manifest is None:
        raise ValueError(
            f"{folder} is not a complete {what}: it has no valid {MANIFEST} (written last by every xmrec writer; "
            f"a folder from an interrupted write or from before manifests has none); rebuild it with `{rebuild}`"
        )
    for name, entry in manifest["files"].items():
        file = folder / name
        if not file.is_file():
            raise ValueError(f"{file} is missing ({folder / MANIFEST} lists it); rebuild it with `{rebuild}`")
        if file.stat().st_size != entry["bytes"] or (full and file_sha256(file) != entry["sha256"]):
            raise ValueError(
                f"{file} differs from {folder / MANIFEST} (changed or truncated); rebuild it with `{rebuild}`"
            )
    return manifest


def _aside(target: Path) -> Path:
    return target.parent / f".{target.name}.previous"


def recover(target: str | os.PathLike) -> list[str]:
    """Finish what a killed :func:`transaction` left: the previous folder put back if the target is
    missing, staging folders and a leftover previous folder removed. Returns what was done, in words."""
    target = Path(target)
    aside, done = _aside(target), []
    if aside.is_dir():
        if target.exists():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.rename(aside, target)
            done.append(f"{target}: the last write was interrupted while switching folders; the previous one is back")
    if target.parent.is_dir():
        for staging in target.parent.glob(f".{target.name}.staging-*"):
            if _writer_alive(staging):  # a write in progress in another process: not ours to remove
                continue
            shutil.rmtree(staging, ignore_errors=True)
            done.append(f"{target}: removed {staging.name}, left by an interrupted write (the folder is as before it)")
    return done


def _writer_alive(staging: Path) -> bool:
    """Whether the process named in a staging folder's name (``.NAME.staging-PID-XXXX``) still runs here."""
    try:
        pid = int(staging.name.rsplit(".staging-", 1)[1].split("-", 1)[0])
    except (ValueError, IndexError):
        return False
    return pid != os.getpid() and _running(pid)


def _running(pid: int) -> bool:
    """Whether process ``pid`` runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


@contextlib.contextmanager
def exclusive(target: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold ``target`` for this process while the block runs (the lock file ``.NAME.lock`` beside
    it). Raises RuntimeError, naming the holder and the lock file, when another live process holds
    it; a lock left by a process that no longer runs here is taken over."""
    target = Path(target)
    lock = target.parent / f".{target.name}.lock"
    target.parent.mkdir(parents=True, exist_ok=True)
    me = {**worker_identity(), "since_utc": utc_now()}
    claim = target.parent / f".{target.name}.lock-{os.getpid()}"
    claim.write_text(json.dumps(me))  # the lock appears whole, by one link: never half written
    try:
        for _ in range(2):  # a second try after taking over a dead holder's lock
            try:
                os.link(claim, lock)
                break
            except FileExistsError:
                holder = _holder(lock)
                if holder is not None and (holder["host"] != me["host"] or _running(int(holder["pid"]))):
                    raise RuntimeError(
                        f"{target}: {what} is being written by process {holder['pid']} on {holder['host']} "
                        f"since {holder.get('since_utc')} UTC; wait for it to end, or stop it "
                        f"(if no such process runs, remove {lock})"
                    ) from None
                lock.unlink(missing_ok=True)
        else:
            raise RuntimeError(f"{target}: could not take {lock}: another process took it at the same moment")
    finally:
        claim.unlink(missing_ok=True)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _holder(lock: Path) -> dict | None:
    """Who holds ``lock`` (None: gone, or not a lock this module wrote)."""
    try:
        holder = json.loads(lock.read_text())
        int(holder["pid"]), holder["host"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return holder


@contextlib.contextmanager
def transaction(target: str | os.PathLike, *, kind: str, command=None) -> Iterator[Path]:
    """Yield an empty staging folder beside ``target``; when the block ends without error, write its
    manifest and swap it in for ``target``; on error, remove it (``target`` untouched)."""
    target = Path(target)
    for message in recover(target):
        print(f"xmrec: {message}", file=sys.stderr)
    staging = staging_folder(target)
    try:
        yield staging
        manifest = {
            "format": FORMAT,
            "kind": kind,
            "files": file_entries(staging),
            "command": command if command is None or isinstance(command, str) else " ".join(map(str, command)),
            "written_utc": utc_now(),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1))
        swap_in(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def staging_folder(target: Path) -> Path:
    """A new, empty staging folder beside ``target``, named for this process (:func:`recover` knows it)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-{os.getpid()}-", dir=target.parent))


def swap_in(staging: Path, target: Path) -> None:
    """Put the complete ``staging`` folder in place of ``target``: two renames (see the module docstring)."""
    os.chmod(staging, 0o777 & ~umask())  # mkdtemp makes 0700; give the folder the usual mode
    if target.exists():
        os.rename(target, _aside(target))
    os.rename(staging, target)
    shutil.rmtree(_aside(target), ignore_errors=True)
