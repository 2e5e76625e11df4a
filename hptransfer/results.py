"""Result files of a sweep directory, written atomically.

``DIR/results.parquet`` is a tidy table, one row per replica and evaluation step:

    scheme, family, optimizer, width, depth, block_depth, base_width, base_depth, lr, log2_lr,
    seed, step, train_loss, test_loss, test_accuracy, diverged, diverged_step, cell,
    and "<stat>/<role>" feature-movement columns (:mod:`hptransfer.movement`).

``train_loss`` is the mean minibatch loss over the steps since the previous evaluation; losses
are NaN once a replica has diverged; ``diverged_step`` is NaN for replicas that never did.
``DIR/meta.json`` holds the config and its hash, the code version (package version and a hash of
the numeric source), library versions, device kind and timings; ``replica_steps`` counts the
replica-steps computed in this run (``replica_steps_total`` the whole grid's), and the rates
divide the former by this run's compute time. Per-cell tables live in
``DIR/cells/<hash>.parquet`` (the hash covers config, shape, schemes and code version), so a
killed sweep loses nothing done. ``DIR/run.json`` and ``DIR/lock`` belong to
:mod:`hptransfer.rundir` (which config owns the directory; who is writing it). Only process 0
of a multi-process run writes these files.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

RESULTS_FILE = "results.parquet"
META_FILE = "meta.json"
CELLS_DIR = "cells"
CHECKPOINT_DIR = "checkpoints"
_PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "pandas", "hptransfer")


def _atomic_write(path: Path, write) -> None:
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


def read_results(run_dir: str | Path) -> pd.DataFrame:
    path = Path(run_dir) / RESULTS_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"no {RESULTS_FILE} in {str(run_dir)!r}: run `hptransfer sweep` first"
        )
    return pd.read_parquet(path)


def read_meta(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / META_FILE
    if not path.exists():
        raise FileNotFoundError(f"no {META_FILE} in {str(run_dir)!r}")
    return json.loads(path.read_text())


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
