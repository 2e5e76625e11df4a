"""Several hosts: joining a process group and reading arrays sharded over the global mesh.

A multi-host sweep runs the same command on every host (``--distributed``). Every process
computes its shards of the replica axis; :func:`fetch` gives every process the full value of a
global array (an all-gather across processes); decisions that must be the same everywhere
(checkpoint now? compact now?) are process 0's, broadcast by :func:`from_writer`; and
:func:`all_agree` lets one process's refusal stop all of them. With one process each of these
is the plain single-host operation.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils


class DistributedError(ValueError):
    """``--distributed`` was asked for but no process group can be formed."""


def fetch(x) -> np.ndarray:
    """The full value of an array
    sharded over the global mesh, on every process (a plain read when all its shards are local,
    an all-gather across processes otherwise)."""
    if not isinstance(x, jax.Array) or x.is_fully_addressable:
        return np.asarray(x)
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def initialize_distributed(
    heartbeat_timeout_seconds: int | None = None, initialization_timeout: int | None = None
) -> None:
    """Join the process group of a multi-host sweep (``--distributed``).

    With JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID all set, they are passed
    to :func:`jax.distributed.initialize`; with none set, JAX's cluster auto-detection (SLURM,
    TPU pods, ...) runs; otherwise :class:`DistributedError`. A process that stops sending
    heartbeats for ``heartbeat_timeout_seconds`` (env HPTRANSFER_HEARTBEAT_TIMEOUT, default 60)
    is declared dead and the others stop with an error instead of waiting forever; joining waits
    at most ``initialization_timeout`` (env HPTRANSFER_INIT_TIMEOUT, default 300) seconds.
    On CPU, cross-process collectives use gloo.
    """
    names = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")
    given = {n: os.environ.get(n) for n in names if os.environ.get(n)}
    kwargs: dict[str, Any] = {}
    if len(given) == len(names):
        try:
            kwargs = {
                "coordinator_address": given["JAX_COORDINATOR_ADDRESS"],
                "num_processes": int(given["JAX_NUM_PROCESSES"]),
                "process_id": int(given["JAX_PROCESS_ID"]),
            }
        except ValueError:
            raise DistributedError(
                f"--distributed: JAX_NUM_PROCESSES={given['JAX_NUM_PROCESSES']!r} and "
                f"JAX_PROCESS_ID={given['JAX_PROCESS_ID']!r}; allowed: integers"
            ) from None
        if not 0 <= kwargs["process_id"] < kwargs["num_processes"]:
            raise DistributedError(
                f"--distributed: JAX_PROCESS_ID={kwargs['process_id']}; allowed: 0 to "
                f"JAX_NUM_PROCESSES - 1 = {kwargs['num_processes'] - 1}"
            )
    elif given:
        missing = [n for n in names if n not in given]
        raise DistributedError(
            f"--distributed: {', '.join(given)} set but {', '.join(missing)} not; allowed: all "
            f"three of {', '.join(names)}, or none (cluster auto-detection: SLURM, TPU pods)"
        )
    heartbeat = heartbeat_timeout_seconds or int(os.environ.get("HPTRANSFER_HEARTBEAT_TIMEOUT", 60))
    init = initialization_timeout or int(os.environ.get("HPTRANSFER_INIT_TIMEOUT", 300))
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            **kwargs, heartbeat_timeout_seconds=heartbeat, initialization_timeout=init
        )
    except ValueError as err:  # auto-detection found no cluster
        raise DistributedError(
            f"--distributed: no process group ({err}); set {', '.join(names)} on every host, or "
            "run under a cluster JAX detects (SLURM, TPU pods)"
        ) from None


def all_agree(ok: bool) -> bool:
    """True on every process iff ``ok`` is true on every process (one process: ``ok``)."""
    if jax.process_count() == 1:
        return ok
    return bool(np.all(multihost_utils.process_allgather(np.array(ok))))


def from_writer(flag: bool) -> bool:
    """Process 0's ``flag`` on every process (its decisions about files hold for all)."""
    if jax.process_count() == 1:
        return flag
    return bool(multihost_utils.broadcast_one_to_all(np.array(flag)))
