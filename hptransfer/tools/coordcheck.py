"""Coordinate checks: per-coordinate sizes of every layer across widths or depths.

For each shape (a width at a fixed depth, or a depth at a fixed width), several seeds train
``steps`` steps on ONE fixed batch (the microsoft/mup recipe), and after each step t the
movement statistics of :mod:`hptransfer.network.movement` are measured on that batch, per layer role:

    rms          RMS(a_t)         the per-coordinate size of the pre-activation a = c W x
    rms_change   RMS(a_t - a_0)   the per-coordinate size of its change since initialisation
    rms_init     RMS(a_0)         (t = 0)

plus the own movement RMS(c (W_t - W_0) x_t) / RMS(c W_0 x_t) of each layer.

The check: for every role and step, the slope s of log(size) against log(width) (or log(depth))
is fitted by least squares over the seed-mean sizes (:func:`hptransfer.stats.analysis.ols_slope`). A
role passes when |s| <= tolerance for every step and every checked quantity:

    input, hidden_j   rms and rms_change
    readout           rms_change only

The readout is judged by its change, not its size: under muP its initial size is designed to
shrink like 1/sqrt(m) (the logits start near zero) while its update is O(1), so RMS(a_t) of the
readout mixes a shrinking and a flat part at small t. "Flat" is what a scheme that is right along
an axis promises; SP fails the width check because its updates grow with width.

The transformer (``family = "transformer"``, on byte-level text) is checked the same way, with
its roles: the embedding (``input``), ``attn_q``, ``attn_k``, ``attn_v``, ``attn_out``, the MLP's
``hidden_1`` and ``hidden_2``, and the unembedding (``readout``); sizes are RMS over every token
of the fixed batch of sequences.

Depth: with a 1/sqrt(L) branch (depth-muP) a block's own weight update is meant to scale like
L^-1/2 while the residual stream still moves O(1), so the checked (total) sizes stay flat. The
feature-learning collapse of hidden_1 inside k >= 2 blocks (docs/parameterizations.md) shows in
the own movement, reported by :func:`own_movement_slopes` and drawn in the figure, not in the
pass/fail rule.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from hptransfer.network.data import Dataset
from hptransfer.network.model import Architecture, ArchitectureError, check_inputs
from hptransfer.network.movement import flatten_stats, layer_stats, split_stat_column
from hptransfer.network.optim import OptimizerConfig
from hptransfer.network.scaling import AXES, OPTIMIZER_FAMILIES, multipliers
from hptransfer.network.schemes import Scheme, get_scheme
from hptransfer.network.train import init_state, train_step
from hptransfer.stats.analysis import MOVEMENT_SLOPE, ols_slope, role_order
from hptransfer.tools.coord_defaults import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_LOG2_LR,
    DEFAULT_SEEDS,
    DEFAULT_STEPS,
    DEFAULT_TOLERANCE,
    DEFAULT_WIDTHS,
    FAMILIES,
)

CHECKED: dict[str, tuple[str, ...]] = {"readout": ("rms_change",)}
DEFAULT_CHECKED: tuple[str, ...] = ("rms", "rms_change")


class CoordCheckError(ValueError):
    """A coordinate-check argument is out of range; the message names it and what is allowed."""


@dataclasses.dataclass(frozen=True)
class CoordSetting:
    """Everything a coordinate check varies besides the scheme.

    ``values`` are the widths (axis = "width", at depth ``depth``) or depths (axis = "depth",
    at width ``width``); every network is measured relative to (base_width, base_depth).
    """

    axis: str = "width"
    values: tuple[int, ...] = DEFAULT_WIDTHS
    width: int = 64
    depth: int = 2
    block_depth: int = 1
    base_width: int = 64
    base_depth: int = 2
    optimizer: str = "sgd"
    lr: float = 2.0 ** DEFAULT_LOG2_LR["sgd"]
    steps: int = DEFAULT_STEPS
    seeds: tuple[int, ...] = tuple(range(DEFAULT_SEEDS))
    batch_size: int = DEFAULT_BATCH_SIZE
    family: str = "mlp"  # "transformer": block_depth 2, heads of ``head_dim``, MLP ``mlp_ratio``
    head_dim: int = 16
    mlp_ratio: int = 4

    def __post_init__(self) -> None:
        if self.axis not in AXES:
            raise CoordCheckError(f"axis = {self.axis!r}; allowed: {list(AXES)}")
        if len(set(self.values)) < 2 or min(self.values) < 1:
            raise CoordCheckError(
                f"{self.axis}s = {list(self.values)}; allowed: at least two distinct integers >= 1"
            )
        if self.family not in FAMILIES:
            raise CoordCheckError(f"family = {self.family!r}; allowed: {list(FAMILIES)}")
        if self.family == "transformer" and self.block_depth != 2:
            raise CoordCheckError(
                f"block_depth = {self.block_depth} for the transformer; allowed: 2 (its MLP)"
            )
        if self.optimizer not in OPTIMIZER_FAMILIES:
            raise CoordCheckError(
                f"optimizer = {self.optimizer!r}; allowed: {list(OPTIMIZER_FAMILIES)}"
            )
        for name in ("steps", "batch_size", "block_depth", "width", "depth"):
            if getattr(self, name) < 1:
                raise CoordCheckError(f"{name} = {getattr(self, name)}; allowed: an integer >= 1")
        if not self.seeds:
            raise CoordCheckError("seeds = []; allowed: one or more integers")
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise CoordCheckError(f"learning rate = {self.lr!r}; allowed: a finite number > 0")

    def architectures(self, data: Dataset) -> list[Architecture]:
        """One network per value of the axis, in increasing order."""
        shapes = [
            (v, self.depth) if self.axis == "width" else (self.width, v)
            for v in sorted(set(self.values))
        ]
        transformer = (
            {"head_dim": self.head_dim, "mlp_ratio": self.mlp_ratio}
            if self.family == "transformer"
            else {}
        )
        try:
            return [
                Architecture(
                    n,
                    L,
                    self.block_depth,
                    data.in_shape,
                    data.num_classes,
                    family=self.family,
                    base_width=self.base_width,
                    base_depth=self.base_depth,
                    **transformer,
                )  # fmt: skip
                for n, L in shapes
            ]
        except ArchitectureError as err:
            raise CoordCheckError(str(err)) from None


@partial(jax.jit, static_argnames=("arch", "opt", "steps"))
def _trajectory(seeds, lr, mult, x, y, *, arch, opt, steps):
    """Per seed: train ``steps`` steps on the batch (x, y); the statistics after each step."""

    def one(seed):
        state = init_state(seed, mult, arch, opt)

        def body(state, _):
            state, _ = train_step(state, (x, y), mult, lr, arch, opt)
            stats = layer_stats(state.params0, state.params, x, mult, arch)
            return state, flatten_stats(stats)

        return jax.lax.scan(body, state, None, length=steps)[1]

    return jax.vmap(one)(seeds)


def measure(scheme: Scheme | str, setting: CoordSetting, data: Dataset) -> pd.DataFrame:
    """Long table: width, depth, seed, step (1..steps), role, stat, value.

    The batch is the first ``batch_size`` training examples, the same for every shape and seed;
    each seed draws its own initial weights.
    """
    scheme = get_scheme(scheme)
    opt = OptimizerConfig(setting.optimizer)
    x = jnp.asarray(data.x_train[: setting.batch_size])
    y = jnp.asarray(data.y_train[: setting.batch_size])
    seeds = jnp.asarray(setting.seeds, jnp.int32)
    frames = []
    for arch in setting.architectures(data):
        check_inputs(x, arch)
        mult = multipliers(scheme, arch, opt.family)
        stats = _trajectory(
            seeds, jnp.float32(setting.lr), mult, x, y, arch=arch, opt=opt, steps=setting.steps
        )
        for key, values in stats.items():
            stat, role = split_stat_column(key)
            values = np.asarray(values)  # (seeds, steps)
            frames.append(
                pd.DataFrame(
                    {
                        "width": arch.width,
                        "depth": arch.depth,
                        "seed": np.repeat(setting.seeds, setting.steps),
                        "step": np.tile(np.arange(1, setting.steps + 1), len(setting.seeds)),
                        "role": role,
                        "stat": stat,
                        "value": values.ravel(),
                    }
                )  # fmt: skip
            )
    return pd.concat(frames, ignore_index=True)


def slopes(frame: pd.DataFrame, axis: str, stats: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Log-log slope d log(size) / d log(axis) of the seed-mean value, per (role, stat, step).

    A shape where any seed's value is non-finite or <= 0 makes the slope NaN (a blow-up is a
    failure, never a gap the fit skips).
    """
    sel = frame if stats is None else frame[frame["stat"].isin(stats)]
    rows = []
    for (role, stat, step), s in sel.groupby(["role", "stat", "step"], sort=False):
        per = s.groupby(axis)["value"].agg(
            lambda v: float(np.mean(v)) if np.all(np.isfinite(v) & (v > 0)) else np.nan
        )
        slope = ols_slope(np.log(per.index.to_numpy(float)), np.log(per.to_numpy(float)))
        if per.isna().any():
            slope = np.nan
        rows.append({"role": role, "stat": stat, "step": int(step), "slope": slope})
    return pd.DataFrame(rows, columns=["role", "stat", "step", "slope"])


