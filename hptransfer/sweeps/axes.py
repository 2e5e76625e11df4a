"""Sweep axes beyond the learning rate: which hyperparameters can be swept, and how a point of
the sweep changes a replica.

Two kinds of axis:

- *traced*: a number inside the compiled program, so one program per shape serves every value
  (as it serves every learning rate and scheme). A point p of the sweep changes the scheme's
  multipliers (:class:`hptransfer.network.scaling.Multipliers`) of a replica as

      init std       sigma_rho  <- sigma_rho * 2**init_scale * 2**init_scale_<role(rho)>
      readout mult   c_out      <- c_out * 2**output_multiplier
      branch         beta       <- beta * 2**branch_constant          (on top of r**-alpha)
      Adam epsilon   eps_rho    <- eps_rho * 2**eps
      momentum, b2, weight_decay: the optimizer's value, replaced (traced, per replica)
      warmup_fraction, decay_fraction, final_fraction: the [schedule]'s value, replaced

  (log2 axes are multipliers, 0 = the scheme as it is; role(rho) is input, hidden (every
  hidden_j of every block) or readout.) At the defaults every multiplier is unchanged (a
  product with 2**0 = 1 is exact), so a sweep's default points reproduce the plain sweep.
- *shape*: ``batch_size`` and ``steps`` change array shapes or the loop length, and
  ``schedule`` (the [schedule] kind, a name) the compiled update, so each value is its own set
  of cells (compiled once per value).

A config declares each axis with its grid and default; ``[axes] groups`` lists which traced
axes are crossed (a full product within a group; the sweep is the union of its groups, every
axis outside a group at its default; by default each axis is crossed with the learning rate).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp

from hptransfer.network.hyperparameters import OPTIMIZER_AXES, Axis
from hptransfer.network.scaling import Multipliers

Point = tuple[tuple[str, float], ...]
"""A traced point: (axis name, value) for every declared traced axis, sorted by name."""


def traced(axes: Sequence[Axis]) -> list[Axis]:
    return [a for a in axes if a.spec.kind == "traced"]


def shaped(axes: Sequence[Axis]) -> list[Axis]:
    return [a for a in axes if a.spec.kind == "shape"]


def default_groups(axes: Sequence[Axis]) -> tuple[tuple[str, ...], ...]:
    """Each traced axis crossed with the learning rate (or the lr alone without axes)."""
    names = [a.name for a in traced(axes)]
    return tuple(("lr", n) for n in names) or (("lr",),)


def default_point(axes: Sequence[Axis]) -> Point:
    """The traced point with every traced axis at its default (() without axes)."""
    return tuple(sorted((a.name, float(a.default)) for a in traced(axes)))


def points(
    axes: Sequence[Axis],
    groups: Sequence[Sequence[str]],
    lr_values: Sequence[float],
    lr_default: float | None,
) -> list[tuple[float, Point]]:
    """The (log2 lr, traced point) pairs of one scheme: the union over groups of each group's
    full product, every axis outside the group at its default; first-seen order, no repeats."""
    by_name = {a.name: a for a in traced(axes)}
    out: dict[tuple[float, Point], None] = {}
    for group in groups:
        grids = [tuple(lr_values) if name == "lr" else by_name[name].values for name in group]
        for combo in itertools.product(*grids):
            chosen = dict(zip(group, combo, strict=True))
            lr = chosen.pop("lr", lr_default)
            point = tuple(sorted((n, float(chosen.get(n, a.default))) for n, a in by_name.items()))
            out[(float(lr), point)] = None
    return list(out)


ShapePoint = tuple[int, int, str]
"""(batch_size, steps, schedule kind) of one set of cells."""


def shape_points(
    axes: Sequence[Axis], batch_size: int, steps: int, kind: str = "constant"
) -> list[ShapePoint]:
    """(batch_size, steps, schedule kind) of each set of cells: the defaults, then each shape
    axis's values with the other shape axes at their defaults (no repeats)."""
    out = {(batch_size, steps, kind): None}
    for a in shaped(axes):
        for v in a.values:
            if a.name == "batch_size":
                out[(int(v), steps, kind)] = None
            elif a.name == "steps":
                out[(batch_size, int(v), kind)] = None
            else:  # schedule
                out[(batch_size, steps, str(v))] = None
    return list(out)


def apply_point(mult: Multipliers, point: Point | Mapping[str, float]) -> Multipliers:
    """The multipliers of a replica at traced point ``point`` (module docstring's formulas).

    Only axes in ``point`` change anything; ``momentum``, ``b2``, ``weight_decay`` and the
    schedule's fractions go to ``mult.optimizer`` (read by :func:`hptransfer.network.optim.make_optimizer`
    and :func:`hptransfer.network.schedules.scheduled_lr`)."""
    p = dict(point)
    if not p:
        return mult
    two = lambda name: jnp.float32(2.0 ** p.get(name, 0.0))  # noqa: E731

    def init(path, s):
        role = path[0].key
        role = "hidden" if role == "blocks" else role
        return s * two("init_scale") * two(f"init_scale_{role}")

    init_std = jax.tree_util.tree_map_with_path(init, mult.init_std)
    forward = {**mult.forward, "readout": {
        k: (v * two("output_multiplier") if k == "kernel" else v)
        for k, v in mult.forward["readout"].items()
    }}  # fmt: skip
    eps = jax.tree.map(lambda e: e * two("eps"), mult.eps)
    optimizer = {**mult.optimizer}
    optimizer |= {k: jnp.float32(p[k]) for k in OPTIMIZER_AXES if k in p}
    return mult.replace(
        init_std=init_std,
        forward=forward,
        eps=eps,
        branch=mult.branch * two("branch_constant"),
        optimizer=optimizer,
    )
