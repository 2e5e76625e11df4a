"""Learning-rate schedules as data: a kind (static, part of the compiled program) and fractions
of the run (traced, one program for every value).

The schedule multiplies the base learning rate eta of every role; the scheme's per-role factors
s_rho stay as they are, so the rate of role rho at step t is  eta * mult(t) * s_rho  and the
ratios between roles are the same at every step. With T the run's length in steps (the steps of
the cell), W = warmup_fraction * T, D = decay_fraction * T, f = final_fraction and t = 0, 1, ..
the index of the update:

    constant   mult(t) = 1
    warmup     mult(t) = min(1, t / W)                                  (linear warm-up only)
    cosine     warm-up, then  f + (1 - f) * (1 + cos(pi * p)) / 2,   p = clip((t - W) / (T - W), 0, 1)
    linear     warm-up, then  1 - (1 - f) * p                        (p as for cosine)
    wsd        warm-up, stable at 1, then linear to f over the last D steps:
               1 - (1 - f) * clip((t - (T - D)) / D, 0, 1)

The warm-up starts at 0 (mult(0) = 0 when W > 0) and reaches 1 at t = W, as optax's
``warmup_cosine_decay_schedule`` and ``linear_schedule`` do; the decay reaches f at t = T, one
step after the last update (the convention of optax's ``cosine_decay_schedule``). For integer
W, ``cosine`` equals ``optax.warmup_cosine_decay_schedule(0, 1, W, T, f)`` (tests/test_schedules).

Why not optax's schedule functions in the compiled step: their boundaries (``warmup_steps``,
``transition_steps``, ``decay_steps``) are compared in Python (``if transition_steps <= 0``) and
so must be concrete numbers, while here W and D are traced (fractions that are sweep axes, one
value per replica). The formulas below are the same arithmetic written with ``jnp.where`` and
``jnp.clip`` so that every boundary may be a traced scalar.

The constant schedule is decided at trace time: :func:`scheduled_lr` returns the learning rate
untouched, so a constant-rate program does exactly the floating-point operations it did before
schedules existed (bit for bit the same results).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import jax
import jax.numpy as jnp

KINDS: tuple[str, ...] = ("constant", "warmup", "cosine", "linear", "wsd")

FIELDS: dict[str, tuple[str, ...]] = {
    "constant": (),
    "warmup": ("warmup_fraction",),
    "cosine": ("warmup_fraction", "final_fraction"),
    "linear": ("warmup_fraction", "final_fraction"),
    "wsd": ("warmup_fraction", "decay_fraction", "final_fraction"),
}
"""The fractions each kind reads; any other is an error (it would be silently ignored)."""

TRACED: tuple[str, ...] = ("warmup_fraction", "decay_fraction", "final_fraction")
"""The schedule settings that are traced scalars (sweep axes of the same names)."""

STEPS_KEY = "schedule_steps"
"""The traced run length T (float32) among the optimizer's traced settings."""


class ScheduleError(ValueError):
    """A schedule setting is out of range; the message names the field and what is allowed."""


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
    """The static schedule: its kind and the default value of each fraction.

    The fractions here are defaults; the compiled step reads traced copies of them
    (:func:`traced_schedule`), which sweep axes of the same names replace per replica.
    """

    kind: str = "constant"
    warmup_fraction: float = 0.0
    decay_fraction: float = 0.0
    final_fraction: float = 0.0

    def __post_init__(self) -> None:
        """Refuse an unknown kind and fractions that the kind would silently ignore."""
        if self.kind not in KINDS:
            raise ScheduleError(
                f"field 'kind' = {self.kind!r} is not allowed; allowed: one of {list(KINDS)}"
            )
        for name in TRACED:
            if getattr(self, name) != 0.0 and name not in FIELDS[self.kind]:
                raise ScheduleError(
                    f"field {name!r} = {getattr(self, name)!r} is not allowed with kind = "
                    f"{self.kind!r}; allowed fields of {self.kind!r}: {list(FIELDS[self.kind])}"
                )

    @property
    def constant(self) -> bool:
        return self.kind == "constant"

    def values(self) -> dict[str, float]:
        """The fractions this kind reads, by name."""
        return {name: getattr(self, name) for name in FIELDS[self.kind]}

    def as_kind(self, kind: str) -> ScheduleConfig:
        """This schedule as kind ``kind`` (a value of the ``schedule`` sweep axis): the
        fractions ``kind`` reads kept, the others 0."""
        if kind == self.kind:
            return self
        return ScheduleConfig(kind, **{f: getattr(self, f) if f in FIELDS[kind] else 0.0
                                       for f in TRACED})  # fmt: skip


