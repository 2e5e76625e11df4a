"""A pure-functional pre-LayerNorm causal transformer, parameterized like the ResNets.

For width n (model dimension), depth L (blocks), heads H of dimension d (n = H d), MLP ratio r
and tokens t_1..t_T of a vocabulary of V bytes (docs/parameterizations.md, the transformer):

    h_0 = c_in * U[t]                                         (embedding: role ``input``)
    a_l = h_{l-1} + beta * Attn(LN(h_{l-1}))                  (attention branch)
    h_l = a_l + beta * c_2 * W_2 phi(c_1 * W_1 LN(a_l))       (MLP branch, phi = GELU)
    f   = c_out * LN(h_L) V                                   (unembedding: role ``readout``)

    Attn(x) = c_o * [softmax(tau * q k^T + causal mask) v] W_o,  q = c_q * rope(x W_q),
              k = c_k * rope(x W_k), v = c_v * x W_v   (per head)

The MLP's two layers are the roles ``hidden_1`` and ``hidden_2``: exactly the two-layer residual
block of the ResNets (block depth k = 2), so a scheme's ``hidden_1`` override (NFD's sqrt(L))
reaches the MLP's first layer. The attention matrices are the roles ``attn_q``, ``attn_k``,
``attn_v``, ``attn_out``; the norms' parameters the role ``norm``. Every c, beta and the logit
scale tau are traced multipliers (:mod:`hptransfer.network.scaling`): tau = d0^-1/2 (d/d0)^-e with
the scheme's ``attention_exponent`` e (1/2: 1/sqrt(d) as in SP; 1: 1/d as muP asks), so tau is
1/sqrt(d0) at the base shape for every scheme.

LN(x) = (x - mean) / sqrt(var + 1e-5) * (1 + g) + b with g and b zero at init (role ``norm``):
the gain is stored as its offset from 1, so every norm parameter starts at zero like a bias and
its gradient is the usual gain's. Positions enter through rotary embeddings (RoPE, base 10000)
on q and k, which have no parameters. Block parameters are stacked along a leading depth axis
and scanned, so compile time stays flat in L.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from hptransfer.network.architecture import ATTENTION_ROLES, Architecture

NORMS = ("norm_attn", "norm_mlp")  # the two norms of a block, in forward order
LN_EPS = 1e-5
ROPE_BASE = 10_000.0


def kernel_shapes(arch: Architecture) -> dict[str, tuple[int, ...]]:
    """Shape of one kernel per role (block kernels without the depth axis)."""
    n, r_n, v = arch.width, arch.mlp_width, arch.num_classes
    shapes = {"input": (v, n)} | {role: (n, n) for role in ATTENTION_ROLES}
    return shapes | {"hidden_1": (n, r_n), "hidden_2": (r_n, n), "readout": (n, v)}


def param_roles(arch: Architecture) -> dict:
    """A pytree shaped like the params whose leaves are role names (norm leaves: ``norm``)."""
    norm = {"gain": "norm", "bias": "norm"}
    blocks = {role: {"kernel": role} for role in arch.block_roles}
    blocks |= {name: dict(norm) for name in NORMS}
    return {
        "input": {"kernel": "input"},
        "blocks": blocks,
        "norm_final": dict(norm),
        "readout": {"kernel": "readout"},
    }


def leaf_shape(arch: Architecture, path: tuple[str, ...]) -> tuple[int, ...]:
    """The shape of the parameter at ``path`` (block leaves with the depth axis first)."""
    if path[-1] == "kernel":
        role = path[1] if path[0] == "blocks" else path[0]
        shape = kernel_shapes(arch)[role]
    else:
        shape = (arch.width,)
    return (arch.depth, *shape) if path[0] == "blocks" else shape


def layer_norm(x: jax.Array, p: dict) -> jax.Array:
    """(x - mean) / sqrt(var + eps) * (1 + gain offset) + bias over the last axis."""
    mean = x.mean(-1, keepdims=True)
    var = jnp.square(x - mean).mean(-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + LN_EPS) * (1.0 + p["gain"]) + p["bias"]


def rope(x: jax.Array) -> jax.Array:
    """Rotary position embedding of x with shape (..., T, heads, d): pairs (x_i, x_{i+d/2})
    rotated by position t times frequency ROPE_BASE^(-2i/d)."""
    t, d = x.shape[-3], x.shape[-1]
    freq = ROPE_BASE ** (-jnp.arange(d // 2, dtype=jnp.float32) * 2.0 / d)
    angle = jnp.arange(t, dtype=jnp.float32)[:, None] * freq  # (T, d/2)
    cos, sin = jnp.cos(angle)[:, None, :], jnp.sin(angle)[:, None, :]
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    return jnp.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)


def dense(w: jax.Array, x: jax.Array) -> jax.Array:
    return x @ w


def embed(w: jax.Array, tokens: jax.Array) -> jax.Array:
    """U[t]: the embedding rows of the tokens (the one-hot product without the one-hot)."""
    return jnp.take(w, tokens, axis=0)


def _mix(q: jax.Array, k: jax.Array, v: jax.Array, tau: jax.Array) -> jax.Array:
    """softmax(tau q k^T + causal mask) v per head; inputs and output (..., T, H, d).

    Heads are moved in front of the positions first, so both products are plain batched
    matmuls over (..., H): on XLA:CPU this runs the sweep's attention 1.4x faster than the
    equivalent einsums over (..., T, H, d) (measured under vmap over 30 replicas;
    jax.nn.dot_product_attention was no faster there)."""
    t = q.shape[-3]
    q, k, v = (a.swapaxes(-3, -2) for a in (q, k, v))  # (..., H, T, d)
    logits = tau * (q @ k.swapaxes(-1, -2))
    causal = jnp.tril(jnp.ones((t, t), bool))
    logits = jnp.where(causal, logits, jnp.finfo(logits.dtype).min)
    return (jax.nn.softmax(logits, axis=-1) @ v).swapaxes(-3, -2)


def block(
    h: jax.Array, blk: dict, forward: dict, branch: jax.Array, tau: jax.Array, arch: Architecture
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """One transformer block on the residual stream h (..., T, n) (module docstring).

    Returns the new stream and each weight role's input (what its kernel multiplies), which
    the feature-movement statistics read (:mod:`hptransfer.network.movement`)."""
    c = {role: forward[role]["kernel"] for role in arch.block_roles}
    heads = (*h.shape[:-1], arch.n_heads, arch.d_head)
    x = layer_norm(h, blk["norm_attn"])
    q, k, v = (c[r] * dense(blk[r]["kernel"], x) for r in ("attn_q", "attn_k", "attn_v"))
    mixed = _mix(rope(q.reshape(heads)), rope(k.reshape(heads)), v.reshape(heads), tau)
    mixed = mixed.reshape(h.shape)
    a = h + branch * c["attn_out"] * dense(blk["attn_out"]["kernel"], mixed)
    y = layer_norm(a, blk["norm_mlp"])
    z = jax.nn.gelu(c["hidden_1"] * dense(blk["hidden_1"]["kernel"], y))
    out = a + branch * c["hidden_2"] * dense(blk["hidden_2"]["kernel"], z)
    inputs = {"attn_q": x, "attn_k": x, "attn_v": x, "attn_out": mixed, "hidden_1": y}
    return out, inputs | {"hidden_2": z}


def readout_features(params: dict, h: jax.Array) -> jax.Array:
    """LN(h_L): the unembedding's input."""
    return layer_norm(h, params["norm_final"])


def apply(
    params: dict, tokens: jax.Array, forward: dict, branch: jax.Array, tau: jax.Array,
    arch: Architecture,
) -> jax.Array:  # fmt: skip
    """Next-token logits f (batch, T, V) of the token batch (batch, T) (module docstring)."""
    h = forward["input"]["kernel"] * embed(params["input"]["kernel"], tokens)

    def step(h, blk):
        return block(h, blk, forward["blocks"], branch, tau, arch)[0], None

    h, _ = jax.lax.scan(step, h, params["blocks"])
    return forward["readout"]["kernel"] * dense(
        params["readout"]["kernel"], readout_features(params, h)
    )
