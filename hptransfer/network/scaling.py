"""Scheme x shape -> the multiplier arrays the model and the optimizer consume.

For a tensor with role rho in a network of shape (n, L) with base (n0, L0), m = n/n0, r = L/L0:

    init std       sigma = m**a_init * r**b_init / sqrt(fan_in)      (biases start at zero)
    forward mult   c     = m**a_fwd  * r**b_fwd
    learning rate  eta_rho = eta * m**a_lr * r**b_lr        (SGD or Adam exponents by optimizer)
    Adam epsilon   eps_rho = eps * m**a_eps * r**b_eps
    weight decay   wd_rho  = wd * m**a_wd * r**b_wd      (AdamW's decoupled decay, per role)
    branch         beta  = r**(-alpha)
    attention      tau   = d0**-1/2 * (d/d0)**-e   (transformer: head dim d, base d0, the
                                                scheme's attention_exponent e; None otherwise)

All values are computed on the host in float64 and returned as float32 arrays in pytrees shaped
like the params, so that they can be stacked along a replica axis and traced: one compiled
program serves every scheme.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from hptransfer.network.architecture import ZERO_INIT_ROLES
from hptransfer.network.model import Architecture, Params, fan_in, param_roles
from hptransfer.network.schemes import Scheme

AXES = ("depth", "width")  # the two scaling axes: r = L / L0 and m = n / n0
OPTIMIZER_FAMILIES = ("sgd", "adam")


@struct.dataclass
class Multipliers:
    """Everything a scheme changes, as arrays: per-leaf trees and the branch multiplier beta."""

    init_std: Params
    forward: Params
    lr: Params
    eps: Params
    branch: jax.Array
    # Traced optimizer settings that replace the config's (axes momentum, b2, weight_decay):
    # empty unless a sweep declares such an axis (:func:`hptransfer.sweeps.axes.apply_point`).
    optimizer: dict[str, jax.Array] = dataclasses.field(default_factory=dict)
    # AdamW's per-role weight-decay factors (``wd_adam`` exponents); None: every factor 1.
    wd: Params | None = None
    # The transformer's attention logit scale tau; None for the ResNets (no leaf, so their
    # programs are unchanged).
    attention: jax.Array | None = None


def multipliers(scheme: Scheme, arch: Architecture, optimizer_family: str = "sgd") -> Multipliers:
    """The multipliers of ``scheme`` at shape ``arch`` (module docstring gives the formulas)."""
    if optimizer_family not in OPTIMIZER_FAMILIES:
        raise ValueError(
            f"optimizer family {optimizer_family!r}; allowed: {list(OPTIMIZER_FAMILIES)}"
        )
    m, r = arch.width_ratio, arch.depth_ratio
    lr_field = "lr_sgd" if optimizer_family == "sgd" else "lr_adam"
    roles = param_roles(arch)

    def value(quantity):
        def per_leaf(leaf_role):
            rule = scheme.rule(leaf_role, arch.block_depth)
            factor = getattr(rule, quantity).factor(m, r)
            if quantity == "init_std":
                if leaf_role in ZERO_INIT_ROLES:
                    return jnp.float32(0.0)
                factor /= np.sqrt(fan_in(arch, leaf_role))
            return jnp.float32(factor)

        return jax.tree.map(per_leaf, roles)

    return Multipliers(
        init_std=value("init_std"),
        forward=value("forward"),
        lr=value(lr_field),
        eps=value("eps_adam"),
        wd=value("wd_adam"),
        branch=jnp.float32(scheme.branch_multiplier(r)),
        attention=(
            jnp.float32(scheme.attention_scale(arch.d_head, arch.d_head0))
            if arch.family == "transformer"
            else None
        ),
    )


def stack(items: list[Multipliers]) -> Multipliers:
    """Stack multipliers of several replicas along a new leading axis (for vmap)."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *items)
