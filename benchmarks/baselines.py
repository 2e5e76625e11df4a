"""Reference points for the throughput benchmark (docs/design.md, throughput reference cell).

Three yardsticks that the sweep engine's replica-steps per second are compared against:

* :func:`torch_replica_steps_per_second`: a plain PyTorch loop training the same MLP-ResNet one
  model at a time, the way a microsoft/mup-style sweep runs (the "about 200" of docs/design.md).
* :func:`matmul_peak_flops`: the machine's measured matrix-multiply peak through jax (the "about
  190 GFLOP/s on 2 cores" of docs/design.md, or the TF32 / bf16 peak of a GPU).
* :func:`replica_step_flops`: the model FLOPs of one training step of one replica, so that
  replica-steps/s x FLOPs / peak is the fraction of peak reached (the "about 103 MFLOP").

The transformer cell has its own three: :func:`torch_transformer_replica_steps_per_second`
(PyTorch training R replicas at once, ``torch.func.vmap`` over stacked parameters) and
:func:`torch_transformer_loop_steps_per_second` (one ``nn.Module`` at a time), both running
:func:`torch_transformer`, the forward of hptransfer/network/transformer.py at SP;
:func:`transformer_replica_step_flops` (3 B x ``costmodel.forward_flops``, the engine's own
count) and :func:`transformer_matmul_limit` (the cell's matrix products and nothing else).

``benchmarks/`` is a plain folder; import this module after putting the folder on ``sys.path``.
torch is an optional extra and is imported only inside the function that needs it.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Iterator
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


def transformer_arch(
    width: int, depth: int, seq_len: int, head_dim: int, mlp_ratio: int, vocab: int = 256
) -> Any:
    """The transformer cell's :class:`~hptransfer.network.architecture.Architecture`: block depth
    2, in_shape (T,), the byte vocabulary, fixed head dimension. Its base shape is the cell itself
    (the FLOP count does not depend on it)."""
    from hptransfer.network.architecture import Architecture

    return Architecture(
        width, depth, 2, (seq_len,), vocab, family="transformer", base_width=width,
        base_depth=depth, head_dim=head_dim, mlp_ratio=mlp_ratio,
    )  # fmt: skip


def transformer_replica_step_flops(
    width: int,
    depth: int,
    seq_len: int,
    batch_size: int,
    head_dim: int,
    mlp_ratio: int,
    vocab: int = 256,
) -> float:
    """Model FLOPs of one SGD step of one transformer replica: 3 B ``costmodel.forward_flops``.

    The engine's cost model counts the same (``costmodel.step_cost``): per sequence of T tokens
    2 T (L (4 n^2 + 2 r n^2 + 2 T n) + n V) forward (the q, k, v and output products, the MLP,
    the attention scores and their mix over all T x T pairs, the unembedding; the embedding is a
    gather), and twice that backward. Both the engine and PyTorch are judged by this one count.
    For the benchmark cell (n = 64, L = 8, T = 64, B = 16, d = 16, r = 4): 2.92 GFLOP.
    """
    from hptransfer.sweeps import costmodel

    arch = transformer_arch(width, depth, seq_len, head_dim, mlp_ratio, vocab)
    return 3.0 * batch_size * costmodel.forward_flops(arch)


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


def transformer_matmul_limit(
    replicas: int,
    batch_size: int,
    seq_len: int,
    width: int,
    depth: int,
    head_dim: int,
    mlp_ratio: int,
    vocab: int = 256,
    repeats: int = 10,
) -> float:
    """The matmul limit of a transformer cell in FLOP/s: :func:`transformer_replica_step_flops`
    per replica for ``replicas`` replicas, over the best time of a program that does the cell's
    matrix products and nothing else (the transformer's counterpart of
    :func:`batched_matmul_limit`, whose chain of n x n products is the MLP's).

    Per block, on the (R, B, T, n) stream: x W_q, x W_k, x W_v, the per-head scores q k^T (all
    T x T pairs, as the engine computes them before the causal mask) and their mix with v, the
    output product, then the MLP's n -> r n -> n; after the L blocks (scanned) the unembedding
    to V logits. Gradient of a linear loss with respect to the stream's start (the embedding's
    rows, whose gradient the engine scatters into U) and every matrix: every product's two
    backward products, i.e. 3 x the forward FLOPs. Left out: LayerNorm, RoPE, the causal mask,
    softmax, GELU, residual adds, cross-entropy, the update. The scores are scaled by
    1/sqrt(d T) and W ~ N(0, 1/fan-in), so every tensor keeps unit scale (no overflow, no
    denormals). The replica axis is split over jax's devices as the engine splits it.
    """
    import jax
    import jax.numpy as jnp
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    n, d, r_n = width, head_dim, mlp_ratio * width
    devices = jax.devices()
    mesh = Mesh(np.array(devices if replicas % len(devices) == 0 else devices[:1]), ("r",))
    keys = iter(jax.random.split(jax.random.key(0), 8))

    def normal(shape: tuple[int, ...], fan_in: int) -> Any:
        return jax.random.normal(next(keys), shape, jnp.float32) / np.sqrt(fan_in)

    h0 = normal((replicas, batch_size, seq_len, n), 1)
    blocks = tuple(normal((depth, replicas, n, n), n) for _ in range(4))
    blocks += (normal((depth, replicas, n, r_n), n), normal((depth, replicas, r_n, n), r_n))
    unembed = normal((replicas, n, vocab), n)
    shard = lambda spec: NamedSharding(mesh, PartitionSpec(*spec))  # noqa: E731
    h0, unembed = (jax.device_put(a, shard(("r",))) for a in (h0, unembed))
    blocks = tuple(jax.device_put(w, shard((None, "r"))) for w in blocks)
    scale = 1.0 / np.sqrt(d * seq_len)

    def loss(params: tuple[Any, Any, Any]) -> Any:
        h0, blocks, unembed = params

        def block(h: Any, w: tuple[Any, ...]) -> tuple[Any, None]:
            wq, wk, wv, wo, w1, w2 = w
            dense = lambda x, m: jnp.einsum("rbti,rij->rbtj", x, m)  # noqa: E731
            heads = (*h.shape[:-1], n // d, d)
            q, k, v = (dense(h, m).reshape(heads) for m in (wq, wk, wv))
            scores = scale * jnp.einsum("rbthd,rbshd->rbhts", q, k)
            mixed = jnp.einsum("rbhts,rbshd->rbthd", scores, v).reshape(h.shape)
            return dense(dense(dense(mixed, wo), w1), w2), None

        h, _ = jax.lax.scan(block, h0, blocks)
        return jnp.einsum("rbti,rij->rbtj", h, unembed).mean()

    step = jax.jit(jax.grad(loss))
    params = (h0, blocks, unembed)
    jax.block_until_ready(step(params))  # compiles
    flops = transformer_replica_step_flops(
        width, depth, seq_len, batch_size, head_dim, mlp_ratio, vocab
    )
    return flops * replicas / _time_best(step, (params,), repeats)


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
# PyTorch transformer: R replicas batched with torch.func.vmap, and one model at a time


@contextlib.contextmanager
def _torch_threads(torch: Any, threads: int | None) -> Iterator[None]:
    """``torch.set_num_threads(threads)`` for the block (None: unchanged), then restored."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def torch_transformer(
    width: int,
    depth: int,
    seq_len: int,
    head_dim: int,
    mlp_ratio: int,
    vocab: int = 256,
    attention: str = "math",
    seed: int = 0,
    params: dict | None = None,
) -> Any:
    """hptransfer/network/transformer.py's forward at SP as an ``nn.Module``: tokens (..., T) to
    logits (..., T, V).

    SP: every forward multiplier c = 1, branch multiplier beta = 1, attention logit scale
    tau = 1/sqrt(d_head); init N(0, 1/fan-in) for every linear layer (the embedding's fan-in is
    the vocabulary: std 1/sqrt(256)), LayerNorm gain 1 and bias 0. The same math as ours:
    pre-LayerNorm (eps 1e-5, biased variance), RoPE on q and k (pairs (x_i, x_{i+d/2}), base
    10000), causal softmax attention per head, tanh-approximated GELU (``jax.nn.gelu``'s
    default), no biases on linear layers, untied embedding and unembedding. Two differences of
    form, none of math: ``nn.Linear`` stores W^T (out x in), and ``nn.LayerNorm`` stores the gain
    1 + g where ours stores g (same gradient, same SGD update).

    ``attention``: "math" (tau q k^T, the causal mask, softmax, the mix: four ops that
    ``torch.func.vmap`` batches) or "sdpa" (``F.scaled_dot_product_attention`` with
    ``is_causal``: PyTorch's fused CPU kernel, which vmap runs one replica at a time, so only
    for a single model). ``params``: a JAX parameter tree of the same shape (from
    ``hptransfer.network.model.raw_init`` / ``scale_init``) to copy in, instead of drawing a
    fresh init from ``seed``.
    """
    if attention not in ("math", "sdpa"):
        raise ValueError(f"attention = {attention!r}; allowed: 'math', 'sdpa'")
    if width % head_dim or head_dim % 2:
        raise ValueError(f"width {width}, head_dim {head_dim}: need an even divisor of the width")
    torch = _import_torch()
    from hptransfer.network.transformer import LN_EPS, ROPE_BASE

    nn, F = torch.nn, torch.nn.functional
    heads, tau, half = width // head_dim, 1.0 / math.sqrt(head_dim), head_dim // 2

    def rope(x: Any, cos: Any, sin: Any) -> Any:
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm_attn = nn.LayerNorm(width, eps=LN_EPS)
            self.attn_q, self.attn_k, self.attn_v, self.attn_out = (
                nn.Linear(width, width, bias=False) for _ in range(4)
            )
            self.norm_mlp = nn.LayerNorm(width, eps=LN_EPS)
            self.hidden_1 = nn.Linear(width, mlp_ratio * width, bias=False)
            self.hidden_2 = nn.Linear(mlp_ratio * width, width, bias=False)

        def forward(self, h: Any, cos: Any, sin: Any, future: Any) -> Any:
            split = (*h.shape[:-1], heads, head_dim)  # (..., T, H, d)
            x = self.norm_attn(h)
            q = rope(self.attn_q(x).reshape(split), cos, sin).transpose(-3, -2)  # (..., H, T, d)
            k = rope(self.attn_k(x).reshape(split), cos, sin).transpose(-3, -2)
            v = self.attn_v(x).reshape(split).transpose(-3, -2)
            if attention == "sdpa":
                mixed = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=tau)
            else:
                logits = (tau * q) @ k.transpose(-1, -2)
                logits = logits.masked_fill(future, torch.finfo(logits.dtype).min)
                mixed = logits.softmax(dim=-1) @ v
            a = h + self.attn_out(mixed.transpose(-3, -2).reshape(h.shape))
            y = self.hidden_1(self.norm_mlp(a))
            return a + self.hidden_2(F.gelu(y, approximate="tanh"))

    class Transformer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.input = nn.Embedding(vocab, width)
            self.blocks = nn.ModuleList(Block() for _ in range(depth))
            self.norm_final = nn.LayerNorm(width, eps=LN_EPS)
            self.readout = nn.Linear(width, vocab, bias=False)
            freq = ROPE_BASE ** (-torch.arange(half, dtype=torch.float32) * 2.0 / head_dim)
            angle = torch.arange(seq_len, dtype=torch.float32)[:, None] * freq  # (T, d/2)
            self.register_buffer("cos", torch.cos(angle)[:, None, :], persistent=False)
            self.register_buffer("sin", torch.sin(angle)[:, None, :], persistent=False)
            future = torch.ones(seq_len, seq_len, dtype=torch.bool).triu(1)
            self.register_buffer("future", future, persistent=False)

        def forward(self, tokens: Any) -> Any:
            h = self.input(tokens)
            for blk in self.blocks:
                h = blk(h, self.cos, self.sin, self.future)
            return self.readout(self.norm_final(h))

    model = Transformer()
    with torch.no_grad():
        if params is None:
            _init_sp(torch, model, seed)
        else:
            _load_jax_params(torch, model, params)
    return model


