"""Where a result came from: commit, package versions, device, configuration and command.

Every results file stores :func:`provenance` under one key, ``provenance``, so a number can be
traced to the code and settings that produced it.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata

from xmrec.config import project_root

PACKAGES = ("torch", "numpy", "pandas", "lightgbm", "gensim")  # versions every record carries


COMMIT_VARIABLE = "XMREC_COMMIT"  # names the commit of a copy that has no .git (the GPU machine's working tree)
OUTPUT_FOLDERS = ("figures", "benchmarks/results")  # where runs write their results: not a change of the code


def git_state() -> dict:
    """``commit`` and ``dirty`` (files changed or added since it), read from git.

    ``dirty`` leaves out :data:`OUTPUT_FOLDERS`: a notebook that has just redrawn its tracked
    figures ran the committed code all the same.

    Outside a git checkout: the commit named by ``$XMREC_COMMIT`` (``dirty`` unknown, ``commit_from``
    says so), else None.
    """

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=project_root(), capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        named = _named_commit()
        return {"commit": named, "dirty": None, "commit_from": COMMIT_VARIABLE if named else None}
    status = git("status", "--porcelain", "--", ".", *(f":(exclude){folder}" for folder in OUTPUT_FOLDERS))
    return {"commit": commit, "dirty": bool(status) if status is not None else None, "commit_from": "git"}


def _named_commit() -> str | None:
    named = os.environ.get(COMMIT_VARIABLE)
    if named is not None and re.fullmatch(r"[0-9a-f]{40}", named) is None:
        raise ValueError(f"${COMMIT_VARIABLE} = {named!r}: expected a full 40-hex-digit commit (git rev-parse HEAD)")
    return named


def versions() -> dict:
    """Python and the kit's main packages (None for one not installed)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def notebook_parameters(namespace: dict) -> dict:
    """A notebook's parameters: its UPPER_CASE names holding plain values (imports such as ``PCA`` are not)."""
    plain = (type(None), bool, int, float, str, list, tuple, dict)
    return {k: v for k, v in namespace.items() if k.isupper() and isinstance(v, plain)}


def provenance(config: dict, device: str, command: list[str] | str | None = None) -> dict:
    """The record: git state, versions, machine, ``device``, the full ``config`` and the command line."""
    argv = sys.argv if command is None else command
    return {
        **git_state(),
        "versions": versions(),
        "device": device,
        "machine": f"{platform.machine()} {platform.system()}",
        "command": argv if isinstance(argv, str) else shlex.join(argv),
        "config": config,
        "written_utc": utc_now(),
    }


def worker_identity() -> dict:
    """Where this process runs: host and process id (a run's trainer, a folder's lock holder)."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def utc_now() -> str:
    """The time every record of the kit is stamped with: UTC, to the second."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def command_chain(commands) -> str:
    """Commands in the order they ran, as markdown code joined by "then" (a results file's history)."""
    return " then ".join(f"`{c}`" for c in commands)


def as_markdown(record: dict) -> str:
    """A :func:`provenance` record as a few markdown lines (for the ``.md`` results files)."""
    commit = (record["commit"] or "no git checkout")[:12] + (" (uncommitted changes)" if record["dirty"] else "")
    if record["commit"] and record.get("commit_from") == COMMIT_VARIABLE:
        commit += f" (named by ${COMMIT_VARIABLE} in a copy without .git; uncommitted changes unknown)"
    versions = ", ".join(f"{k} {v}" for k, v in record["versions"].items() if v)
    return (
        f"Provenance: commit {commit}; {versions}; device {record['device']} on {record['machine']}; "
        f"written {record['written_utc']} UTC.  \nCommand: `{record['command']}`  \n"
        f"Config: `{json.dumps(record['config'], sort_keys=True, default=str)}`\n"
    )
