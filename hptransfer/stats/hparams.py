"""Hyperparameters beyond the learning rate: the optimum of every swept axis, how it moves.

A sweep may declare axes besides the learning rate (meta.json config ``axes`` and
``axis_groups``; the results table has one float column per axis, named by it). Each group of
one or two traced axes is a full grid; a row belongs to group G when every traced axis outside
G sits at its default. Shape axes (``batch_size``, ``steps``) are conditions: every point is
trained at each of their values, so every table below carries their columns and is computed
per value. The learning rate is the axis "lr", read from the column log2_lr.

    results --axis_finals-->   finals   one row per replica, with the axis columns
    finals  --axis_optima-->   optima   per shape and group: the optimum of each axis, bracket,
                                        per-seed interval (long table, one row per axis)
    optima  --axis_drift-->             drift of each optimum per doubling of depth / width
            --path_drift-->             drift along model.path (L grows as n^gamma)
    finals  --joint_regret-->           loss of the base shape's joint optimum at every shape
            --shape_optima-->           eta* at every value of a shape axis, and its drift

Optima. A group of one axis: :func:`hptransfer.stats.tables.optimal_lr` on that axis (the parabola
refinement of :mod:`hptransfer.stats.optimum`, its brackets, per-seed optima and their interval).
A group of two axes (a, b): on the seed-mean surface z[i, j] (+inf where a seed diverged) take
the grid argmin (i, j); when all 3 x 3 neighbours exist and are finite, fit by least squares

    z ~ c0 + c1 u + c2 v + c3 u^2 + c4 u v + c5 v^2,    u = a - a_i, v = b - b_j,

and take its stationary point -H^{-1} (c1, c2), H = [[2 c3, c4], [c4, 2 c5]], when H is
positive definite and the point lies in [a_{i-1}, a_{i+1}] x [b_{j-1}, b_{j+1}]; otherwise the
grid point, each coordinate then refined by the parabola along its own line through the
argmin when both of its neighbours there are finite. Each coordinate has the 1-D bracket [a_{i-1}, a_{i+1}] (open past the grid's end)
and is censored ("low"/"high") at a grid edge or next to a diverged point along it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from hptransfer.network.hyperparameters import Axis
from hptransfer.stats.columns import SERIES
from hptransfer.stats.intervals import interval_method, ols_slope, seed_interval
from hptransfer.stats.optimum import refine
from hptransfer.stats.tables import (
    GROUP,
    _seed_mean,
    drift,
    drift_fit,
    final_losses,
    optimal_lr,
    rows_where,
    seed_optima,
)

LR, LR_COLUMN = "lr", "log2_lr"
OPTIMA_COLUMNS = (
    "group", "hparam", "optimum", "best_loss", "edge", "edge_cause", "bracket_lo", "bracket_hi",
    "optimum_lo", "optimum_hi", "n_seed_optima", "interval", "n_seeds", "n_values", "grid_min",
    "grid_max",
)  # fmt: skip


# --------------------------------------------------------------------------------------------
# The run's design (what the statistics read of its config)


@dataclass(frozen=True)
class RunDesign:
    """What the statistics read of a run's config (meta.json ``config``), parsed once at the
    boundary (:meth:`from_config`): the declared axes (unit and kind from each axis's name,
    :data:`hptransfer.network.hyperparameters.SPECS`), their groups, the model path, and the
    default log2 learning rates of groups that do not sweep it."""

    axes: Mapping[str, Axis] = field(default_factory=dict)
    groups: tuple[tuple[str, ...], ...] = ()
    path: tuple[tuple[int, int], ...] | None = None
    lr_default: float | None = None
    lr_default_by_scheme: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> RunDesign:
        """The design of a config as meta.json records it (a run without axes: empty)."""
        cfg = config or {}
        axes = {
            name: Axis(
                name,
                tuple(_value(v) for v in raw.get("values", ())),
                _value(raw.get("default", 0.0)),
            )
            for name, raw in (cfg.get("axes") or {}).items()
        }
        path = (cfg.get("model") or {}).get("path")
        default = cfg.get("lr_default")
        return cls(
            axes=axes,
            groups=tuple(tuple(g) for g in cfg.get("axis_groups") or []),
            path=tuple((int(w), int(d)) for w, d in path) if path else None,
            lr_default=None if default is None else float(default),
            lr_default_by_scheme={
                s: float(v) for s, v in (cfg.get("lr_default_by_scheme") or {}).items()
            },
        )

    @property
    def traced(self) -> list[str]:
        """The traced axes other than the learning rate."""
        return [a.name for a in self.axes.values() if a.kind != "shape" and a.name != LR]

    @property
    def shapes(self) -> list[str]:
        """The shape axes (conditions): batch_size, steps, schedule."""
        return [a.name for a in self.axes.values() if a.kind == "shape"]

    def lr_defaults(self, schemes: Sequence[str]) -> dict[str, float]:
        """log2 learning rate of each scheme in groups without "lr" (lr_default, or
        lr_default_by_scheme); empty when the config states none."""
        out = {s: self.lr_default_by_scheme.get(s, self.lr_default) for s in schemes}
        return {s: float(v) for s, v in out.items() if v is not None}


def _value(v: Any) -> float | str:
    """An axis value as meta.json records it: a number, or a name (the schedule kind)."""
    return v if isinstance(v, str) else float(v)


def group_label(group: Sequence[str]) -> str:
    """A group's name in tables, file and metric names: its axes joined by "_x_" ("lr_x_init_scale")."""
    return "_x_".join(group)