def _init_sp(torch: Any, model: Any, seed: int) -> None:
    """SP init of :func:`torch_transformer`'s module in place: N(0, 1/fan-in) for every matrix
    (the embedding's fan-in is the vocabulary), LayerNorm gain 1 and bias 0."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.fill_(1.0 if name.endswith("weight") else 0.0)
            else:
                fan_in = p.shape[0] if name == "input.weight" else p.shape[1]
                p.normal_(0.0, 1.0 / math.sqrt(fan_in), generator=gen)


def _load_jax_params(torch: Any, model: Any, params: dict) -> None:
    """Copy a JAX transformer parameter tree into :func:`torch_transformer`'s module (kernels
    (in, out) become ``nn.Linear`` weights (out, in); the LayerNorm gain offset g becomes 1 + g;
    block leaves are split along their leading depth axis). Call under ``torch.no_grad()``."""

    def tensor(x: Any) -> Any:
        return torch.from_numpy(np.array(x, dtype=np.float32))

    def norm(module: Any, p: dict) -> None:
        module.weight.copy_(1.0 + tensor(p["gain"]))
        module.bias.copy_(tensor(p["bias"]))

    model.input.weight.copy_(tensor(params["input"]["kernel"]))
    model.readout.weight.copy_(tensor(params["readout"]["kernel"]).T)
    norm(model.norm_final, params["norm_final"])
    stacked = params["blocks"]
    for i, blk in enumerate(model.blocks):
        for role in ("attn_q", "attn_k", "attn_v", "attn_out", "hidden_1", "hidden_2"):
            getattr(blk, role).weight.copy_(tensor(stacked[role]["kernel"][i]).T)
        for name in ("norm_attn", "norm_mlp"):
            norm(getattr(blk, name), {key: x[i] for key, x in stacked[name].items()})


def _lm_batches(
    torch: Any, count: int, lead: tuple[int, ...], batch_size: int, seq_len: int, vocab: int
) -> tuple[Any, Any]:
    """``count`` batches of random byte sequences: inputs (count, *lead, B, T) and next-byte
    targets of the same shape (a random stream of T + 1 bytes, shifted by one)."""
    gen = torch.Generator().manual_seed(1)
    seqs = torch.randint(0, vocab, (count, *lead, batch_size, seq_len + 1), generator=gen)
    return seqs[..., :-1].contiguous(), seqs[..., 1:].contiguous()


def _bits(torch: Any, logits: Any, targets: Any) -> Any:
    """Mean cross-entropy in bits per token (nats / ln 2), as the engine's transformer loss."""
    flat = logits.reshape(-1, logits.shape[-1])
    return torch.nn.functional.cross_entropy(flat, targets.reshape(-1)) / math.log(2.0)


