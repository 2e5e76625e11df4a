"""The sweep engine (docs/design.md): whole grids of replicas in one compiled program.

A *cell* is one shape (width, depth, block depth) of a sweep; its *replicas* are every
(scheme, learning rate, seed). Within a cell:

- Compile by shape only. Learning rates, seeds and every scheme multiplier are arrays with a
  leading replica axis, so one executable (per chunk size) serves all of them. Programs are
  compiled ahead of time and cached by their input shapes; :data:`COMPILE_STATS` counts them.
  Before each cell, programs no cell still to run can use are dropped (:func:`evict_programs`).
- vmap over replicas. Replicas of one seed draw the same raw init and the same batches.
- Divergence is data: a replica whose loss or parameters become non-finite, or whose loss
  exceeds ``divergence_factor`` x its initial loss, is frozen at that step (its state stops
  changing, its losses become NaN) and its step is recorded. The others are unaffected.
- Steps run as ``lax.scan`` segments of ``eval_every`` steps; between segments: evaluation on
  the test set, feature movement on the probe batch, progress, and (at most every
  ``checkpoint_seconds``) an Orbax checkpoint keyed by the hash of the cell's config. Running
  the same sweep again resumes where it stopped. A finished chunk saves only its metrics.
- The replica axis is cut into chunks that fit in memory and sharded over all local devices
  (``jax.sharding``); several hosts join through ``jax.distributed`` (see the README and
  :func:`initialize_distributed`): every process computes its shards, reads the full history
  through an all-gather, and process 0 alone writes files.
- Before any compute, :func:`run_sweep` takes the output directory (:mod:`hptransfer.sweeps.rundir`:
  one writer, one config) and checks the limits (grid size, one replica's memory).
- No replica-step is wasted (HPTRANSFER_SAVINGS=0 turns this off): replicas whose multipliers,
  learning rate and seed are equal (sp and mup at the base width, nfd and depth_mup for
  one-layer blocks) are trained once and reported under every scheme that asked for them; and
  between segments the live replicas of a chunk move into a smaller power-of-two program (a
  multiple of 8 per device under early elimination) once enough have diverged or stopped and
  the time saved beats the compile (:func:`worth_compacting`).
  meta.json counts the replica-steps requested, computed and saved by each. Which replicas
  diverge, and when, is unchanged; values agree to float32 rounding (XLA:CPU rounds some
  vmapped reductions differently for different replica counts, as between chunk sizes).
- ``[lr] adaptive = true`` extends a cell's learning-rate grid past an optimum at its edge or
  next to a diverged rate, in bounded follow-up rounds (:func:`adaptive_lrs`).
- ``[elimination] enabled = true`` stops, between segments, rates that can no longer change the
  report (:mod:`hptransfer.sweeps.elimination`); they are frozen and compacted away like diverged ones.
- :mod:`hptransfer.sweeps.costmodel` turns each cell's computed replica-steps and time into achieved
  FLOP/s and bytes/s against the device's measured roofs (meta.json ``device_peaks``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import inspect
import json
import math
import os
import shutil
import time
import warnings
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pandas as pd
from flax import struct
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm.auto import tqdm

from hptransfer.network.data import Dataset, load_dataset
from hptransfer.network.model import Architecture, check_inputs, kernel_shapes
from hptransfer.network.movement import flatten_stats, layer_stats, split_stat_column
from hptransfer.network.optim import traced_settings
from hptransfer.network.scaling import Multipliers, multipliers, stack
from hptransfer.network.schemes import Scheme, load_schemes
from hptransfer.network.train import (
    TrainState,
    evaluate,
    init_state,
    probe_batch,
    sample_batch,
    train_step,
)
from hptransfer.stats import hparams
from hptransfer.stats import results as results_io
from hptransfer.stats.tables import first_steps, hold_stopped
from hptransfer.sweeps import axes as axes_mod
from hptransfer.sweeps import costmodel, elimination, interrupt, limits, rundir
from hptransfer.sweeps.axes import Point, apply_point
from hptransfer.sweeps.config import ConfigError, SweepConfig, check_limits
from hptransfer.sweeps.hosts import (  # noqa: F401  (initialize_distributed: the CLI's entry)
    DistributedError,
    agree_stop,
    all_agree,
    fetch,
    from_writer,
    initialize_distributed,
)
from hptransfer.sweeps.savings import bucket_size, deduplicate, savings_mode, worth_compacting

COMPILE_STATS: dict[str, float] = {"count": 0, "seconds": 0.0, "evicted": 0, "live_peak": 0}
"""Compilations (``count``, ``seconds``), programs dropped by :func:`evict_programs`
(``evicted``) and the most programs held at once (``live_peak``), since the last
:func:`clear_program_cache`."""
_PROGRAMS: dict[Any, Any] = {}


class SimulatedKill(RuntimeError):
    """Raised by the fault-injection hook (tests): the sweep 'dies' after N segments."""


class MemoryLimitError(ConfigError):
    """One replica of a cell needs more device memory than the budget allows."""


@struct.dataclass
class ReplicaState:
    """A replica's training state plus its divergence bookkeeping."""

    train: TrainState
    alive: jax.Array  # bool
    diverged_step: jax.Array  # int32, -1 while alive
    loss0: jax.Array  # float32: the first minibatch loss (divergence threshold reference)


@dataclasses.dataclass(frozen=True)
class Replica:
    scheme: str
    log2_lr: float
    seed: int
    point: Point = ()  # the value of every traced sweep axis (hptransfer.sweeps.axes), sorted by name

    @property
    def key(self) -> tuple[str, Point]:
        """Which multipliers this replica trains with: its scheme at its traced point."""
        return (self.scheme, self.point)


# --------------------------------------------------------------------------------------------
# The pure programs (one replica each; vmapped below)


def _tree_all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def _cast_state(train: TrainState, dtype) -> TrainState:
    """``train`` with the floating leaves of its optimizer state cast to ``dtype`` (None: as is).

    precision = "bf16_state" keeps momentum / Adam moments in bfloat16 between steps (half their
    memory and traffic); every step computes in float32 from the upcast values."""
    if dtype is None:
        return train
    cast = partial(
        jax.tree.map, lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a
    )
    return train.replace(opt_state=cast(train.opt_state))


def _init_replica(seed, mult, *, arch, opt, state_dtype=None) -> ReplicaState:
    return ReplicaState(
        _cast_state(init_state(seed, mult, arch, opt), state_dtype),
        jnp.array(True),
        jnp.array(-1, jnp.int32),
        jnp.array(jnp.nan, jnp.float32),
    )


def _segment_replica(
    state, seed, lr, mult, factor, x, y, first_step, *, arch, opt, steps, batch_size,
    state_dtype=None,
):  # fmt: skip
    """``steps`` optimizer steps with freezing on divergence; returns (state, mean loss)."""

    def body(st: ReplicaState, step):
        batch = sample_batch(seed, step, x, y, batch_size)
        new, loss = train_step(_cast_state(st.train, jnp.float32 if state_dtype else None),
                               batch, mult, lr, arch, opt)  # fmt: skip
        new = _cast_state(new, state_dtype)
        loss0 = jnp.where(step == 0, loss, st.loss0)
        ok = st.alive & jnp.isfinite(loss) & _tree_all_finite(new.params) & (loss <= factor * loss0)
        died = st.alive & ~ok
        # Freeze a dead replica: keep its old params and optimizer state (params0 never changes).
        keep = partial(jax.tree.map, lambda a, b: jnp.where(ok, a, b))
        train = TrainState(keep(new.params, st.train.params), st.train.params0,
                           keep(new.opt_state, st.train.opt_state), new.step)  # fmt: skip
        st = ReplicaState(train, ok, jnp.where(died, step, st.diverged_step), loss0)
        return st, jnp.where(ok, loss, jnp.nan)

    state, losses = jax.lax.scan(body, state, first_step + jnp.arange(steps))
    return state, losses.mean()


def _eval_replica(state, mult, x_test, y_test, probe, *, arch):
    test_loss, test_acc = evaluate(state.train.params, x_test, y_test, mult, arch)
    stats = layer_stats(state.train.params0, state.train.params, probe, mult, arch)
    dead = ~state.alive
    nan = jnp.float32(jnp.nan)
    return {
        "test_loss": jnp.where(dead, nan, test_loss),
        "test_accuracy": jnp.where(dead, nan, test_acc),
        **flatten_stats(stats),
    }