def checked_stats(role: str) -> tuple[str, ...]:
    """The quantities the pass/fail rule looks at for ``role`` (module docstring)."""
    return CHECKED.get(role, DEFAULT_CHECKED)


def verdict(frame: pd.DataFrame, axis: str, tolerance: float = DEFAULT_TOLERANCE) -> pd.DataFrame:
    """One row per role: the worst slope over steps and checked quantities, and pass/fail.

    Columns: role, stat, step (where the worst |slope| is), slope, tolerance, passed, reason.
    A role passes when every checked slope is finite and |slope| <= tolerance.
    """
    table = slopes(frame, axis, ("rms", "rms_change"))
    rows = []
    for role in role_order(table["role"].unique()):
        s = table[(table["role"] == role) & table["stat"].isin(checked_stats(role))]
        bad = s[s["slope"].isna()]
        if len(bad):
            worst = bad.iloc[0]
            reason = "non-finite or zero size (blow-up or no change)"
        else:
            worst = s.loc[s["slope"].abs().idxmax()]
            reason = (
                ""
                if abs(worst["slope"]) <= tolerance
                else "grows"
                if worst["slope"] > 0
                else "shrinks"
            )
        rows.append({
            "role": role, "stat": worst["stat"], "step": int(worst["step"]),
            "slope": float(worst["slope"]), "tolerance": tolerance,
            "passed": reason == "", "reason": reason,
        })  # fmt: skip
    return pd.DataFrame(rows)


