"""Pure-functional pre-activation ResNets parameterized by width, depth and block depth, and
the one entry point of every model family: ``kernel_shapes``, ``param_roles``, ``raw_init``,
``apply`` and ``check_inputs`` dispatch the ``transformer`` family to
:mod:`hptransfer.network.transformer` (the shape record: :mod:`hptransfer.network.architecture`).

The network (docs/parameterizations.md, notation), for width n, depth L (number of residual blocks) and block
depth k:

    h_0 = c_in * U x                                    (input layer, no activation before it)
    z_1 = c_1 * W_1 phi(h_{l-1}),  z_j = c_j * W_j phi(z_{j-1})   (j = 2..k, one block)
    h_l = h_{l-1} + beta * z_k                          (l = 1..L)
    f(x) = c_out * V phi(h_L)                           (readout; pooled over space for conv)

with phi = ReLU and every c and beta a *traced* multiplier (see :mod:`hptransfer.network.scaling`), so
that all schemes and learning rates share one compiled program. ``family="mlp"`` uses dense
layers (the theory's object, the default); ``family="conv"`` uses 3x3 convolutions with width =
channels (stride-2 stem, global average pooling before the readout).

Parameters are an explicit pytree ``{"input": {"kernel"}, "blocks": {"hidden_j": {"kernel"}},
"readout": {"kernel"}}`` (plus ``"bias"`` leaves when ``bias=True``). Block kernels are stacked
along a leading depth axis and the blocks run under ``lax.scan``, so compile time is flat in L.

Why not flax modules: a scheme needs every init scale and forward multiplier as a runtime array
and the raw initial draws shared across schemes (paired comparisons). Flax Linen/NNX would hide
both behind module state; we keep the function explicit and use flax only for what serves it
(``flax.struct`` pytrees and ``flax.traverse_util`` paths).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import traverse_util

from hptransfer.network import transformer
from hptransfer.network.architecture import FAMILIES, Architecture, ArchitectureError

Params = dict[str, Any]
__all__ = [
    "FAMILIES", "Architecture", "ArchitectureError", "Params", "apply", "check_inputs",
    "fan_in", "hidden_op", "input_op", "kernel_shapes", "param_roles", "raw_init",
    "readout_features", "scale_init",
]  # fmt: skip


# --------------------------------------------------------------------------------------------
# Layer operations: the only place where the two families differ.


def _conv(w: jax.Array, x: jax.Array, stride: int = 1) -> jax.Array:
    return jax.lax.conv_general_dilated(
        x, w, (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


def input_op(arch: Architecture) -> Callable[[jax.Array, jax.Array], jax.Array]:
    if arch.family == "transformer":
        return transformer.embed
    if arch.family == "mlp":
        return lambda w, x: x @ w
    return lambda w, x: _conv(w, x, stride=2)


def hidden_op(arch: Architecture) -> Callable[[jax.Array, jax.Array], jax.Array]:
    if arch.family in ("mlp", "transformer"):
        return lambda w, x: x @ w
    return _conv


def readout_features(arch: Architecture, h: jax.Array) -> jax.Array:
    """phi(h_L), pooled over space for conv nets: the readout layer's input."""
    a = jax.nn.relu(h)
    return a if arch.family == "mlp" else a.mean(axis=(1, 2))


def kernel_shapes(arch: Architecture) -> dict[str, tuple[int, ...]]:
    """Shape of one kernel per role (block kernels without the depth axis)."""
    if arch.family == "transformer":
        return transformer.kernel_shapes(arch)
    n, c = arch.width, arch.num_classes
    if arch.family == "mlp":
        shapes = {"input": (arch.in_shape[0], n)}
        shapes |= {role: (n, n) for role in arch.hidden_roles}
    else:
        shapes = {"input": (3, 3, arch.in_shape[2], n)}
        shapes |= {role: (3, 3, n, n) for role in arch.hidden_roles}
    shapes["readout"] = (n, c)
    return shapes


def fan_in(arch: Architecture, role: str) -> int:
    """Fan-in of a role's kernel: every axis but the output one."""
    return math.prod(kernel_shapes(arch)[role][:-1])


