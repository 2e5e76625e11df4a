"""Where the time goes: analytic cost of one replica-step, measured device roofs, achieved rates.

For a network of width n, depth L, block depth k, classes c, batch B (float32, 4 bytes a word):

Matmul FLOPs of one forward pass per example (a multiply-add is 2 FLOPs):

    mlp   F_fwd = 2 (d n + L k n^2 + n c)                        (d = input features)
    conv  F_fwd = 2 S (9 C n + L k 9 n^2) + 2 n c                (S = H W / 4 after the stride-2
                                                                  stem, C input channels; every
                                                                  tap counts, zero padding too)

One replica-step (forward + backward: the backward pass costs two matmuls per forward one):

    FLOPs = 3 B F_fwd

DRAM/HBM bytes of one replica-step, P parameters, A = B S n (L k + 1) activations (S = 1 for mlp):

    bytes = 4 [ 2 P          weights read by the forward and the backward pass
              + 3 P          the update: read params and gradients, write params
              + 2 s P        optimizer state read and written (s = 0 plain SGD, 1 momentum,
                             2 Adam)
              + 2 A ]        activations written by the forward pass, read by the backward

(a lower bound: no re-reads, no fusion misses). The roofs are measured, not looked up:
:func:`measure_peaks` times a jitted float32 matmul (FLOP/s) and a jitted elementwise update of a
large array (bytes/s: one read and one write per element), each well under a second on a CPU.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import pandas as pd

from hptransfer.network.model import Architecture
from hptransfer.network.optim import OptimizerConfig

WORD = 4  # bytes of a float32


@dataclasses.dataclass(frozen=True)
class StepCost:
    """Analytic FLOPs and DRAM bytes of one replica-step (module docstring)."""

    flops: float
    bytes: float

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, FLOPs per byte."""
        return self.flops / self.bytes


@dataclasses.dataclass(frozen=True)
class Peaks:
    """Measured roofs of the device: matmul FLOP/s and memory bytes/s."""

    flops_per_second: float
    bytes_per_second: float


def optimizer_slots(opt: OptimizerConfig) -> int:
    """Parameter-sized state tensors: 0 plain SGD, 1 SGD with momentum, 2 Adam."""
    if opt.name == "sgd":
        return 1 if opt.momentum > 0 else 0
    return 2


def forward_flops(arch: Architecture) -> float:
    """Matmul FLOPs of one example's forward pass (module docstring; the transformer's example
    is a sequence of T tokens: per token and block 4 n^2 for q, k, v, out, 2 r n^2 for the MLP
    and 2 T n for the attention scores and their mix, plus n V for the unembedding)."""
    n, c, hidden = arch.width, arch.num_classes, arch.depth * arch.block_depth
    if arch.family == "transformer":
        t = arch.in_shape[0]
        per_block = 4 * n * n + 2 * arch.mlp_ratio * n * n + 2 * t * n
        return 2.0 * t * (arch.depth * per_block + n * c)
    if arch.family == "mlp":
        return 2.0 * (arch.in_shape[0] * n + hidden * n * n + n * c)
    spatial = math.ceil(arch.in_shape[0] / 2) * math.ceil(arch.in_shape[1] / 2)
    return 2.0 * spatial * (9 * arch.in_shape[2] * n + hidden * 9 * n * n) + 2.0 * n * c


def parameters(arch: Architecture) -> int:
    """Trainable weights P (kernels and, with ``bias``, biases; the transformer's norms)."""
    n, c, hidden = arch.width, arch.num_classes, arch.depth * arch.block_depth
    if arch.family == "transformer":
        per_block = 4 * n * n + 2 * arch.mlp_ratio * n * n + 4 * n
        return 2 * c * n + arch.depth * per_block + 2 * n
    fan = arch.in_shape[0] if arch.family == "mlp" else 9 * arch.in_shape[2]
    per_hidden = n * n if arch.family == "mlp" else 9 * n * n
    bias = (n * (hidden + 1) + c) if arch.bias else 0
    return fan * n + hidden * per_hidden + n * c + bias


