"""Result files of a sweep directory, written atomically.

``DIR/results.parquet`` is a tidy table, one row per replica and evaluation step:

    scheme, family, optimizer, width, depth, block_depth, base_width, base_depth, lr, log2_lr,
    seed, step, train_loss, test_loss, test_accuracy, diverged, diverged_step, cell,
    and "<stat>/<role>" feature-movement columns (:mod:`hptransfer.network.movement`).

``train_loss`` is the mean minibatch loss over the steps since the previous evaluation; losses
are NaN once a replica has diverged; ``diverged_step`` is NaN for replicas that never did.
With ``[elimination] enabled = true`` an ``eliminated_step`` column holds the step where early
elimination stopped a replica (NaN: never); its losses after it are NaN too, and meta.json's
``eliminated`` lists the stops (:mod:`hptransfer.sweeps.elimination`).
``DIR/meta.json`` holds the config and its hash, the code version (package version and a hash of
the numeric source), library versions, device kind and timings; ``replica_steps`` counts the
replica-steps computed in this run (``replica_steps_total`` the whole grid's), and the rates
divide the former by this run's compute time. Per-cell tables live in
``DIR/cells/<hash>.parquet`` (the hash covers config, shape, schemes and code version), so a
killed sweep loses nothing done. ``DIR/run.json`` and ``DIR/lock`` belong to
:mod:`hptransfer.sweeps.rundir` (which config owns the directory; who is writing it). Only process 0
of a multi-process run writes these files.

A write that fails (no space left, a read-only or forbidden directory) raises
:class:`WriteError` naming the file; the temporary file is removed and the file it was to
replace is untouched.
"""

from __future__ import annotations

import contextlib
import errno as errno_codes
import importlib.metadata
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

RESULTS_FILE = "results.parquet"
META_FILE = "meta.json"
CELLS_DIR = "cells"
CHECKPOINT_DIR = "checkpoints"
_PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "pandas", "hptransfer")


class WriteError(ValueError):
    """A file could not be written (no space left, read-only or forbidden directory): ``path``,
    the OS's ``reason`` and ``errno``. What was written before is intact."""

    def __init__(self, path: str | Path, reason: str, errno: int | None = None) -> None:
        self.path, self.reason, self.errno = Path(path), reason, errno
        super().__init__(f"cannot write {path}: {reason}")

    @property
    def remedy(self) -> str:
        """What the user does before rerunning, by the kind of failure."""
        if self.errno in (errno_codes.ENOSPC, errno_codes.EDQUOT, errno_codes.EFBIG):
            return "free space and rerun"
        if self.errno in (errno_codes.EROFS, errno_codes.EACCES, errno_codes.EPERM):
            return "make the directory writable and rerun"
        return "fix that and rerun"


def os_error_in(err: BaseException) -> OSError | None:
    """The first OSError about a file in ``err``'s chain (itself, its cause or context), or
    None; libraries such as Orbax wrap the OS's error in their own. Network errors
    (ConnectionError, TimeoutError: a peer process that died mid-save) are not about files."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, OSError) and not isinstance(err, ConnectionError | TimeoutError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


@contextlib.contextmanager
def writing(path: str | Path):
    """Raise :class:`WriteError` naming ``path`` for an OSError raised (or wrapped) in the block."""
    try:
        yield
    except WriteError:
        raise
    except Exception as err:
        cause = os_error_in(err)
        if cause is None:
            raise
        reason = cause.strerror or " ".join(str(cause).split()) or type(cause).__name__
        raise WriteError(path, reason, cause.errno) from err


def _atomic_write(path: Path, write) -> None:
    """Write ``path`` through ``write(tmp)`` to a temporary file in its folder, then rename: a
    failure (:class:`WriteError`) or a kill leaves the old file, never a partial one."""
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            write(tmp)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; results are for everyone
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a DataFrame as Parquet atomically (a temp file, then rename)."""
    path = Path(path)
    _atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))
    return path


def write_json(obj: Any, path: str | Path) -> Path:
    path = Path(path)

    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True, default=str)

    _atomic_write(path, write)
    return path


class ResultsError(ValueError):
    """A result file of a sweep directory is missing, truncated or corrupt (the message names it)."""


def _result_file(run_dir: str | Path, name: str) -> Path:
    """``run_dir/name`` if it is a file, else a :class:`ResultsError` saying what is there."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise ResultsError(
            f"run directory {str(run_dir)!r} does not exist; allowed: a directory written by "
            "`hptransfer sweep CONFIG --out DIR`"
        )
    if not run_dir.is_dir():
        raise ResultsError(
            f"{str(run_dir)!r} is not a directory; allowed: a directory written by "
            "`hptransfer sweep CONFIG --out DIR`"
        )
    path = run_dir / name
    if not path.is_file():
        raise ResultsError(
            f"no {name} in {str(run_dir)!r}: run `hptransfer sweep CONFIG --out {run_dir}` first"
        )
    return path


def _unreadable(path: Path, what: str, err: BaseException) -> ResultsError:
    detail = " ".join(str(err).split()) or type(err).__name__
    return ResultsError(
        f"{str(path)!r} is not a readable {what} (truncated or corrupt: {detail}); rerun the same "
        "`hptransfer sweep CONFIG --out DIR` to rewrite it from the finished cells"
    )


def read_results(run_dir: str | Path) -> pd.DataFrame:
    """The tidy results table of a sweep directory (module docstring).

    Raises :class:`ResultsError` naming the file when it is missing, truncated or corrupt.
    """
    path = _result_file(run_dir, RESULTS_FILE)
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError, pa.ArrowException) as err:  # ArrowInvalid is both
        raise _unreadable(path, "Parquet file", err) from err


def check_results(run_dir: str | Path) -> Path:
    """The results file of a sweep directory, after a cheap read of its Parquet footer.

    Raises :class:`ResultsError` naming the file when it is missing, truncated or corrupt, so a
    command can refuse a broken directory before it does any work.
    """
    path = _result_file(run_dir, RESULTS_FILE)
    try:
        pq.read_metadata(path)
    except (OSError, ValueError, pa.ArrowException) as err:
        raise _unreadable(path, "Parquet file", err) from err
    return path


def read_meta(run_dir: str | Path) -> dict[str, Any]:
    """The meta.json of a sweep directory as a dict.

    Raises :class:`ResultsError` naming the file when it is missing, truncated, not JSON or not
    a JSON object.
    """
    path = _result_file(run_dir, META_FILE)
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise _unreadable(path, "JSON file", err) from err
    if not isinstance(meta, dict):
        raise _unreadable(path, "JSON object", TypeError(f"found a {type(meta).__name__}"))
    return meta


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
