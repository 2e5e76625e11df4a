"""Per-layer feature movement on a fixed probe batch (docs/coordcheck.md).

For a layer with pre-activation a = c * W x + b, weights W_0 at init and W_t now, and x_0, x_t
the layer's input at init and now (each computed through the network from the same probe batch):

    own movement      RMS(c (W_t - W_0) x_t) / RMS(c W_0 x_t)   (the change the layer makes itself)
    weight change     ||W_t - W_0||_F / ||W_0||_F
    total movement    RMS(a_t - a_0) / RMS(a_0)                 (includes the change of its input)

plus the raw per-coordinate sizes RMS(a_0), RMS(a_t) and RMS(a_t - a_0) (coordinate checks).
Hidden roles are measured in every block and averaged over blocks; the blocks are scanned with
both networks side by side, so memory does not grow with depth. The transformer's roles are its
embedding (``input``), ``attn_q``, ``attn_k``, ``attn_v``, ``attn_out``, its MLP's ``hidden_1`` and
``hidden_2``, and the unembedding (``readout``); each layer's input is what its kernel multiplies
(:func:`hptransfer.network.transformer.block`), and RMS runs over every token of the probe. The multiplier c cancels in the
own-movement ratio; it is kept so the formula reads as written.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from hptransfer.network import transformer
from hptransfer.network.model import (
    Architecture,
    Params,
    hidden_op,
    input_op,
    readout_features,
)
from hptransfer.network.scaling import Multipliers

MOVEMENT_STATS = ("own_movement", "weight_change", "total_movement")  # the ratios analysed
STATS = (*MOVEMENT_STATS, "rms_init", "rms", "rms_change")  # + the sizes coordinate checks read


def _rms(a: jax.Array) -> jax.Array:
    return jnp.sqrt(jnp.mean(jnp.square(a)))


def _safe_ratio(num: jax.Array, den: jax.Array) -> jax.Array:
    return num / jnp.maximum(den, 1e-30)


def _layer(op, p0, pt, c, x0, xt):
    """Pre-activations at init and now, and the five statistics of one layer."""
    w0, wt = p0["kernel"], pt["kernel"]
    a0 = c * op(w0, x0) + p0.get("bias", 0.0)
    at = c * op(wt, xt) + pt.get("bias", 0.0)
    own = _safe_ratio(_rms(c * op(wt - w0, xt)), _rms(c * op(w0, xt)))
    stats = {
        "own_movement": own,
        "weight_change": _safe_ratio(
            jnp.linalg.norm((wt - w0).ravel()), jnp.linalg.norm(w0.ravel())
        ),
        "total_movement": _safe_ratio(_rms(at - a0), _rms(a0)),
        "rms_init": _rms(a0),
        "rms": _rms(at),
        "rms_change": _rms(at - a0),
    }
    return a0, at, stats


def layer_stats(
    params0: Params, params: Params, x: jax.Array, mult: Multipliers, arch: Architecture
) -> dict[str, dict[str, jax.Array]]:
    """{role: {statistic: scalar}} for input, the block roles (block means) and readout;
    ``mult`` gives the forward multipliers, the branch multiplier and the attention scale."""
    if arch.family == "transformer":
        return _transformer_stats(params0, params, x, mult, arch)
    forward, branch = mult.forward, mult.branch
    op_in, op_h = input_op(arch), hidden_op(arch)
    out: dict[str, dict[str, jax.Array]] = {}
    h0, ht, out["input"] = _layer(
        op_in, params0["input"], params["input"], forward["input"]["kernel"], x, x
    )

    def block(carry, blocks):
        h0, ht = carry
        blk0, blkt = blocks
        z0, zt, stats = h0, ht, {}
        for role in arch.hidden_roles:
            c = forward["blocks"][role]["kernel"]
            z0, zt, stats[role] = _layer(
                op_h, blk0[role], blkt[role], c, jax.nn.relu(z0), jax.nn.relu(zt)
            )
        return (h0 + branch * z0, ht + branch * zt), stats

    (h0, ht), per_block = jax.lax.scan(block, (h0, ht), (params0["blocks"], params["blocks"]))
    out |= jax.tree.map(lambda v: v.mean(axis=0), per_block)
    _, _, out["readout"] = _layer(
        lambda w, f: f @ w,
        params0["readout"],
        params["readout"],
        forward["readout"]["kernel"],
        readout_features(arch, h0),
        readout_features(arch, ht),
    )
    return out


def _transformer_stats(
    params0: Params, params: Params, x: jax.Array, mult: Multipliers, arch: Architecture
) -> dict[str, dict[str, jax.Array]]:
    """:func:`layer_stats` of the transformer: both networks' blocks scanned side by side."""
    forward, fwd_blocks = mult.forward, mult.forward["blocks"]
    out: dict[str, dict[str, jax.Array]] = {}
    h0, ht, out["input"] = _layer(
        transformer.embed, params0["input"], params["input"], forward["input"]["kernel"], x, x
    )

    def block(carry, blocks):
        (h0, ht), (blk0, blkt) = carry, blocks
        n0, in0 = transformer.block(h0, blk0, fwd_blocks, mult.branch, mult.attention, arch)
        nt, int_ = transformer.block(ht, blkt, fwd_blocks, mult.branch, mult.attention, arch)
        stats = {
            role: _layer(
                transformer.dense, blk0[role], blkt[role], fwd_blocks[role]["kernel"],
                in0[role], int_[role],
            )[2]
            for role in arch.block_roles
        }  # fmt: skip
        return (n0, nt), stats

    (h0, ht), per_block = jax.lax.scan(block, (h0, ht), (params0["blocks"], params["blocks"]))
    out |= jax.tree.map(lambda v: v.mean(axis=0), per_block)
    _, _, out["readout"] = _layer(
        transformer.dense,
        params0["readout"],
        params["readout"],
        forward["readout"]["kernel"],
        transformer.readout_features(params0, h0),
        transformer.readout_features(params, ht),
    )
    return out


def stat_column(stat: str, role: str) -> str:
    """The results-table column of statistic ``stat`` (one of :data:`STATS`) of layer ``role``:
    ``"<stat>/<role>"``. :func:`split_stat_column` is its inverse; no other code builds or
    parses these names."""
    return f"{stat}/{role}"


def split_stat_column(name: str) -> tuple[str, str] | None:
    """``(stat, role)`` of a ``"<stat>/<role>"`` column, None for any other column name."""
    stat, sep, role = str(name).partition("/")
    return (stat, role) if sep and stat in STATS and role else None


def flatten_stats(stats: dict[str, dict[str, jax.Array]]) -> dict[str, jax.Array]:
    """{"own_movement/hidden_1": v, ...}: the column names used in result tables."""
    return {stat_column(stat, role): v for role, d in stats.items() for stat, v in d.items()}
