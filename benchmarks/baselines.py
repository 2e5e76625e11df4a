"""Reference points for the throughput benchmark (docs/design.md, throughput reference cell).

Three yardsticks that the sweep engine's replica-steps per second are compared against:

* :func:`torch_replica_steps_per_second`: a plain PyTorch loop training the same MLP-ResNet one
  model at a time, the way a microsoft/mup-style sweep runs (the "about 200" of docs/design.md).
* :func:`matmul_peak_flops`: the machine's measured matrix-multiply peak through jax (the "about
  190 GFLOP/s on 2 cores" of docs/design.md, or the TF32 / bf16 peak of a GPU).
* :func:`replica_step_flops`: the model FLOPs of one training step of one replica, so that
  replica-steps/s x FLOPs / peak is the fraction of peak reached (the "about 103 MFLOP").

``benchmarks/`` is a plain folder; import this module after putting the folder on ``sys.path``.
torch is an optional extra and is imported only inside the function that needs it.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

TORCH_INSTALL = ".venv/bin/pip install torch==2.13.0"


# --------------------------------------------------------------------------------------------
# Model FLOPs


def mlp_weight_count(
    width: int, depth: int, block_depth: int, in_dim: int, num_classes: int
) -> int:
    """P = d n + L k n^2 + n c: the entries of U (d x n), the L k block matrices W (n x n) and V (n x c).

    The network has no biases (hptransfer/network/model.py with ``bias=False``), so P is its parameter count.
    """
    return in_dim * width + depth * block_depth * width * width + width * num_classes


def replica_step_flops(
    width: int,
    depth: int,
    block_depth: int,
    batch_size: int,
    in_dim: int,
    num_classes: int,
    family: str = "mlp",
) -> float:
    """Model FLOPs of one SGD step of one replica: 6 B P, with P from :func:`mlp_weight_count`.

    Per example and weight entry: 2 FLOPs forward (a multiply-add in y = x W), 2 for the input
    gradient (dL/dx = dL/dy W^T) and 2 for the weight gradient (dL/dW = x^T dL/dy).

    For the reference cell of docs/design.md (width 64, L = 16, k = 2, batch 128, d = 40,
    c = 10): P = 2560 + 131072 + 640 = 134272 and 6 B P = 103,120,896 FLOPs, i.e. exactly the
    design's "about 103 MFLOP"; the design counts the same thing.

    What the count leaves out (the usual "model FLOPs" convention): the first layer's input
    gradient, which autodiff never computes (2 B d n = 0.66 MFLOP in the reference cell, so the
    work strictly needed is 102.46 MFLOP), and the elementwise work (ReLU and its mask, residual
    adds with beta, the softmax cross-entropy, the SGD update w -= eta g), which is O(B n L k + P)
    and well under 1% at these shapes. Only ``family="mlp"`` is counted: a conv net's FLOPs
    depend on the image size, which these arguments do not carry.
    """
    if family != "mlp":
        raise ValueError(f"family = {family!r}; allowed: 'mlp' (conv FLOPs need the image size)")
    weights = mlp_weight_count(width, depth, block_depth, in_dim, num_classes)
    return 6.0 * batch_size * weights


# --------------------------------------------------------------------------------------------
# Matrix-multiply peak through jax


def _time_best(fn: Any, args: tuple[Any, ...], repeats: int) -> float:
    """Best wall time in seconds of ``jax.block_until_ready(fn(*args))`` over ``repeats``
    calls (``fn`` may return an array or a tree of them)."""
    import jax

    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - start)
    return best


def matmul_peak_flops(
    n: int = 1024, dtype: str = "float32", repeats: int = 10, precision: Any = None
) -> float:
    """Measured matmul peak in FLOP/s: 2 n^3 / (best time of one jitted n x n x n product).

    The product runs on jax's default device (the CPU, or the GPU when jax has one) after one
    warm-up call that compiles it; each timed call ends with ``block_until_ready``.

    ``precision`` is passed to ``jnp.matmul`` (None, "default", "high", "highest" or a
    ``jax.lax.Precision``). On CPU it changes nothing for float32. On an NVIDIA GPU from Ampere on,
    jax's default precision runs float32 products on the tensor cores in TF32, so
    ``matmul_peak_flops(8192)`` is the dense TF32 peak that the GPU roofline fraction refers to, and
    ``precision="highest"`` the true float32 one; ``dtype="bfloat16"`` gives the bf16 peak. Use
    n = 1024 on CPU and n = 8192 or more on a GPU, where smaller products do not fill the chip.

    Measured (jax 0.11.2, one H200, best of 10): n = 8192 gives 367 TFLOP/s by default (TF32),
    50 with "highest" and 707 in bfloat16; n = 16384 gives 387, 54 and 727. On 2 idle CPU cores
    (jax 0.10.2) n = 1024 gives about 210 GFLOP/s, n = 2048 the same.
    """
    import jax
    import jax.numpy as jnp

    key_a, key_b = jax.random.split(jax.random.key(0))
    a = jax.random.normal(key_a, (n, n), jnp.float32).astype(dtype)
    b = jax.random.normal(key_b, (n, n), jnp.float32).astype(dtype)
    product = jax.jit(lambda x, y: jnp.matmul(x, y, precision=precision))
    product(a, b).block_until_ready()
    return 2.0 * n**3 / _time_best(product, (a, b), repeats)


def batched_matmul_limit(
    replicas: int,
    batch_size: int,
    width: int,
    layers: int,
    in_dim: int,
    num_classes: int,
    repeats: int = 10,
) -> float:
    """The matmul limit of a sweep cell in FLOP/s: the FLOPs of one SGD step's matrix products
    for ``replicas`` replicas at the cell's own shapes, 6 B P per replica, over the best time of
    a program that does those products and nothing else.

    The program is the forward chain x0 U, then ``layers`` products by n x n matrices (scanned,
    as the engine scans its blocks), then the readout V, batched over replicas, and the gradient
    of a linear loss with respect to U, every W and V (autodiff: the two backward products per
    layer, no input gradient of the first layer, as the engine): the engine's matmuls without
    its nonlinearities, residual adds, softmax, update, evaluation or bookkeeping. The replica
    axis is split over all of jax's devices as the engine splits it (on CPU, one XLA device per
    core). W ~ N(0, 1/n) keeps the activations' scale, so no denormals slow the CPU down.

    The engine's FLOP rate over this limit is how close it runs to what these small products
    allow on this machine (the square n = 1024 matmul peak is out of reach at n = 64)."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    devices = jax.devices()
    mesh = Mesh(np.array(devices if replicas % len(devices) == 0 else devices[:1]), ("r",))
    keys = jax.random.split(jax.random.key(0), 4)
    x0 = jax.random.normal(keys[0], (replicas, batch_size, in_dim), jnp.float32)
    u = jax.random.normal(keys[1], (replicas, in_dim, width), jnp.float32) / np.sqrt(in_dim)
    ws = jax.random.normal(keys[2], (layers, replicas, width, width), jnp.float32) / np.sqrt(width)
    v = jax.random.normal(keys[3], (replicas, width, num_classes), jnp.float32) / np.sqrt(width)
    shard = lambda spec: NamedSharding(mesh, PartitionSpec(*spec))  # noqa: E731
    x0, u, v = (jax.device_put(a, shard(("r",))) for a in (x0, u, v))
    ws = jax.device_put(ws, shard((None, "r")))

    def loss(params, x):
        u, ws, v = params
        h = jnp.einsum("rbi,rij->rbj", x, u)
        h, _ = jax.lax.scan(lambda h, w: (jnp.einsum("rbi,rij->rbj", h, w), None), h, ws)
        return jnp.einsum("rbi,rij->rbj", h, v).mean()

    step = jax.jit(jax.grad(loss))
    params = (u, ws, v)
    jax.block_until_ready(step(params, x0))  # compiles
    weights = in_dim * width + layers * width * width + width * num_classes
    return 6.0 * batch_size * weights * replicas / _time_best(step, (params, x0), repeats)


