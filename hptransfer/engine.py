"""The sweep engine (docs/design.md section 4): whole grids of replicas in one compiled program.

A *cell* is one shape (width, depth, block depth) of a sweep; its *replicas* are every
(scheme, learning rate, seed). Within a cell:

- Compile by shape only. Learning rates, seeds and every scheme multiplier are arrays with a
  leading replica axis, so one executable (per chunk size) serves all of them. Programs are
  compiled ahead of time and cached by their input shapes; :data:`COMPILE_STATS` counts them.
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
- Before any compute, :func:`run_sweep` takes the output directory (:mod:`hptransfer.rundir`:
  one writer, one config) and checks the limits (grid size, one replica's memory).
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
from collections.abc import Callable
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

from hptransfer import results as results_io
from hptransfer import rundir
from hptransfer.config import ConfigError, SweepConfig, check_limits
from hptransfer.data import Dataset, load_dataset
from hptransfer.model import Architecture, check_inputs, kernel_shapes
from hptransfer.movement import flatten_stats, layer_stats
from hptransfer.scaling import Multipliers, multipliers, stack
from hptransfer.schemes import Scheme, load_schemes
from hptransfer.train import TrainState, evaluate, init_state, probe_batch, sample_batch, train_step

COMPILE_STATS: dict[str, float] = {"count": 0, "seconds": 0.0}
_PROGRAMS: dict[Any, Any] = {}


class SimulatedKill(RuntimeError):
    """Raised by the fault-injection hook (tests): the sweep 'dies' after N segments."""


class MemoryLimitError(ConfigError):
    """One replica of a cell needs more device memory than the budget allows."""


class DistributedError(ValueError):
    """``--distributed`` was asked for but no process group can be formed."""


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


# --------------------------------------------------------------------------------------------
# The pure programs (one replica each; vmapped below)


def _tree_all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def _init_replica(seed, mult, *, arch, opt) -> ReplicaState:
    return ReplicaState(
        init_state(seed, mult, arch, opt),
        jnp.array(True),
        jnp.array(-1, jnp.int32),
        jnp.array(jnp.nan, jnp.float32),
    )


def _segment_replica(
    state, seed, lr, mult, factor, x, y, first_step, *, arch, opt, steps, batch_size
):
    """``steps`` optimizer steps with freezing on divergence; returns (state, mean loss)."""

    def body(st: ReplicaState, step):
        batch = sample_batch(seed, step, x, y, batch_size)
        new, loss = train_step(st.train, batch, mult, lr, arch, opt)
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
    stats = layer_stats(
        state.train.params0, state.train.params, probe, mult.forward, mult.branch, arch
    )
    dead = ~state.alive
    nan = jnp.float32(jnp.nan)
    return {
        "test_loss": jnp.where(dead, nan, test_loss),
        "test_accuracy": jnp.where(dead, nan, test_acc),
        **flatten_stats(stats),
    }


def _compiled(name: str, fn: Callable, static: tuple, out_sharding, *args):
    """Compile ``fn(*args)`` ahead of time once per (name, static settings, input shapes).

    Every output has the replica axis first and is pinned to ``out_sharding``, so a program's
    outputs feed the next program without resharding.
    """
    leaves, treedef = jax.tree.flatten(args)
    key = (
        name,
        static,
        treedef,
        tuple((tuple(a.shape), str(a.dtype), getattr(a, "sharding", None)) for a in leaves),
    )
    if key not in _PROGRAMS:
        t0 = time.perf_counter()
        _PROGRAMS[key] = jax.jit(fn, out_shardings=out_sharding).lower(*args).compile()
        COMPILE_STATS["count"] += 1
        COMPILE_STATS["seconds"] += time.perf_counter() - t0
    return _PROGRAMS[key]


def clear_program_cache() -> None:
    """Forget compiled programs and reset the compile counters (tests)."""
    _PROGRAMS.clear()
    COMPILE_STATS.update(count=0, seconds=0.0)


# --------------------------------------------------------------------------------------------
# Planning: cells, replicas, hashes, chunks


def architectures(config: SweepConfig, data: Dataset) -> list[Architecture]:
    m = config.model
    return [
        Architecture(
            width=n,
            depth=L,
            block_depth=k,
            in_shape=data.in_shape,
            num_classes=data.num_classes,
            family=m.family,
            base_width=m.base_width,
            base_depth=m.base_depth,
            bias=m.bias,
        )  # fmt: skip
        for k in m.block_depths
        for n in m.widths
        for L in m.depths
    ]


def replicas(config: SweepConfig) -> list[Replica]:
    """Every (scheme, log2 lr, seed) of a cell, scheme-major."""
    return [
        Replica(s, lr, seed)
        for s in config.schemes
        for lr in config.lr_grid(s)
        for seed in config.seeds
    ]


def code_version() -> dict[str, str]:
    """The package version and a hash of the source that decides numbers: the modules of
    :data:`hptransfer.rundir.NUMERIC_MODULES` and this module's pure step functions."""
    steps = (_tree_all_finite, _init_replica, _segment_replica, _eval_replica)
    return rundir.code_version("".join(inspect.getsource(f) for f in steps))