def torch_transformer_replica_steps_per_second(
    width: int,
    depth: int,
    seq_len: int,
    batch_size: int,
    head_dim: int,
    mlp_ratio: int,
    replicas: int = 16,
    steps: int = 10,
    threads: int | None = None,
    warmup: int = 2,
    log2_lrs: tuple[float, ...] = (-6.0, -5.0, -4.0, -3.0),
    vocab: int = 256,
) -> float:
    """Replica-steps per second of PyTorch training ``replicas`` transformers at once (on CPU).

    R models of :func:`torch_transformer` (attention "math", SP init seeds 0..R-1) are stacked by
    ``torch.func.stack_module_state``; one iteration is ``vmap(grad(loss))`` over the stacked
    parameters and R batches (``functional_call`` on a meta-device copy of the module, loss
    :func:`_bits`), then plain SGD p -= eta_r g with replica r's rate 2**``log2_lrs``[r mod 4]
    (the cell's 4 rates, repeated). Random byte sequences for all ``warmup + steps`` iterations
    are drawn up front; the last ``steps`` are timed, so the rate is R steps / seconds.
    ``threads`` sets ``torch.set_num_threads`` for the run (None: torch's default, one per
    core) and is restored afterwards. Raises RuntimeError naming the install command when torch
    is missing.
    """
    if steps < 1 or warmup < 0 or replicas < 1:
        raise ValueError(
            f"steps = {steps}, warmup = {warmup}, replicas = {replicas}; allowed: steps >= 1, "
            "warmup >= 0, replicas >= 1"
        )
    torch = _import_torch()
    from torch.func import functional_call, grad, stack_module_state, vmap

    with _torch_threads(torch, threads):
        first = torch_transformer(width, depth, seq_len, head_dim, mlp_ratio, vocab)
        models = [first] + [copy.deepcopy(first) for _ in range(replicas - 1)]
        for seed, model in enumerate(models):  # one class for all (stack_module_state asks it)
            _init_sp(torch, model, seed)
        params, _ = stack_module_state(models)
        params = {name: p.detach() for name, p in params.items()}
        buffers = dict(models[0].named_buffers())
        base = copy.deepcopy(models[0]).to("meta")
        rates = [2.0 ** log2_lrs[r % len(log2_lrs)] for r in range(replicas)]
        lrs = torch.tensor(rates, dtype=torch.float32)
        xs, ys = _lm_batches(torch, warmup + steps, (replicas,), batch_size, seq_len, vocab)

        def loss(p: dict, x: Any, y: Any) -> Any:
            return _bits(torch, functional_call(base, (p, buffers), (x,)), y)

        step = vmap(grad(loss))
        start = 0.0
        for i in range(warmup + steps):
            if i == warmup:
                start = time.perf_counter()
            grads = step(params, xs[i], ys[i])
            with torch.no_grad():
                for name, p in params.items():
                    p.sub_(lrs.view(-1, *[1] * (p.dim() - 1)) * grads[name])
        seconds = time.perf_counter() - start
    return replicas * steps / seconds


