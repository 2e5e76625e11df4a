"""The output directory is a database: one writer, one config, one record of the code.

A sweep directory ``DIR`` holds the work of exactly one sweep config:

- ``DIR/lock`` -- taken by the writing process for the whole run (``fcntl.flock``, so the
  kernel drops it when the process dies) and holding its ``{"pid", "host"}``. A second writer
  is refused at once with the holder's pid and host. A lock file left by a dead process on this
  host is taken over, and said so.
- ``DIR/run.json`` -- the identity of the directory: the config hash of :func:`config_hash`
  and the code version (:func:`version_stamp`) that last wrote it. Another config is refused (use ``--fresh``
  or another ``--out``); a changed code version is said, and the cells are recomputed because
  the code version is part of every cell hash.

``fresh=True`` is the only thing that discards a directory's earlier work, and it discards
only what this module knows to be sweep output (cells, checkpoints, results, meta, identity).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hptransfer.stats import results as results_io
from hptransfer.sweeps.config import SweepConfig

# The installed distribution's version (one source: pyproject.toml).
VERSION = importlib.metadata.version("hptransfer")
LOCK_FILE = "lock"
IDENTITY_FILE = "run.json"
# Modules whose source decides the numbers of a sweep (the engine's pure step functions are
# hashed separately by the engine, which knows which of its functions they are).
NUMERIC_MODULES = (
    "hptransfer.network.architecture",
    "hptransfer.network.model",
    "hptransfer.network.transformer",
    "hptransfer.network.text",
    "hptransfer.network.optim",
    "hptransfer.network.schedules",
    "hptransfer.network.scaling",
    "hptransfer.network.schemes",
    "hptransfer.network.data",
    "hptransfer.network.movement",
    "hptransfer.network.train",
)
# Fields that change how a sweep runs, not what it computes: they may differ between runs of one
# directory (e.g. ``--max-replicas-per-chunk`` on a resume).
_EXECUTION_FIELDS = ("max_replicas_per_chunk", "max_replicas")


class RunDirError(ValueError):
    """The output directory cannot be used for this run (the message says why and what to do)."""


class RunDirLocked(RunDirError):
    """Another process is writing to the output directory."""


class RunDirMismatch(RunDirError):
    """The output directory holds the work of another config."""


@functools.cache
def source_hash(modules: tuple[str, ...] = NUMERIC_MODULES) -> str:
    """sha256 over the bytes of each module's source file (resolved by importlib, not imported)."""
    digest = hashlib.sha256()
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"cannot locate the source of {name}")
        digest.update(name.encode() + b"\0" + Path(spec.origin).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def version_stamp(extra: str = "") -> dict[str, str]:
    """``{"version": VERSION, "source": hash}``: the source hash covers
    :data:`NUMERIC_MODULES` plus ``extra`` (the engine passes the hash of its step functions)."""
    source = source_hash()
    if extra:
        source = hashlib.sha256(f"{source}:{extra}".encode()).hexdigest()[:16]
    return {"version": VERSION, "source": source}


def config_hash(config: SweepConfig | dict[str, Any]) -> str:
    """sha256 of the config's fields that decide results (execution-only fields left out);
    ``config`` may be a :class:`SweepConfig` or its ``to_dict()`` (as stored in meta.json)."""
    raw = config if isinstance(config, dict) else config.to_dict()
    payload = {k: v for k, v in raw.items() if k not in _EXECUTION_FIELDS}
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# Checks that need no lock


def check_out(out: Path) -> None:
    """Refuse an ``--out`` that is a file, or a directory (or first existing parent) that this
    process cannot write."""
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--out {str(out)!r} is an existing file; allowed: a directory")
    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise RunDirError(f"--out {str(out)!r}: {str(probe)!r} is a file, not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise RunDirError(f"--out {str(out)!r}: {str(probe)!r} is not writable")


def read_identity(out: Path) -> dict[str, Any] | None:
    path = out / IDENTITY_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise RunDirError(
            f"--out {str(out)!r}: {IDENTITY_FILE} is unreadable ({err}); use --fresh to discard "
            "the directory's work or another --out"
        ) from None


def _legacy_config_hash(out: Path) -> str | None:
    """The config hash of a directory written before identity files existed (from meta.json).

    Fields added to the config since then are filled with their defaults, which are what the
    code of that time did (float32, no adaptive grid, no replica limit)."""
    try:
        meta = json.loads((out / results_io.META_FILE).read_text())
        return config_hash({**SweepConfig().to_dict(), **dict(meta["config"])})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_identity(out: Path, config: SweepConfig, code: dict[str, str]) -> str | None:
    """Refuse a directory holding another config; return a note when the code changed."""
    ident = read_identity(out)
    chash = config_hash(config)
    if ident is None:
        old = _legacy_config_hash(out) if (out / results_io.META_FILE).exists() else None
        if old is None or old == chash:
            return None
        ident = {"config_hash": old, "config_name": "?"}
    if ident.get("config_hash") != chash:
        raise RunDirMismatch(
            f"--out {str(out)!r} holds the work of another config "
            f"({ident.get('config_name')!r}, hash {ident.get('config_hash')}); this is "
            f"{config.name!r} (hash {chash}): use --fresh to discard that work, or another --out"
        )
    if ident.get("code") and ident["code"] != code:
        old, new = (f"{c.get('version')} (source {c.get('source')})" for c in (ident["code"], code))
        return f"the code changed since {str(out)!r} was written ({old} -> {new}): recomputing"
    return None


# --------------------------------------------------------------------------------------------
# The lock


def _holder(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def lock(out: Path) -> Iterator[str | None]:
    """Hold ``out/lock`` for the block; yields a note when a stale lock was taken over.

    The exclusion is ``fcntl.flock`` on the lock file (released by the kernel if the process
    dies); the file's inode is checked after locking so that a concurrent release (which
    unlinks the file) cannot leave two holders of two files. On NFS, Linux emulates flock with
    POSIX byte-range locks, so hosts sharing the directory exclude each other too.
    """
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_FILE
    me = {"pid": os.getpid(), "host": socket.gethostname()}
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            who = _holder(path)
            raise RunDirLocked(
                f"--out {str(out)!r} is in use by another sweep (pid {who.get('pid', '?')} on "
                f"host {who.get('host', '?')}); wait for it or use another --out"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the file was released (unlinked) under us: try again
    note = None
    old = _holder(path)
    if old.get("pid"):
        # A holder that releases its lock deletes the file: one that is left behind, and whose
        # flock we could take, belongs to a process that died holding it.
        note = f"took over the stale lock of dead pid {old['pid']} on host {old.get('host')}"
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(me).encode(), 0)
    os.fsync(fd)
    try:
        yield note
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)  # closing drops the flock


# --------------------------------------------------------------------------------------------
# Opening a run directory


def discard(out: Path) -> None:
    """Delete the sweep output of ``out`` (and nothing else in it): ``--fresh``."""
    for sub in (results_io.CELLS_DIR, results_io.CHECKPOINT_DIR):
        shutil.rmtree(out / sub, ignore_errors=True)
    for name in (results_io.RESULTS_FILE, results_io.META_FILE, IDENTITY_FILE):
        with contextlib.suppress(FileNotFoundError):
            (out / name).unlink()


@contextlib.contextmanager
def open_run_dir(
    out: str | Path, config: SweepConfig, code: dict[str, str], *, fresh: bool = False
) -> Iterator[dict[str, Any]]:
    """Lock ``out``, check (or record) that it holds ``config``, discard it first if ``fresh``;
    yields the identity record written (config hash, code version, a fresh ``run_id``).

    Raises :class:`RunDirError` subclasses before anything is written when the directory is
    unusable, locked by a live process, or holds another config (and ``fresh`` is false).
    """
    out = Path(out)
    check_out(out)
    with lock(out) as stale:
        if stale:
            print(f"hptransfer: {stale}", file=sys.stderr)
        if fresh:
            discard(out)
        note = check_identity(out, config, code)
        if note:
            print(f"hptransfer: {note}", file=sys.stderr)
        record = {
            "config_hash": config_hash(config),
            "config_name": config.name,
            "code": code,
            "run_id": uuid.uuid4().hex,  # lets the processes of a multi-host run check they
        }  # share this directory (see read_run_id)
        results_io.write_json(record, out / IDENTITY_FILE)
        yield record


def read_run_id(out: str | Path) -> str | None:
    """The ``run_id`` of the run that holds ``out`` now, or None (no identity file)."""
    try:
        ident = read_identity(Path(out))
    except RunDirError:
        return None
    return ident.get("run_id") if ident else None
