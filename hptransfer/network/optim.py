"""Optimizers with per-role learning rates and epsilons given as traced arrays.

The update of a leaf with role rho is  Delta W = -eta * s_rho * d(W),  where d is the optimizer's
direction (the gradient, its momentum trace, or Adam's m_hat / (sqrt(v_hat) + eps * e_rho)) and
s_rho, e_rho are the scheme's learning-rate and epsilon factors (:mod:`hptransfer.network.scaling`).
AdamW adds the decoupled decay inside the step: d(W) = m_hat / (sqrt(v_hat) + eps * e_rho)
+ wd * w_rho * W, with w_rho the scheme's weight-decay factor, as optax.adamw does (the decay is
scaled by the learning rate and its schedule). A schedule (:mod:`hptransfer.network.schedules`)
multiplies eta by mult(t) at step t (in :func:`hptransfer.network.train.train_step`).

The base learning rate eta and the trees s, e are arguments, not constants: the optimizer is
built inside the traced function, so one compiled program serves every learning rate and scheme.
Directions come from optax (``trace``, ``add_decayed_weights``); Adam is written as one small
transform because optax's ``scale_by_adam`` takes a scalar epsilon and the schemes need one per
tensor (CompleteP scales the hidden epsilon by 1/(m r)).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from hptransfer.network.schedules import ScheduleConfig, traced_schedule

OPTIMIZERS = ("sgd", "adam", "adamw")


class OptimizerError(ValueError):
    """An optimizer setting is out of range; the message names it and what is allowed."""


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """Static optimizer settings (part of the compiled program's identity)."""

    name: str = "sgd"
    momentum: float = 0.0
    nesterov: bool = False
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    # The learning-rate schedule (its kind is static: one program per kind). Read from the
    # config's [schedule] table, not [optimizer]; left out of the config's identity when constant.
    schedule: ScheduleConfig = ScheduleConfig()

    def __post_init__(self) -> None:
        """Refuse values out of range and settings the chosen optimizer would silently ignore."""
        if self.name not in OPTIMIZERS:
            raise OptimizerError(
                f"field 'name' = {self.name!r} is not allowed; allowed: one of {list(OPTIMIZERS)}"
            )
        for field, lo, hi in (("momentum", 0, 1), ("b1", 0, 1), ("b2", 0, 1)):
            value = getattr(self, field)
            if not (lo <= value < hi):
                raise OptimizerError(
                    f"field {field!r} = {value!r} is not allowed; allowed: a number in [{lo}, {hi})"
                )
        for field in ("eps", "weight_decay"):
            if not getattr(self, field) >= 0:
                raise OptimizerError(
                    f"field {field!r} = {getattr(self, field)!r} is not allowed; allowed: >= 0"
                )
        if self.weight_decay and self.name != "adamw":
            raise OptimizerError(
                f"field 'weight_decay' = {self.weight_decay!r} is not allowed with name = "
                f"{self.name!r}; allowed: 0 (for decoupled weight decay use name = 'adamw')"
            )
        if self.momentum and self.name != "sgd":
            raise OptimizerError(
                f"field 'momentum' = {self.momentum!r} is not allowed with name = {self.name!r}; "
                "allowed: 0 (Adam's momentum is b1)"
            )
        if self.nesterov and not (self.name == "sgd" and self.momentum > 0):
            raise OptimizerError(
                "field 'nesterov' = true is not allowed here; allowed: true only with "
                "name = 'sgd' and momentum > 0"
            )

    @property
    def family(self) -> str:
        """Which learning-rate exponents of the scheme apply: 'sgd' or 'adam'."""
        return "sgd" if self.name == "sgd" else "adam"


class AdamState(NamedTuple):
    count: jax.Array
    mu: optax.Updates
    nu: optax.Updates


def scale_by_adam_per_leaf_eps(
    b1: float, b2: float, eps: optax.Updates
) -> optax.GradientTransformation:
    """Adam's direction m_hat / (sqrt(v_hat) + eps_leaf) with one epsilon per leaf (a pytree)."""

    def init(params):
        zeros = optax.tree.zeros_like(params)
        return AdamState(jnp.zeros([], jnp.int32), zeros, optax.tree.zeros_like(params))

    def update(updates, state, params=None):
        del params
        mu = optax.tree.update_moment(updates, state.mu, b1, 1)
        nu = optax.tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
        count = optax.safe_increment(state.count)
        mu_hat = optax.tree.bias_correction(mu, b1, count)
        nu_hat = optax.tree.bias_correction(nu, b2, count)
        direction = jax.tree.map(lambda m, v, e: m / (jnp.sqrt(v) + e), mu_hat, nu_hat, eps)
        return direction, AdamState(count, mu, nu)

    return optax.GradientTransformation(init, update)


def scale_by_tree(scales: optax.Updates) -> optax.GradientTransformation:
    """Multiply each leaf of the updates by the matching (traced) scalar of ``scales``."""

    def init(params):
        del params
        return optax.EmptyState()

    def update(updates, state, params=None):
        del params
        return jax.tree.map(lambda u, s: u * s, updates, scales), state

    return optax.GradientTransformation(init, update)


def add_decayed_weights_per_leaf(
    weight_decay: jax.Array | float, factors: optax.Updates
) -> optax.GradientTransformation:
    """u + (wd * w_leaf) * p for every leaf: optax's ``add_decayed_weights`` with one factor per
    leaf (``factors``, a pytree of scalars: the scheme's ``wd_adam`` factors). With every factor
    1 it is optax's arithmetic exactly (wd * 1 = wd)."""

    def init(params):
        del params
        return optax.EmptyState()

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("add_decayed_weights_per_leaf needs the params")
        new = jax.tree.map(lambda u, p, w: u + (weight_decay * w) * p, updates, params, factors)
        return new, state

    return optax.GradientTransformation(init, update)


def traced_settings(config: OptimizerConfig, steps: int | None = None) -> dict[str, jax.Array]:
    """The settings the engine passes as traced scalars (``make_optimizer``'s ``traced``):
    momentum (SGD with momentum), b2 (Adam), weight_decay (AdamW with decay), and for a
    schedule other than constant the run length ``steps`` and its fractions
    (:func:`hptransfer.network.schedules.traced_schedule`). A runtime value
    and a compile-time constant can round differently (XLA folds constants), so a sweep that
    makes one of them an axis and one that does not must both trace it: then the sweep's
    default points reproduce the plain sweep bit for bit."""
    out = {}
    if config.name == "sgd" and config.momentum > 0:
        out["momentum"] = jnp.float32(config.momentum)
    if config.name != "sgd":
        out["b2"] = jnp.float32(config.b2)
    if config.name == "adamw" and config.weight_decay > 0:
        out["weight_decay"] = jnp.float32(config.weight_decay)
    if not config.schedule.constant:
        if steps is None:
            raise ValueError(f"schedule {config.schedule.kind!r} needs the run's steps")
        out |= traced_schedule(config.schedule, steps)
    return out


def make_optimizer(
    config: OptimizerConfig,
    lr: jax.Array,
    lr_scale: optax.Updates,
    eps_scale: optax.Updates,
    traced: Mapping[str, jax.Array] | None = None,
    wd_scale: optax.Updates | None = None,
) -> optax.GradientTransformation:
    """The optax chain for ``config`` with base learning rate ``lr`` (may be traced; a schedule
    has already multiplied it).

    ``lr_scale``, ``eps_scale`` and ``wd_scale`` are per-leaf factor trees
    (``Multipliers.lr``/``.eps``/``.wd``; ``wd_scale`` None: decay factor 1 for every leaf).
    ``traced`` replaces ``momentum``, ``b2`` or ``weight_decay`` of ``config`` by traced
    scalars (sweep axes, ``Multipliers.optimizer``): the same arithmetic with a runtime value,
    and the momentum trace / decay term present whatever the value (0 included).
    """
    traced = traced or {}
    if config.name == "sgd":
        if "momentum" in traced:
            direction = optax.trace(decay=traced["momentum"], nesterov=config.nesterov)
        elif config.momentum > 0:
            direction = optax.trace(decay=config.momentum, nesterov=config.nesterov)
        else:
            direction = optax.identity()
        parts = [direction]
    else:
        eps = jax.tree.map(lambda e: config.eps * e, eps_scale)
        b2 = traced.get("b2", config.b2)
        parts = [scale_by_adam_per_leaf_eps(config.b1, b2, eps)]
        wd = traced.get("weight_decay")
        if wd is None and config.name == "adamw" and config.weight_decay > 0:
            wd = config.weight_decay
        if wd is not None and wd_scale is not None:
            parts.append(add_decayed_weights_per_leaf(wd, wd_scale))
        elif wd is not None:
            parts.append(optax.add_decayed_weights(wd))
    step = jax.tree.map(lambda s: -lr * s, lr_scale)
    return optax.chain(*parts, scale_by_tree(step))