def torch_transformer_loop_steps_per_second(
    width: int,
    depth: int,
    seq_len: int,
    batch_size: int,
    head_dim: int,
    mlp_ratio: int,
    steps: int = 20,
    threads: int | None = None,
    warmup: int = 3,
    attention: str = "sdpa",
    lr: float = 2.0**-4,
    vocab: int = 256,
) -> float:
    """Replica-steps per second of a plain PyTorch loop training one transformer at a time.

    One replica-step is one SGD step (zero_grad, forward, :func:`_bits`, backward,
    ``optimizer.step()``) of :func:`torch_transformer` on a batch of ``batch_size`` random byte
    sequences; the last ``steps`` of ``warmup + steps`` are timed (rate = steps / seconds), as
    in :func:`torch_replica_steps_per_second`. ``attention`` "sdpa" (default) runs PyTorch's
    fused causal attention kernel, the fastest plain form; "math" the four ops of the batched
    run. ``threads`` as in :func:`torch_transformer_replica_steps_per_second`.
    """
    if steps < 1 or warmup < 0:
        raise ValueError(f"steps = {steps}, warmup = {warmup}; allowed: steps >= 1, warmup >= 0")
    torch = _import_torch()
    with _torch_threads(torch, threads):
        model = torch_transformer(width, depth, seq_len, head_dim, mlp_ratio, vocab, attention)
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        xs, ys = _lm_batches(torch, warmup + steps, (), batch_size, seq_len, vocab)
        start = 0.0
        for i in range(warmup + steps):
            if i == warmup:
                start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            _bits(torch, model(xs[i]), ys[i]).backward()
            optimizer.step()
        seconds = time.perf_counter() - start
    return steps / seconds


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