def own_movement_slopes(frame: pd.DataFrame, axis: str) -> pd.Series:
    """Slope of log own movement against log(axis) after the last step, per role."""
    last = frame[frame["step"] == frame["step"].max()]
    table = slopes(last, axis, ("own_movement",))
    return table.set_index("role")["slope"].reindex(role_order(table["role"].unique()))


def check_ladder(
    rungs: list, setting: CoordSetting, data: Dataset, tolerance: float = DEFAULT_TOLERANCE
) -> pd.DataFrame:
    """The check at every rung of a :func:`hptransfer.tools.ladder.ladder`: one row per rung with
    index, change, passed and the failing roles (comma-separated)."""
    rows = []
    for rung in rungs:
        table = verdict(measure(rung.scheme, setting, data), setting.axis, tolerance)
        failing = table.loc[~table["passed"], "role"].tolist()
        rows.append({
            "rung": rung.index, "change": rung.change or "(start)",
            "passed": not failing, "failing": ", ".join(failing),
        })  # fmt: skip
    return pd.DataFrame(rows)


def first_flip(table: pd.DataFrame) -> int | None:
    """The first rung whose pass/fail differs from rung 0's (None when none does)."""
    flips = table.index[table["passed"] != table["passed"].iloc[0]]
    return int(table.loc[flips[0], "rung"]) if len(flips) else None