def activations(arch: Architecture, batch_size: int) -> int:
    """Activation words of one replica's forward pass: a width-n vector per example, layer and
    position; for the transformer, per token and block ~12 n-wide tensors, the MLP's 2 r n and
    the heads' T x T scores, plus the logits."""
    if arch.family == "transformer":
        t = arch.in_shape[0]
        per_block = (12 + 2 * arch.mlp_ratio) * arch.width + 2 * arch.n_heads * t
        return batch_size * t * (arch.depth * per_block + 2 * arch.num_classes)
    spatial = 1
    if arch.family == "conv":
        spatial = math.ceil(arch.in_shape[0] / 2) * math.ceil(arch.in_shape[1] / 2)
    return batch_size * spatial * arch.width * (arch.depth * arch.block_depth + 1)


def step_cost(arch: Architecture, batch_size: int, opt: OptimizerConfig) -> StepCost:
    """FLOPs and bytes of one replica-step (module docstring gives the formulas)."""
    p = parameters(arch)
    acts = activations(arch, batch_size)
    words = 2 * p + 3 * p + 2 * optimizer_slots(opt) * p + 2 * acts
    return StepCost(3.0 * batch_size * forward_flops(arch), float(WORD * words))


def _best_seconds(fn, *args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))  # compile and warm up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t0)
    return best


def measure_peaks(matmul_size: int | None = None, stream_words: int | None = None) -> Peaks:
    """The device's float32 matmul FLOP/s (n x n times n x n: 2 n^3 FLOPs) and memory bytes/s
    (y = 2 x + 1 over ``stream_words`` floats: 8 bytes per element), best of a few runs.

    Defaults: n = 512 and 8 Mi words (32 MiB) on a CPU; n = 8192 and 256 Mi words on an
    accelerator (default matmul precision there, i.e. what the engine's programs get).
    """
    device = jax.devices()[0]
    cpu = device.platform == "cpu"
    n = matmul_size or (512 if cpu else 8192)
    words = stream_words or (8 << 20 if cpu else 256 << 20)
    a = jax.device_put(jnp.ones((n, n), jnp.float32), device)
    matmul = jax.jit(lambda x: x @ x)
    t_mm = _best_seconds(matmul, a, repeats=3)
    x = jax.device_put(jnp.ones((words,), jnp.float32), device)
    stream = jax.jit(lambda v: 2.0 * v + 1.0)
    t_bw = _best_seconds(stream, x, repeats=3)
    return Peaks(2.0 * n**3 / t_mm, 2.0 * WORD * words / t_bw)


def achieved(
    cost: StepCost, replica_steps: float, seconds: float, peaks: Peaks
) -> dict[str, float]:
    """Achieved FLOP/s and bytes/s of ``replica_steps`` done in ``seconds``, and their share of
    each roof (``seconds`` should exclude compilation)."""
    flops = cost.flops * replica_steps / seconds if seconds > 0 else float("nan")
    bw = cost.bytes * replica_steps / seconds if seconds > 0 else float("nan")
    return {
        "flops_per_second": flops,
        "bytes_per_second": bw,
        "flops_fraction": flops / peaks.flops_per_second,
        "bytes_fraction": bw / peaks.bytes_per_second,
    }


ROOFLINE_COLUMNS = ("width", "depth", "block_depth", "GFLOP/s", "% of matmul peak", "GB/s",
                    "% of bandwidth", "FLOP/byte", "bound")  # fmt: skip


def roofline(cells: Iterable[Mapping[str, Any]], peaks: Mapping[str, float]) -> pd.DataFrame:
    """One row per computed cell (meta.json ``cells`` with their cost fields): achieved GFLOP/s
    and GB/s, the share of each measured roof, the arithmetic intensity and which roof bounds
    the cell (intensity below peak FLOP/s / peak bytes/s: memory, else compute)."""
    ridge = peaks["flops_per_second"] / peaks["bytes_per_second"]
    rows = [
        {
            "width": c["width"],
            "depth": c["depth"],
            "block_depth": c["block_depth"],
            "GFLOP/s": c["flops_per_second"] / 1e9,
            "% of matmul peak": 100 * c["flops_fraction"],
            "GB/s": c["bytes_per_second"] / 1e9,
            "% of bandwidth": 100 * c["bytes_fraction"],
            "FLOP/byte": c["flops_per_replica_step"] / c["bytes_per_replica_step"],
            "bound": "memory"
            if c["flops_per_replica_step"] / c["bytes_per_replica_step"] < ridge
            else "compute",
        }
        for c in cells
        if "flops_fraction" in c
    ]
    return pd.DataFrame(rows, columns=list(ROOFLINE_COLUMNS))