def cell_hash(config: SweepConfig, arch: Architecture, registry: dict[str, Scheme]) -> str:
    """A hash of everything that decides a cell's results (schemes by their tables, not names,
    and the code version, so that a change of the numeric code recomputes)."""
    payload = {
        "code": code_version(),
        "arch": dataclasses.asdict(arch),
        "optimizer": dataclasses.asdict(config.optimizer),
        "data": dataclasses.asdict(config.data),
        "run": [config.steps, config.eval_every, config.batch_size, config.divergence_factor,
                config.probe_size],
        "replicas": [dataclasses.astuple(r) for r in replicas(config)],
        "schemes": {s: registry[s].to_table() for s in config.schemes},
        "format": 2,  # 2: diverged_step is one vector per chunk in checkpoints
    }  # fmt: skip
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def param_count(arch: Architecture) -> int:
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


def _fetch(x: jax.Array) -> np.ndarray:
    """The full value of an array sharded over the global mesh, on every process: a plain read
    when all its shards are local, an all-gather across processes otherwise."""
    if x.is_fully_addressable:
        return np.asarray(x)
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def _place(tree, sharding):
    return jax.tree.map(lambda a: jax.device_put(a, sharding), tree)


def _checkpoint_manager(path: Path) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=1, enable_async_checkpointing=False)
    return ocp.CheckpointManager(path.absolute(), options=options)


def _restore(mgr, path, state, history, expected: dict) -> tuple[Any, dict, int] | None:
    """The latest checkpoint if it is readable and belongs to this cell and chunk, else None."""
    step = mgr.latest_step()
    if step is None:
        return None
    try:
        meta = dict(mgr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"])
        if {k: meta.get(k) for k in expected} != expected or not 0 < step:
            raise ValueError(f"it belongs to {meta}, not to {expected}")
        items = {"history": ocp.args.StandardRestore(history)}
        if not meta.get("finished"):
            items["state"] = ocp.args.StandardRestore(
                jax.tree.map(
                    lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding), state
                )
            )
        restored = mgr.restore(step, args=ocp.args.Composite(**items))
        history = {k: np.asarray(v) for k, v in restored["history"].items()}
        return restored.get("state", state), history, int(step)
    except Exception as err:  # corrupt, foreign or from an older format: recompute
        warnings.warn(
            f"checkpoint {path} is unusable ({type(err).__name__}: {err}); recomputing this cell",
            stacklevel=2,
        )
        return None


@dataclasses.dataclass
class _Progress:
    bar: Any
    segments_done: int = 0
    kill_after: int | None = None
    computed: int = 0  # replica-steps computed in this run (not restored from checkpoints)

    def segment(self, replica_steps: int) -> None:
        self.bar.update(replica_steps)
        self.computed += replica_steps
        self.segments_done += 1
        if self.kill_after is not None and self.segments_done >= self.kill_after:
            if os.environ.get("HPTRANSFER_HARD_KILL"):
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


