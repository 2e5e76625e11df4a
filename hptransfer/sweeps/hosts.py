"""Several hosts: joining a process group and reading arrays sharded over the global mesh.

A multi-host sweep runs the same command on every host (``--distributed``). Every process
computes its shards of the replica axis; :func:`fetch` gives every process the full value of a
global array (an all-gather across processes); decisions that must be the same everywhere
(checkpoint now? compact now?) are process 0's, broadcast by :func:`from_writer`; and
:func:`all_agree` lets one process's refusal stop all of them. With one process each of these
is the plain single-host operation. :func:`agree_stop` makes a SIGTERM to any process stop all
of them at the same segment.

A process that dies (SIGKILL, a lost host) would otherwise make its peers fail in a collective
with a traceback and then abort inside JAX (SIGABRT, once the coordination service misses its
heartbeats). :func:`watch_peers` keeps a liveness counter per process in the coordination
service's key-value store and ends a survivor with one ``hptransfer: error:`` line naming the
lost process, before JAX's own heartbeat check fires.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils

from hptransfer.sweeps.supervise import PEER_LOST_EXIT  # EX_TEMPFAIL: nothing is wrong; rerun


class DistributedError(ValueError):
    """``--distributed`` was asked for but no process group can be formed."""


_BEAT_PREFIX = "hptransfer/alive/"
_DONE = "done"
_WATCH: dict[str, Any] = {"heartbeat": 60.0}


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
    # JAX's preemption service would replace the Python SIGTERM handler with its own (C++)
    # one; the engine agrees on a stop itself (agree_stop), with one code path for 1 and N.
    jax.config.update("jax_enable_preemption_service", False)
    _WATCH["heartbeat"] = float(heartbeat)
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


def agree_stop(save_due: bool, signum: int) -> tuple[bool, int, int | None]:
    """One collective between segments: (process 0's ``save_due``, the first pending signal of
    any process (0: none), the index of the process that got it). Every process then takes the
    same decisions: save a checkpoint now, stop now. One process: no communication."""
    if jax.process_count() == 1:
        return save_due, signum, (0 if signum else None)
    both = np.asarray(multihost_utils.process_allgather(np.array([int(save_due), signum])))
    signals = both[:, 1]
    first = int(np.argmax(signals != 0)) if signals.any() else None
    return bool(both[0, 0]), int(signals[first]) if first is not None else 0, first


def _client():
    from jax._src import distributed

    return distributed.global_state.client


def _lost(what: str, note: str) -> None:
    """Print the one-line verdict on a lost peer and end this process at once (``os._exit``:
    JAX's shutdown would wait for the dead peer, then abort)."""
    from hptransfer.sweeps import interrupt

    if interrupt.agreed():  # every process is stopping anyway: not a failure
        return
    print(f"hptransfer: error: {what}{note}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(PEER_LOST_EXIT)


@contextlib.contextmanager
def watch_peers(note: str, interval: float = 0.5) -> Iterator[None]:
    """While the block runs, end this process with one ``hptransfer: error:`` line (``note``
    appended: what is kept and how to resume) and exit code :data:`PEER_LOST_EXIT` when another
    process stops showing signs of life.

    Every process bumps its counter in the coordination service's key-value store each
    ``interval`` seconds; a counter that stays still for 60% of the heartbeat timeout names a
    lost process (before JAX's own check, at 100%, aborts with SIGABRT), and a key-value store
    that cannot be reached means process 0 (which hosts it) is gone (when process 0 dies with
    its socket closed, JAX's client usually aborts first, and the parent process of
    :mod:`hptransfer.sweeps.supervise` turns that abort into the same one line; so it does when
    process 0's service declares a peer dead first, on a loaded machine). A process that leaves the
    block normally, or in an agreed stop, marks itself done and is not watched after that. An
    exception that is not this package's own (e.g. a collective that failed because its peer
    died) waits for the watchdog's verdict before propagating. One process: nothing to watch.
    """
    if jax.process_count() == 1 or _client() is None:
        yield
        return
    from hptransfer.sweeps import interrupt

    client, me, n = _client(), jax.process_index(), jax.process_count()
    stale_after = max(1.0, 0.6 * _WATCH["heartbeat"])
    stop, verdict = threading.Event(), threading.Event()

    def watch() -> None:
        count, started = 0, time.monotonic()
        last: dict[int, str | None] = {}
        seen: dict[int, float] = {}
        while not stop.wait(interval):
            count += 1
            try:
                client.key_value_set(f"{_BEAT_PREFIX}{me}", str(count), allow_overwrite=True)
                beats = dict(client.key_value_dir_get(_BEAT_PREFIX))
            except Exception as err:
                if stop.is_set() or interrupt.agreed():
                    return
                detail = " ".join(str(err).split())[:200]
                _lost(f"process 0 of {n} (the coordinator) cannot be reached ({detail})", note)
                verdict.set()  # reached only when every process is stopping anyway
                return
            now = time.monotonic()
            lost = []
            for p in range(n):
                value = beats.get(f"{_BEAT_PREFIX}{p}")
                if p == me or value == _DONE:
                    continue
                if p not in seen:  # first look: silent since the watch began, if no value
                    last[p], seen[p] = value, now if value is not None else started
                elif value != last[p]:
                    last[p], seen[p] = value, now
                elif now - seen[p] > stale_after:
                    lost.append(p)
            if lost and not stop.is_set():
                names = ", ".join(map(str, lost))
                _lost(
                    f"process {names} of {n} stopped (no sign of life for {stale_after:.0f} s: "
                    "killed, crashed or its host is gone)",
                    note,
                )
                verdict.set()  # reached only when every process is stopping anyway
                return

    thread = threading.Thread(target=watch, name="hptransfer-watch-peers", daemon=True)
    thread.start()

    def done() -> None:
        stop.set()
        with contextlib.suppress(Exception):
            client.key_value_set(f"{_BEAT_PREFIX}{me}", _DONE, allow_overwrite=True)

    try:
        yield
    except KeyboardInterrupt:
        if interrupt.agreed():
            done()
        raise
    except Exception as err:
        if not type(err).__module__.startswith("hptransfer"):
            # The watchdog ends the process (os._exit) if a peer died; otherwise this is a bug.
            verdict.wait(stale_after + 2.0 + 4 * interval)
        raise
    else:
        done()
    finally:
        stop.set()