def collapse_note(frame: pd.DataFrame, axis: str) -> str | None:
    """The feature-learning collapse of hidden_1 inside blocks of k >= 2 layers, if the frame
    shows it: its own movement after the last step falls with depth faster than
    L^-MOVEMENT_SLOPE (the threshold of the sweep analysis' verdicts). None otherwise."""
    if axis != "depth" or "hidden_2" not in set(frame["role"]):
        return None
    slope = own_movement_slopes(frame, axis).get("hidden_1", np.nan)
    if not slope <= -MOVEMENT_SLOPE:
        return None
    return (
        f"hidden_1's own movement falls like L^{slope:.2f}: the first layer of each block stops "
        "learning with depth (the collapse NFD corrects; see docs/coordcheck.md)"
    )


# --------------------------------------------------------------------------------------------
# Used by the tests of the sweep-free movement measurements (single runs via train_run).


def coord_check(
    scheme: Scheme | str,
    archs: list[Architecture],
    data: Dataset,
    lr: float,
    steps: int = 5,
    seeds: tuple[int, ...] = (0,),
    opt: OptimizerConfig | None = None,
    batch_size: int = 128,
) -> pd.DataFrame:
    """One row per (shape, role) after ``steps`` minibatch steps (:func:`train_run`): width,
    depth, role and the movement statistics averaged over ``seeds``."""
    from hptransfer.network.train import train_run

    opt = opt or OptimizerConfig("sgd")
    rows = []
    for arch in archs:
        per_role: dict[str, dict[str, float]] = {}
        for seed in seeds:
            result = train_run(scheme, arch, opt, lr, seed, data, steps, batch_size)
            for key, value in result.movement.items():
                stat, role = split_stat_column(key)
                stats = per_role.setdefault(role, {})
                stats[stat] = stats.get(stat, 0.0) + value / len(seeds)
        for role, stats in per_role.items():
            rows.append({"width": arch.width, "depth": arch.depth, "role": role, **stats})
    return pd.DataFrame(rows)


def spread(frame: pd.DataFrame, column: str, by: str = "role") -> pd.Series:
    """max / min of ``column`` over shapes, per ``by`` group (1.0 = perfectly flat)."""
    return frame.groupby(by)[column].agg(lambda v: float(np.max(v) / np.min(v)))


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x."""
    return ols_slope(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)))


# --------------------------------------------------------------------------------------------
# The figure (microsoft/mup's coord-check layout, in the house style of hptransfer.reports.figures)


def plot_coord_check(frame: pd.DataFrame, axis: str, path: str | Path, title: str = "") -> Path:
    """One panel per step (columns) for RMS(a_t) and RMS(a_t - a_0) (rows): the size against
    width or depth on a log2 x axis and a log y axis, one line per role (seed mean), the band
    spanning the seeds' minimum to maximum."""
    import seaborn as sns

    from hptransfer.reports import figures as fg

    stats = (("rms", "RMS(a_t)"), ("rms_change", "RMS(a_t - a_0)"))
    steps = sorted(frame["step"].unique())
    roles = role_order(frame["role"].unique())
    colors = fg._role_colors(roles)
    values = sorted(frame[axis].unique())
    with fg._style()[0], fg._style()[1]:
        fig, axes = fg._figure(len(stats), len(steps), extra_width=1.4, panel=(2.4, 2.2))
        for r, (stat, label) in enumerate(stats):
            for c, step in enumerate(steps):
                ax = axes[r, c]
                s = frame[(frame["stat"] == stat) & (frame["step"] == step) & (frame["value"] > 0)]
                if len(s):
                    sns.lineplot(
                        data=s, x=axis, y="value", hue="role", hue_order=roles, palette=colors,
                        errorbar=lambda v: (float(np.min(v)), float(np.max(v))),
                        marker="o", markersize=4, legend=False, ax=ax,
                    )  # fmt: skip
                    fg._log_y(ax)
                fg._log2_axis(ax, values)
                ax.set_xlabel(f"{fg.AXIS_LABEL[axis]}, log2" if r == len(stats) - 1 else "")
                ax.set_ylabel(label if c == 0 else "")
                if r == 0:
                    ax.set_title(f"t = {step}")
        handles = [
            fg.Line2D([], [], color=colors[role], lw=2, marker="o", label=role) for role in roles
        ]
        fig.legend(handles=handles, loc="outside right center", frameon=False, title="layer role")
        fg._suptitle(fig, title or f"Coordinate check across {axis} (band: min-max over seeds)")
        return fg._save(fig, Path(path))


