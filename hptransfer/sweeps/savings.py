"""Savings that change no result: deduplication of identical replicas and compaction of
diverged ones (the engine's :func:`hptransfer.sweeps.engine.run_cell` applies them).

- Two replicas whose computed multipliers (every init std, forward, lr and eps factor per leaf,
  and the branch multiplier), learning rate and seed are exactly equal train the same network:
  one is trained and reported under every scheme that asked for it (sp and mup at the base
  width; nfd and depth_mup for one-layer blocks; every scheme at the base shape).
- A diverged replica is frozen; between segments the live replicas of a chunk move into a
  program of n_devices x a power of two replicas (at least LANES per device, so the number of
  compiled programs stays small; a multiple of LANES under early elimination) when the time
  saved on the remaining segments beats the compile time of the smaller program.
"""

from __future__ import annotations

import math
import os
from collections.abc import Hashable
from typing import Protocol

import jax
import numpy as np

from hptransfer.network.scaling import Multipliers
from hptransfer.sweeps.config import ConfigError


class Replica(Protocol):
    """What deduplication reads of a replica (the engine's Replica has these fields); a
    protocol, so that this module does not import the engine that imports it."""

    log2_lr: float
    seed: int
    key: Hashable


LANES = 8
"""Smallest replicas per device of a compacted program (one AVX vector of float32): smaller
programs save little time, and each bucket size costs one more compilation."""


def savings_mode() -> str:
    """HPTRANSFER_SAVINGS: "0" = off (every requested replica computed, nothing compacted);
    "1" (default) = deduplicate, and compact when the expected saving beats the compile time of
    the smaller program; "always" = compact whenever a smaller bucket fits (tests)."""
    mode = os.environ.get("HPTRANSFER_SAVINGS", "1")
    if mode not in ("0", "1", "always"):
        raise ConfigError(
            f"environment variable HPTRANSFER_SAVINGS = {mode!r}; allowed: 0, 1, always"
        )
    return mode


def worth_compacting(
    current: int, new: int, segment_seconds: float, segments_left: int, compile_seconds: float
) -> bool:
    """Compaction pays when the time saved on the remaining segments, (1 - new / current) x
    segment time x segments left, exceeds the compile time of the smaller program (0 once it
    is compiled). A bucket of 0 (nothing alive) always pays."""
    saved = (1 - new / current) * segment_seconds * segments_left
    return new == 0 or saved > compile_seconds


def identity(rep: Replica, mult: Multipliers) -> tuple:
    """What decides a replica's training, as bytes: every multiplier array, the lr and the seed."""
    leaves = [np.asarray(x, np.float32) for x in jax.tree.leaves(mult)]
    return (tuple(x.tobytes() for x in leaves), np.float32(2.0**rep.log2_lr).tobytes(), rep.seed)


def deduplicate(
    reps: list[Replica],
    mults: dict[str, Multipliers],
    known: dict[object, int] | None = None,
    enabled: bool = True,
) -> tuple[list[int], np.ndarray]:
    """(indices of the replicas to train, owner) with ``owner[i]`` = the column of the trained
    replica whose history ``reps[i]`` reads.

    ``mults`` maps a replica's ``key`` (scheme, traced point) to its multipliers. Two replicas
    are one when their computed multipliers (init std, forward, lr and eps factors per leaf,
    branch multiplier, traced optimizer settings) are exactly equal and so are their learning rate and seed: e.g.
    sp and mup at the base width, nfd and depth_mup for one-layer blocks. ``known`` (identity ->
    column, updated in place) carries the replicas trained in earlier rounds of a cell, so a
    later round trains only what is new; ``enabled=False`` trains every replica.
    """
    known = {} if known is None else known
    distinct: list[int] = []
    owner = np.empty(len(reps), np.int64)
    for i, rep in enumerate(reps):
        key = identity(rep, mults[rep.key]) if enabled else ("replica", len(known))
        if key not in known:
            known[key] = len(known)
            distinct.append(i)
        owner[i] = known[key]
    return distinct, owner


def bucket_size(n_live: int, n_devices: int, current: int, fine: bool = False) -> int:
    """Program size for ``n_live`` replicas: n_devices x a power of two >= LANES, or, when
    ``fine``, n_devices x a multiple of LANES; ``current`` when that is not smaller (0 when none
    is alive).

    Fine buckets serve early elimination, which stops rates a few at a time: with powers of two
    a chunk shrinks only once half of it is gone. Each new size costs a compile, which
    :func:`worth_compacting` weighs. Without elimination the sizes stay powers of two, so runs
    made before reproduce bit for bit (XLA:CPU may round a vmapped reduction differently at
    another replica count)."""
    if n_live == 0:
        return 0
    need = math.ceil(n_live / n_devices)
    if fine:
        per_device = LANES * math.ceil(need / LANES)
    else:
        per_device = max(LANES, 1 << max(0, math.ceil(math.log2(need))))
    return min(current, n_devices * per_device)