MATMUL_PRECISION = {"f32": None, "tf32": "tensorfloat32", "bf16_state": None}
"""jax.default_matmul_precision of each config ``precision`` (None: the float32 default)."""


def _compiled(name: str, fn: Callable, static: tuple, out_sharding, *args, precision="f32"):
    """Compile ``fn(*args)`` ahead of time once per (name, static settings, input shapes),
    with the matmul precision of ``precision`` (:data:`MATMUL_PRECISION`).

    Every output has the replica axis first and is pinned to ``out_sharding``, so a program's
    outputs feed the next program without resharding.
    """
    leaves, treedef = jax.tree.flatten(args)
    key = (
        name,
        static,
        precision,
        treedef,
        tuple((tuple(a.shape), str(a.dtype), getattr(a, "sharding", None)) for a in leaves),
    )
    if key not in _PROGRAMS:
        t0 = time.perf_counter()
        with jax.default_matmul_precision(MATMUL_PRECISION[precision]):
            _PROGRAMS[key] = jax.jit(fn, out_shardings=out_sharding).lower(*args).compile()
        COMPILE_STATS["count"] += 1
        COMPILE_STATS["seconds"] += time.perf_counter() - t0
        COMPILE_STATS["live_peak"] = max(COMPILE_STATS["live_peak"], len(_PROGRAMS))
    return _PROGRAMS[key]


def clear_program_cache() -> None:
    """Forget compiled programs and reset the compile counters (tests)."""
    _PROGRAMS.clear()
    COMPILE_STATS.update(count=0, seconds=0.0, evicted=0, live_peak=0)


def _program_statics(config: SweepConfig, arch: Architecture) -> set[tuple]:
    """The (static settings, precision) of the programs a cell compiles, as :func:`_compiled`
    keys them: init and evaluation by ``_Cell.static`` (shape, optimizer), the segment also by
    its length and batch size (:func:`_run_chunk`). Replica counts are the rest of a key."""
    static = (arch, config.optimizer)
    segment = static + (config.eval_every, config.batch_size)
    return {(static, config.precision), (segment, config.precision)}


def evict_programs(plan: list[tuple[SweepConfig, Architecture]]) -> int:
    """Drop every compiled program that no cell of ``plan`` (the cells still to run) can use;
    returns how many. A program is keyed by its cell's shape and settings, so once a sweep has
    moved past a shape its programs (every chunk size, compaction bucket and adaptive round)
    are dead: kept, they held ~6 MB of host memory each (XLA:CPU). JAX's own tracing and
    lowering caches, which hold their jaxprs and modules, are cleared with them."""
    needed = set().union(*(_program_statics(cfg, arch) for cfg, arch in plan))
    dead = [key for key in _PROGRAMS if (key[1], key[2]) not in needed]
    for key in dead:
        del _PROGRAMS[key]
    if dead:
        jax.clear_caches()
    COMPILE_STATS["evicted"] += len(dead)
    return len(dead)


# --------------------------------------------------------------------------------------------
# Planning: cells, replicas, hashes, chunks


def architectures(config: SweepConfig, data: Dataset) -> list[Architecture]:
    """Every shape of the sweep (:func:`hptransfer.sweeps.limits.architectures`) with the
    loaded data's input shape and classes."""
    return [
        dataclasses.replace(a, in_shape=data.in_shape, num_classes=data.num_classes)
        for a in limits.architectures(config)
    ]


def replicas(config: SweepConfig) -> list[Replica]:
    """Every (scheme, log2 lr, traced point, seed) of a cell, scheme-major."""
    return [
        Replica(s, lr, seed, point)
        for s in config.schemes
        for lr, point in config.points(s)
        for seed in config.seeds
    ]


def cell_configs(config: SweepConfig) -> list[SweepConfig]:
    """The config of each set of cells: ``config`` itself, then one per other value of a
    shape axis (batch_size, steps, schedule), each compiled and trained as cells of their own.
    A schedule kind keeps the [schedule] fractions it reads (``ScheduleConfig.as_kind``)."""
    return [
        dataclasses.replace(config, batch_size=b, steps=t, optimizer=dataclasses.replace(
            config.optimizer, schedule=config.optimizer.schedule.as_kind(kind)))
        for b, t, kind in config.shape_points()
    ]  # fmt: skip


def _running_code_version() -> dict[str, str]:
    steps = (_tree_all_finite, _init_replica, _segment_replica, _eval_replica)
    return rundir.version_stamp("".join(inspect.getsource(f) for f in steps))


# Read once, as this module is imported (after the numeric modules it imports): the source that
# runs. Read later, inspect.getsource reads the file as edited since, at the line numbers of the
# loaded code, and a long sweep would hash its later cells with another version than the code
# that trained them (a resume then recomputes them, or serves the edited code cells it never
# trained).
_CODE_VERSION = _running_code_version()


def code_version() -> dict[str, str]:
    """The package version and a hash of the source that decides numbers: the modules of
    :data:`hptransfer.sweeps.rundir.NUMERIC_MODULES` and this module's pure step functions, as
    they were when this process imported them."""
    return dict(_CODE_VERSION)


def cell_hash(
    config: SweepConfig, arch: Architecture, registry: dict[str, Scheme], corpus: str | None = None
) -> str:
    """A hash of everything that decides a cell's results (schemes by their tables, not names,
    the code version, so that a change of the numeric code recomputes, and a text corpus by its
    sha256, which the config's path alone does not fix: the default corpus differs between
    Python versions)."""
    payload = {
        "code": code_version(),
        "arch": dataclasses.asdict(arch),
        "optimizer": dataclasses.asdict(config.optimizer),
        "data": dataclasses.asdict(config.data),
        "run": [config.steps, config.eval_every, config.batch_size, config.divergence_factor,
                config.probe_size],
        "replicas": [dataclasses.astuple(r) for r in replicas(config)],
        "adaptive": [config.lr_adaptive, config.lr_max_extra_octaves, config.lr_refine],
        "precision": config.precision,
        "schemes": {s: registry[s].to_table() for s in config.schemes},
        "format": 3,  # 3: chunks of distinct replicas; checkpoints know the live slots
    }  # fmt: skip
    if config.elimination.enabled:  # off: the hash of every cell before elimination existed
        rule = hashlib.sha256(inspect.getsource(elimination).encode()).hexdigest()[:16]
        payload["elimination"] = [dataclasses.asdict(config.elimination), rule]
    if corpus is not None:
        payload["corpus"] = corpus
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def param_count(arch: Architecture) -> int:
    if arch.family == "transformer":
        return costmodel.parameters(arch)
    shapes = kernel_shapes(arch)
    hidden = sum(math.prod(shapes[r]) for r in arch.hidden_roles)
    return math.prod(shapes["input"]) + arch.depth * hidden + math.prod(shapes["readout"])


def bytes_per_replica(arch: Architecture, config: SweepConfig) -> int:
    """Rough device memory of one replica, in float32 words times 4 bytes:

    8 copies of the parameters (params, init copy, grads, new params, the frozen-state select,
    and the temporaries of the movement statistics, which XLA may hoist out of the block scan:
    W_t - W_0 for every block, as seen at width 4096 on an H200) plus optimizer slots, plus the
    activations kept for the backward pass (a few per layer and example).
    """
    slots = {"sgd": 1 if config.optimizer.momentum else 0}.get(config.optimizer.name, 2)
    if arch.family == "transformer":  # the cost model's activations, twice (kept for backward)
        acts = 2 * costmodel.activations(arch, config.batch_size)
    else:
        spatial = 1 if arch.family == "mlp" else math.prod(arch.in_shape[:2]) // 4
        acts = config.batch_size * arch.width * spatial * (arch.depth * arch.block_depth + 2) * 4
    return 4 * (param_count(arch) * (8 + slots) + acts)