def coordinate(name: str) -> str:
    """The results column of an axis: log2_lr for "lr", else the axis's own column."""
    return LR_COLUMN if name == LR else name


def at_default_conditions(df: pd.DataFrame, design: RunDesign) -> pd.DataFrame:
    """The rows of a table where every shape axis (a condition) is at its default."""
    return df[_at_default(df, design.shapes, design.axes)]


# --------------------------------------------------------------------------------------------
# Rows


def _at_default(df: pd.DataFrame, names: Sequence[str], axes: Mapping[str, Axis]) -> np.ndarray:
    """Mask of the rows where every named axis with a column is at its default."""
    mask = np.ones(len(df), bool)
    for name in names:
        if name in df.columns and name in axes:
            default = axes[name].default
            if isinstance(default, str):  # a named value (the schedule kind)
                mask &= (df[name] == default).to_numpy(bool)
                continue
            col = df[name].to_numpy(float)
            mask &= np.isclose(col, default, rtol=0.0, atol=1e-9)
    return mask


def default_rows(results: pd.DataFrame, design: RunDesign) -> pd.DataFrame:
    """The rows where every declared axis but the learning rate (traced and shape) is at its
    default: the sweep the learning-rate chain reads. ``results`` itself without axes."""
    axes = design.axes
    if not axes:
        return results
    names = [*design.traced, *design.shapes]
    return results[_at_default(results, names, axes)]


def group_rows(results: pd.DataFrame, design: RunDesign, group: Sequence[str]) -> pd.DataFrame:
    """The rows of one group: every traced axis outside ``group`` at its default (shape axes
    are left as they are: each of their values is a condition)."""
    axes = design.axes
    outside = [a for a in design.traced if a not in group]
    mask = _at_default(results, outside, axes)
    if LR not in group:  # the group trains each scheme at its default learning rate only
        defaults = design.lr_defaults(results["scheme"].unique())
        if defaults:
            want = results["scheme"].map(defaults).to_numpy(float)
            mask &= np.isclose(results[LR_COLUMN].to_numpy(float), want, rtol=0.0, atol=1e-9)
    return results[mask]