def seed_slopes(frame: pd.DataFrame, axis: str, stats: tuple[str, ...]) -> pd.DataFrame:
    """Each seed's own log-log slope d log(size) / d log(axis): one row per (role, stat, step,
    seed); NaN where a size of that seed is non-finite or <= 0 (a blow-up is never skipped)."""
    sel = frame[frame["stat"].isin(stats)]
    rows = []
    for (role, stat, step, seed), s in sel.groupby(["role", "stat", "step", "seed"], sort=False):
        per = s.groupby(axis)["value"].mean()
        ok = np.isfinite(per.to_numpy(float)) & (per.to_numpy(float) > 0)
        slope = (
            ols_slope(np.log(per.index.to_numpy(float)), np.log(per.to_numpy(float)))
            if ok.all()
            else np.nan
        )
        rows.append({"role": role, "stat": stat, "step": int(step), "seed": int(seed),
                     "slope": slope})  # fmt: skip
    return pd.DataFrame(rows, columns=["role", "stat", "step", "seed", "slope"])


def interval_verdict(
    frame: pd.DataFrame, axis: str, tolerance: float = DEFAULT_TOLERANCE, ci: float = 0.9
) -> pd.DataFrame:
    """One row per role, decided on intervals: for every checked quantity and step, the
    interval of the slope over seeds (:func:`hptransfer.stats.intervals.seed_interval` of the
    per-seed slopes around the seed-mean slope of :func:`slopes`) is judged against
    [-tolerance, tolerance] by :func:`hptransfer.stats.intervals.interval_outcome`; the role takes
    the worst outcome over them (a non-finite per-seed slope: fails). Columns: role, stat,
    step, slope, lo, hi (the deciding quantity), outcome."""
    from hptransfer.stats.intervals import FAILS, interval_outcome, seed_interval, worst_outcome

    point = slopes(frame, axis, ("rms", "rms_change")).set_index(["role", "stat", "step"])
    per_seed = seed_slopes(frame, axis, ("rms", "rms_change"))
    rows = []
    for role in role_order(per_seed["role"].unique()):
        mine = per_seed[(per_seed["role"] == role) & per_seed["stat"].isin(checked_stats(role))]
        parts = []
        for (stat, step), s in mine.groupby(["stat", "step"], sort=False):
            centre = float(point.loc[(role, stat, step), "slope"])
            v = s["slope"].to_numpy(float)
            if not np.isfinite(v).all() or not np.isfinite(centre):
                parts.append((FAILS, stat, step, centre, np.nan, np.nan))
                continue
            _, lo, hi, _ = seed_interval(v, ci, centre=centre)
            outcome = interval_outcome(float(lo), float(hi), -tolerance, tolerance)
            parts.append((outcome, stat, step, centre, float(lo), float(hi)))
        worst = worst_outcome([p[0] for p in parts])
        deciding = max(
            (p for p in parts if p[0] == worst),
            key=lambda p: abs(p[3]) if np.isfinite(p[3]) else 9e9,
        )
        rows.append(dict(zip(["outcome", "stat", "step", "slope", "lo", "hi"], deciding,
                             strict=True)) | {"role": role})  # fmt: skip
    return pd.DataFrame(rows, columns=["role", "stat", "step", "slope", "lo", "hi", "outcome"])