def memory_budget() -> int:
    """Bytes the replica axis may use, over all local devices: 60% of each accelerator's memory,
    or 30% of host RAM on CPU (host devices split one machine's memory: counted once)."""
    limits = [
        (d.memory_stats() or {}).get("bytes_limit") if d.platform != "cpu" else None
        for d in jax.local_devices()
    ]
    if all(limits):
        return int(0.6 * sum(limits))
    return int(0.3 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def replica_budget() -> int:
    """Bytes one replica may use: a replica lives on one device, so the budget of one
    accelerator (:func:`memory_budget` over the local devices), or all of it on CPU (host
    devices share one machine's memory)."""
    devices = jax.local_devices()
    share = 1 if all(d.platform == "cpu" for d in devices) else len(devices)
    return memory_budget() // share


def preflight(config: SweepConfig, archs: list[Architecture]) -> None:
    """Refuse, before any compute, a grid over the limits or a cell whose one replica cannot
    fit in device memory (:func:`bytes_per_replica` vs :func:`replica_budget`)."""
    check_limits(config)
    budget = replica_budget()
    for arch in archs:
        need = bytes_per_replica(arch, config)
        if need > budget:
            raise MemoryLimitError(
                f"model.widths/model.depths: one replica of width {arch.width}, depth "
                f"{arch.depth} (block depth {arch.block_depth}, batch {config.batch_size}) needs "
                f"about {need / 2**30:.3g} GiB ({need} bytes) of device memory, but "
                f"{budget / 2**30:.3g} GiB ({budget} bytes) are available; allowed: smaller "
                "widths, depths or batch_size"
            )


def chunk_size(n_replicas: int, per_replica: int, n_devices: int, override: int = 0) -> int:
    """Replicas per program call: all that fit (or ``override``), a multiple of the devices."""
    cap = override if override > 0 else max(1, memory_budget() // max(per_replica, 1))
    if override <= 0:
        # Balance the chunks: 16 replicas under a cap of 15 run as 2 x 8, not 15 + 1 padded to 15.
        cap = math.ceil(n_replicas / math.ceil(n_replicas / min(cap, n_replicas)))
    size = min(n_replicas, cap)
    return max(n_devices, math.ceil(size / n_devices) * n_devices)


# --------------------------------------------------------------------------------------------
# Running one cell


def _mesh() -> Mesh:
    return Mesh(np.array(jax.devices()), ("replica",))


def _place(tree, sharding):
    return jax.tree.map(lambda a: jax.device_put(a, sharding), tree)


def _checkpoint_manager(path: Path) -> ocp.CheckpointManager:
    """The Orbax manager of one chunk's checkpoints (the latest kept; saves are synchronous and
    atomic: written to a temporary directory, then renamed). A directory that cannot be
    created raises :class:`hptransfer.stats.results.WriteError`."""
    options = ocp.CheckpointManagerOptions(max_to_keep=1, enable_async_checkpointing=False)
    with results_io.writing(path):
        return ocp.CheckpointManager(path.absolute(), options=options)


def _restore(mgr, path, state, history, expected: dict) -> tuple[Any, dict, int, Any] | None:
    """The latest checkpoint of this cell and chunk, if readable: (state, history, segments
    done, slots: the chunk-local replicas its compacted state holds, or None), else None."""
    step = mgr.latest_step()
    if step is None:
        return None
    try:
        meta = dict(mgr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"])
        if {k: meta.get(k) for k in expected} != expected or not 0 < step:
            raise ValueError(f"it belongs to {meta}, not to {expected}")
        slots = meta.get("slots")
        items = {"history": ocp.args.StandardRestore(history)}
        if not meta.get("finished") and slots:
            items["state"] = ocp.args.StandardRestore(_abstract(state, len(slots)))
        restored = mgr.restore(step, args=ocp.args.Composite(**items))
        history = {k: fetch(v) for k, v in restored["history"].items()}
        return restored.get("state", state), history, int(step), slots
    except Exception as err:  # corrupt, foreign or from an older format: recompute
        warnings.warn(
            f"checkpoint {path} is unusable ({type(err).__name__}: {err}); recomputing this cell",
            stacklevel=2,
        )
        return None


@dataclasses.dataclass
class CellFacts:
    """What meta.json's ``cells`` records of one cell: its shape; for a computed cell the
    replicas requested and trained, the replica-steps requested, computed and saved (by
    deduplication, compaction and early elimination), compile and run seconds, the cost of a
    replica-step and, once the roofs are measured, the rates achieved; a cell finished by an
    earlier run only ``resumed``. :meth:`to_dict` writes the fields a cell has, in this order."""

    cell: str
    width: int
    depth: int
    block_depth: int
    resumed: bool = False
    replicas: int | None = None
    replicas_trained: int | None = None
    chunk_size: int | None = None
    lr_rounds: int | None = None
    replica_steps_requested: int | None = None
    replica_steps_computed: int | None = None
    replica_steps_saved_dedup: int | None = None
    replica_steps_saved_compaction: int | None = None
    compactions: int | None = None
    bytes_per_replica_estimated: int | None = None
    bytes_per_replica_measured: int | None = None
    compile_seconds: float | None = None
    run_seconds: float | None = None
    replica_steps_eliminated: int | None = None
    replica_steps_saved_prefix: int | None = None  # the first steps of a longer run (no training)
    lr_added: dict[str, list[float]] | None = None
    flops_per_replica_step: float | None = None
    bytes_per_replica_step: float | None = None
    batch_size: int | None = None  # with shape axes: the cell's own
    steps: int | None = None
    schedule: str | None = None
    replica_steps: int | None = None  # computed in this run (restored segments not counted)
    achieved: dict[str, float] | None = None  # costmodel.achieved

    def to_dict(self) -> dict[str, Any]:
        out = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "achieved"
            and getattr(self, f.name) is not None
            and getattr(self, f.name) is not False
        }
        return out | (self.achieved or {})


@dataclasses.dataclass(frozen=True)
class Faults:
    """Fault injection, for tests of resume: stop the sweep after ``kill_after_segments``
    segments (counted over the whole run) with :class:`SimulatedKill`, or, with ``hard_kill``, by
    ``os._exit(137)`` (a real death: no cleanup, no finally blocks). The command line builds
    one from its environment (:func:`from_environment`); the engine reads no variable itself."""

    kill_after_segments: int | None = None
    hard_kill: bool = False

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> Faults:
        """HPTRANSFER_KILL_AFTER_SEGMENTS (an int) and HPTRANSFER_HARD_KILL (set: hard)."""
        kill = env.get("HPTRANSFER_KILL_AFTER_SEGMENTS")
        return cls(int(kill) if kill else None, bool(env.get("HPTRANSFER_HARD_KILL")))


@dataclasses.dataclass
class _Progress:
    bar: Any
    segments_done: int = 0
    faults: Faults = Faults()
    computed: int = 0  # replica-steps computed in this run (not restored from checkpoints)

    def segment(self, replica_steps: int) -> None:
        self.bar.update(replica_steps)
        self.computed += replica_steps
        self.segments_done += 1
        # No interrupt.check() here: a pending SIGTERM or swallowed Ctrl-C stops the sweep at
        # the next segment boundary, where every process agrees on it and saves first
        # (_save_or_stop). Raising here, after that agreement, stopped the one process that got
        # a signal in between alone, and its peers named it lost (exit 75 instead of 143).
        kill_after = self.faults.kill_after_segments
        if kill_after is not None and self.segments_done >= kill_after:
            if self.faults.hard_kill:
                os._exit(137)  # a real death: no cleanup, no finally blocks
            raise SimulatedKill(f"fault injection after {self.segments_done} segments")


class _DeviceData(NamedTuple):
    """What every cell of a sweep reads, replicated on all devices once per sweep."""

    x: jax.Array
    y: jax.Array
    x_test: jax.Array
    y_test: jax.Array
    probe: jax.Array
    factor: jax.Array  # divergence_factor


def _device_data(config: SweepConfig, data: Dataset, shared: NamedSharding) -> _DeviceData:
    arrays = (data.x_train, data.y_train, data.x_test, data.y_test,
              probe_batch(data, config.probe_size), np.float32(config.divergence_factor))  # fmt: skip
    return _DeviceData(*(jax.device_put(jnp.asarray(a), shared) for a in arrays))


@dataclasses.dataclass
class _Cell:
    """What every chunk of one cell shares: its programs' inputs and settings."""

    config: SweepConfig
    arch: Architecture
    dev: _DeviceData
    chash: str
    out: Path
    progress: _Progress
    checkpoint_seconds: float
    sharding: NamedSharding
    static: tuple
    init_fn: Callable
    seg_fn: Callable
    eval_fn: Callable
    savings: str  # savings_mode()
    steps: dict[str, int] = dataclasses.field(
        default_factory=lambda: dict(computed=0, compaction=0, compactions=0)
    )
    sizes: set[int] = dataclasses.field(default_factory=set)  # program sizes compiled


def _chunk_inputs(cell: _Cell, chunk: list[Replica], mults: dict[str, Multipliers], slots):
    """Device arrays (seeds, lrs, multipliers) of the chunk-local replicas ``slots``."""
    picked = [chunk[i] for i in slots]
    seeds = jax.device_put(jnp.array([r.seed for r in picked], jnp.int32), cell.sharding)
    lrs = jax.device_put(jnp.array([2.0**r.log2_lr for r in picked], jnp.float32), cell.sharding)
    mult: Multipliers = _place(stack([mults[r.key] for r in picked]), cell.sharding)
    return seeds, lrs, mult


def _abstract(state, size: int):
    """The shape of ``state`` with ``size`` replicas (a checkpoint restore target)."""
    return jax.tree.map(
        lambda a: jax.ShapeDtypeStruct((size, *a.shape[1:]), a.dtype, sharding=a.sharding), state
    )


def _gather(state, positions: np.ndarray, sharding: NamedSharding):
    """The replicas at ``positions`` of ``state``, placed as one smaller program's input."""
    return jax.tree.map(lambda a: jax.device_put(fetch(a)[positions], sharding), state)


@dataclasses.dataclass
class _ChunkRun:
    """One chunk in training: the replicas it holds (``slots``: chunk-local indices, padding
    repeats one), their device inputs and state, the history so far, its checkpoint manager."""

    cell: _Cell
    chunk: list[Replica]
    mults: dict[str, Multipliers]
    slots: np.ndarray
    seeds: Any
    lrs: Any
    mult: Any
    state: Any
    history: dict[str, np.ndarray]
    mgr: Any
    ckpt_path: Path
    expected: dict
    start: int = 0
    last_save: float = 0.0
    segment_seconds: float = 0.0
    programs: dict[int, tuple[Any, Any]] = dataclasses.field(default_factory=dict)

    def place(self, slots: np.ndarray) -> None:
        """Hold the chunk-local replicas ``slots`` (their device inputs follow)."""
        self.slots = np.asarray(slots, np.int64)
        if len(self.slots):
            self.seeds, self.lrs, self.mult = _chunk_inputs(
                self.cell, self.chunk, self.mults, self.slots
            )


def chunk_name(round_: int, index: int) -> str:
    """A chunk's name within its cell (its checkpoint folder is ``chunk_<name>``): "3" for the
    fourth chunk of the first round, "round1_0" for the first of the second."""
    return str(index) if round_ == 0 else f"round{round_}_{index}"


def _run_chunk(cell: _Cell, index: str, chunk: list[Replica], size: int, mults, plan=None) -> dict:
    """Train the replicas of one chunk in a program of ``size``; returns their history.

    History arrays are chunk-local: (segments, len(chunk)) per metric, ``diverged_step`` of
    shape (len(chunk),). With savings on, the live replicas are compacted between segments into
    a smaller program (:func:`bucket_size`); a replica left out is frozen, so its later rows are
    those a frozen replica gets: NaN losses and accuracy, its last feature movement.
    ``plan`` (:class:`hptransfer.sweeps.elimination.Plan`, elimination on): at every segment boundary
    the replicas :func:`hptransfer.sweeps.elimination.chunk_stops` picks are frozen the same way and
    their stop step kept in ``eliminated_step`` (-1: never).

    Each segment, in order: train it (:func:`_train_segment`), hold the frozen replicas'
    rows (:func:`_hold_frozen`), stop the rates elimination picks, compact the live replicas
    (:func:`_compact`), then save and stop when asked (:func:`_save_or_stop`).
    """
    run = _start_chunk(cell, index, chunk, size, mults, plan)
    config, n = cell.config, len(chunk)
    n_seg, every = config.steps // config.eval_every, config.eval_every
    for seg in range(run.start, n_seg):
        owned, first = np.unique(run.slots, return_index=True)  # once per replica, not per slot
        idle = np.ones(n, bool)
        idle[owned] = False
        stopped = np.zeros(n, bool)
        if plan is not None:  # stopped at or before this segment's first step: frozen
            stop_step = run.history["eliminated_step"]
            stopped = (stop_step >= 0) & (stop_step <= seg * every)
            idle |= stopped
        if len(run.slots):
            _train_segment(run, seg, owned, first, stopped)
        cell.steps["compaction"] += (size - len(run.slots)) * every
        _hold_frozen(run.history, seg, idle)
        finished = seg == n_seg - 1
        if plan is not None and not finished:
            h = run.history
            stop = elimination.chunk_stops(
                h["train_loss"], h["diverged_step"], h["eliminated_step"], plan, seg, n_seg,
                config.elimination,
            )  # fmt: skip
            h["eliminated_step"][stop] = (seg + 1) * every
        if cell.savings != "0" and not finished and len(run.slots):
            _compact(run, seg, owned, first, plan is not None)
        _save_or_stop(run, seg, finished)
        cell.progress.segment(every * n)
    run.mgr.close()
    return run.history


def _start_chunk(
    cell: _Cell, index: str, chunk: list[Replica], size: int, mults, plan
) -> _ChunkRun:
    """A chunk's initial state and empty history, or, from its checkpoint, where it stopped
    (a checkpoint of another cell, chunk or size is discarded)."""
    config, dev = cell.config, cell.dev
    n, n_seg = len(chunk), config.steps // config.eval_every
    slots = np.array(list(range(n)) + [n - 1] * (size - n), np.int64)
    seeds, lrs, mult = _chunk_inputs(cell, chunk, mults, slots)
    state = _compiled("init", cell.init_fn, cell.static, cell.sharding, seeds, mult,
                      precision=config.precision)(seeds, mult)  # fmt: skip
    history: dict[str, np.ndarray] = {"train_loss": np.full((n_seg, n), np.nan, np.float32)}
    for key in jax.eval_shape(cell.eval_fn, state, mult, dev.x_test, dev.y_test, dev.probe):
        history[key] = np.full((n_seg, n), np.nan, np.float32)
    history["diverged_step"] = np.full(n, -1, np.int32)
    if plan is not None:
        history["eliminated_step"] = np.full(n, -1, np.int32)
    ckpt_path = cell.out / results_io.CHECKPOINT_DIR / cell.chash / f"chunk_{index}"
    mgr = _checkpoint_manager(ckpt_path)
    expected = {"cell": cell.chash, "chunk": index, "size": size}
    run = _ChunkRun(cell, chunk, mults, slots, seeds, lrs, mult, state, history, mgr, ckpt_path,
                    expected)  # fmt: skip
    restored = _restore(mgr, ckpt_path, state, history, expected)
    if restored is None and mgr.latest_step() is not None:
        mgr.close()
        shutil.rmtree(ckpt_path, ignore_errors=True)
        run.mgr = _checkpoint_manager(ckpt_path)
    if restored is not None:
        run.state, run.history, run.start, saved_slots = restored
        if saved_slots is not None and len(saved_slots) != len(slots):  # a compacted chunk
            run.place(saved_slots)
        cell.progress.bar.update(run.start * config.eval_every * n)
    run.last_save = time.perf_counter()
    return run


def _train_segment(
    run: _ChunkRun, seg: int, owned: np.ndarray, first: np.ndarray, stopped: np.ndarray
) -> None:
    """Train segment ``seg`` of the replicas held, evaluate them and record their rows (a
    stopped replica keeps the divergence step it had)."""
    cell, config, dev = run.cell, run.cell.config, run.cell.dev
    every, prec = config.eval_every, config.precision
    eval_args = (dev.x_test, dev.y_test, dev.probe)
    first_step = jax.device_put(jnp.int32(seg * every), dev.factor.sharding)
    args = (run.state, run.seeds, run.lrs, run.mult, dev.factor, dev.x, dev.y, first_step)
    if len(run.slots) not in run.programs:  # looked up once per program size, not per segment
        run.programs[len(run.slots)] = (
            _compiled("segment", cell.seg_fn, cell.static + (every, config.batch_size),
                      cell.sharding, *args, precision=prec),
            _compiled("eval", cell.eval_fn, cell.static, cell.sharding,
                      run.state, run.mult, *eval_args, precision=prec),
        )  # fmt: skip
    seg_prog, eval_prog = run.programs[len(run.slots)]
    cell.sizes.add(len(run.slots))
    t_seg = time.perf_counter()
    run.state, seg_loss = seg_prog(*args)
    metrics = eval_prog(run.state, run.mult, *eval_args)
    history = run.history
    history["train_loss"][seg, owned] = fetch(seg_loss)[first]
    for key, value in metrics.items():
        history[key][seg, owned] = fetch(value)[first]
    died = fetch(run.state.diverged_step)[first]
    history["diverged_step"][owned] = np.where(
        stopped[owned], history["diverged_step"][owned], died
    )
    run.segment_seconds = time.perf_counter() - t_seg
    cell.steps["computed"] += len(run.slots) * every


def _hold_frozen(history: dict[str, np.ndarray], seg: int, idle: np.ndarray) -> None:
    """Rows of replicas no program holds (compacted away or stopped), as the full program would
    say of a frozen replica: NaN losses and accuracy, its last feature movement."""
    for key in history:
        if history[key].ndim == 2:
            history[key][seg, idle] = (
                history[key][seg - 1, idle] if split_stat_column(key) else np.nan
            )


def _compact(
    run: _ChunkRun, seg: int, owned: np.ndarray, first: np.ndarray, eliminating: bool
) -> None:
    """Move the live replicas into a smaller program (:func:`bucket_size`) when the time saved
    over the remaining segments beats compiling it; process 0's timing decides for all."""
    cell = run.cell
    n_seg = cell.config.steps // cell.config.eval_every
    alive = fetch(run.state.alive)[first]
    if eliminating:
        alive &= run.history["eliminated_step"][owned] < 0
    new = bucket_size(int(alive.sum()), len(jax.devices()), len(run.slots), fine=eliminating)
    per_program = COMPILE_STATS["seconds"] / max(COMPILE_STATS["count"], 1)
    cost = 0.0 if new in cell.sizes else 2 * per_program  # segment + evaluation
    # A decision from timings: process 0's holds for all (the programs are collective).
    if new < len(run.slots) and from_writer(
        cell.savings == "always"
        or worth_compacting(len(run.slots), new, run.segment_seconds, n_seg - 1 - seg, cost)
    ):
        cell.steps["compactions"] += 1
        keep = first[alive]
        positions = np.concatenate([keep, np.repeat(keep[-1:], new - len(keep))])
        run.slots = run.slots[positions]
        if new:
            run.state = _gather(run.state, positions, cell.sharding)
            run.place(run.slots)


def _save_or_stop(run: _ChunkRun, seg: int, finished: bool) -> None:
    """Save a checkpoint when the chunk is finished, when one is due, or when a process got
    SIGTERM or Ctrl-C; in that last case stop every process here (KeyboardInterrupt)."""
    now = time.perf_counter()
    # One collective: process 0's clock decides when to save (Orbax saves are collective over
    # processes), and a SIGTERM (or a swallowed Ctrl-C) of any process stops all of them here,
    # after saving.
    due, signum, by = agree_stop(
        now - run.last_save >= run.cell.checkpoint_seconds, interrupt.pending()
    )
    if signum:  # every process stops at this check: from here a peer that ends first is no loss
        mine = interrupt.pending()  # this process got a signal itself, or only another one did
        interrupt.request(mine or signum, None if mine else by, agreed=True)
    if finished or due or signum:
        # A finished chunk keeps only its metrics (the other chunks of the cell may still die);
        # an unfinished one keeps its whole training state and which replicas it holds.
        meta = {**run.expected, "finished": finished, "slots": run.slots.tolist()}
        items = {"history": ocp.args.StandardSave(run.history), "meta": ocp.args.JsonSave(meta)}
        if not finished and len(run.slots):
            items["state"] = ocp.args.StandardSave(run.state)
        with results_io.writing(run.ckpt_path):  # the previous checkpoint stays if this fails
            run.mgr.save(seg + 1, args=ocp.args.Composite(**items))
            run.mgr.wait_until_finished()
        run.last_save = now
    if signum:
        run.mgr.close()
        raise KeyboardInterrupt


def _columns(histories: list[dict[str, np.ndarray]], owner: list[int]) -> dict[str, np.ndarray]:
    """The trained chunks' histories side by side, one column per requested replica."""
    return {
        k: np.concatenate([h[k] for h in histories], axis=-1)[..., np.asarray(owner)]
        for k in histories[0]
    }


def adaptive_lrs(table: pd.DataFrame, config: SweepConfig) -> dict[str, list[float]]:
    """The log2 learning rates one more round should add to a cell, per scheme.

    The score of a rate is its seed-averaged final training loss, +inf if any seed diverged.
    With the best rate at the top of the grid, one grid step above is added; at the bottom (or
    with every rate diverged), one step below; both within ``lr_max_extra_octaves`` of the
    configured grid. With the best rate next to a diverged one, their midpoint is added while
    the gap is wider than a quarter step. With ``lr_refine`` and an interior optimum whose
    neighbours are a whole step away and did not diverge, the two half-step points around it
    are added (once: the new gaps are half a step). Rates already trained are never added again.
    """
    table = hold_stopped(table, ["scheme", "log2_lr", "seed"])
    last = table[table.step == table.step.max()]
    score = (
        last.assign(s=np.where(last.diverged | last.train_loss.isna(), np.inf, last.train_loss))
        .groupby(["scheme", "log2_lr"])
        .s.mean()
    )
    out: dict[str, list[float]] = {}
    for scheme in config.schemes:
        grid = dict(config.lr_by_scheme).get(scheme, config.lr)
        lo, hi = grid.start - config.lr_max_extra_octaves, grid.stop + config.lr_max_extra_octaves
        curve = score.loc[scheme].sort_index()
        lrs, values = curve.index.to_numpy(float), curve.to_numpy(float)
        best = int(np.argmin(values))
        want = []
        if not np.isfinite(values[best]) or best == 0:
            want.append(lrs[0] - grid.step)
        if np.isfinite(values[best]) and best == len(lrs) - 1:
            want.append(lrs[-1] + grid.step)
        elif np.isfinite(values[best]) and not np.isfinite(values[best + 1]):
            if lrs[best + 1] - lrs[best] > grid.step / 4 + 1e-9:
                want.append((lrs[best] + lrs[best + 1]) / 2)
        elif config.lr_refine and 0 < best and np.isfinite(values[best + 1]):
            for other in (lrs[best - 1], lrs[best + 1]):
                if abs(other - lrs[best]) > grid.step / 2 + 1e-9:
                    want.append((other + lrs[best]) / 2)
        want = [round(float(x), 6) for x in want if lo - 1e-9 <= x <= hi + 1e-9]
        if want := [x for x in want if x not in set(lrs.round(6))]:
            out[scheme] = want
    return out


def _measured_bytes_per_replica(
    cell: _Cell, trained: list[Replica], size: int, mults: dict[str, Multipliers]
) -> float | None:
    """Device bytes per replica of the segment and evaluation programs at ``size`` replicas,
    from XLA's memory analysis of the compiled programs (arguments + outputs + temporaries -
    aliased, per device, less the replicated data), the larger of the two; None where the
    backend does not say. The programs are compiled for the real run's input shapes and
    shardings, so when the chunk size stays ``size`` they are reused, not compiled twice."""
    dev, config = cell.dev, cell.config
    seeds, lrs, mult = _chunk_inputs(cell, trained, mults, np.arange(size) % len(trained))
    state = jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=cell.sharding),
        jax.eval_shape(cell.init_fn, seeds, mult),
    )
    first_step = jax.device_put(jnp.int32(0), dev.factor.sharding)
    prec = config.precision
    programs = [
        (_compiled("segment", cell.seg_fn, cell.static + (config.eval_every, config.batch_size),
                   cell.sharding, state, seeds, lrs, mult, dev.factor, dev.x, dev.y, first_step,
                   precision=prec), dev.x.nbytes + dev.y.nbytes),
        (_compiled("eval", cell.eval_fn, cell.static, cell.sharding, state, mult, dev.x_test,
                   dev.y_test, dev.probe, precision=prec),
         dev.x_test.nbytes + dev.y_test.nbytes + dev.probe.nbytes),
    ]  # fmt: skip
    per_device = []
    for program, shared in programs:
        try:
            ma = program.memory_analysis()
        except Exception:  # not every backend implements it
            return None
        if ma is None:
            return None
        used = ma.argument_size_in_bytes + ma.output_size_in_bytes + ma.temp_size_in_bytes
        per_device.append(used - ma.alias_size_in_bytes - shared)
    n_dev = len(jax.devices())
    return max(per_device) * n_dev / size if max(per_device) > 0 else None