# --------------------------------------------------------------------------------------------
# PyTorch one-model-at-a-time loop


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as err:
        raise RuntimeError(
            f"the PyTorch baseline needs torch, an optional extra; install it with `{TORCH_INSTALL}`"
        ) from err
    return torch


def _torch_resnet(
    torch: Any, width: int, depth: int, block_depth: int, in_dim: int, num_classes: int
) -> Any:
    """The MLP-ResNet of hptransfer/network/model.py as an ``nn.Module``, bias-free, beta = 1/sqrt(L).

    h_0 = U x; per block z_1 = W_1 relu(h), z_j = W_j relu(z_{j-1}), h += beta z_k;
    logits = V relu(h_L). PyTorch's default init (uniform, variance 1/(3 fan-in)) and beta =
    1/sqrt(L) keep activations finite at any depth; the values do not matter for the timing.
    """
    nn, F = torch.nn, torch.nn.functional

    class ResNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inp = nn.Linear(in_dim, width, bias=False)
            self.blocks = nn.ModuleList(
                nn.ModuleList(nn.Linear(width, width, bias=False) for _ in range(block_depth))
                for _ in range(depth)
            )
            self.out = nn.Linear(width, num_classes, bias=False)
            self.beta = 1.0 / math.sqrt(depth)

        def forward(self, x: Any) -> Any:
            h = self.inp(x)
            for block in self.blocks:
                z = h
                for layer in block:
                    z = layer(F.relu(z))
                h = h + self.beta * z
            return self.out(F.relu(h))

    return ResNet()


