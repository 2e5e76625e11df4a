"""Throughput of the sweep engine against a sequential loop and PyTorch.

One sweep *cell* (default: MNIST-1D-shaped teacher data, d = 40, c = 10 classes; width 64,
L = 16 blocks of k = 2 layers, batch B = 128, R = 16 replicas = 2 schemes x 4 learning rates x
2 seeds, SGD) is trained three ways and timed in replica-steps per second:

(a) the engine, ``run_sweep``: after a warm-up sweep that compiles its programs, a 1-segment
    sweep (S/2 steps) and a 2-segment sweep (S steps) are timed. The headline rate is the
    2-segment sweep's whole wall clock, rate_a = R S / t_2 (evaluation, result files and the
    final checkpoint included). The steady-state rate is the marginal one,
    rate_a,ss = R (S/2) / (t_2 - t_1): one segment plus one evaluation, fixed costs cancelled.
(b) a sequential loop of the single-run function ``train_run`` (one jit for the shape, one
    ``lax.scan`` over all steps): runs 2..N are timed, rate_b = (N - 1) S / t, so the first
    call's compile is excluded.
(c) a plain PyTorch loop, one model at a time, one thread (``baselines.py``; CPU only).

Reported beside them: a/b and a/c; the achieved model FLOP/s of (a), rate_a x F with
F = 6 B P the FLOPs of one replica-step (``baselines.replica_step_flops``), as a fraction of
the measured matmul peak (n = 1024 float32 on CPU; n = 8192 at default precision, i.e. dense TF32,
on a GPU); and the compile time of the engine's segment program at depths 4, 16 and 64 (width 64,
k = 2), whose ratio L=64 / L=4 should stay under 1.5 because blocks are scanned, not unrolled.

Usage (the repository root on ``PYTHONPATH`` or hptransfer installed)::

    .venv/bin/python benchmarks/throughput.py [--device-label NAME] [--widths 64 ...]
        [--steps 400 ...] [--out results/bench]

``--family transformer`` times the transformer cell instead (``TransformerCell``: byte-level
text, T = 64 tokens; width 64, L = 8 blocks, head dim 16, MLP ratio 4, batch B = 16 sequences,
the same R = 16 replicas and SGD): (a) and (b) as above, and PyTorch two ways, each on all cores
and on one thread: (c) the R replicas batched with ``torch.func.vmap`` over stacked parameters,
(c') one ``nn.Module`` at a time (``baselines.torch_transformer_*``). Its FLOPs per replica-step
are the cost model's 3 B ``forward_flops`` and its matmul limit is measured at its own shapes
(``baselines.transformer_matmul_limit``)::

    .venv/bin/python benchmarks/throughput.py --family transformer [--steps 40] [--torch-steps 8]

Writes ``OUT/throughput_<label>.json`` and ``.md`` (``throughput_<label>-transformer.*`` for the
transformer cell; rewritten after every width, so a run cut short keeps what it measured). As
``hptransfer/cli.py`` does, the host is split into ``os.cpu_count()`` XLA devices before jax is
imported, so the engine shards replicas over all cores; on a GPU that flag is inert.
"""

from __future__ import annotations

import os

from hptransfer.cli import configure_host_devices  # no jax import: safe before the flag

configure_host_devices()
# The engine's raw rate: every requested replica computed (no deduplication of replicas that are
# one network at the base shape, no compaction of diverged ones), so R S counts real work.
os.environ["HPTRANSFER_SAVINGS"] = "0"

# ruff: noqa: E402  (jax and everything importing it must come after the XLA flag)
import argparse
import dataclasses
import json
import math
import platform
import re
import resource
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

import baselines
import jax
import numpy as np

from hptransfer.network.data import Dataset, load_dataset, teacher
from hptransfer.network.model import Architecture
from hptransfer.network.train import train_run
from hptransfer.sweeps import costmodel, engine
from hptransfer.sweeps.config import SweepConfig, config_from_dict

# --------------------------------------------------------------------------------------------
# The benchmark cell


@dataclasses.dataclass(frozen=True)
class Cell:
    """One sweep cell: the shape and the replica grid (schemes x log2 lrs x seeds)."""

    width: int = 64
    depth: int = 16
    block_depth: int = 2
    batch_size: int = 128
    in_dim: int = 40
    num_classes: int = 10
    schemes: tuple[str, ...] = ("depth_mup", "nfd")
    log2_lrs: tuple[float, float] = (-3.0, 0.0)  # start, stop (inclusive), step 1: 4 rates
    seeds: tuple[int, ...] = (0, 1)

    @property
    def replicas(self) -> int:
        """R = schemes x learning rates x seeds."""
        rates = int(self.log2_lrs[1] - self.log2_lrs[0]) + 1
        return len(self.schemes) * rates * len(self.seeds)

    def flops(self) -> float:
        """F = 6 B P, the model FLOPs of one replica-step (see baselines.replica_step_flops)."""
        return baselines.replica_step_flops(
            self.width, self.depth, self.block_depth, self.batch_size, self.in_dim,
            self.num_classes,
        )  # fmt: skip


@dataclasses.dataclass(frozen=True)
class TransformerCell:
    """The transformer sweep cell (``--family transformer``): shape, text data, replica grid."""

    width: int = 64
    depth: int = 8
    seq_len: int = 64
    batch_size: int = 16
    head_dim: int = 16
    mlp_ratio: int = 4
    eval_sequences: int = 32  # validation sequences evaluated after each segment
    probe_size: int = 32  # probe sequences of the feature-movement statistics (2 batches)
    base_width: int = 64
    base_depth: int = 2
    schemes: tuple[str, ...] = ("mup", "nfd")
    log2_lrs: tuple[float, float] = (-6.0, -3.0)  # start, stop (inclusive), step 1: 4 rates
    seeds: tuple[int, ...] = (0, 1)

    block_depth = 2  # the MLP branch (a class constant, not a field)

    @property
    def replicas(self) -> int:
        """R = schemes x learning rates x seeds."""
        rates = int(self.log2_lrs[1] - self.log2_lrs[0]) + 1
        return len(self.schemes) * rates * len(self.seeds)

    def shape(self) -> dict[str, int]:
        """The keyword arguments of the ``baselines.*transformer*`` functions."""
        keys = ("width", "depth", "seq_len", "batch_size", "head_dim", "mlp_ratio")
        return {key: getattr(self, key) for key in keys}

    def flops(self) -> float:
        """F = 3 B forward_flops, the model FLOPs of one replica-step (the engine's cost model;
        see baselines.transformer_replica_step_flops)."""
        return baselines.transformer_replica_step_flops(**self.shape())