def param_roles(arch: Architecture) -> Params:
    """A pytree shaped like the params whose leaves are role names (biases are ``vector``)."""
    if arch.family == "transformer":
        return transformer.param_roles(arch)
    tree: Params = {"input": {"kernel": "input"}, "blocks": {}, "readout": {"kernel": "readout"}}
    for role in arch.hidden_roles:
        tree["blocks"][role] = {"kernel": role}
    if arch.bias:
        tree["input"]["bias"] = "vector"
        tree["readout"]["bias"] = "vector"
        for role in arch.hidden_roles:
            tree["blocks"][role]["bias"] = "vector"
    return tree


def _leaf_shape(arch: Architecture, path: tuple[str, ...]) -> tuple[int, ...]:
    if arch.family == "transformer":
        return transformer.leaf_shape(arch, path)
    role = path[1] if path[0] == "blocks" else path[0]
    kshape = kernel_shapes(arch)[role]
    shape = kshape if path[-1] == "kernel" else (kshape[-1],)
    return (arch.depth, *shape) if path[0] == "blocks" else shape


def raw_init(key: jax.Array, arch: Architecture) -> Params:
    """Unit-variance draws for every kernel (zeros for biases and norms), before any scaling.

    Every scheme scales the same draws (:func:`scale_init`), so schemes compared at one seed
    start from the same random matrices.
    """
    flat = traverse_util.flatten_dict(param_roles(arch))
    keys = jax.random.split(key, len(flat))
    out = {}
    for k, path in zip(keys, sorted(flat), strict=True):
        shape = _leaf_shape(arch, path)
        out[path] = (
            jax.random.normal(k, shape, jnp.float32) if path[-1] == "kernel" else jnp.zeros(shape)
        )
    return traverse_util.unflatten_dict(out)


def scale_init(raw: Params, init_std: Params) -> Params:
    """W = std * raw with std (a traced per-leaf scalar) = fan-in std times the scheme's factor."""
    return jax.tree.map(lambda w, s: w * s, raw, init_std)


def _dense_or_conv_bias(y: jax.Array, p: dict[str, jax.Array]) -> jax.Array:
    return y + p["bias"] if "bias" in p else y


def apply(
    params: Params, x: jax.Array, forward: Params, branch: jax.Array, arch: Architecture,
    attention: jax.Array | None = None,
) -> jax.Array:  # fmt: skip
    """Logits f(x) of the pre-activation ResNet (module docstring) for a batch x, or of the
    transformer (:func:`hptransfer.network.transformer.apply`) for a token batch.

    ``forward`` is a pytree like ``params`` of forward multipliers (one scalar per leaf; only
    kernel entries are used), ``branch`` is beta, ``attention`` the transformer's logit scale
    tau (unused by the ResNets).
    """
    if arch.family == "transformer":
        return transformer.apply(params, x, forward, branch, attention, arch)
    op_in, op_h = input_op(arch), hidden_op(arch)
    h = forward["input"]["kernel"] * op_in(params["input"]["kernel"], x)
    h = _dense_or_conv_bias(h, params["input"])

    def block(h, blk):
        z = h
        for role in arch.hidden_roles:
            z = forward["blocks"][role]["kernel"] * op_h(blk[role]["kernel"], jax.nn.relu(z))
            z = _dense_or_conv_bias(z, blk[role])
        return h + branch * z, None

    h, _ = jax.lax.scan(block, h, params["blocks"])
    logits = forward["readout"]["kernel"] * (
        readout_features(arch, h) @ params["readout"]["kernel"]
    )
    return _dense_or_conv_bias(logits, params["readout"])


def check_inputs(x: Any, arch: Architecture) -> None:
    """Raise a clear error when a batch does not match the architecture's input shape."""
    shape = tuple(getattr(x, "shape", ()))
    dtype = getattr(x, "dtype", None)
    if arch.family == "transformer" and (dtype is None or dtype.kind not in "iu"):
        raise ArchitectureError(
            f"inputs have dtype {dtype}; this transformer expects integer tokens in "
            f"[0, {arch.num_classes})"
        )
    if len(shape) != len(arch.in_shape) + 1 or shape[1:] != arch.in_shape:
        raise ArchitectureError(
            f"inputs have shape {shape}; this {arch.family} network expects "
            f"(batch, {', '.join(map(str, arch.in_shape))})"
        )