def run_cell(
    config: SweepConfig,
    arch: Architecture,
    dev: _DeviceData,
    registry: dict[str, Scheme],
    out: Path,
    progress: _Progress,
    checkpoint_seconds: float = 30.0,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Train every replica of one cell; returns its tidy table and timing facts."""
    chash = cell_hash(config, arch, registry)
    reps = replicas(config)
    n_dev = len(jax.devices())
    size = chunk_size(
        len(reps), bytes_per_replica(arch, config), n_dev, config.max_replicas_per_chunk
    )
    by_replica = NamedSharding(_mesh(), PartitionSpec("replica"))
    x, y, x_test, y_test, probe, factor = dev
    family = config.optimizer.family
    mults = {s: multipliers(registry[s], arch, family) for s in config.schemes}
    n_seg = config.steps // config.eval_every
    static = (arch, config.optimizer)
    init_fn = jax.vmap(partial(_init_replica, arch=arch, opt=config.optimizer))
    seg_fn = jax.vmap(
        partial(_segment_replica, arch=arch, opt=config.optimizer, steps=config.eval_every,
                batch_size=config.batch_size),
        in_axes=(0, 0, 0, 0, None, None, None, None),
    )  # fmt: skip
    eval_fn = jax.vmap(partial(_eval_replica, arch=arch), in_axes=(0, 0, None, None, None))
    compile_before = COMPILE_STATS["seconds"]
    t_start = time.perf_counter()
    frames = []
    for c0 in range(0, len(reps), size):
        chunk = reps[c0 : c0 + size]
        padded = chunk + [chunk[-1]] * (size - len(chunk))
        seeds = jax.device_put(jnp.array([r.seed for r in padded], jnp.int32), by_replica)
        lrs = jax.device_put(jnp.array([2.0**r.log2_lr for r in padded], jnp.float32), by_replica)
        mult: Multipliers = _place(stack([mults[r.scheme] for r in padded]), by_replica)
        state = _compiled("init", init_fn, static, by_replica, seeds, mult)(seeds, mult)
        history: dict[str, np.ndarray] = {"train_loss": np.full((n_seg, size), np.nan, np.float32)}
        start = 0
        ckpt_path = out / results_io.CHECKPOINT_DIR / chash / f"chunk_{c0 // size}"
        mgr = _checkpoint_manager(ckpt_path)
        expected = {"cell": chash, "chunk": c0 // size, "size": size}
        eval_prog = _compiled(
            "eval", eval_fn, static, by_replica, state, mult, x_test, y_test, probe
        )
        for key in jax.eval_shape(eval_fn, state, mult, x_test, y_test, probe):
            history[key] = np.full((n_seg, size), np.nan, np.float32)
        history["diverged_step"] = np.full(size, -1, np.int32)
        restored = _restore(mgr, ckpt_path, state, history, expected)
        if restored is None and mgr.latest_step() is not None:
            mgr.close()
            shutil.rmtree(ckpt_path, ignore_errors=True)
            mgr = _checkpoint_manager(ckpt_path)
        if restored is not None:
            state, history, start = restored
            progress.bar.update(start * config.eval_every * len(chunk))

        def first_step(seg: int) -> jax.Array:
            return jax.device_put(jnp.int32(seg * config.eval_every), factor.sharding)

        seg_prog = _compiled(
            "segment", seg_fn, static + (config.eval_every, config.batch_size), by_replica,
            state, seeds, lrs, mult, factor, x, y, first_step(0),
        )  # fmt: skip
        last_save = time.perf_counter()
        for seg in range(start, n_seg):
            state, seg_loss = seg_prog(state, seeds, lrs, mult, factor, x, y, first_step(seg))
            metrics = eval_prog(state, mult, x_test, y_test, probe)
            history["train_loss"][seg] = _fetch(seg_loss)
            for key, value in metrics.items():
                history[key][seg] = _fetch(value)
            history["diverged_step"] = _fetch(state.diverged_step)
            now = time.perf_counter()
            finished = seg == n_seg - 1
            # Process 0's clock decides: Orbax saves are collective over processes.
            if finished or _from_writer(now - last_save >= checkpoint_seconds):
                # A finished chunk keeps only its metrics (the other chunks of the cell may still
                # die); an unfinished one keeps its whole training state.
                items = {
                    "history": ocp.args.StandardSave(history),
                    "meta": ocp.args.JsonSave({**expected, "finished": finished}),
                }
                if not finished:
                    items["state"] = ocp.args.StandardSave(state)
                mgr.save(seg + 1, args=ocp.args.Composite(**items))
                mgr.wait_until_finished()
                last_save = now
            progress.segment(config.eval_every * len(chunk))
        mgr.close()
        frames.append(_chunk_table(config, arch, chash, chunk, history))
    table = pd.concat(frames, ignore_index=True)
    facts = {
        "cell": chash,
        "width": arch.width,
        "depth": arch.depth,
        "block_depth": arch.block_depth,
        "replicas": len(reps),
        "chunk_size": size,
        "compile_seconds": COMPILE_STATS["seconds"] - compile_before,
        "run_seconds": time.perf_counter() - t_start,
    }
    return table, facts


def _chunk_table(config, arch, chash, chunk, history) -> pd.DataFrame:
    """Tidy rows (replica x evaluation) of one chunk; padding replicas are dropped."""
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
    for key, value in history.items():
        if "/" in key:
            frame[key] = value[:, :r].ravel().astype(np.float64)
    # Movement of a diverged replica is that of its frozen state: kept, it is still data.
    return pd.DataFrame(frame)


# --------------------------------------------------------------------------------------------
# The whole sweep


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


def _all_agree(ok: bool) -> bool:
    """True on every process iff ``ok`` is true on every process (one process: ``ok``)."""
    if jax.process_count() == 1:
        return ok
    return bool(np.all(multihost_utils.process_allgather(np.array(ok))))


def _from_writer(flag: bool) -> bool:
    """Process 0's ``flag`` on every process (its decisions about files hold for all)."""
    if jax.process_count() == 1:
        return flag
    return bool(multihost_utils.broadcast_one_to_all(np.array(flag)))


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
                _all_agree(False)
                raise
        if not _all_agree(True):
            raise rundir.RunDirError(f"process 0 refused --out {str(out)!r} (see its message)")
        if jax.process_count() > 1:
            token = np.frombuffer(bytes.fromhex(ident.get("run_id", "0" * 32)), np.uint8)
            shared = multihost_utils.broadcast_one_to_all(token)
            seen = rundir.read_run_id(out) == bytes(np.asarray(shared, np.uint8)).hex()
            if not _all_agree(seen):
                where = "" if seen else f" (process {jax.process_index()} does not see it)"
                raise rundir.RunDirError(
                    f"--out {str(out)!r} is not one directory shared by all processes{where}; "
                    "allowed: a path on a filesystem every host mounts"
                )
        yield out


def run_sweep(
    config: SweepConfig,
    out: str | Path,
    *,
    fresh: bool = False,
    data: Dataset | None = None,
    progress: bool = True,
    checkpoint_seconds: float = 30.0,
    kill_after_segments: int | None = None,
) -> pd.DataFrame:
    """Run (or resume) every cell of ``config``; write DIR/results.parquet and DIR/meta.json.

    Before any compute: the grid limits are checked and DIR is locked and checked to hold this
    config (:mod:`hptransfer.rundir`); after loading the data, one replica of every cell is
    checked to fit in memory (:func:`preflight`). Finished cells are kept as
    DIR/cells/<hash>.parquet and skipped on a rerun; an unfinished cell resumes from its last
    checkpoint. ``fresh=True`` discards both first. ``kill_after_segments`` is fault injection
    for tests (raises :class:`SimulatedKill`). With several processes, all compute and return
    the whole table; process 0 alone writes files.
    """
    out = Path(out)
    check_limits(config)
    with _run_dir(out, config, fresh):
        return _sweep(config, out, data, progress, checkpoint_seconds, kill_after_segments)


def _sweep(config, out, data, progress, checkpoint_seconds, kill_after_segments) -> pd.DataFrame:
    writer = jax.process_index() == 0
    if kill_after_segments is None and os.environ.get("HPTRANSFER_KILL_AFTER_SEGMENTS"):
        kill_after_segments = int(os.environ["HPTRANSFER_KILL_AFTER_SEGMENTS"])
    if os.environ.get("HPTRANSFER_CHECKPOINT_SECONDS"):  # tests of the CLI: checkpoint often
        checkpoint_seconds = float(os.environ["HPTRANSFER_CHECKPOINT_SECONDS"])
    registry = load_schemes(config.scheme_files)
    data = data if data is not None else load_dataset(config.data.name, **config.data.load_kwargs())
    archs = architectures(config, data)
    for arch in archs:
        check_inputs(data.x_train, arch)
    preflight(config, archs)
    n_reps = len(replicas(config))
    total = len(archs) * n_reps * config.steps
    t0 = time.perf_counter()
    compiles0 = COMPILE_STATS["count"]
    bar = tqdm(
        total=total, unit="replica-step", unit_scale=True, disable=not progress or not writer,
        desc=f"{config.name}: {len(archs)} cells x {n_reps} replicas", smoothing=0.05,
    )  # fmt: skip
    tracker = _Progress(bar, kill_after=kill_after_segments)
    tables, cells = [], []
    dev: _DeviceData | None = None  # placed on the devices when the first cell needs it
    for i, arch in enumerate(archs):
        chash = cell_hash(config, arch, registry)
        cell_file = out / results_io.CELLS_DIR / f"{chash}.parquet"
        bar.set_postfix_str(
            f"cell {i + 1}/{len(archs)}: n={arch.width} L={arch.depth} k={arch.block_depth}"
        )
        table = None
        if _from_writer(cell_file.exists()):
            try:
                table = pd.read_parquet(cell_file)
            except Exception as err:
                warnings.warn(f"{cell_file} is unreadable ({err}); recomputing", stacklevel=2)
        if _all_agree(table is not None):
            tables.append(table)
            bar.update(n_reps * config.steps)
            cells.append({"cell": chash, "width": arch.width, "depth": arch.depth,
                          "block_depth": arch.block_depth, "resumed": True})  # fmt: skip
            continue
        dev = dev or _device_data(config, data, NamedSharding(_mesh(), PartitionSpec()))
        computed0 = tracker.computed
        table, facts = run_cell(config, arch, dev, registry, out, tracker, checkpoint_seconds)
        facts["replica_steps"] = tracker.computed - computed0  # restored segments not counted
        if writer:
            results_io.write_table(table, cell_file)
            shutil.rmtree(out / results_io.CHECKPOINT_DIR / chash, ignore_errors=True)
        tables.append(table)
        cells.append(facts)
    bar.close()
    frame = pd.concat(tables, ignore_index=True)
    wall = time.perf_counter() - t0
    computed = sum(c.get("run_seconds", 0.0) for c in cells)
    compile_s = sum(c.get("compile_seconds", 0.0) for c in cells)
    steps = tracker.computed
    meta = {
        "config": config.to_dict(),
        "config_hash": rundir.config_hash(config),
        "code": code_version(),
        "versions": results_io.versions(),
        "device": f"{jax.devices()[0].platform}: {jax.devices()[0].device_kind}",
        "devices": len(jax.devices()),
        "processes": jax.process_count(),
        "cells": cells,
        "compiles": COMPILE_STATS["count"] - compiles0,
        "compile_seconds": compile_s,
        "wall_seconds": wall,
        "replica_steps": steps,  # computed in this run
        "replica_steps_total": total,  # of the whole grid, including cells done earlier
        "replica_steps_per_second": steps / computed if computed else float("nan"),
        "replica_steps_per_second_excluding_compile": (
            steps / (computed - compile_s) if computed > compile_s else float("nan")
        ),
    }
    if writer:
        results_io.write_table(frame, out / results_io.RESULTS_FILE)
        results_io.write_json(meta, out / results_io.META_FILE)
        with contextlib.suppress(OSError):  # only if empty: never another config's work
            (out / results_io.CHECKPOINT_DIR).rmdir()
    return frame