def axis_finals(results: pd.DataFrame, design: RunDesign, last_evals: int = 3) -> pd.DataFrame:
    """:func:`hptransfer.stats.tables.final_losses` of every replica, the axis columns kept (a
    replica is one point of the axes' grid: final losses are computed per point)."""
    cols = [a for a in [*design.traced, *design.shapes] if a in results.columns]
    if not cols:
        return final_losses(results, last_evals)
    frames = []
    for key, part in results.groupby(cols, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        f = final_losses(part, last_evals)
        frames.append(f.assign(**dict(zip(cols, (_value(k) for k in key), strict=True))))
    return pd.concat(frames, ignore_index=True)


def _conditions(
    finals: pd.DataFrame, design: RunDesign
) -> Iterator[tuple[dict[str, float], pd.DataFrame]]:
    """(shape-axis values, rows) per condition present: every shape axis at one value."""
    cols = [a for a in design.shapes if a in finals.columns]
    if not cols:
        yield {}, finals
        return
    for key, part in finals.groupby(cols, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        yield dict(zip(cols, (_value(k) for k in key), strict=True)), part


# --------------------------------------------------------------------------------------------
# Optima of one group


def _optima_1d(f: pd.DataFrame, name: str, ci: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(optima, seeds) of one axis over rows where it is the only one that varies per group."""
    col = coordinate(name)
    g = f.assign(log2_lr=f[col].astype(float))
    opt = optimal_lr(g, ci=ci)
    seeds = seed_optima(g).rename(columns={"log2_eta_star": "optimum"})
    opt = opt.rename(
        columns={
            "log2_eta_star": "optimum",
            "log2_eta_lo": "optimum_lo",
            "log2_eta_hi": "optimum_hi",
            "n_lr": "n_values",
        }
    )
    return opt, seeds


class Optimum2D(NamedTuple):
    """The optimum of a surface z[i, j] over grids a [na], b [nb] (module docstring). Per
    coordinate (a, b): the value, edge ("low"/"high"/None), cause and bracket."""

    a: float
    b: float
    loss: float
    edge_a: str | None
    edge_b: str | None
    cause_a: str | None
    cause_b: str | None
    bracket_a: tuple[float, float]
    bracket_b: tuple[float, float]


def _edge_1d(line: np.ndarray, i: int) -> tuple[str | None, str | None]:
    """(edge, cause) of index i on a line of values (+inf = diverged), as optimum.refine."""
    n = line.size
    if i == 0:
        return "low", "grid"
    if i == n - 1:
        return "high", "grid"
    if not np.isfinite(line[i - 1]):
        return "low", "divergence"
    if not np.isfinite(line[i + 1]):
        return "high", "divergence"
    return None, None


def refine_2d(a: np.ndarray, b: np.ndarray, z: np.ndarray) -> Optimum2D:
    """The optimum of the surface z [na, nb] (non-finite = diverged or not run) on increasing
    grids a, b: grid argmin refined by the local quadratic of the module docstring."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    zz = np.where(np.isfinite(z), z, np.inf)
    if not np.isfinite(zz).any():
        nan2 = (math.nan, math.nan)
        return Optimum2D(math.nan, math.nan, math.inf, "low", "low", "all_diverged",
                         "all_diverged", nan2, nan2)  # fmt: skip
    i, j = np.unravel_index(int(np.argmin(zz)), zz.shape)
    i, j = int(i), int(j)
    edge_a, cause_a = _edge_1d(zz[:, j], i)
    edge_b, cause_b = _edge_1d(zz[i, :], j)
    bracket_a = (
        float(a[i - 1]) if i > 0 else -math.inf,
        float(a[i + 1]) if i < a.size - 1 else math.inf,
    )
    bracket_b = (
        float(b[j - 1]) if j > 0 else -math.inf,
        float(b[j + 1]) if j < b.size - 1 else math.inf,
    )
    best = (float(a[i]), float(b[j]), float(zz[i, j]))
    inside = 0 < i < a.size - 1 and 0 < j < b.size - 1
    if inside and np.isfinite(zz[i - 1 : i + 2, j - 1 : j + 2]).all():
        uu, vv = np.meshgrid(a[i - 1 : i + 2] - a[i], b[j - 1 : j + 2] - b[j], indexing="ij")
        u, v = uu.ravel(), vv.ravel()
        design = np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=1)
        c = np.linalg.lstsq(design, zz[i - 1 : i + 2, j - 1 : j + 2].ravel(), rcond=None)[0]
        hess = np.array([[2 * c[3], c[4]], [c[4], 2 * c[5]]])
        if hess[0, 0] > 0 and np.linalg.det(hess) > 0:
            du, dv = np.linalg.solve(hess, -c[1:3])
            if (
                bracket_a[0] <= a[i] + du <= bracket_a[1]
                and bracket_b[0] <= b[j] + dv <= bracket_b[1]
            ):
                value = c[0] + c[1] * du + c[2] * dv + c[3] * du**2 + c[4] * du * dv + c[5] * dv**2
                best = (float(a[i] + du), float(b[j] + dv), float(value))
                return Optimum2D(*best, edge_a, edge_b, cause_a, cause_b, bracket_a, bracket_b)
    # No convex 3 x 3 fit (a diverged neighbour, an edge): each coordinate with two finite
    # neighbours along its own line through the argmin is refined by that line's parabola.
    line_a, line_b = refine(a, zz[:, j]), refine(b, zz[i, :])
    best = (
        float(line_a.log2_eta) if edge_a is None else best[0],
        float(line_b.log2_eta) if edge_b is None else best[1],
        best[2],
    )
    return Optimum2D(*best, edge_a, edge_b, cause_a, cause_b, bracket_a, bracket_b)


def _surfaces(
    f: pd.DataFrame, ca: str, cb: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(a grid, b grid, seeds, per-seed final losses [S, na, nb]; NaN = not run, +inf =
    diverged) of one shape's rows."""
    wide = f.pivot_table(
        index="seed", columns=[ca, cb], values="final_train_loss", aggfunc="mean", dropna=False
    )
    a = np.sort(f[ca].unique().astype(float))
    b = np.sort(f[cb].unique().astype(float))
    full = pd.MultiIndex.from_product([a, b], names=[ca, cb])
    v = wide.reindex(columns=full).to_numpy(float).reshape(len(wide), a.size, b.size)
    return a, b, wide.index.to_numpy(), v


def _optima_2d(
    f: pd.DataFrame, names: Sequence[str], ci: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(optima, seeds) of a two-axis group, one row per (shape, coordinate)."""
    ca, cb = (coordinate(n) for n in names)
    rows, seed_rows = [], []
    for key, g in f.groupby(list(GROUP), sort=True):
        base = dict(zip(GROUP, key, strict=True))
        a, b, seeds, v = _surfaces(g, ca, cb)
        opt = refine_2d(a, b, _seed_mean(v, axis=0))
        per_seed = [refine_2d(a, b, v[s]) for s in range(v.shape[0])]
        grids = {names[0]: a, names[1]: b}
        for k, name in enumerate(names):
            value = opt.a if k == 0 else opt.b
            edge = opt.edge_a if k == 0 else opt.edge_b
            cause = opt.cause_a if k == 0 else opt.cause_b
            lo_b, hi_b = opt.bracket_a if k == 0 else opt.bracket_b
            seed_vals = np.array(
                [
                    (p.a if k == 0 else p.b)
                    if np.isfinite(np.array(p.bracket_a if k == 0 else p.bracket_b)).all()
                    else math.nan
                    for p in per_seed
                ]
            )
            _, lo, hi, n = seed_interval(seed_vals, ci, centre=value)
            rows.append(
                base
                | dict(
                    hparam=name,
                    optimum=value,
                    best_loss=opt.loss,
                    edge=edge,
                    edge_cause=cause,
                    bracket_lo=float(lo_b),
                    bracket_hi=float(hi_b),
                    optimum_lo=float(lo),
                    optimum_hi=float(hi),
                    n_seed_optima=int(n),
                    interval=interval_method(int(n)),
                    n_seeds=int(g["seed"].nunique()),
                    n_values=int(grids[name].size),
                    grid_min=float(grids[name].min()),
                    grid_max=float(grids[name].max()),
                )
            )
            seed_rows += [
                base | dict(hparam=name, seed=s, optimum=float(x))
                for s, x in zip(seeds, seed_vals, strict=True)
            ]
    return pd.DataFrame(rows), pd.DataFrame(seed_rows)


def axis_optima(
    finals: pd.DataFrame, design: RunDesign, ci: float = 0.9
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(optima, seeds) of every declared group at every shape and shape-axis condition.

    optima: GROUP, the shape-axis columns, group (label), hparam (the axis), optimum (in the
    axis's unit: log2 for "lr" and the log2 multipliers), best_loss (seed-mean loss there),
    edge / edge_cause / bracket_lo / bracket_hi (the censoring of that coordinate),
    optimum_lo / optimum_hi / n_seed_optima / interval (seed interval), n_seeds, n_values,
    grid_min, grid_max. seeds: GROUP, shape-axis columns, group, hparam, seed, optimum (NaN
    where that seed's bracket is open).
    """
    conds = [a for a in design.shapes if a in finals.columns]
    opts, seeds = [], []
    for group in design.groups:
        rows = group_rows(finals, design, group)
        for cond, part in _conditions(rows, design):
            if part.empty:
                continue
            if len(group) == 1:
                o, s = _optima_1d(part, group[0], ci)
                o, s = o.assign(hparam=group[0]), s.assign(hparam=group[0])
            else:
                o, s = _optima_2d(part, group, ci)
            label = group_label(group)
            opts.append(o.assign(group=label, **cond))
            seeds.append(s.assign(group=label, **cond))
    cols = [*GROUP, *conds, *OPTIMA_COLUMNS]
    if not opts:
        return pd.DataFrame(columns=cols), pd.DataFrame(
            columns=[*GROUP, *conds, "group", "hparam", "seed", "optimum"]
        )
    optima = pd.concat(opts, ignore_index=True)[cols]
    return optima, pd.concat(seeds, ignore_index=True)[
        [*GROUP, *conds, "group", "hparam", "seed", "optimum"]
    ]


# --------------------------------------------------------------------------------------------
# Drift


def _as_eta(df: pd.DataFrame) -> pd.DataFrame:
    """An optimum table under the names :func:`hptransfer.stats.tables.drift` reads."""
    return df.rename(columns={"optimum": "log2_eta_star"})


def _by(df: pd.DataFrame, keys: Sequence[str]):
    """groupby over ``keys`` (the whole frame once when there are none)."""
    if not keys:
        yield (), df
        return
    for key, part in df.groupby(list(keys), sort=True):
        yield key if isinstance(key, tuple) else (key,), part


def axis_drift(
    optima: pd.DataFrame,
    seeds: pd.DataFrame,
    design: RunDesign,
    ci: float = 0.9,
) -> pd.DataFrame:
    """Drift of every axis optimum per doubling of depth (at fixed width, per block depth) and
    of width (at fixed depth): :func:`hptransfer.stats.tables.drift` (OLS of the optimum on log2 L
    or log2 n over the located optima; seed interval over per-seed slopes; slope_min /
    slope_max over the brackets of censored optima), per group, hparam and shape condition.
    Columns: group, hparam, the shape-axis columns, then drift's (axis = "depth" / "width",
    slope, slope_lo, slope_hi, interval, slope_min, slope_max, n_censored, ...).
    """
    keys = ["group", "hparam", *[a for a in design.shapes if a in optima.columns]]
    frames = []
    for key, part in _by(optima, keys):
        sel = dict(zip(keys, key, strict=True))
        s = rows_where(seeds, sel)
        d = drift(_as_eta(part[[*GROUP, *OPTIMA_COLUMNS]]), _as_eta(s), ci)
        if len(d):
            frames.append(d.assign(**sel))
    if not frames:
        return pd.DataFrame(columns=[*keys, "axis", "slope"])
    out = pd.concat(frames, ignore_index=True)
    return out[[*keys, *[c for c in out.columns if c not in keys]]]


def path_exponent(path: Sequence[tuple[int, int]]) -> float:
    """gamma of a path: the OLS slope of log2 L on log2 n over its points (L grows as n^gamma)."""
    w = np.log2([p[0] for p in path])
    d = np.log2([p[1] for p in path])
    return ols_slope(w, d)


def path_drift(
    optima: pd.DataFrame,
    seeds: pd.DataFrame | None,
    path: Sequence[tuple[int, int]],
    ci: float = 0.9,
    value: str = "optimum",
    keys: Sequence[str] = (),
) -> pd.DataFrame:
    """Drift of an optimum along model.path, per doubling of width along it.

    For each series (family, scheme, optimizer, block_depth, ``keys``) the shapes on the path,
    x = log2(n / n_0) (n_0 the path's first width; L = L_0 2^(gamma x)), and
    :func:`hptransfer.stats.tables.drift_fit` of column ``value`` on x (censored optima by their
    brackets, seed interval over per-seed slopes from ``seeds``). Columns: the series keys,
    axis = "path", gamma (:func:`path_exponent`), n_min, n_max and drift_fit's columns.
    """
    gamma = path_exponent(path)
    n0 = path[0][0]
    on_path = set(path)
    series = [*SERIES, *keys]
    keep = [
        (int(w), int(d)) in on_path for w, d in zip(optima["width"], optima["depth"], strict=True)
    ]
    opt = optima[np.asarray(keep, bool)]
    rows = []
    for key, s in _by(opt, series):
        if s["width"].nunique() < 2:
            continue
        s = s.sort_values("width")
        sel = dict(zip(series, key, strict=True))
        x = np.log2(s["width"].to_numpy(float) / n0)
        per_seed = np.full((0, len(s)), np.nan)
        ss = rows_where(seeds, sel)
        if len(ss):
            wide = ss.pivot_table(index="seed", columns=["width", "depth"], values=value,
                                  aggfunc="mean", dropna=False)  # fmt: skip
            cols = pd.MultiIndex.from_arrays([s["width"], s["depth"]])
            per_seed = wide.reindex(columns=cols).to_numpy(float)
        fit = drift_fit(
            x,
            s[value].to_numpy(float),
            s["edge"].notna().to_numpy(),
            s["bracket_lo"].to_numpy(float),
            s["bracket_hi"].to_numpy(float),
            per_seed,
            ci,
        )
        rows.append(
            sel
            | dict(axis="path", gamma=gamma, n_min=int(s["width"].min()),
                   n_max=int(s["width"].max()))
            | fit
        )  # fmt: skip
    if not rows:
        return pd.DataFrame(columns=[*series, "axis", "gamma", "slope"])
    return pd.DataFrame(rows)


def axis_path_drift(
    optima: pd.DataFrame,
    seeds: pd.DataFrame,
    design: RunDesign,
    ci: float = 0.9,
) -> pd.DataFrame:
    """:func:`path_drift` of every axis optimum (per group, hparam, shape condition); empty
    without model.path."""
    path = design.path
    if not path or optima.empty:
        return pd.DataFrame()
    keys = ["group", "hparam", *[a for a in design.shapes if a in optima.columns]]
    return path_drift(optima, seeds, path, ci, "optimum", keys)


# --------------------------------------------------------------------------------------------
# Shape axes: eta* at each value


def shape_optima(
    finals: pd.DataFrame, design: RunDesign, ci: float = 0.9
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(optima, drift) of the learning rate at each value of each shape axis, every traced
    axis at its default and the other shape axes too: :func:`hptransfer.stats.tables.optimal_lr`
    and :func:`hptransfer.stats.tables.drift` with columns shape_axis and shape_value in front
    (does eta* transfer across depth at every batch size / training length?)."""
    axes = design.axes
    shapes = [a for a in design.shapes if a in finals.columns]
    traced = finals[_at_default(finals, design.traced, axes)]
    opts, drifts = [], []
    for name in shapes:
        others = [a for a in shapes if a != name]
        rows = traced[_at_default(traced, others, axes)]
        for value, part in rows.groupby(name, sort=True):
            o = optimal_lr(part, ci=ci)
            d = drift(o, seed_optima(part), ci)
            tag = dict(shape_axis=name, shape_value=_value(value))
            opts.append(o.assign(**tag))
            if len(d):
                drifts.append(d.assign(**tag))

    def front(frames: list[pd.DataFrame]) -> pd.DataFrame:
        if not frames:
            return pd.DataFrame(columns=["shape_axis", "shape_value"])
        df = pd.concat(frames, ignore_index=True)
        first = ["shape_axis", "shape_value"]
        return df[[*first, *[c for c in df.columns if c not in first]]]

    return front(opts), front(drifts)


# --------------------------------------------------------------------------------------------
# Joint regret


def mean_losses(finals: pd.DataFrame, design: RunDesign, group: Sequence[str]) -> pd.DataFrame:
    """The seed-mean final training loss at every grid point of a group: GROUP, shape-axis
    columns, the group's coordinate columns, loss_mean (+inf where any seed diverged), n_seeds."""
    coords = [coordinate(n) for n in group]
    conds = [a for a in design.shapes if a in finals.columns]
    rows = group_rows(finals, design, group)
    keys = [*GROUP, *conds, *coords]
    mean = rows.groupby(keys, sort=True).agg(
        loss_mean=("final_train_loss", "mean"), n_seeds=("seed", "nunique")
    )
    return mean.reset_index()


def joint_point(mean: pd.DataFrame, coords: Sequence[str]) -> pd.Series | None:
    """p*: the coordinates ``coords`` of the grid argmin of ``loss_mean`` over the finite rows of
    one shape's :func:`mean_losses` (None when every point diverged)."""
    finite = mean[np.isfinite(mean["loss_mean"])]
    if finite.empty:
        return None
    return finite.loc[finite["loss_mean"].idxmin(), list(coords)]


def joint_regret(finals: pd.DataFrame, design: RunDesign) -> pd.DataFrame:
    """Loss of the base shape's joint optimum at every shape, per group.

    Per series (family, scheme, optimizer, block_depth, shape condition) and group: p* = the
    grid argmin over the group's axes jointly of the seed-mean loss at the base shape
    (base_width, base_depth; the smallest shape when it is missing), and at each shape s

        regret_s = L_s(p*) / min_p L_s(p) - 1,

    +inf where p* diverges at s, NaN where p* was not run at s. Columns: the series keys,
    group, width, depth, base_width, base_depth, the coordinates of p* (point_<axis>),
    loss_at_base_point, best_loss, regret.
    """
    conds = [a for a in design.shapes if a in finals.columns]
    series = [*SERIES, *conds]
    rows = []
    for group in design.groups:
        coords = [coordinate(n) for n in group]
        mean = mean_losses(finals, design, group)
        base_w = int(finals["base_width"].iloc[0]) if "base_width" in finals else None
        base_d = int(finals["base_depth"].iloc[0]) if "base_depth" in finals else None
        for key, s in mean.groupby(series, sort=True):
            sel = dict(zip(series, key, strict=True))
            shapes = s[["width", "depth"]].drop_duplicates().sort_values(["width", "depth"])
            is_base = (s["width"] == base_w) & (s["depth"] == base_d)
            if not is_base.any():
                w0, d0 = shapes.iloc[0]
                is_base = (s["width"] == w0) & (s["depth"] == d0)
            base = s[is_base]
            point = joint_point(base, coords)
            if point is None:
                continue
            for (w, d), at in s.groupby(["width", "depth"], sort=True):
                ok = at["loss_mean"][np.isfinite(at["loss_mean"])]
                best = float(ok.min()) if len(ok) else math.nan
                hit = at[np.isclose(at[coords].to_numpy(float), point.to_numpy(float)).all(1)]
                value = float(hit["loss_mean"].iloc[0]) if len(hit) else math.nan
                if value == math.inf:
                    regret = math.inf
                elif math.isnan(value) or not math.isfinite(best) or best <= 0:
                    regret = math.nan
                else:
                    regret = value / best - 1.0
                rows.append(
                    sel
                    | dict(group=group_label(group), width=int(w), depth=int(d),
                           base_width=int(base["width"].iloc[0]),
                           base_depth=int(base["depth"].iloc[0]))
                    | {f"point_{n}": float(point[c]) for n, c in zip(group, coords, strict=True)}
                    | dict(loss_at_base_point=value, best_loss=best, regret=regret)
                )  # fmt: skip
    return pd.DataFrame(rows)


def worst_joint_regret(regret: pd.DataFrame) -> pd.DataFrame:
    """The largest joint regret per series and group (and where): columns the series keys,
    group, regret, at_width, at_depth."""
    if regret is None or regret.empty:
        return pd.DataFrame(columns=[*SERIES, "group", "regret", "at_width", "at_depth"])
    keys = [c for c in regret.columns if c in SERIES or c == "group"]
    keys += [
        c for c in regret.columns if c not in keys and c in ("batch_size", "steps", "schedule")
    ]
    rows = []
    for key, s in regret.groupby(keys, sort=True):
        r = s.loc[s["regret"].fillna(-1.0).idxmax()]
        rows.append(
            dict(zip(keys, key, strict=True))
            | dict(regret=float(r["regret"]), at_width=int(r["width"]), at_depth=int(r["depth"]))
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Everything


@dataclass(frozen=True)
class HparamsAnalysis:
    """The analysis of every axis beyond the learning rate (each table above)."""

    axes: dict[str, Axis]
    groups: list[tuple[str, ...]]
    finals: pd.DataFrame  # one row per replica, with the axis columns
    optima: pd.DataFrame
    seeds: pd.DataFrame
    drift: pd.DataFrame
    path_drift: pd.DataFrame
    shape_optima: pd.DataFrame
    shape_drift: pd.DataFrame
    regret: pd.DataFrame
    path: list[tuple[int, int]] | None = None
    gamma: float = math.nan
    conditions: list[str] = field(default_factory=list)  # the shape-axis columns
    design: RunDesign = field(default_factory=RunDesign)  # what it read of the sweep config


def hparams_analysis(
    results: pd.DataFrame,
    design: RunDesign,
    last_evals: int = 3,
    ci: float = 0.9,
) -> HparamsAnalysis | None:
    """Every table of this module for a run with axes; None for a run without."""
    if not design.axes:
        return None
    finals = axis_finals(results, design, last_evals)
    optima, seeds = axis_optima(finals, design, ci)
    shape_opt, shape_dr = shape_optima(finals, design, ci)
    path = design.path
    return HparamsAnalysis(
        axes=dict(design.axes),
        groups=list(design.groups),
        finals=finals,
        optima=optima,
        seeds=seeds,
        drift=axis_drift(optima, seeds, design, ci),
        path_drift=axis_path_drift(optima, seeds, design, ci),
        shape_optima=shape_opt,
        shape_drift=shape_dr,
        regret=joint_regret(finals, design),
        path=path,
        gamma=path_exponent(path) if path else math.nan,
        conditions=[a for a in design.shapes if a in finals.columns],
        design=design,
    )