def sweep_config(cell: Cell | TransformerCell, steps: int, eval_every: int) -> SweepConfig:
    """The one-cell sweep of ``cell``: ``steps`` SGD steps in segments of ``eval_every``."""
    if isinstance(cell, TransformerCell):
        return _transformer_sweep_config(cell, steps, eval_every)
    return config_from_dict(
        {
            "name": "throughput",
            "steps": steps,
            "eval_every": eval_every,
            "batch_size": cell.batch_size,
            "seeds": list(cell.seeds),
            "schemes": list(cell.schemes),
            "data": {"name": "teacher", "num_samples": 4096},
            "model": {
                "family": "mlp",
                "widths": [cell.width],
                "depths": [cell.depth],
                "block_depths": [cell.block_depth],
                "base_width": 64,
                "base_depth": 2,
            },
            "optimizer": {"name": "sgd"},
            "lr": {"start": cell.log2_lrs[0], "stop": cell.log2_lrs[1], "step": 1.0},
        }
    )


def _transformer_sweep_config(cell: TransformerCell, steps: int, eval_every: int) -> SweepConfig:
    return config_from_dict(
        {
            "name": "throughput_transformer",
            "steps": steps,
            "eval_every": eval_every,
            "batch_size": cell.batch_size,
            "seeds": list(cell.seeds),
            "schemes": list(cell.schemes),
            "probe_size": cell.probe_size,
            "data": {
                "name": "text", "seq_len": cell.seq_len, "eval_sequences": cell.eval_sequences,
            },
            "model": {
                "family": "transformer", "widths": [cell.width], "depths": [cell.depth],
                "base_width": cell.base_width, "base_depth": cell.base_depth,
                "head_dim": cell.head_dim, "mlp_ratio": cell.mlp_ratio,
            },
            "optimizer": {"name": "sgd"},
            "lr": {"start": cell.log2_lrs[0], "stop": cell.log2_lrs[1], "step": 1.0},
        }
    )  # fmt: skip


def cell_data(cell: Cell | TransformerCell) -> Dataset:
    """Teacher data shaped like MNIST-1D (d = 40, 10 classes): 3072 train, 1024 test examples;
    for the transformer cell the byte-level text corpus in windows of T tokens."""
    if isinstance(cell, TransformerCell):
        return load_dataset("text", seq_len=cell.seq_len, eval_sequences=cell.eval_sequences)
    return teacher(num_samples=4096, in_shape=(cell.in_dim,), num_classes=cell.num_classes)


# --------------------------------------------------------------------------------------------
# (a) the engine


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed_sweep(config: SweepConfig, data: Dataset, out: Path) -> dict[str, float]:
    """Run ``config`` fresh into ``out``: wall seconds, cores busy (CPU s / wall s), compiles."""
    seconds0, count0 = engine.COMPILE_STATS["seconds"], engine.COMPILE_STATS["count"]
    start, cpu0 = time.perf_counter(), _cpu_seconds()
    engine.run_sweep(config, out, data=data, progress=False, fresh=True, checkpoint_seconds=1e9)
    wall = time.perf_counter() - start
    cores_busy = (_cpu_seconds() - cpu0) / wall
    meta = json.loads((out / "meta.json").read_text())
    return {
        "wall_s": wall,
        "cores_busy": cores_busy,
        "compile_s": engine.COMPILE_STATS["seconds"] - seconds0,
        "compiles": engine.COMPILE_STATS["count"] - count0,
        "chunk_size": float(meta["cells"][0].get("chunk_size", float("nan"))),
        "roofline": costmodel.roofline(meta["cells"], meta["device_peaks"]).to_dict("records")
        if meta.get("device_peaks")
        else [],
    }


def _final_loss(out: Path, scheme: str, log2_lr: float, seed: int) -> float:
    """The engine's last-segment mean training loss of one replica (a cross-check with (b))."""
    import pandas as pd

    table = pd.read_parquet(out / "results.parquet")
    rows = table[
        (table.scheme == scheme) & (table.log2_lr == log2_lr) & (table.seed == seed)
    ].sort_values("step")
    return float(rows.train_loss.iloc[-1])


def engine_rate(
    cell: Cell | TransformerCell, data: Dataset, steps: int, workdir: Path
) -> dict[str, Any]:
    """(a): rate_a = R S / t_2 and the steady-state R (S/2) / (t_2 - t_1) (module docstring).

    Three fresh sweeps with eval_every = S/2: a 1-segment warm-up that compiles the init, eval
    and segment programs, a timed 1-segment sweep (t_1) and a timed 2-segment sweep (t_2). The
    timed sweeps must compile nothing (``recompiles`` says if they did).
    """
    half = steps // 2
    one_seg, two_seg = sweep_config(cell, half, half), sweep_config(cell, 2 * half, half)
    out = workdir / f"engine_{cell.width}_{cell.depth}"
    warm = _timed_sweep(one_seg, data, out)
    t1 = _timed_sweep(one_seg, data, out)
    t2 = _timed_sweep(two_seg, data, out)
    reps = cell.replicas
    first = engine.replicas(one_seg)[0]
    if t2["roofline"]:
        import pandas as pd

        print(pd.DataFrame(t2["roofline"]).to_string(index=False), flush=True)
    return {
        "steps": 2 * half,
        "eval_every": half,
        "replicas": reps,
        "chunk_size": int(t2["chunk_size"]),
        "warmup_wall_s": warm["wall_s"],
        "warmup_compile_s": warm["compile_s"],
        "warmup_compiles": warm["compiles"],
        "t1_s": t1["wall_s"],
        "t2_s": t2["wall_s"],
        "cores_busy": t2["cores_busy"],
        "recompiles": t1["compiles"] + t2["compiles"],
        "roofline": t2["roofline"],  # the engine's own cost model (hptransfer.sweeps.costmodel)
        "rate": reps * 2 * half / t2["wall_s"],
        "rate_steady": reps * half / max(t2["wall_s"] - t1["wall_s"], 1e-9),
        "intermediate_checkpoints": False,
        "check_replica": dataclasses.asdict(first),
        "check_final_loss": _final_loss(out, first.scheme, first.log2_lr, first.seed),
    }