def run_cell(
    config: SweepConfig,
    arch: Architecture,
    dev: _DeviceData,
    registry: dict[str, Scheme],
    out: Path,
    progress: _Progress,
    checkpoint_seconds: float = 30.0,
    protect: dict | None = None,
    chash: str | None = None,
) -> tuple[pd.DataFrame, CellFacts]:
    """Train every replica of one cell; returns its tidy table and its facts.

    With savings on (HPTRANSFER_SAVINGS, :func:`savings_mode`) identical replicas are trained once
    (:func:`deduplicate`) and diverged ones stop costing compute (compaction, :func:`_run_chunk`).
    ``protect``: with elimination on, the log2 rates per lr curve whose grid neighbours are
    never stopped (:func:`_protected`). ``chash``: the cell's hash (default: without a corpus).
    """
    chash = chash or cell_hash(config, arch, registry)
    family = config.optimizer.family
    settings = traced_settings(config.optimizer, config.steps)
    base = {s: multipliers(registry[s], arch, family).replace(optimizer=settings)
            for s in config.schemes}  # fmt: skip
    keys = {r.key for r in replicas(config)}  # seeds share their multipliers
    mults = {(s, point): apply_point(base[s], point) for s, point in keys}
    savings = savings_mode()
    state_dtype = jnp.bfloat16 if config.precision == "bf16_state" else None
    n_dev = len(jax.devices())
    opt = config.optimizer
    cell = _Cell(
        config, arch, dev, chash, out, progress, checkpoint_seconds,
        NamedSharding(_mesh(), PartitionSpec("replica")), (arch, opt),
        jax.vmap(partial(_init_replica, arch=arch, opt=opt, state_dtype=state_dtype)),
        jax.vmap(partial(_segment_replica, arch=arch, opt=opt, steps=config.eval_every,
                         batch_size=config.batch_size, state_dtype=state_dtype),
                 in_axes=(0, 0, 0, 0, None, None, None, None)),
        jax.vmap(partial(_eval_replica, arch=arch), in_axes=(0, 0, None, None, None)),
        savings,
    )  # fmt: skip
    compile_before = COMPILE_STATS["seconds"]
    t_start = time.perf_counter()
    reps: list[Replica] = []  # every requested replica, all rounds
    owner: list[int] = []  # reps[i] reads column owner[i] of the trained history
    known: dict[object, int] = {}  # identity -> column, over all rounds
    histories: list[dict[str, np.ndarray]] = []
    sizes: list[int] = []
    memory: dict[str, int] = {}
    new, rounds = replicas(config), 0
    while new:
        distinct, owned = deduplicate(new, mults, known, enabled=savings != "0")
        trained = [new[i] for i in distinct]
        owner += owned.tolist()
        reps += new
        if trained:
            size = chunk_size(
                len(trained), bytes_per_replica(arch, config), n_dev, config.max_replicas_per_chunk
            )
            if config.max_replicas_per_chunk <= 0:  # XLA's own memory count, where it has one
                measured = _measured_bytes_per_replica(cell, trained, size, mults)
                memory["bytes_per_replica_estimated"] = bytes_per_replica(arch, config)
                memory["bytes_per_replica_measured"] = measured
                if measured:
                    size = chunk_size(len(trained), measured, n_dev)
            sizes.append(size)
            for c0 in range(0, len(trained), size):
                index = chunk_name(rounds, c0 // size)
                part = trained[c0 : c0 + size]
                plan = _elimination_plan(config, new, owned, c0, len(part), rounds, protect)
                histories.append(_run_chunk(cell, index, part, size, mults, plan))
        rounds += 1
        new = []
        if config.lr_adaptive:
            history = _columns(histories, owner)
            new = [
                Replica(s, lr, seed)
                for s, lrs in adaptive_lrs(
                    _chunk_table(config, arch, chash, reps, history), config
                ).items()
                for lr in lrs
                for seed in config.seeds
            ]
            progress.bar.total += len(new) * config.steps
    table = _chunk_table(config, arch, chash, reps, _columns(histories, owner))
    requested = len(reps) * config.steps
    cost = costmodel.step_cost(arch, config.batch_size, config.optimizer)
    facts = CellFacts(
        chash, arch.width, arch.depth, arch.block_depth,
        replicas=len(reps),
        replicas_trained=len(known),
        chunk_size=sizes[0],
        lr_rounds=rounds,
        replica_steps_requested=requested,
        replica_steps_computed=cell.steps["computed"],
        replica_steps_saved_dedup=(len(reps) - len(known)) * config.steps,
        replica_steps_saved_compaction=cell.steps["compaction"],
        compactions=cell.steps["compactions"],
        **memory,
        compile_seconds=COMPILE_STATS["seconds"] - compile_before,
        run_seconds=time.perf_counter() - t_start,
        flops_per_replica_step=cost.flops,
        bytes_per_replica_step=cost.bytes,
    )  # fmt: skip
    if config.elimination.enabled:
        stop = _columns(histories, list(range(len(known))))["eliminated_step"]
        facts.replica_steps_eliminated = int(sum(config.steps - e for e in stop if e >= 0))
    if rounds > 1:
        first = set(replicas(config))
        added = sorted({(r.scheme, r.log2_lr) for r in reps if r not in first})
        facts.lr_added = {s: [lr for t, lr in added if t == s] for s, _ in added}
    return table, facts


def _elimination_plan(config, new, owned, c0: int, n: int, rounds: int, protect=None):
    """The elimination plan of the chunk of trained columns [c0, c0 + n) (None when off):
    in the first round, the groups of ``new`` (the requested replicas, ``owned``: their
    columns; :func:`_surfaces`) wholly inside the chunk; in later rounds nothing (their rates
    sit next to an optimum, and their curves span rounds)."""
    if not config.elimination.enabled:
        return None
    if rounds:
        return elimination.Plan((), np.zeros(n, bool))
    surfaces, fixed = _surfaces(config)
    return elimination.plan_chunk(
        [r.key for r in new], [r.log2_lr for r in new], [r.seed for r in new], owned, c0, c0 + n,
        protect, surfaces, [(r.key, r.log2_lr) in fixed for r in new],
    )  # fmt: skip


def _surfaces(config: SweepConfig) -> tuple[dict | None, set]:
    """What reads each lr curve (scheme, traced point) of a sweep with ``[axes]``, for
    :func:`hptransfer.sweeps.elimination.plan_chunk`: per curve the groups with the learning
    rate that hold it ((scheme, group), the curve's value of the group's other axis; 0 for the
    group ("lr",)), and the replicas (curve, log2 lr) that a group without the learning rate
    reads (trained to the end: elimination decides along the learning rate only). Without
    axes (None, an empty set): every curve is its own group."""
    if not config.axes:
        return None, set()
    defaults = dict(axes_mod.default_point(config.axes))
    surfaces: dict = {}
    fixed: set = set()
    for scheme in config.schemes:
        for lr, point in config.points(scheme):
            at = dict(point)
            readers = surfaces.setdefault((scheme, point), [])
            for group in config.groups():
                if any(at[n] != defaults[n] for n in defaults if n not in group):
                    continue
                if "lr" not in group:
                    if lr == config.lr_default_of(scheme):
                        fixed.add(((scheme, point), lr))
                    continue
                other = [n for n in group if n != "lr"]
                reader = ((scheme, group), at[other[0]] if other else 0.0)
                if reader not in readers:
                    readers.append(reader)
    return surfaces, fixed


def _protected(config: SweepConfig, arch: Architecture, done: dict) -> dict:
    """Per lr curve (scheme, traced point) of the cell ``arch`` of ``config``, the log2 rates
    the analysis reads on it from other cells, read off its series' base shapes (the smallest
    depth at its width, the smallest width at its depth, a path's first shape): on the curve
    at the default point, every optimum at every step (:func:`hptransfer.sweeps.elimination.base_optima`;
    the transfer regret and the fixed-rate movement read this cell's curve there); with
    ``[axes]``, on the curve through each group's joint optimum p* (the grid argmin of the
    base shape's seed-mean final loss), p*'s rate (the joint regret reads this cell at p*,
    :func:`hptransfer.stats.hparams.joint_regret`). ``done``: the finished cells' tables by
    :func:`cell_key`. While a base cell is not finished, {}: nothing stops."""
    shapes = config.model.shapes()
    bases = {
        (arch.width, min(L for n, L in shapes if n == arch.width)),
        (min(n for n, L in shapes if L == arch.depth), arch.depth),
    }
    if config.model.path:
        bases.add(tuple(config.model.path[0]))
    bases.discard((arch.width, arch.depth))
    default = axes_mod.default_point(config.axes)
    values: dict = {(s, p): [] for s in config.schemes for _, p in config.points(s)}
    values |= {(s, default): [] for s in config.schemes}
    design = hparams.RunDesign.from_config(config.to_dict()) if config.axes else None
    for n, L in sorted(bases):
        table = done.get(cell_key(config, n, L, arch.block_depth))
        if table is None:
            return {}
        # the lr chain: every traced axis at its default (a shape axis is this cell set's own)
        lr_chain = table if design is None else hparams.group_rows(table, design, (hparams.LR,))
        for scheme, etas in elimination.base_optima(lr_chain).items():
            values.setdefault((scheme, default), []).append(etas)
        if design is not None:
            for (scheme, point), log2_lr in _joint_optima(table, design, config).items():
                values.setdefault((scheme, point), []).append(np.array([log2_lr]))
    return {k: np.concatenate(v) if v else np.array([]) for k, v in values.items()}


def _joint_optima(table: pd.DataFrame, design, config: SweepConfig) -> dict:
    """{(scheme, traced point): log2 lr} of the grid argmin of every group (lr, x) of a base
    cell's table, as :func:`hptransfer.stats.hparams.joint_regret` picks its p*."""
    finals = hparams.axis_finals(table, design)
    defaults = dict(axes_mod.default_point(config.axes))
    out = {}
    for group in design.groups:
        if hparams.LR not in group:
            continue
        coords = [hparams.coordinate(n) for n in group]
        mean = hparams.mean_losses(finals, design, group)
        for scheme, s in mean.groupby("scheme", sort=True):
            best = hparams.joint_point(s, coords)
            if best is None:
                continue
            at = defaults | {n: float(best[c]) for n, c in zip(group, coords, strict=True)}
            point = tuple(sorted((n, v) for n, v in at.items() if n in defaults))
            out[(str(scheme), point)] = float(best[hparams.LR_COLUMN])
    return out


def _chunk_table(config, arch, chash, chunk, history) -> pd.DataFrame:
    """Tidy rows (replica x evaluation) of ``chunk``, whose history has one column each."""
    n_seg, r = history["train_loss"].shape[0], len(chunk)
    steps = np.repeat((np.arange(n_seg) + 1) * config.eval_every, r)
    died = history["diverged_step"][:r]
    died_rep = np.tile(died, n_seg)
    frame = {
        "scheme": np.tile([c.scheme for c in chunk], n_seg),
        "family": arch.family,
        "optimizer": config.optimizer.name,
        "width": arch.width,
        "depth": arch.depth,
        "block_depth": arch.block_depth,
        "base_width": arch.base_width,
        "base_depth": arch.base_depth,
        "lr": np.tile([2.0**c.log2_lr for c in chunk], n_seg),
        "log2_lr": np.tile([c.log2_lr for c in chunk], n_seg),
        "seed": np.tile([c.seed for c in chunk], n_seg),
        "step": steps,
        "train_loss": history["train_loss"][:, :r].ravel(),
        "test_loss": history["test_loss"][:, :r].ravel(),
        "test_accuracy": history["test_accuracy"][:, :r].ravel(),
        "diverged": (died_rep >= 0) & (died_rep < steps),
        "diverged_step": np.where(died_rep >= 0, died_rep, np.nan).astype(np.float64),
        "cell": chash,
    }
    if "eliminated_step" in history:  # elimination on: the step each replica stopped at
        stop = np.tile(history["eliminated_step"][:r], n_seg)
        frame["eliminated_step"] = np.where(stop >= 0, stop, np.nan).astype(np.float64)
    for axis in config.axes:  # one column per declared axis, in its unit (hptransfer.sweeps.axes)
        if axis.name in ("batch_size", "steps"):
            frame[axis.name] = float(getattr(config, axis.name))
        elif axis.name == "schedule":
            frame[axis.name] = config.optimizer.schedule.kind
        else:
            frame[axis.name] = np.tile([dict(c.point)[axis.name] for c in chunk], n_seg)
    for key, value in history.items():
        if split_stat_column(key):
            frame[key] = value[:, :r].ravel().astype(np.float64)
    # Movement of a diverged replica is that of its frozen state: kept, it is still data.
    return pd.DataFrame(frame)


# --------------------------------------------------------------------------------------------
# The whole sweep


@contextlib.contextmanager
def _run_dir(out: Path, config: SweepConfig, fresh: bool):
    """Process 0 takes the run directory (:func:`rundir.open_run_dir`); every process learns
    whether it did, so that a refusal stops all of them at once. The others then check that
    they see the same directory (its fresh ``run_id``): Orbax's multi-process checkpoints wait
    for directories that process 0 creates, so an --out that is not shared would hang."""
    ident: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        if jax.process_index() == 0:
            try:
                ident = stack.enter_context(
                    rundir.open_run_dir(out, config, code_version(), fresh=fresh)
                )
            except BaseException:
                all_agree(False)
                raise
        if not all_agree(True):
            raise rundir.RunDirError(f"process 0 refused --out {str(out)!r} (see its message)")
        if jax.process_count() > 1:
            token = np.frombuffer(bytes.fromhex(ident.get("run_id", "0" * 32)), np.uint8)
            shared = multihost_utils.broadcast_one_to_all(token)
            seen = rundir.read_run_id(out) == bytes(np.asarray(shared, np.uint8)).hex()
            if not all_agree(seen):
                where = "" if seen else f" (process {jax.process_index()} does not see it)"
                raise rundir.RunDirError(
                    f"--out {str(out)!r} is not one directory shared by all processes{where}; "
                    "allowed: a path on a filesystem every host mounts"
                )
        yield out


def _shape_value(cfg: SweepConfig, name: str) -> int | str:
    """A cell's value of a shape axis (the schedule's kind for ``schedule``)."""
    return cfg.optimizer.schedule.kind if name == "schedule" else getattr(cfg, name)


def _longer_constant_run(
    cfg: SweepConfig, arch: Architecture, done: Mapping[tuple, pd.DataFrame]
) -> pd.DataFrame | None:
    """Under the constant rate (no schedule, no elimination) the table of a finished cell of
    the same batch size and shape trained for more steps than ``cfg``, whose first
    ``cfg.steps`` steps are this cell (:func:`hptransfer.stats.tables.first_steps`: same
    batches, ``randint(fold_in(data_key, step))``, and the same rate at every step); None
    otherwise, and under a schedule of the run's length, whose shorter run differs from its
    first step on."""
    if not cfg.optimizer.schedule.constant or cfg.elimination.enabled:
        return None
    mine = cell_key(cfg, arch.width, arch.depth, arch.block_depth)
    longer = sorted(
        (key[1], table) for key, table in done.items()
        if key[0] == mine[0] and key[2:] == mine[2:] and key[1] > cfg.steps
    )  # fmt: skip
    return longer[0][1] if longer else None


def cell_key(cfg: SweepConfig, width: int, depth: int, block_depth: int) -> tuple:
    """(batch_size, steps, schedule kind, width, depth, block depth): the key of a cell of a
    sweep among the finished ones (``done`` in :func:`_sweep`, read by :func:`_protected` and
    :func:`_longer_constant_run`: one function builds it for all)."""
    kind = cfg.optimizer.schedule.kind
    return (cfg.batch_size, cfg.steps, kind, width, depth, block_depth)


def _sweep_meta(
    config: SweepConfig,
    cells: list[CellFacts],
    frame: pd.DataFrame,
    peaks: costmodel.Peaks | None,
    wall: float,
    steps: int,
    total: int,
    compiles: int,
) -> dict[str, Any]:
    """meta.json of a sweep: its config and code, the machine, every cell's facts, and this
    run's compiles, seconds and replica-steps (``steps`` computed of ``total`` in the grid,
    requested / computed / saved summed over the cells; with elimination, what was stopped)."""
    computed = sum(c.run_seconds or 0.0 for c in cells)
    compile_s = sum(c.compile_seconds or 0.0 for c in cells)
    meta = {
        "config": config.to_dict(),
        "config_hash": rundir.config_hash(config),
        "code": code_version(),
        "versions": results_io.versions(),
        "device": f"{jax.devices()[0].platform}: {jax.devices()[0].device_kind}",
        "devices": len(jax.devices()),
        "processes": jax.process_count(),
        "cells": [c.to_dict() for c in cells],
        "compiles": compiles,
        "compile_seconds": compile_s,
        "wall_seconds": wall,
        "replica_steps": steps,  # computed in this run
        "replica_steps_total": total,  # of the whole grid, including cells done earlier
        "replica_steps_per_second": steps / computed if computed else float("nan"),
        "device_peaks": dataclasses.asdict(peaks) if peaks else None,
        **{  # requested = computed (padding included) + saved - padding; this run's cells only
            key: sum(getattr(c, key) or 0 for c in cells)
            for key in (
                "replica_steps_requested",
                "replica_steps_computed",
                "replica_steps_saved_dedup",
                "replica_steps_saved_compaction",
                "replica_steps_saved_prefix",
            )
        },  # fmt: skip
        "replica_steps_per_second_excluding_compile": (
            steps / (computed - compile_s) if computed > compile_s else float("nan")
        ),
    }
    if config.elimination.enabled:  # what was stopped and when, from the table (resumes too)
        meta["replica_steps_eliminated"] = sum(c.replica_steps_eliminated or 0 for c in cells)
        meta["eliminated"] = elimination.stops(frame, [a.name for a in config.axes])
    return meta


def _roofs(cells: list[CellFacts]) -> costmodel.Peaks | None:
    """Measure the device's roofs (once per sweep) and add each computed cell's achieved
    FLOP/s and bytes/s (compile time excluded) and their share of the roofs to its facts."""
    computed = [c for c in cells if c.replica_steps_computed]
    if not computed:
        return None
    peaks = costmodel.measure_peaks()
    for c in computed:
        cost = costmodel.StepCost(c.flops_per_replica_step, c.bytes_per_replica_step)
        seconds = c.run_seconds - c.compile_seconds
        c.achieved = costmodel.achieved(cost, c.replica_steps_computed, seconds, peaks)
    return peaks


def check_resources(config: SweepConfig, out: str | Path, source: str) -> None:
    """Refuse, before ``out`` is made or anything is built, a sweep whose dataset, results
    table or checkpoints do not fit this machine (:func:`hptransfer.sweeps.limits.check_sweep`), its
    chunks sized as :func:`run_sweep` will size them (this device's memory budget over one
    replica's bytes). The one pre-flight check of the command line and the Python API."""
    budget = memory_budget()
    limits.check_sweep(
        config, out, source=source, devices=len(jax.devices()),
        fit=lambda arch: budget // bytes_per_replica(arch, config),
    )  # fmt: skip


def run_sweep(
    config: SweepConfig,
    out: str | Path,
    *,
    fresh: bool = False,
    data: Dataset | None = None,
    progress: bool = True,
    checkpoint_seconds: float = 30.0,
    faults: Faults = Faults(),
) -> pd.DataFrame:
    """Run (or resume) every cell of ``config``; write DIR/results.parquet and DIR/meta.json.

    Before any compute: the grid limits are checked and DIR is locked and checked to hold this
    config (:mod:`hptransfer.sweeps.rundir`); after loading the data, one replica of every cell is
    checked to fit in memory (:func:`preflight`). Finished cells are kept as
    DIR/cells/<hash>.parquet and skipped on a rerun; an unfinished cell resumes from its last
    checkpoint. ``fresh=True`` discards both first. A chunk in training saves a checkpoint
    every ``checkpoint_seconds``; ``faults`` injects a death for tests (:class:`Faults`). With several processes, all compute and return
    the whole table; process 0 alone writes files.
    """
    out = Path(out)
    savings_mode()  # an invalid HPTRANSFER_SAVINGS fails before any compute
    check_limits(config)
    with _run_dir(out, config, fresh):
        return _sweep(config, out, data, progress, checkpoint_seconds, faults)


def _sweep(config, out, data, progress, checkpoint_seconds, faults: Faults) -> pd.DataFrame:
    writer = jax.process_index() == 0
    registry = load_schemes(config.scheme_files)
    data = data if data is not None else load_dataset(config.data.name, **config.data.load_kwargs())
    archs = architectures(config, data)
    for arch in archs:
        check_inputs(data.x_train, arch)
    # Every (config of a shape-axis value, shape) pair is a cell; without shape axes, one config.
    configs = cell_configs(config)
    plan = [(cfg, arch) for cfg in configs for arch in archs]
    for cfg in configs:
        preflight(cfg, archs)
    n_reps = len(replicas(config))
    total = sum(n_reps * cfg.steps for cfg, _ in plan)
    t0 = time.perf_counter()
    compiles0 = COMPILE_STATS["count"]
    bar = tqdm(
        total=total, unit="replica-step", unit_scale=True, disable=not progress or not writer,
        desc=f"{config.name}: {len(plan)} cells x {n_reps} replicas", smoothing=0.05,
    )  # fmt: skip
    tracker = _Progress(bar, faults=faults)
    tables, cells = [], []
    done: dict[tuple, pd.DataFrame] = {}  # finished cells' tables (elimination's base shapes)
    dev: _DeviceData | None = None  # placed on the devices when the first cell needs it
    for i, (cfg, arch) in enumerate(plan):
        chash = cell_hash(cfg, arch, registry, data.meta.get("sha256"))
        cell_file = out / results_io.CELLS_DIR / f"{chash}.parquet"
        shape_axes = "".join(
            f" {a.name}={_shape_value(cfg, a.name)}" for a in config.axes if a.spec.kind == "shape"
        )
        bar.set_postfix_str(
            f"cell {i + 1}/{len(plan)}: n={arch.width} L={arch.depth} k={arch.block_depth}"
            + shape_axes
        )
        table = None
        if from_writer(cell_file.exists()):
            try:
                table = pd.read_parquet(cell_file)
            except Exception as err:
                warnings.warn(f"{cell_file} is unreadable ({err}); recomputing", stacklevel=2)
        if all_agree(table is not None):
            tables.append(table)
            done[cell_key(cfg, arch.width, arch.depth, arch.block_depth)] = table
            bar.update(n_reps * cfg.steps)
            cells.append(CellFacts(chash, arch.width, arch.depth, arch.block_depth, resumed=True))
            continue
        longer = _longer_constant_run(cfg, arch, done)
        if longer is not None:  # the constant rate: this cell is the first steps of a longer one
            table = first_steps(longer, cfg.steps).assign(steps=float(cfg.steps), cell=chash)
            if writer:
                results_io.write_table(table, cell_file)
            tables.append(table)
            done[cell_key(cfg, arch.width, arch.depth, arch.block_depth)] = table
            bar.update(n_reps * cfg.steps)
            cells.append(CellFacts(chash, arch.width, arch.depth, arch.block_depth,
                                   replica_steps_requested=n_reps * cfg.steps,
                                   replica_steps_computed=0,
                                   replica_steps_saved_prefix=n_reps * cfg.steps,
                                   batch_size=cfg.batch_size, steps=cfg.steps))  # fmt: skip
            continue
        dev = dev or _device_data(config, data, NamedSharding(_mesh(), PartitionSpec()))
        evict_programs(plan[i:])  # the cache holds only programs of cells still to run
        computed0 = tracker.computed
        protect = _protected(cfg, arch, done) if cfg.elimination.enabled else None
        table, facts = run_cell(cfg, arch, dev, registry, out, tracker, checkpoint_seconds,
                                protect, chash)  # fmt: skip
        if shape_axes:
            facts.batch_size, facts.steps = cfg.batch_size, cfg.steps
            facts.schedule = cfg.optimizer.schedule.kind
        facts.replica_steps = tracker.computed - computed0  # restored segments not counted
        if writer:
            results_io.write_table(table, cell_file)
            shutil.rmtree(out / results_io.CHECKPOINT_DIR / chash, ignore_errors=True)
        tables.append(table)
        done[cell_key(cfg, arch.width, arch.depth, arch.block_depth)] = table
        cells.append(facts)
    bar.close()
    peaks = _roofs(cells)
    frame = pd.concat(tables, ignore_index=True)
    meta = _sweep_meta(
        config, cells, frame, peaks, time.perf_counter() - t0, tracker.computed, total,
        COMPILE_STATS["count"] - compiles0,
    )  # fmt: skip
    if data.meta:  # the dataset's provenance (a text corpus: its files, bytes and sha256)
        meta["dataset"] = data.meta
    if writer:
        results_io.write_table(frame, out / results_io.RESULTS_FILE)
        results_io.write_json(meta, out / results_io.META_FILE)
        with contextlib.suppress(OSError):  # only if empty: never another config's work
            (out / results_io.CHECKPOINT_DIR).rmdir()
    return frame