def _torch_sgd_steps(
    torch: Any, model: Any, xs: Any, ys: Any, lr: float, warmup: int
) -> tuple[float, int]:
    """Run one SGD step per batch in (xs, ys); return (seconds after warm-up, timed steps)."""
    F = torch.nn.functional
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    start = 0.0
    for i in range(xs.shape[0]):
        if i == warmup:
            start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(xs[i]), ys[i]).backward()
        optimizer.step()
    return time.perf_counter() - start, xs.shape[0] - warmup


def torch_replica_steps_per_second(
    width: int,
    depth: int,
    block_depth: int,
    batch_size: int = 128,
    in_dim: int = 40,
    num_classes: int = 10,
    steps: int = 200,
    warmup: int = 20,
    threads: int | None = None,
) -> float:
    """Replica-steps per second of a plain PyTorch loop training one model at a time (on CPU).

    One replica-step is one SGD step (zero_grad, forward, ``F.cross_entropy``, backward,
    ``optimizer.step()``) of the bias-free MLP-ResNet of :func:`_torch_resnet` on a batch of
    ``batch_size``. Random inputs and labels for all ``warmup + steps`` steps are drawn up front;
    only the last ``steps`` are timed, so the rate is ``steps / seconds``. ``threads`` sets
    ``torch.set_num_threads`` for the run (None keeps torch's default, one per core) and is
    restored afterwards. Raises RuntimeError naming the install command when torch is missing.

    Prefer ``threads=1`` for the benchmark: at these shapes (64 x 64 products on 128 rows) a
    second intra-op thread gains nothing on an idle 2-core machine (both about 340 steps/s), but
    when another process shares the cores torch's default 2 threads collapse (to 10 to 100
    steps/s, measured) while 1 thread holds its rate, which would flatter any ratio against it.
    """
    if steps < 1 or warmup < 0:
        raise ValueError(f"steps = {steps}, warmup = {warmup}; allowed: steps >= 1, warmup >= 0")
    torch = _import_torch()
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        torch.manual_seed(0)
        model = _torch_resnet(torch, width, depth, block_depth, in_dim, num_classes)
        xs = torch.randn(warmup + steps, batch_size, in_dim)
        ys = torch.randint(0, num_classes, (warmup + steps, batch_size))
        seconds, timed = _torch_sgd_steps(torch, model, xs, ys, lr=0.05, warmup=warmup)
    finally:
        torch.set_num_threads(previous_threads)
    return timed / seconds


# --------------------------------------------------------------------------------------------


def main() -> None:
    """Print the reference cell's baselines (width 64, L = 16, k = 2, batch 128) for a sanity check."""
    cell = dict(width=64, depth=16, block_depth=2)
    flops = replica_step_flops(**cell, batch_size=128, in_dim=40, num_classes=10)
    print(f"replica-step FLOPs (64, L=16, k=2, B=128): {flops / 1e6:.2f} MFLOP")
    peak = matmul_peak_flops()
    print(f"matmul peak (jax, n=1024, float32): {peak / 1e9:.1f} GFLOP/s")
    for threads in (1, None):
        try:
            rate = torch_replica_steps_per_second(**cell, threads=threads)
        except RuntimeError as err:
            print(f"torch baseline skipped: {err}")
            return
        print(
            f"torch one-model loop, threads={threads}: {rate:.1f} replica-steps/s "
            f"({rate * flops / 1e9:.1f} GFLOP/s, {rate * flops / peak:.1%} of the matmul peak)"
        )


if __name__ == "__main__":
    main()