def check_schedule(
    kind: str, steps: int, warmup: float = 0.0, decay: float = 0.0, final: float = 0.0
) -> None:
    """Refuse settings that would train something other than what they say, for a run of
    ``steps`` steps: one :class:`ScheduleError` line naming the field and what is allowed."""
    if kind == "constant":
        return
    if not 0.0 <= final <= 1.0:
        raise ScheduleError(
            f"field 'final_fraction' = {final!r} is not allowed; allowed: a number in [0, 1] "
            "(the learning rate at the end relative to its peak)"
        )
    if not 0.0 <= warmup < 1.0:
        raise ScheduleError(
            f"field 'warmup_fraction' = {warmup!r} is not allowed; allowed: a number in [0, 1) "
            f"(a warm-up shorter than the run of {steps} steps)"
        )
    if warmup > 0 and warmup * steps < 1:
        raise ScheduleError(
            f"field 'warmup_fraction' = {warmup!r} is not allowed for {steps} steps; allowed: 0 "
            f"or at least 1/steps = {1 / steps:.3g} (a warm-up of at least one step)"
        )
    if kind == "warmup" and warmup == 0:
        raise ScheduleError(
            "field 'warmup_fraction' = 0.0 is not allowed with kind = 'warmup'; allowed: a "
            "number in (0, 1) (without a warm-up, use kind = 'constant')"
        )
    if kind in ("cosine", "linear") and (1 - warmup) * steps < 1:
        raise ScheduleError(
            f"field 'warmup_fraction' = {warmup!r} is not allowed for {steps} steps; allowed: "
            f"at most 1 - 1/steps = {1 - 1 / steps:.3g} (the {kind} decay needs at least one step)"
        )
    if kind == "wsd":
        if not 0.0 < decay <= 1.0 or decay * steps < 1:
            raise ScheduleError(
                f"field 'decay_fraction' = {decay!r} is not allowed for {steps} steps; allowed: "
                f"a number in [1/steps = {1 / steps:.3g}, 1] (a decay of at least one step)"
            )
        if warmup + decay > 1.0:
            raise ScheduleError(
                f"fields 'warmup_fraction' + 'decay_fraction' = {warmup!r} + {decay!r} > 1 are "
                "not allowed; allowed: a warm-up and a decay that fit in the run (sum <= 1)"
            )


def traced_schedule(config: ScheduleConfig, steps: int) -> dict[str, jax.Array]:
    """The schedule's traced scalars for a run of ``steps`` steps: T and every fraction the kind
    reads (float32); empty for the constant schedule (nothing is traced, nothing computed)."""
    if config.constant:
        return {}
    out = {STEPS_KEY: jnp.float32(steps)}
    out |= {name: jnp.float32(value) for name, value in config.values().items()}
    return out


def _ramp(t: jax.Array, start: jax.Array, length: jax.Array) -> jax.Array:
    """clip((t - start) / length, 0, 1): 0 before ``start``, 1 after ``start + length``.
    ``length`` may be 0 (then the ramp is a step at ``start``)."""
    safe = jnp.where(length > 0, length, 1.0)
    return jnp.where(length > 0, jnp.clip((t - start) / safe, 0.0, 1.0), (t >= start) * 1.0)


def multiplier(kind: str, step: jax.Array, settings: Mapping[str, jax.Array]) -> jax.Array:
    """mult(t) of the module docstring at update ``step`` (an integer, may be traced) for the
    static ``kind``; ``settings`` holds T (:data:`STEPS_KEY`) and the kind's fractions."""
    if kind not in KINDS:
        raise ScheduleError(f"field 'kind' = {kind!r} is not allowed; allowed: {list(KINDS)}")
    if kind == "constant":
        return jnp.float32(1.0)
    t = jnp.asarray(step, jnp.float32)
    total = settings[STEPS_KEY]
    warm_steps = settings["warmup_fraction"] * total
    # The warm-up ramp t / W (min 1); with W = 0 it is 1 from step 0.
    warm = jnp.where(warm_steps > 0, jnp.minimum(t / jnp.maximum(warm_steps, 1e-30), 1.0), 1.0)
    if kind == "warmup":
        return warm
    final = settings["final_fraction"]
    if kind == "wsd":
        decay_steps = settings["decay_fraction"] * total
        p = _ramp(t, total - decay_steps, decay_steps)
        return jnp.where(t < warm_steps, warm, 1.0 - (1.0 - final) * p)
    p = _ramp(t, warm_steps, total - warm_steps)
    if kind == "cosine":
        decayed = final + (1.0 - final) * 0.5 * (1.0 + jnp.cos(jnp.pi * p))
    else:  # linear
        decayed = 1.0 - (1.0 - final) * p
    return jnp.where(t < warm_steps, warm, decayed)


def scheduled_lr(
    lr: jax.Array, kind: str, step: jax.Array, settings: Mapping[str, jax.Array]
) -> jax.Array:
    """eta * mult(step); for ``kind = "constant"`` ``lr`` itself, decided at trace time, so the
    constant program has no extra operation (results bit for bit as without schedules)."""
    if kind == "constant":
        return lr
    return lr * multiplier(kind, step, settings)