# --------------------------------------------------------------------------------------------
# (b) the sequential single-run loop


def cell_architecture(cell: Cell | TransformerCell, data: Dataset) -> Architecture:
    """The cell's Architecture, exactly as the engine builds it from the sweep config."""
    return engine.architectures(sweep_config(cell, 2, 1), data)[0]


def sequential_rate(
    cell: Cell | TransformerCell, data: Dataset, steps: int, runs: int
) -> dict[str, Any]:
    """(b): rate_b = (N - 1) S / t over calls 2..N of ``train_run``, N = ``runs`` <= R.

    The replicas are taken in the engine's order; the first call compiles the shape's single
    program (every scheme, rate and seed reuses it) and is timed apart.
    """
    config = sweep_config(cell, steps, steps)
    arch = cell_architecture(cell, data)
    reps = engine.replicas(config)[: max(2, min(runs, cell.replicas))]

    probe = {"probe_size": cell.probe_size} if isinstance(cell, TransformerCell) else {}

    def one(rep: engine.Replica) -> float:
        result = train_run(rep.scheme, arch, config.optimizer, 2.0**rep.log2_lr, rep.seed,
                           data, steps, cell.batch_size, **probe)  # fmt: skip
        return float(np.mean(result.losses[steps // 2 :]))

    start = time.perf_counter()
    check = one(reps[0])
    first = time.perf_counter() - start
    start, cpu0 = time.perf_counter(), _cpu_seconds()
    for rep in reps[1:]:
        one(rep)
    timed = time.perf_counter() - start
    cores_busy = (_cpu_seconds() - cpu0) / timed
    return {
        "steps": steps,
        "runs": len(reps),
        "first_call_s": first,
        "timed_s": timed,
        "rate": (len(reps) - 1) * steps / timed,
        "cores_busy": cores_busy,
        "check_final_loss": check,
    }


# --------------------------------------------------------------------------------------------
# (c) PyTorch and the matmul peak


def torch_rate(cell: Cell, steps: int = 200) -> dict[str, Any]:
    """(c): the one-model-at-a-time PyTorch loop on one thread, or a note why it was skipped."""
    try:
        rate = baselines.torch_replica_steps_per_second(
            cell.width, cell.depth, cell.block_depth, cell.batch_size, cell.in_dim,
            cell.num_classes, steps=steps, threads=1,
        )  # fmt: skip
    except RuntimeError as err:
        return {"rate": None, "note": str(err)}
    return {"rate": rate, "steps": steps, "threads": 1}


TORCH_PARTS = ("torch_vmap", "torch_vmap_1thread", "torch_loop", "torch_loop_1thread")
"""The transformer cell's PyTorch measurements: (c) vmap-batched and (c') one model at a time,
on all cores and on one thread."""


def torch_transformer_rates(cell: TransformerCell, steps: int) -> dict[str, dict[str, Any]]:
    """(c) and (c') on ``os.cpu_count()`` threads and on 1 (TORCH_PARTS), or why not.

    (c) times ``steps`` vmap iterations (R replica-steps each) after 2 warm-up iterations; (c')
    times R ``steps`` single-model steps after 3 warm-up steps, so both time R ``steps``
    replica-steps. On a 1-core machine the 1-thread runs would repeat the others: skipped.
    """
    cores = os.cpu_count() or 1
    shape, reps = cell.shape(), cell.replicas
    log2_lrs = tuple(float(x) for x in range(int(cell.log2_lrs[0]), int(cell.log2_lrs[1]) + 1))
    measures = {
        "torch_vmap": lambda threads: baselines.torch_transformer_replica_steps_per_second(
            **shape, replicas=reps, steps=steps, threads=threads, log2_lrs=log2_lrs
        ),
        "torch_loop": lambda threads: baselines.torch_transformer_loop_steps_per_second(
            **shape, steps=reps * steps, threads=threads, lr=2.0 ** log2_lrs[0]
        ),
    }
    out: dict[str, dict[str, Any]] = {}
    for name, measure in measures.items():
        for threads, key in ((cores, name), (1, f"{name}_1thread")):
            if key != name and cores == 1:
                out[key] = {"rate": None, "note": "skipped: one core (the all-cores run)"}
                continue
            print(f"  width {cell.width}: {key} ({threads} threads) ...", flush=True)
            try:
                rate = measure(threads)
            except RuntimeError as err:  # torch missing: the install hint
                out[key] = {"rate": None, "note": str(err)}
            except Exception as err:
                traceback.print_exc()
                out[key] = {"rate": None, "note": f"failed: {type(err).__name__}: {err}"}
            else:
                timed = reps * steps
                out[key] = {"rate": rate, "replica_steps": timed, "threads": threads}
            print(f"  width {cell.width}: {key} = {out[key]}", flush=True)
    return out


def peak_flops(on_gpu: bool) -> dict[str, Any]:
    """Measured matmul peak: n = 8192 default precision (TF32) on a GPU, n = 1024 f32 on CPU."""
    n = 8192 if on_gpu else 1024
    return {
        "flops": baselines.matmul_peak_flops(n=n),
        "n": n,
        "what": "dense TF32 (default precision)" if on_gpu else "float32",
    }


def memory_bandwidth(megabytes: int, repeats: int = 10) -> float:
    """Measured memory bandwidth in B/s: 2 M / (best time of y = 2 x over M bytes of float32).

    One read and one write of every element; the product runs on jax's default device.
    """
    import jax.numpy as jnp

    x = jnp.ones((megabytes * 2**20 // 4,), jnp.float32)
    double = jax.jit(lambda v: 2.0 * v)
    double(x).block_until_ready()
    return 2.0 * x.nbytes / baselines._time_best(double, (x,), repeats)


def roofline_fraction(
    batch_size: int, bandwidth: float, peak: float, bytes_per_weight: int
) -> float:
    """Upper bound on the fraction of peak for weight-streaming SGD: min(1, I BW / peak).

    Each weight entry costs 6 B FLOPs per step and at least ``bytes_per_weight`` bytes of memory
    traffic (float32: forward read 4, input-gradient read 4, gradient write 4, update read 8
    and write 4 = 24; the engine's divergence freeze adds an all-finite read and a select that
    reads 8 and writes 4, 40 in all), so the arithmetic intensity is I = 6 B / bytes_per_weight.
    Replicas do not share weights, so vmapping them adds no reuse.
    """
    return min(1.0, 6.0 * batch_size / bytes_per_weight * bandwidth / peak)


# --------------------------------------------------------------------------------------------
# Compile time against depth


def compile_seconds(
    depth: int, data: Dataset, workdir: Path, base: TransformerCell | None = None
) -> dict[str, float]:
    """Compile seconds of the engine's programs at width 64, k = 2, depth ``depth`` (or of the
    transformer cell ``base`` at depth ``depth``).

    After ``clear_program_cache``, a 1-step sweep (eval_every = 1) compiles the init, eval and
    segment programs (``all_s``); a 2-step sweep with eval_every = 2 then compiles only a new
    segment program (the segment length is part of its key), so its COMPILE_STATS seconds are
    the segment program's alone (``segment_s``).
    """
    cell = Cell(depth=depth) if base is None else dataclasses.replace(base, depth=depth)
    engine.clear_program_cache()
    out = workdir / f"compile_{depth}"
    first = _timed_sweep(sweep_config(cell, 1, 1), data, out)
    second = _timed_sweep(sweep_config(cell, 2, 2), data, out)
    return {
        "depth": depth,
        "all_s": first["compile_s"],
        "programs": first["compiles"],
        "segment_s": second["compile_s"],
        "segment_programs": second["compiles"],
    }


# --------------------------------------------------------------------------------------------
# One width, the whole run, and the report


def bench_width(
    cell: Cell, steps: int, args: argparse.Namespace, peak: float, workdir: Path, on_gpu: bool
) -> dict[str, Any]:
    """Measure (a), (b) and, on CPU, (c) for one cell; derive the ratios and the FLOP rate."""
    data = cell_data(cell)
    row: dict[str, Any] = {"width": cell.width, "depth": cell.depth, "flops": cell.flops()}
    parts = {
        "engine": lambda: engine_rate(cell, data, steps, workdir),
        "sequential": lambda: sequential_rate(cell, data, steps, args.seq_runs),
        "torch": (lambda: torch_rate(cell)) if not on_gpu and not args.skip_torch else None,
    }
    for name, measure in parts.items():
        if measure is None:
            row[name] = {"rate": None, "note": "skipped (GPU run or --skip-torch)"}
            continue
        print(f"  width {cell.width}: {name} ...", flush=True)
        try:
            row[name] = measure()
        except Exception as err:  # keep the other measurements of this run
            traceback.print_exc()
            row[name] = {"rate": None, "note": f"failed: {type(err).__name__}: {err}"}
        print(f"  width {cell.width}: {name} = {row[name]}", flush=True)
    a, b, c = (row[k].get("rate") for k in ("engine", "sequential", "torch"))
    row["a_over_b"] = a / b if a and b else None
    row["a_over_c"] = a / c if a and c else None
    print(f"  width {cell.width}: batched-matmul limit ...", flush=True)
    row["matmul_limit"] = baselines.batched_matmul_limit(
        cell.replicas, cell.batch_size, cell.width, cell.depth * cell.block_depth, cell.in_dim,
        cell.num_classes,
    )  # fmt: skip
    for key, rate in (("", a), ("_steady", row["engine"].get("rate_steady"))):
        row[f"achieved_flops{key}"] = rate * cell.flops() if rate else None
        row[f"peak_fraction{key}"] = rate * cell.flops() / peak if rate else None
        row[f"limit_fraction{key}"] = rate * cell.flops() / row["matmul_limit"] if rate else None
    return row


def bench_transformer(
    cell: TransformerCell, steps: int, args: argparse.Namespace, peak: float, workdir: Path,
    on_gpu: bool,
) -> dict[str, Any]:  # fmt: skip
    """Measure (a), (b) and, on CPU, (c) and (c') for the transformer cell; the FLOP rates of
    every measurement against the matmul peak and the cell's own matmul limit."""
    data = cell_data(cell)
    row: dict[str, Any] = {"width": cell.width, "depth": cell.depth, "flops": cell.flops()}
    parts = {
        "engine": lambda: engine_rate(cell, data, steps, workdir),
        "sequential": lambda: sequential_rate(cell, data, steps, args.seq_runs),
    }
    for name, measure in parts.items():
        print(f"  width {cell.width}: {name} ...", flush=True)
        try:
            row[name] = measure()
        except Exception as err:  # keep the other measurements of this run
            traceback.print_exc()
            row[name] = {"rate": None, "note": f"failed: {type(err).__name__}: {err}"}
        print(f"  width {cell.width}: {name} = {row[name]}", flush=True)
    if on_gpu or args.skip_torch:
        row |= {
            key: {"rate": None, "note": "skipped (GPU run or --skip-torch)"} for key in TORCH_PARTS
        }
    else:
        row |= torch_transformer_rates(cell, args.torch_steps)
    print(f"  width {cell.width}: transformer matmul limit ...", flush=True)
    row["matmul_limit"] = baselines.transformer_matmul_limit(cell.replicas, **cell.shape())
    a = row["engine"].get("rate")
    for key in ("sequential", *TORCH_PARTS):
        other = row[key].get("rate")
        row[f"a_over_{key}"] = a / other if a and other else None
    rates = {"engine": a, "engine_steady": row["engine"].get("rate_steady")}
    rates |= {key: row[key].get("rate") for key in ("sequential", *TORCH_PARTS)}
    row["methods"] = {
        key: {
            "rate": rate,
            "achieved_flops": rate * cell.flops() if rate else None,
            "peak_fraction": rate * cell.flops() / peak if rate else None,
            "limit_fraction": rate * cell.flops() / row["matmul_limit"] if rate else None,
        }
        for key, rate in rates.items()
    }
    return row


def _fmt(value: Any, spec: str = ".0f", scale: float = 1.0) -> str:
    """``value / scale`` formatted by ``spec``, or an en dash for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return format(value / scale, spec)


def _roofline_sentence(peak: dict[str, Any]) -> str:
    """The measured bandwidth and the roofline bounds, when they were measured (GPU runs)."""
    if "bandwidth" not in peak:
        return ""
    bound = peak["roofline_fraction"]
    return (
        f" Memory bandwidth (y = 2x): {_fmt(peak['bandwidth'], '.0f', 1e9)} GB/s; roofline bound "
        f"on the fraction of peak for SGD at this batch: {_fmt(bound['24'], '.0%')} at 24 "
        f"B/weight/step (ideal), {_fmt(bound['40'], '.0%')} at 40 (with the engine's divergence "
        "freeze); see roofline_fraction."
    )


def _contention_notes(report: dict[str, Any]) -> list[str]:
    """A warning for CPU rows whose engine kept fewer cores busy than it has host devices."""
    env = report["environment"]
    if env["platform"] != "cpu":
        return []
    return [
        f"width {row['width']}: the engine kept only {busy:.2f} of {env['devices']} cores busy; "
        "other load on the machine? (the engine needs every core; rerun when idle)"
        for row in report["widths"]
        if (busy := row["engine"].get("cores_busy")) and busy < 0.9 * env["devices"]
    ]


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: the throughput table, the compile table, and the setup."""
    env, peak = report["environment"], report["peak"]
    lines = [
        f"# Throughput: {report['label']}",
        "",
        f"{env['device']} ({env['devices']} jax device(s), {env['cpu_count']} CPU cores), "
        f"jax {env['jax']}. Cell: L = {report['cell']['depth']}, k = "
        f"{report['cell']['block_depth']}, batch {report['cell']['batch_size']}, "
        f"{report['cell']['replicas']} replicas (2 schemes x 4 lrs x 2 seeds), SGD, "
        f"d = {report['cell']['in_dim']}, {report['cell']['num_classes']} classes (teacher data).",
        f"Matmul peak ({peak['what']}, n = {peak['n']}): {_fmt(peak['flops'], '.1f', 1e9)} "
        "GFLOP/s." + _roofline_sentence(peak),
        "",
        "Replica-steps per second. (a) engine: whole 2-segment `run_sweep` (steady state: one "
        "more segment's marginal cost); (b) sequential `train_run`, compile excluded; "
        "(c) PyTorch, one model at a time, 1 thread. Matmul limit: the FLOP rate of the cell's "
        "own matrix products and nothing else (its R replicas, B, n and L k layers, forward and "
        "backward, split over the devices as the engine splits them; "
        "`baselines.batched_matmul_limit`).",
        "",
        "| width | steps | chunk | (a) engine | (a) steady | (b) sequential | (c) torch | a/b "
        "| a/c | (a) GFLOP/s | (a) % of peak | (a) steady % | (b) % of peak | (a) cores busy "
        "| matmul limit GFLOP/s | (a) % of limit | (a) steady % of limit |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    failures = []
    for row in report["widths"]:
        eng, b_rate = row["engine"], row["sequential"].get("rate")
        lines.append(
            f"| {row['width']} | {eng.get('steps', '–')} | {eng.get('chunk_size', '–')} "
            f"| {_fmt(eng.get('rate'))} | {_fmt(eng.get('rate_steady'))} "
            f"| {_fmt(row['sequential'].get('rate'))} | {_fmt(row['torch'].get('rate'))} "
            f"| {_fmt(row['a_over_b'], '.1f')} | {_fmt(row['a_over_c'], '.1f')} "
            f"| {_fmt(row['achieved_flops'], ',.1f', 1e9)} | {_fmt(row['peak_fraction'], '.1%')} "
            f"| {_fmt(row['peak_fraction_steady'], '.1%')} "
            f"| {_fmt(b_rate and b_rate * row['flops'] / peak['flops'], '.1%')} | {_fmt(eng.get('cores_busy'), '.2f')} "
            f"| {_fmt(row.get('matmul_limit'), ',.1f', 1e9)} | {_fmt(row.get('limit_fraction'), '.1%')} "
            f"| {_fmt(row.get('limit_fraction_steady'), '.1%')} |"
        )
        failures += [
            f"width {row['width']}, {part}: {row[part]['note']}"
            for part in ("engine", "sequential", "torch")
            if str(row[part].get("note", "")).startswith("failed")
        ]
    if failures:
        lines += ["", "Failed measurements:", ""] + [f"- {f}" for f in failures]
    if report["compile"]:
        lines += [
            "",
            "Engine compile seconds (width 64, k = 2, 16 replicas):",
            "",
            "| depth | segment program | all programs (init, eval, segment) |",
            "|---:|---:|---:|",
        ]
        lines += [
            f"| {c['depth']} | {_fmt(c.get('segment_s'), '.2f')} | {_fmt(c.get('all_s'), '.2f')} |"
            for c in report["compile"]
        ]
        ratio = report.get("compile_ratio", {})
        lines += [
            "",
            f"Ratio L=64 / L=4: segment {_fmt(ratio.get('segment'), '.2f')}, "
            f"all programs {_fmt(ratio.get('all'), '.2f')} (target < 1.5).",
        ]
    notes = report["notes"] + _contention_notes(report)
    lines += ["", "Notes:", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


METHODS = {
    "engine": "(a) engine",
    "engine_steady": "(a) engine, steady state",
    "sequential": "(b) sequential train_run",
    "torch_vmap": "(c) torch vmap, all cores",
    "torch_vmap_1thread": "(c) torch vmap, 1 thread",
    "torch_loop": "(c') torch loop, all cores",
    "torch_loop_1thread": "(c') torch loop, 1 thread",
}
"""The transformer report's measurements, in table order."""


def render_transformer_markdown(report: dict[str, Any]) -> str:
    """The transformer cell's report as Markdown: the MLP report's layout (setup, throughput
    table, compile table, notes) with (c) vmap-batched and (c') one-model PyTorch, and a table of
    every measurement's FLOP rate against the peak and the cell's matmul limit."""
    env, peak, cell = report["environment"], report["peak"], report["cell"]
    cores = env["cpu_count"]
    lines = [
        f"# Throughput: {report['label']}, transformer cell",
        "",
        f"{env['device']} ({env['devices']} jax device(s), {cores} CPU cores), jax {env['jax']}. "
        f"Cell: pre-LN causal transformer, L = {cell['depth']} blocks, T = {cell['seq_len']} "
        f"tokens, batch {cell['batch_size']} sequences, head dim {cell['head_dim']}, MLP ratio "
        f"{cell['mlp_ratio']}, 256-byte vocabulary, {cell['replicas']} replicas (2 schemes x 4 "
        f"lrs x 2 seeds: {', '.join(cell['schemes'])}; 2^{cell['log2_lrs'][0]:g} to "
        f"2^{cell['log2_lrs'][1]:g}), SGD, byte-level text.",
        f"Matmul peak ({peak['what']}, n = {peak['n']}): {_fmt(peak['flops'], '.1f', 1e9)} "
        "GFLOP/s." + _roofline_sentence(peak),
        "",
        "Replica-steps per second. (a) engine: whole 2-segment `run_sweep` (steady state: one "
        "more segment's marginal cost); (b) sequential `train_run`, compile excluded; "
        f"(c) PyTorch, the R replicas batched with `torch.func.vmap` over stacked parameters, "
        f"{cores} threads; (c') PyTorch, one `nn.Module` at a time, {cores} threads (1-thread "
        "runs of both below). Matmul limit: the FLOP rate of the cell's own matrix products and "
        "nothing else (q, k, v, out, the T x T scores and their mix, the MLP, the unembedding, "
        "forward and backward, for its R replicas, split over the devices as the engine splits "
        "them; `baselines.transformer_matmul_limit`).",
        "",
        "| width | steps | chunk | (a) engine | (a) steady | (b) sequential | (c) torch vmap "
        "| (c') torch loop | a/b | a/c | a/c' | (a) GFLOP/s | (a) % of peak | (a) steady % "
        "| (b) % of peak | (a) cores busy | matmul limit GFLOP/s | (a) % of limit "
        "| (a) steady % of limit |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:"
        "|---:|---:|",
    ]
    failures = []
    for row in report["widths"]:
        eng, m = row["engine"], row["methods"]
        lines.append(
            f"| {row['width']} | {eng.get('steps', '–')} | {eng.get('chunk_size', '–')} "
            f"| {_fmt(eng.get('rate'))} | {_fmt(eng.get('rate_steady'))} "
            f"| {_fmt(row['sequential'].get('rate'))} | {_fmt(row['torch_vmap'].get('rate'))} "
            f"| {_fmt(row['torch_loop'].get('rate'))} "
            f"| {_fmt(row['a_over_sequential'], '.1f')} | {_fmt(row['a_over_torch_vmap'], '.1f')} "
            f"| {_fmt(row['a_over_torch_loop'], '.1f')} "
            f"| {_fmt(m['engine']['achieved_flops'], ',.1f', 1e9)} "
            f"| {_fmt(m['engine']['peak_fraction'], '.1%')} "
            f"| {_fmt(m['engine_steady']['peak_fraction'], '.1%')} "
            f"| {_fmt(m['sequential']['peak_fraction'], '.1%')} "
            f"| {_fmt(eng.get('cores_busy'), '.2f')} "
            f"| {_fmt(row.get('matmul_limit'), ',.1f', 1e9)} "
            f"| {_fmt(m['engine']['limit_fraction'], '.1%')} "
            f"| {_fmt(m['engine_steady']['limit_fraction'], '.1%')} |"
        )
        failures += [
            f"width {row['width']}, {part}: {row[part]['note']}"
            for part in ("engine", "sequential", *TORCH_PARTS)
            if str(row[part].get("note", "")).startswith("failed")
        ]
    lines += [
        "",
        "Every measurement by one FLOP count (3 B `costmodel.forward_flops` per replica-step, "
        "`baselines.transformer_replica_step_flops`):",
        "",
        "| width | measurement | replica-steps/s | GFLOP/s | % of peak | % of matmul limit "
        "| (a) / this |",
        "|---:|:---|---:|---:|---:|---:|---:|",
    ]
    for row in report["widths"]:
        a = row["engine"].get("rate")
        for key, name in METHODS.items():
            m = row["methods"][key]
            ratio = a / m["rate"] if a and m["rate"] else None
            lines.append(
                f"| {row['width']} | {name} | {_fmt(m['rate'], '.1f')} "
                f"| {_fmt(m['achieved_flops'], ',.1f', 1e9)} | {_fmt(m['peak_fraction'], '.1%')} "
                f"| {_fmt(m['limit_fraction'], '.1%')} | {_fmt(ratio, '.2f')} |"
            )
    if failures:
        lines += ["", "Failed measurements:", ""] + [f"- {f}" for f in failures]
    if report["compile"]:
        lines += [
            "",
            f"Engine compile seconds (transformer, width {report['args']['widths'][0]}, "
            f"{cell['replicas']} replicas):",
            "",
            "| depth | segment program | all programs (init, eval, segment) |",
            "|---:|---:|---:|",
        ]
        lines += [
            f"| {c['depth']} | {_fmt(c.get('segment_s'), '.2f')} | {_fmt(c.get('all_s'), '.2f')} |"
            for c in report["compile"]
        ]
    notes = report["notes"] + _contention_notes(report)
    lines += ["", "Notes:", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out: Path) -> None:
    """Write ``throughput_<label>.json`` and ``.md`` under ``out`` (for the transformer cell
    ``throughput_<label>-transformer.*``, so the MLP cell's files stay)."""
    out.mkdir(parents=True, exist_ok=True)
    transformer = report.get("family") == "transformer"
    stem = out / f"throughput_{report['label']}{'-transformer' if transformer else ''}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    render = render_transformer_markdown if transformer else render_markdown
    stem.with_suffix(".md").write_text(render(report))


def environment() -> dict[str, Any]:
    """Where the numbers were measured."""
    device = jax.devices()[0]
    return {
        "platform": device.platform,
        "device": f"{device.platform}: {device.device_kind}",
        "devices": len(jax.devices()),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "python": platform.python_version(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


def default_label(env: dict[str, Any]) -> str:
    """``cpu-<cores>core`` or the accelerator's kind, in letters, digits, '-' and '_'."""
    if env["platform"] == "cpu":
        return f"cpu-{env['cpu_count']}core"
    return re.sub(r"[^A-Za-z0-9_-]+", "-", env["device"].split(": ", 1)[-1]).strip("-").lower()


FAMILY_DEFAULTS = {
    "mlp": {"depth": 16, "batch_size": 128, "steps": [400], "seq_runs": 16},
    "transformer": {"depth": 8, "batch_size": 16, "steps": [40], "seq_runs": 4},
}
"""Per-family defaults of the options that both cells take."""
TRANSFORMER_ARGS = (
    "family", "seq_len", "head_dim", "mlp_ratio", "eval_sequences", "probe_size", "torch_steps",
)  # fmt: skip
"""Options of the transformer cell only: left out of the MLP report's recorded args, so that
report reads as before ``--family`` existed."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device-label", default=None, help="name in the output files")
    parser.add_argument("--widths", type=int, nargs="+", default=[64])
    parser.add_argument("--depth", type=int, default=None, help="default 16 (transformer: 8)")
    parser.add_argument("--block-depth", type=int, default=2)
    parser.add_argument(
        "--batch-size", type=int, default=None, help="default 128 (transformer: 16 sequences)"
    )
    parser.add_argument(
        "--steps", type=int, nargs="+", default=None,
        help="timed steps S per replica (even): one value, or one per width; default 400 "
        "(transformer: 40)",
    )  # fmt: skip
    parser.add_argument(
        "--seq-runs", type=int, default=None,
        help="N train_run calls (<= 16); default 16 (transformer: 4)",
    )  # fmt: skip
    parser.add_argument(
        "--compile-depths", type=int, nargs="*", default=None,
        help="depths for the compile-time table (default 4 16 64 on CPU, none on a GPU)",
    )  # fmt: skip
    parser.add_argument("--skip-torch", action="store_true")
    parser.add_argument(
        "--no-checkpoint", action="store_true",
        help="kept for the recorded GPU command; intermediate checkpoints are always off here and "
        "a finished chunk saves only its metrics",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    parser.add_argument(
        "--family", choices=("mlp", "transformer"), default="mlp",
        help="the cell: the MLP-ResNet (default) or the transformer (writes "
        "throughput_<label>-transformer.*)",
    )  # fmt: skip
    transformer = parser.add_argument_group("transformer cell (--family transformer)")
    transformer.add_argument("--seq-len", type=int, default=64, help="tokens T per sequence")
    transformer.add_argument("--head-dim", type=int, default=16)
    transformer.add_argument("--mlp-ratio", type=int, default=4)
    transformer.add_argument(
        "--eval-sequences", type=int, default=32,
        help="validation sequences evaluated after each segment (and by each train_run)",
    )  # fmt: skip
    transformer.add_argument(
        "--probe-size", type=int, default=32,
        help="probe sequences of the feature-movement statistics (forward at init and at the "
        "end of each segment)",
    )  # fmt: skip
    transformer.add_argument(
        "--torch-steps", type=int, default=8,
        help="timed PyTorch vmap iterations (R replica-steps each; the one-model loop times R "
        "times as many steps)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    for key, value in FAMILY_DEFAULTS[args.family].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.family == "transformer" and args.block_depth != 2:
        parser.error(f"--block-depth {args.block_depth}: the transformer's block depth is 2")
    if args.torch_steps < 1:
        parser.error(f"--torch-steps must be >= 1, got {args.torch_steps}")
    if len(args.steps) not in (1, len(args.widths)):
        parser.error(f"--steps takes 1 or {len(args.widths)} values, got {len(args.steps)}")
    if any(s < 2 or s % 2 for s in args.steps):
        parser.error(f"--steps must be even and >= 2, got {args.steps}")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole benchmark; the report is rewritten after each stage."""
    if args.family == "transformer":
        return run_transformer(args)
    env = environment()
    on_gpu = env["platform"] != "cpu"
    label = args.device_label or default_label(env)
    depths = (
        args.compile_depths if args.compile_depths is not None else ([] if on_gpu else [4, 16, 64])
    )
    steps = args.steps * len(args.widths) if len(args.steps) == 1 else args.steps
    base = Cell(depth=args.depth, block_depth=args.block_depth, batch_size=args.batch_size)
    print(f"{label}: {env['device']}, {env['devices']} device(s)", flush=True)
    peak = peak_flops(on_gpu)
    print(f"matmul peak: {peak['flops'] / 1e9:.1f} GFLOP/s ({peak['what']})", flush=True)
    if on_gpu:  # on CPU a width-64 replica's weights (0.5 MB) stay in cache: no weight streaming
        peak["bandwidth"] = memory_bandwidth(2048)
        peak["roofline_fraction"] = {
            str(b): roofline_fraction(base.batch_size, peak["bandwidth"], peak["flops"], b)
            for b in (24, 40)
        }
        print(
            f"bandwidth: {peak['bandwidth'] / 1e9:.0f} GB/s, roofline {peak['roofline_fraction']}"
        )
    report: dict[str, Any] = {
        "label": label, "environment": env, "peak": peak,
        "args": {k: v for k, v in vars(args).items() if k not in TRANSFORMER_ARGS},
        "cell": {**dataclasses.asdict(base), "replicas": base.replicas, "width": None},
        "widths": [], "compile": [], "notes": notes(args, on_gpu),
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="hpt_bench_") as tmp:
        for width, s in zip(args.widths, steps, strict=True):
            cell = dataclasses.replace(base, width=width)
            report["widths"].append(bench_width(cell, s, args, peak["flops"], Path(tmp), on_gpu))
            write_report(report, args.out)
        for depth in depths:
            print(f"  compile time at L = {depth} ...", flush=True)
            try:
                report["compile"].append(compile_seconds(depth, cell_data(base), Path(tmp)))
            except Exception as err:
                traceback.print_exc()
                report["compile"].append({"depth": depth, "note": f"failed: {err}"})
            print(f"  {report['compile'][-1]}", flush=True)
    by_depth = {c["depth"]: c for c in report["compile"]}
    if 4 in by_depth and 64 in by_depth:
        report["compile_ratio"] = {
            key: by_depth[64].get(f"{key}_s", math.nan) / by_depth[4].get(f"{key}_s", math.nan)
            for key in ("segment", "all")
        }
    write_report(report, args.out)
    return report


def transformer_cell(args: argparse.Namespace, width: int) -> TransformerCell:
    """The transformer cell of the parsed options at ``width``."""
    return TransformerCell(
        width=width, depth=args.depth, seq_len=args.seq_len, batch_size=args.batch_size,
        head_dim=args.head_dim, mlp_ratio=args.mlp_ratio, eval_sequences=args.eval_sequences,
        probe_size=args.probe_size,
    )  # fmt: skip


def _torch_version() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return str(torch.__version__)


def run_transformer(args: argparse.Namespace) -> dict[str, Any]:
    """The transformer cell's benchmark (``--family transformer``): per width (a), (b), (c),
    (c') and the cell's matmul limit, and, when asked (``--compile-depths``), compile times;
    the report is rewritten after each stage."""
    env = environment() | {"torch": _torch_version()}
    on_gpu = env["platform"] != "cpu"
    label = args.device_label or default_label(env)
    steps = args.steps * len(args.widths) if len(args.steps) == 1 else args.steps
    base = transformer_cell(args, args.widths[0])
    print(f"{label}: {env['device']}, {env['devices']} device(s), transformer cell", flush=True)
    peak = peak_flops(on_gpu)
    print(f"matmul peak: {peak['flops'] / 1e9:.1f} GFLOP/s ({peak['what']})", flush=True)
    report: dict[str, Any] = {
        "label": label, "family": "transformer", "environment": env, "peak": peak,
        "args": vars(args),
        "cell": {**dataclasses.asdict(base), "replicas": base.replicas, "width": None},
        "widths": [], "compile": [], "notes": transformer_notes(args, on_gpu, base),
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="hpt_bench_") as tmp:
        for width, s in zip(args.widths, steps, strict=True):
            cell = transformer_cell(args, width)
            report["widths"].append(
                bench_transformer(cell, s, args, peak["flops"], Path(tmp), on_gpu)
            )
            write_report(report, args.out)
        for depth in args.compile_depths or []:
            print(f"  compile time at L = {depth} ...", flush=True)
            try:
                report["compile"].append(
                    compile_seconds(depth, cell_data(base), Path(tmp), base=base)
                )
            except Exception as err:
                traceback.print_exc()
                report["compile"].append({"depth": depth, "note": f"failed: {err}"})
            print(f"  {report['compile'][-1]}", flush=True)
    write_report(report, args.out)
    return report


def transformer_notes(args: argparse.Namespace, on_gpu: bool, cell: TransformerCell) -> list[str]:
    """The caveats that travel with the transformer cell's numbers."""
    reps, cores = cell.replicas, os.cpu_count()
    out = [
        "(a) runs three fresh sweeps with eval_every = S/2: a warm-up that compiles, then "
        "1 segment (t1) and 2 segments (t2); (a) = R S / t2, steady = R (S/2) / (t2 - t1). Each "
        f"segment ends with an evaluation on {cell.eval_sequences} validation sequences and the "
        f"feature-movement statistics on {cell.probe_size} probe sequences (forward at init and "
        f"now): about {(cell.eval_sequences + 2 * cell.probe_size) / (3 * cell.batch_size):.0f} "
        "training steps' FLOPs per replica and segment, in (a) and in its steady state.",
        f"(b) times train_run calls 2..N (N = {args.seq_runs}) of the same replicas; each call "
        "also evaluates on the validation split and measures feature movement once.",
        f"FLOPs per replica-step: 3 B forward_flops = {cell.flops() / 1e9:.3f} GFLOP (the "
        "engine's cost model, baselines.transformer_replica_step_flops): matmuls only, the "
        "attention over all T x T pairs, as the engine and (c) compute it (the fused kernel "
        "of (c') may skip the masked half: about 7% of this cell's FLOPs); LayerNorm, "
        "RoPE, softmax, GELU and the update are not counted.",
        f"(c) PyTorch {_torch_version() or '(not installed)'}, eager (no torch.compile): "
        "torch.func.vmap(grad(loss)) over the R models' stacked parameters (functional_call), "
        "then SGD with each replica's rate (the cell's 4, cycled); attention as explicit "
        "matmul, mask and softmax, since scaled_dot_product_attention has no vmap batching "
        f"rule (it would run replica by replica). Timed: {args.torch_steps} iterations "
        f"({reps * args.torch_steps} replica-steps) after 2 warm-up iterations.",
        "(c') PyTorch, one nn.Module at a time: torch.optim.SGD, zero_grad, forward, "
        "cross-entropy / ln 2, backward, step; attention by the fused "
        f"scaled_dot_product_attention(is_causal=True). Timed: {reps * args.torch_steps} steps "
        "after 3 warm-up steps.",
        f"All cores: torch.set_num_threads({cores}); the engine splits the host into {cores} "
        "XLA devices. The 1-thread rows are the MLP report's torch convention.",
        "The PyTorch model is hptransfer's transformer at SP (c = 1, beta = 1, tau = "
        "1/sqrt(d_head); tests/test_transformer_baseline.py checks its logits against ours to "
        "1e-4) and trains on random bytes; the engine and (b) run the cell's schemes "
        f"({', '.join(cell.schemes)}) on the text corpus. Same matmul shapes and FLOPs; the "
        "schemes' multipliers are a few scalar multiplies more on the engine's side.",
    ]
    if on_gpu:
        out.append("GPU run: the PyTorch runs (CPU-only wheel) are skipped.")
    return out


def notes(args: argparse.Namespace, on_gpu: bool) -> list[str]:
    """The caveats that travel with the numbers."""
    out = [
        "(a) runs three fresh sweeps with eval_every = S/2: a warm-up that compiles, then "
        "1 segment (t1) and 2 segments (t2); (a) = R S / t2, steady = R (S/2) / (t2 - t1).",
        f"(b) times train_run calls 2..N (N = {args.seq_runs}) of the same replicas; each call "
        "also evaluates on the test split and measures feature movement once.",
        "FLOPs per replica-step: 6 B P (model FLOPs, baselines.replica_step_flops).",
    ]
    if args.no_checkpoint:
        out.append("Engine timed without intermediate Orbax checkpoints (--no-checkpoint).")
    if on_gpu:
        out.append("GPU run: the PyTorch loop (CPU-only) and the compile-time table are skipped.")
    return out


def main(argv: list[str] | None = None) -> None:
    report = run(parse_args(argv))
    transformer = report.get("family") == "transformer"
    print((render_transformer_markdown if transformer else render_markdown)(report))


if __name__ == "__main__":
    main()
