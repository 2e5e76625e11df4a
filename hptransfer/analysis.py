"""From a sweep's results table to optimal learning rates, transfer metrics and a scorecard.

Pure pandas/numpy on the tidy table the engine writes (one row per replica and evaluation step;
DESIGN.md sections 4 and 5). The chain, each step a public function usable from a notebook:

    results --final_losses-->  finals   one row per replica (group, learning rate, seed)
            --lr_curves-->     curves   one row per group and learning rate, seed-averaged
            --optimal_lr-->    optima   one row per group: eta*, edge flags, stability limit
    finals  --bootstrap_optima-->       eta* per group for each resample of the seeds
    optima  --drift-->                  slope of log2 eta* against log2 depth / log2 width
    curves  --transfer_regret-->        relative loss of the base-shape eta* at every shape
    finals  --movement_at_optimum--> --movement_slopes-->  feature movement and its slopes
    all     --scorecard-->              one row per (family, scheme, optimizer, block_depth)

A group is one shape cell of one scheme: (family, scheme, optimizer, width, depth, block_depth).
A series is the groups that differ only along one axis (depth or width), the other held fixed.
:func:`analyze` runs the whole chain once and keeps every table (an :class:`Analysis`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from hptransfer.movement import STATS  # the "<stat>/<role>" columns the engine writes
from hptransfer.results import META_FILE, read_meta, read_results

GROUP = ("family", "scheme", "optimizer", "width", "depth", "block_depth")
REPLICA = (*GROUP, "log2_lr", "seed")
AXES = ("depth", "width")
OTHER_AXIS = {"depth": "width", "width": "depth"}
MOVEMENT_STATS = ("own_movement", "weight_change", "total_movement")
REQUIRED = (*REPLICA, "lr", "step", "train_loss", "test_loss", "diverged")
SCHEME_ORDER = ("sp", "mup", "depth_mup", "nfd", "completep")
_MOVEMENT_COLUMN = re.compile(r"^(" + "|".join(STATS) + r")/(.+)$")

# Verdict thresholds. A drift is counted in octaves of eta* (one octave = a factor 2) per doubling
# of depth or width, i.e. the slope of log2 eta* against log2 L.
TRANSFER_SLOPE = 0.25  # |slope| below this moves eta* by < 1 octave (a usual grid step) over 16x
TRANSFER_REGRET = 0.02  # worst relative excess loss of the base-tuned rate counted as "transfers"
MOVEMENT_SLOPE = (
    0.2  # |log-log slope| of hidden_1 own movement called fading/growing (claim 3: -0.5)
)
STABILITY_SHIFT = 1.0  # octaves the largest stable learning rate must move to be reported


class AnalysisError(ValueError):
    """The results table cannot be analysed as given (missing columns, empty table)."""


# --------------------------------------------------------------------------------------------
# Loading and per-replica reduction


def load_run(run_dir: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(results table, meta dict) of a sweep directory; meta is {} when meta.json is missing.
    A missing results.parquet raises FileNotFoundError (:func:`hptransfer.results.read_results`)."""
    run_dir = Path(run_dir)
    results = read_results(run_dir)
    meta = read_meta(run_dir) if (run_dir / META_FILE).exists() else {}
    return results, meta


def _check(results: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED if c not in results.columns]
    if missing:
        raise AnalysisError(
            f"results table lacks columns {missing}; it has {list(results.columns)}"
        )
    if results.empty:
        raise AnalysisError("results table is empty: nothing to analyse")


def movement_columns(df: pd.DataFrame) -> list[str]:
    """The "<stat>/<role>" feature-movement columns of a table, in table order."""
    return [c for c in df.columns if _MOVEMENT_COLUMN.match(str(c))]


def role_order(roles: Sequence[str]) -> list[str]:
    """input, hidden_1, hidden_2, ..., readout, then anything else alphabetically."""

    def key(role: str) -> tuple[int, int, str]:
        if role == "input":
            return (0, 0, role)
        m = re.fullmatch(r"hidden_(\d+)", role)
        if m:
            return (1, int(m.group(1)), role)
        return (2, 0, role) if role == "readout" else (3, 0, role)

    return sorted(set(roles), key=key)


def scheme_order(schemes: Sequence[str]) -> list[str]:
    """The built-in schemes in SCHEME_ORDER, then any other scheme alphabetically."""
    known = [s for s in SCHEME_ORDER if s in set(schemes)]
    return known + sorted(set(schemes) - set(SCHEME_ORDER))


def final_losses(results: pd.DataFrame, last_evals: int = 3) -> pd.DataFrame:
    """One row per replica: its final losses, divergence and final feature movement.

    final_train_loss = mean of train_loss over the replica's last ``last_evals`` evaluations with
    step > 0 (each evaluation already averages the minibatch losses since the previous one);
    final_test_loss and final_test_accuracy likewise. A replica that diverged (diverged at any
    step, a finite diverged_step, or a non-finite final loss) gets final losses = +inf and
    accuracy NaN, so it can never win an argmin, whatever its last finite loss was. Movement
    columns hold the last non-missing value of each "<stat>/<role>" (the final evaluation).
    """
    _check(results)
    if last_evals < 1:
        raise AnalysisError(f"last_evals = {last_evals}; it must be >= 1")
    keys = list(REPLICA)
    df = results.sort_values([*keys, "step"], kind="stable")
    by_replica = df.groupby(keys, sort=True)
    diverged = by_replica["diverged"].any()
    if "diverged_step" in df.columns:
        diverged |= by_replica["diverged_step"].max().notna()
    trained = df[df["step"] > 0]
    tail = trained.groupby(keys, sort=False).tail(last_evals)
    extra = {"final_test_accuracy": ("test_accuracy", "mean")} if "test_accuracy" in df else {}
    out = tail.groupby(keys, sort=True).agg(
        lr=("lr", "first"),
        steps=("step", "max"),
        final_train_loss=("train_loss", "mean"),
        final_test_loss=("test_loss", "mean"),
        **extra,
    )
    out = out.reindex(diverged.index)
    failed = diverged.to_numpy() | ~np.isfinite(out["final_train_loss"].to_numpy(float))
    out["diverged"] = failed
    out["diverged_step"] = (
        by_replica["diverged_step"].max() if "diverged_step" in df.columns else np.nan
    )
    out.loc[failed, ["final_train_loss", "final_test_loss"]] = np.inf
    if "final_test_accuracy" in out:
        out.loc[failed, "final_test_accuracy"] = np.nan
    mcols = movement_columns(df)
    if mcols:
        out = out.join(by_replica[mcols].last())
    return out.reset_index()


def _as_finals(table: pd.DataFrame, last_evals: int) -> pd.DataFrame:
    """Accept either the raw results table or the output of :func:`final_losses`."""
    return table if "final_train_loss" in table.columns else final_losses(table, last_evals)


def lr_curves(table: pd.DataFrame, last_evals: int = 3) -> pd.DataFrame:
    """Seed-averaged final losses: one row per group and learning rate.

    loss_mean = mean over seeds of final_train_loss, which is +inf when any seed diverged
    (a learning rate where some seed diverged is worse than any finite loss). loss_sd, loss_lo
    and loss_hi are the standard deviation, minimum and maximum over the seeds that did not
    diverge (for bands). frac_diverged = fraction of seeds that diverged.
    """
    finals = _as_finals(table, last_evals)
    ok = ~finals["diverged"]
    tmp = finals.assign(
        _finite=finals["final_train_loss"].where(ok),
        _acc=finals["final_test_accuracy"] if "final_test_accuracy" in finals else np.nan,
        _div=finals["diverged"].astype(float),
    )
    curves = tmp.groupby([*GROUP, "log2_lr"], sort=True).agg(
        lr=("lr", "first"),
        loss_mean=("final_train_loss", "mean"),
        loss_sd=("_finite", "std"),
        loss_lo=("_finite", "min"),
        loss_hi=("_finite", "max"),
        test_loss_mean=("final_test_loss", "mean"),
        test_accuracy_mean=("_acc", "mean"),
        frac_diverged=("_div", "mean"),
        n_seeds=("seed", "nunique"),
    )
    return curves.reset_index()


# --------------------------------------------------------------------------------------------
# eta* on one loss curve


class Optimum(NamedTuple):
    """eta* of one loss curve. edge: "low"/"high"/None; edge_cause: "grid", "divergence",
    "all_diverged" or None. At an edge, log2_eta is the grid point: a bound, not an estimate."""

    log2_eta: float
    loss: float
    edge: str | None
    edge_cause: str | None


_EDGE = {-1: "low", 0: None, 1: "high"}
_CAUSE = {0: None, 1: "grid", 2: "divergence", 3: "all_diverged"}


def _quadratic(x0, x1, x2, y0, y1, y2, at):
    """The parabola through (x0, y0), (x1, y1), (x2, y2) evaluated at ``at`` (Lagrange form)."""
    return (
        y0 * (at - x1) * (at - x2) / ((x0 - x1) * (x0 - x2))
        + y1 * (at - x0) * (at - x2) / ((x1 - x0) * (x1 - x2))
        + y2 * (at - x0) * (at - x1) / ((x2 - x0) * (x2 - x1))
    )


def _refine(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    """Vectorised eta* over the leading axes of y [..., n] on the increasing grid x [n].

    i = argmin y (non-finite = +inf). Interior with finite neighbours: the vertex of the parabola
    through (x_{i-1..i+1}, y_{i-1..i+1}),

        x_v = x_i - 1/2 [(x_i-x_{i-1})^2 (y_i-y_{i+1}) - (x_i-x_{i+1})^2 (y_i-y_{i-1})]
                      / [(x_i-x_{i-1})   (y_i-y_{i+1}) - (x_i-x_{i+1})   (y_i-y_{i-1})],

    clamped to [x_{i-1}, x_{i+1}], and its value there. Otherwise x_i itself, flagged: edge -1
    (low) when i = 0 or the lower neighbour is non-finite, +1 (high) when i = n-1 or the upper
    one is; cause 1 = grid edge, 2 = next to a non-finite point, 3 = no finite point at all.
    Returns (log2_eta, loss, edge, cause, argmin).
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    n = x.size
    yy = np.where(np.isfinite(y), y, np.inf)
    i = np.argmin(yy, axis=-1)
    none = ~np.isfinite(yy).any(axis=-1)
    lo, hi = np.clip(i - 1, 0, n - 1), np.clip(i + 1, 0, n - 1)
    y0, y1, y2 = (np.take_along_axis(yy, j[..., None], -1)[..., 0] for j in (lo, i, hi))
    at_low, at_high = i == 0, i == n - 1
    low_bad = ~at_low & ~np.isfinite(y0)
    high_bad = ~at_high & ~np.isfinite(y2)
    edge = np.where(at_low | low_bad, -1, np.where(at_high | high_bad, 1, 0))
    grid_edge = (at_low & (edge == -1)) | (at_high & (edge == 1))
    cause = np.where(none, 3, np.where(edge == 0, 0, np.where(grid_edge, 1, 2)))
    interior = edge == 0
    x0, x1, x2 = x[lo], x[i], x[hi]
    with np.errstate(invalid="ignore", divide="ignore"):
        s0, s1, s2 = (np.where(interior, v, 0.0) for v in (y0, y1, y2))
        d1, d2 = x1 - x0, x1 - x2
        num = d1**2 * (s1 - s2) - d2**2 * (s1 - s0)
        den = d1 * (s1 - s2) - d2 * (s1 - s0)
        xv = np.where(den != 0, x1 - 0.5 * num / np.where(den != 0, den, 1.0), x1)
        xv = np.clip(xv, x0, x2)
        safe = interior & (x0 < x1) & (x1 < x2)
        value = np.where(
            safe,
            _quadratic(
                np.where(safe, x0, 0.0),
                np.where(safe, x1, 1.0),
                np.where(safe, x2, 2.0),
                s0,
                s1,
                s2,
                xv,
            ),
            y1,
        )
    log2_eta = np.where(none, np.nan, np.where(interior, xv, x1))
    value = np.where(none, np.inf, value)
    edge = np.where(none, -1, edge)
    return log2_eta, value, edge, cause, i


def _sorted_curve(log2_lr, loss) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(log2_lr, float)
    y = np.asarray(loss, float)
    if x.ndim != 1 or x.shape != y.shape or x.size == 0:
        raise AnalysisError(f"a loss curve needs matching 1-d arrays; got {x.shape} and {y.shape}")
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if np.any(np.diff(x) == 0):
        raise AnalysisError("duplicate learning rates in one loss curve: seed-average first")
    return x, y


def refine_optimum(log2_lr: Sequence[float], loss: Sequence[float]) -> Optimum:
    """eta* of one seed-averaged loss curve over a log2 learning-rate grid (see :func:`_refine`).

    Non-finite losses (diverged) count as worse than any finite loss. An argmin at the grid
    edge or next to a non-finite point is returned as the grid point with ``edge`` set.
    """
    x, y = _sorted_curve(log2_lr, loss)
    eta, value, edge, cause, _ = _refine(x, y)
    return Optimum(float(eta), float(value), _EDGE[int(edge)], _CAUSE[int(cause)])


def curve_value(log2_lr: Sequence[float], loss: Sequence[float], at: float) -> float:
    """The loss curve read at log2 lr = ``at``, on the same curve that defines eta*.

    Inside the bracket [x_{i-1}, x_{i+1}] of an interior argmin: the refining parabola (so the
    value at eta* is the refined best loss and nothing on the curve lies below it); elsewhere:
    linear interpolation in log2 lr between grid points, +inf if either end is non-finite.
    NaN outside the grid or when ``at`` is NaN.
    """
    x, y = _sorted_curve(log2_lr, loss)
    if not np.isfinite(at) or at < x[0] - 1e-12 or at > x[-1] + 1e-12:
        return math.nan
    eta, _, edge, _, i = _refine(x, y)
    i = int(i)
    if edge == 0 and x[i - 1] <= at <= x[i + 1]:
        y0, y1, y2 = y[i - 1], y[i], y[i + 1]
        return float(_quadratic(x[i - 1], x[i], x[i + 1], y0, y1, y2, np.clip(at, x[0], x[-1])))
    j = int(np.clip(np.searchsorted(x, at, side="right") - 1, 0, x.size - 1))
    if x[j] == at or j == x.size - 1:
        return float(y[j]) if np.isfinite(y[j]) else math.inf
    if not (np.isfinite(y[j]) and np.isfinite(y[j + 1])):
        return math.inf
    t = (at - x[j]) / (x[j + 1] - x[j])
    return float(y[j] + t * (y[j + 1] - y[j]))


# --------------------------------------------------------------------------------------------
# eta* per group


def optimal_lr(table: pd.DataFrame, last_evals: int = 3) -> pd.DataFrame:
    """One row per group (family, scheme, optimizer, width, depth, block_depth).

    log2_eta_star / eta_star: refined argmin of the seed-averaged final training loss (a bound
    when ``edge`` is set: "low" means eta* <= the value, "high" eta* >= it; edge_cause says
    whether the grid ended or a neighbour diverged); best_loss: the curve at eta*;
    max_stable_log2_lr: the largest grid rate at which no seed diverged and the loss is finite
    (max_stable_at_top: it is the top of the grid, so the real limit is higher);
    log2_eta_star_test / edge_test: the same argmin on the test loss; log2_lr_nearest: the
    stable grid rate nearest eta* (where per-rate quantities such as movement are read);
    test_accuracy: mean test accuracy there; frac_diverged: fraction of the group's replicas
    that diverged; n_seeds, n_lr, grid_min, grid_max: the data behind it.
    """
    finals = _as_finals(table, last_evals)
    curves = lr_curves(finals)
    rows = []
    for key, c in curves.groupby(list(GROUP), sort=True):
        x, y = c["log2_lr"].to_numpy(float), c["loss_mean"].to_numpy(float)
        opt = refine_optimum(x, y)
        opt_test = refine_optimum(x, c["test_loss_mean"].to_numpy(float))
        stable = np.isfinite(y) & (c["frac_diverged"].to_numpy() == 0)
        nearest = math.nan
        acc = math.nan
        if stable.any() and np.isfinite(opt.log2_eta):
            j = np.flatnonzero(stable)[np.argmin(np.abs(x[stable] - opt.log2_eta))]
            nearest, acc = x[j], c["test_accuracy_mean"].to_numpy(float)[j]
        rows.append(
            dict(
                zip(GROUP, key, strict=True),
                log2_eta_star=opt.log2_eta,
                eta_star=2.0**opt.log2_eta,
                best_loss=opt.loss,
                edge=opt.edge,
                edge_cause=opt.edge_cause,
                max_stable_log2_lr=x[stable].max() if stable.any() else math.nan,
                max_stable_at_top=bool(stable[-1]),
                log2_eta_star_test=opt_test.log2_eta,
                edge_test=opt_test.edge,
                log2_lr_nearest=nearest,
                test_accuracy=acc,
                frac_diverged=float(
                    np.average(c["frac_diverged"], weights=c["n_seeds"].clip(lower=1))
                ),
                n_seeds=int(c["n_seeds"].max()),
                n_lr=int(len(c)),
                grid_min=float(x.min()),
                grid_max=float(x.max()),
            )
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Bootstrap over seeds


def _seed_weights(n_seeds: int, n_boot: int, seed: int) -> np.ndarray:
    """[n_boot, n_seeds] multiplicities of each seed in a resample with replacement."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    weights = np.zeros((n_boot, n_seeds))
    np.add.at(weights, (np.arange(n_boot)[:, None], draws), 1.0)
    return weights


def bootstrap_optima(
    table: pd.DataFrame, n_boot: int = 200, seed: int = 0, last_evals: int = 3
) -> pd.DataFrame:
    """log2 eta* per group for ``n_boot`` resamples of the seeds: columns GROUP, rep, log2_eta_star.

    One resample draws the seed labels with replacement, once for the whole table (every group
    gets the same draw, which keeps the paired design: same seed = same batches and initial
    draws). The seed-averaged loss at each rate is the multiplicity-weighted mean (+inf if a
    drawn seed diverged there), and eta* is refined as in :func:`refine_optimum`.
    """
    finals = _as_finals(table, last_evals)
    seeds = np.sort(finals["seed"].unique())
    weights = _seed_weights(len(seeds), n_boot, seed)
    frames = []
    for key, f in finals.groupby(list(GROUP), sort=True):
        loss = f.pivot_table(
            index="log2_lr", columns="seed", values="final_train_loss", aggfunc="mean"
        ).reindex(columns=seeds)
        x = loss.index.to_numpy(float)
        v = loss.to_numpy(float)  # [n_lr, S]: NaN = not run, inf = diverged
        finite = np.isfinite(v)
        with np.errstate(invalid="ignore", divide="ignore"):
            num = weights @ np.where(finite, v, 0.0).T
            den = weights @ finite.T.astype(float)
            any_div = (weights @ np.isinf(v).T.astype(float)) > 0
            mean = np.where(any_div, np.inf, np.where(den > 0, num / den, np.nan))
        eta = _refine(x, mean)[0]
        frame = pd.DataFrame({"rep": np.arange(n_boot), "log2_eta_star": eta})
        for k, val in zip(GROUP, key, strict=True):
            frame[k] = val
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)[[*GROUP, "rep", "log2_eta_star"]]


def eta_intervals(boot: pd.DataFrame, ci: float = 0.9) -> pd.DataFrame:
    """Per group: log2_eta_lo / log2_eta_hi, the central ``ci`` percentile interval of eta*."""
    q = [(1 - ci) / 2, 1 - (1 - ci) / 2]
    g = boot.groupby(list(GROUP), sort=True)["log2_eta_star"]
    out = g.quantile(q).unstack()
    out.columns = ["log2_eta_lo", "log2_eta_hi"]
    return out.reset_index()


# --------------------------------------------------------------------------------------------
# Transfer along an axis


def ols_slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope of y on x over the pairs where both are finite; NaN if < 2 distinct x."""
    return float(_ols_rows(np.asarray(x, float), np.asarray(y, float)[None, :])[0])


def _ols_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row-wise OLS slope of y [B, n] on x [n], ignoring non-finite entries of each row."""
    m = np.isfinite(y) & np.isfinite(x)[None, :]
    w = m.astype(float)
    cnt = w.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        xm = (w * np.where(m, x, 0.0)).sum(1) / cnt
        ym = np.where(m, y, 0.0).sum(1) / cnt
        dx = np.where(m, x[None, :] - xm[:, None], 0.0)
        dy = np.where(m, y - ym[:, None], 0.0)
        sxx = (dx * dx).sum(1)
        return np.where(sxx > 1e-12, (dx * dy).sum(1) / np.where(sxx > 1e-12, sxx, 1.0), np.nan)


def series_keys(axis: str) -> list[str]:
    """The group columns held fixed along ``axis`` ("depth" or "width")."""
    if axis not in AXES:
        raise AnalysisError(f"axis = {axis!r}; allowed: {AXES}")
    return [k for k in GROUP if k != axis]


def _series(optima: pd.DataFrame, axis: str):
    """(key dict, series sorted along axis) for every series with >= 2 values of ``axis``."""
    keys = series_keys(axis)
    for key, s in optima.groupby(keys, sort=True):
        if s[axis].nunique() >= 2:
            yield dict(zip(keys, key, strict=True)), s.sort_values(axis)


def _edge_list(s: pd.DataFrame, axis: str) -> str:
    """ "grid: 2, 4 (low); divergence: 64 (high)": the shapes whose eta* is a bound, by cause."""
    parts = [(cause, _fmt_edges(s, axis, cause)) for cause in ("grid", "divergence")]
    return "; ".join(f"{cause}: {text}" for cause, text in parts if text)


def drift(
    optima: pd.DataFrame,
    boot: pd.DataFrame | None = None,
    ci: float = 0.9,
    axes: Sequence[str] = AXES,
) -> pd.DataFrame:
    """Drift of eta* along each axis, one row per series with >= 2 shapes along it.

    slope = OLS slope of log2 eta* on log2 axis value (octaves of eta* per doubling of depth or
    width); slope_lo / slope_hi = the central ``ci`` interval of the same slope over the
    bootstrap resamples of :func:`bootstrap_optima` (NaN without resamples or with < 2 seeds);
    spread = max - min of log2 eta* over the series; n_edge / edges = the shapes whose eta* is a
    bound (:func:`_edge_list`).
    Edge optima enter the fit at their bound value: read such a slope as a bound too.
    """
    q = [(1 - ci) / 2, 1 - (1 - ci) / 2]
    rows = []
    for axis in axes:
        if boot is not None:
            bwide = boot.pivot_table(
                index=[*series_keys(axis), "rep"], columns=axis, values="log2_eta_star"
            )
        for key, s in _series(optima, axis):
            x = np.log2(s[axis].to_numpy(float))
            y = s["log2_eta_star"].to_numpy(float)
            lo = hi = math.nan
            if boot is not None and s["n_seeds"].min() >= 2:
                b = bwide.xs(tuple(key.values()), level=list(key)).reindex(columns=s[axis])
                slopes = _ols_rows(x, b.to_numpy(float))
                if np.isfinite(slopes).any():
                    lo, hi = np.nanquantile(slopes, q)
            rows.append(
                key
                | dict(
                    axis=axis,
                    n_points=int(np.isfinite(y).sum()),
                    axis_min=int(s[axis].min()),
                    axis_max=int(s[axis].max()),
                    slope=ols_slope(x, y),
                    slope_lo=lo,
                    slope_hi=hi,
                    spread=float(np.nanmax(y) - np.nanmin(y)) if np.isfinite(y).any() else math.nan,
                    n_edge=int(s["edge"].notna().sum()),
                    edges=_edge_list(s, axis),
                )
            )
    return _int_axes(pd.DataFrame(rows, columns=_columns(rows)))


def _columns(rows: list[dict]) -> list[str] | None:
    return None if rows else [*GROUP, "axis"]


def _int_axes(df: pd.DataFrame) -> pd.DataFrame:
    for col in ("width", "depth", "block_depth"):
        if col in df:
            df[col] = df[col].astype("Int64")
    return df


def transfer_regret(
    curves: pd.DataFrame, optima: pd.DataFrame, axes: Sequence[str] = AXES
) -> pd.DataFrame:
    """Transfer regret at every shape of every series: one row per (axis, group).

    The base shape is the series' smallest depth (resp. width); with L_s(x) the seed-averaged
    loss curve of shape s read by :func:`curve_value` and x* = log2 eta*,

        regret_s = (L_s(x*_base) - L_s(x*_s)) / L_s(x*_s),

    which is 0 at the base shape by construction, >= 0 elsewhere, +inf where the base-tuned rate
    diverges, NaN where it lies outside the grid of s. base_edge: the base eta* is a bound.
    """
    curve_of = {k: c for k, c in curves.groupby(list(GROUP), sort=False)}
    rows = []
    for axis in axes:
        for _, s in _series(optima, axis):
            base = s.iloc[0]
            x_base = float(base["log2_eta_star"])
            for _, r in s.iterrows():
                c = curve_of[tuple(r[k] for k in GROUP)]
                x, y = c["log2_lr"].to_numpy(float), c["loss_mean"].to_numpy(float)
                best = curve_value(x, y, r["log2_eta_star"])
                at_base = curve_value(x, y, x_base)
                with np.errstate(invalid="ignore", divide="ignore"):
                    regret = (at_base - best) / best if np.isfinite(best) else math.nan
                if at_base == math.inf and np.isfinite(best):
                    regret = math.inf
                rows.append(
                    {k: r[k] for k in GROUP}
                    | dict(
                        axis=axis,
                        base=int(base[axis]),
                        log2_eta_base=x_base,
                        log2_eta_star=float(r["log2_eta_star"]),
                        loss_at_base_eta=at_base,
                        best_loss=best,
                        regret=float(regret),
                        base_edge=base["edge"],
                    )
                )
    return _int_axes(pd.DataFrame(rows, columns=_columns(rows)))


# --------------------------------------------------------------------------------------------
# Feature movement


def movement_at_optimum(table: pd.DataFrame, optima: pd.DataFrame) -> pd.DataFrame:
    """Feature movement at each group's eta*: long table GROUP, role, stat, value, log2_lr.

    value = mean over seeds of "<stat>/<role>" at the final evaluation, at the stable grid rate
    nearest eta* (optima.log2_lr_nearest); roles that a group lacks (hidden_2 for k = 1) are
    dropped. Empty when the table has no movement columns.
    """
    mcols = movement_columns(table)
    if not mcols:
        return pd.DataFrame(columns=[*GROUP, "log2_lr", "role", "stat", "value"])
    table = _as_finals(table, 3)
    at = optima[[*GROUP, "log2_lr_nearest"]].rename(columns={"log2_lr_nearest": "log2_lr"})
    sel = table[~table["diverged"]].merge(at, on=[*GROUP, "log2_lr"])
    mean = sel.groupby([*GROUP, "log2_lr"], sort=True)[mcols].mean().reset_index()
    long = mean.melt(id_vars=[*GROUP, "log2_lr"], value_vars=mcols, var_name="column")
    parts = long["column"].str.extract(_MOVEMENT_COLUMN)
    long["stat"], long["role"] = parts[0], parts[1]
    long = long.dropna(subset=["value"]).drop(columns="column")
    return long[[*GROUP, "log2_lr", "role", "stat", "value"]].reset_index(drop=True)


def movement_slopes(
    movement: pd.DataFrame, axes: Sequence[str] = AXES, stats: Sequence[str] = MOVEMENT_STATS
) -> pd.DataFrame:
    """Log-log OLS slope of each movement statistic against depth (width), per series and role.

    slope = d log(value) / d log(axis), from the values of :func:`movement_at_optimum`
    (positive values only). Claim 3 of DESIGN.md: about -1/2 for hidden_1 own movement and
    weight change under depth-muP with two-layer blocks.
    """
    rows = []
    mv = movement[movement["stat"].isin(stats)]
    for axis in axes:
        keys = [*series_keys(axis), "role", "stat"]
        for key, s in mv.groupby(keys, sort=True):
            if s[axis].nunique() < 2:
                continue
            v = s["value"].to_numpy(float)
            with np.errstate(invalid="ignore", divide="ignore"):
                y = np.where(v > 0, np.log2(v), np.nan)
            rows.append(
                dict(zip(keys, key, strict=True))
                | dict(
                    axis=axis,
                    slope=ols_slope(np.log2(s[axis].to_numpy(float)), y),
                    n_points=int(np.isfinite(y).sum()),
                )
            )
    return _int_axes(pd.DataFrame(rows, columns=_columns(rows)))


# --------------------------------------------------------------------------------------------
# Scorecard and verdicts


def held_value(optima: pd.DataFrame, axis: str) -> int | None:
    """The value of the other axis at which ``axis`` is summarised (scorecard, figures).

    The width (for axis = "depth") with the most distinct depths, ties to the largest width;
    and symmetrically for axis = "width". None when no value has >= 2 shapes along ``axis``.
    """
    other = OTHER_AXIS[axis]
    counts = optima.groupby(other)[axis].nunique()
    counts = counts[counts >= 2]
    if counts.empty:
        return None
    best = counts.max()
    return int(max(v for v, c in counts.items() if c == best))


def _fmt_list(values) -> str:
    return ", ".join(str(int(v)) for v in values)


def _axis_verdict(axis: str, row: Mapping[str, Any]) -> str:
    """Plain-language verdict for one axis from the scorecard numbers of that axis.

    Bounds first: an optimum at the grid edge, or next to a diverging rate at every shape,
    makes the axis inconclusive. Otherwise "transfers" needs |drift| < TRANSFER_SLOPE, worst
    regret < TRANSFER_REGRET and no bound among the optima (with bounds at some shapes it is
    only "consistent with transfer"); anything else is reported as a drift with its cost.
    """
    sym = "L" if axis == "depth" else "n"
    slope, lo, hi = row[f"drift_{axis}"], row[f"drift_{axis}_lo"], row[f"drift_{axis}_hi"]
    regret, regret_at = row[f"regret_{axis}"], row[f"regret_{axis}_at"]
    edges_grid, edges_div = row[f"edges_grid_{axis}"], row[f"edges_div_{axis}"]
    n_div = len(re.findall(r"\d+", edges_div)) if edges_div else 0
    has_ci = np.isfinite(lo) and np.isfinite(hi)
    ci = f" (90% interval {lo:+.2f} to {hi:+.2f})" if has_ci else " (no interval: < 2 seeds)"
    bound = f"the measured slope {slope:+.2f} octave per doubling of {axis} is only a bound"
    div_note = (
        f"eta* sits next to a diverging rate at {axis} {edges_div} (a bound; refine the grid there)"
    )
    if edges_grid:
        parts = [
            f"inconclusive: optimum at grid edge at {axis} {edges_grid}: widen the grid; {bound}"
        ]
        if edges_div:
            parts.append(div_note)
        return "; ".join(parts)
    if edges_div and n_div >= row.get(f"n_{axis}", math.inf):
        return (
            f"inconclusive: eta* sits next to a diverging rate at every {axis}: "
            f"refine the grid below the stability limit; {bound}"
        )
    if not np.isfinite(slope):
        parts = [f"no {axis} drift measured (eta* undefined at too many shapes)"]
    elif abs(slope) < TRANSFER_SLOPE and regret < TRANSFER_REGRET:
        numbers = (
            f"|slope| = {abs(slope):.2f} < {TRANSFER_SLOPE} octave per doubling{ci} and "
            f"worst regret {regret:.1%} < {TRANSFER_REGRET:.0%}"
        )
        msg = (
            f"consistent with transfer across {axis} ({numbers})"
            if edges_div
            else f"transfers across {axis}: {numbers}"
        )
        if has_ci and max(abs(lo), abs(hi)) >= TRANSFER_SLOPE:
            msg += f"; the interval still allows |slope| >= {TRANSFER_SLOPE}: more seeds or steps"
        parts = [msg]
    elif abs(slope) < TRANSFER_SLOPE:
        parts = [
            f"eta* nearly flat in {axis} (slope {slope:+.2f} octave per doubling{ci}) "
            f"but {_cost_text(regret, sym, regret_at)}"
        ]
    else:
        direction = "up" if slope > 0 else "down"
        msg = (
            f"drifts {direction} by {abs(slope):.2f} octave per doubling of {axis}{ci}; "
            f"{_cost_text(regret, sym, regret_at)}"
        )
        if has_ci and lo <= 0 <= hi:
            msg += "; the interval includes 0: not resolved from seed noise"
        parts = [msg]
    if edges_div:
        parts.append(div_note)
    return "; ".join(parts)


def _int(v: Any) -> str:
    return "?" if v is None or pd.isna(v) else str(int(v))


def _cost_text(regret: float, sym: str, at: Any) -> str:
    """What the rate tuned at the base shape costs at the worst shape."""
    if regret == math.inf:
        return f"the base-tuned rate diverges at {sym}={_int(at)}"
    if not np.isfinite(regret):
        return "the base-tuned rate is off the grid elsewhere (regret unknown)"
    return f"the base-tuned rate costs {regret:.1%} extra loss at {sym}={_int(at)}"


def verdict(row: Mapping[str, Any]) -> str:
    """The plain-language verdict of one scorecard row, computed from its numbers only.

    Per axis (depth, then width): grid-edge optima first (inconclusive: widen the grid), else
    "transfers" when |drift| < TRANSFER_SLOPE and worst regret < TRANSFER_REGRET, else the
    direction and size of the drift with its interval and cost; then eta* next to divergence,
    the hidden_1 own-movement slope against depth (fading beyond MOVEMENT_SLOPE) and a shift of
    the largest stable rate by >= STABILITY_SHIFT octaves.
    """
    axes = [a for a in AXES if f"drift_{a}" in row and not pd.isna(row.get(f"{a}s"))]
    sentences = []
    for axis in axes:
        text = _axis_verdict(axis, row)
        sentences.append(f"{axis.capitalize()}: {text}" if len(axes) > 1 else text)
    if not axes:
        sentences.append("a single shape: no transfer measured")
    h1 = row.get("h1_own_slope", math.nan)
    one_layer = int(row.get("block_depth", 2)) == 1
    if h1 is not None and np.isfinite(h1) and one_layer:
        # With k = 1 the block's only layer *is* the branch output: under a 1/sqrt(L) branch its
        # weights are meant to move like L^-1/2 (the residual stream still moves O(1)), so a
        # falling slope there is not the feature collapse of claim 3 (DESIGN.md section 1).
        sentences.append(
            f"one-layer blocks: the block weight's own movement scales like L^{h1:.2f} "
            "(no internal layer whose features could fade)"
        )
    elif h1 is not None and np.isfinite(h1):
        if h1 <= -MOVEMENT_SLOPE:
            sentences.append(
                f"own movement of hidden_1 falls like L^{h1:.2f}: its features fade with depth"
            )
        elif h1 >= MOVEMENT_SLOPE:
            sentences.append(f"own movement of hidden_1 grows like L^{h1:.2f}")
        else:
            sentences.append(f"own movement of hidden_1 flat in depth (L^{h1:+.2f})")
    shift = row.get("stable_shift_depth", math.nan)
    if shift is not None and np.isfinite(shift) and abs(shift) >= STABILITY_SHIFT:
        word = "falls" if shift < 0 else "rises"
        sentences.append(
            f"the largest stable rate {word} by {abs(shift):.1f} octaves from "
            f"L={_int(row['depth_min'])} to L={_int(row['depth_max'])}"
        )
    dead = row.get("all_diverged_at")
    if isinstance(dead, str) and dead:
        sentences.append(f"every learning rate diverged at {dead}: extend the grid downwards")
    text = ". ".join(s[0].upper() + s[1:] for s in sentences)
    return text + "."


def _shape_label(r: Mapping[str, Any], show_width: bool, show_depth: bool) -> str:
    parts = ([f"n={int(r['width'])}"] if show_width else []) + (
        [f"L={int(r['depth'])}"] if show_depth else []
    )
    return " ".join(parts) or "base"


def scorecard(
    optima: pd.DataFrame,
    drift_table: pd.DataFrame,
    regret_table: pd.DataFrame,
    movement_slope_table: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per (family, scheme, optimizer, block_depth), summarising each axis at the held
    value of the other (:func:`held_value`), with a verdict (:func:`verdict`).

    Columns per axis A in {depth, width} (present when the sweep has >= 2 values of A):
    at_<other> (held value), <A>s ("2-64"), <A>_min, <A>_max, n_<A>, drift_<A> with drift_<A>_lo/_hi (octaves of eta*
    per doubling, bootstrap interval), spread_<A> (octaves), regret_<A> (worst relative regret)
    and regret_<A>_at, edges_grid_<A> / edges_div_<A> (shapes whose eta* is a bound, by cause).
    Then best_loss_deepest (at the largest depth of the depth series, or of the only depth),
    h1_own_slope / h1_weight_slope (log-log slopes of hidden_1 movement against depth),
    stable_shift_depth (largest stable log2 lr at the deepest minus at the shallowest shape),
    n_seeds, edge_flags, all_diverged_at, divergence_flags (all groups, any shape), verdict.
    """
    card_keys = ["family", "scheme", "optimizer", "block_depth"]
    show_w = optima["width"].nunique() > 1
    show_d = optima["depth"].nunique() > 1
    held = {a: held_value(optima, a) for a in AXES}
    ms = movement_slope_table if movement_slope_table is not None else pd.DataFrame()
    rows = []
    for key, g in optima.groupby(card_keys, sort=False):
        row: dict[str, Any] = dict(zip(card_keys, key, strict=True))
        for axis in AXES:
            other = OTHER_AXIS[axis]
            if held[axis] is None:
                continue
            s = g[g[other] == held[axis]].sort_values(axis)
            sel = {k: row[k] for k in card_keys} | {other: held[axis], "axis": axis}
            d = _select(drift_table, sel)
            r = _select(regret_table, sel)
            row[f"at_{other}"] = held[axis]
            row[f"{axis}s"] = f"{int(s[axis].min())}-{int(s[axis].max())}" if len(s) else None
            row[f"{axis}_min"] = int(s[axis].min()) if len(s) else None
            row[f"{axis}_max"] = int(s[axis].max()) if len(s) else None
            row[f"n_{axis}"] = int(s[axis].nunique())
            drow = d.iloc[0] if len(d) else None
            for name, col in (("", "slope"), ("_lo", "slope_lo"), ("_hi", "slope_hi")):
                row[f"drift_{axis}{name}"] = float(drow[col]) if drow is not None else math.nan
            row[f"spread_{axis}"] = float(drow["spread"]) if drow is not None else math.nan
            if len(r) and r["regret"].notna().any():
                worst = r.loc[r["regret"].fillna(-1.0).idxmax()]
                row[f"regret_{axis}"] = float(worst["regret"])
                row[f"regret_{axis}_at"] = int(worst[axis])
            else:
                row[f"regret_{axis}"], row[f"regret_{axis}_at"] = math.nan, None
            row[f"edges_grid_{axis}"] = _fmt_edges(s, axis, "grid")
            row[f"edges_div_{axis}"] = _fmt_edges(s, axis, "divergence")
            if axis == "depth" and len(s):
                first, last = s.iloc[0], s.iloc[-1]
                row["stable_shift_depth"] = float(
                    last["max_stable_log2_lr"] - first["max_stable_log2_lr"]
                )
                row["best_loss_deepest"] = float(last["best_loss"])
            if axis == "depth" and len(ms):
                for stat, name in (
                    ("own_movement", "h1_own_slope"),
                    ("weight_change", "h1_weight_slope"),
                ):
                    m = _select(ms, sel | {"role": "hidden_1", "stat": stat})
                    row[name] = float(m["slope"].iloc[0]) if len(m) else math.nan
        if "best_loss_deepest" not in row:
            deepest = g[g["depth"] == g["depth"].max()]
            row["best_loss_deepest"] = float(deepest["best_loss"].min())
        row["n_seeds"] = int(g["n_seeds"].max())
        edged = g[g["edge"].notna()].sort_values(["width", "depth"])
        row["edge_flags"] = "; ".join(
            f"{_shape_label(e, show_w, show_d)}: {e['edge']} ({e['edge_cause']})"
            for _, e in edged.iterrows()
        )
        dead = g[g["edge_cause"] == "all_diverged"]
        row["all_diverged_at"] = ", ".join(
            _shape_label(r, show_w, show_d) for _, r in dead.iterrows()
        )
        row["divergence_flags"] = _divergence_flags(g, regret_table, row, show_w, show_d)
        rows.append(row)
    card = pd.DataFrame(rows)
    if card.empty:
        return card
    for axis in AXES:
        for col in (f"regret_{axis}_at", f"{axis}_min", f"{axis}_max", f"at_{OTHER_AXIS[axis]}"):
            if col in card:
                card[col] = card[col].astype("Int64")
    card["verdict"] = [verdict(r) for r in card.to_dict("records")]
    order = {s: i for i, s in enumerate(scheme_order(card["scheme"].unique()))}
    card = card.sort_values(
        ["family", "optimizer", "block_depth", "scheme"],
        key=lambda c: c.map(order) if c.name == "scheme" else c,
    )
    return card.reset_index(drop=True)


def _select(df: pd.DataFrame, sel: Mapping[str, Any]) -> pd.DataFrame:
    if df is None or df.empty:
        return pd.DataFrame()
    mask = np.ones(len(df), bool)
    for k, v in sel.items():
        if k in df.columns:
            mask &= (df[k] == v).fillna(False).to_numpy(bool)
    return df[mask]


def _fmt_edges(s: pd.DataFrame, axis: str, cause: str) -> str:
    """The shapes along ``axis`` whose eta* is a bound of this cause: "2, 4 (low), 64 (high)"."""
    e = s[(s["edge"].notna()) & (s["edge_cause"] == cause)]
    parts = []
    for edge in ("low", "high"):
        values = e.loc[e["edge"] == edge, axis]
        if len(values):
            parts.append(f"{', '.join(str(int(v)) for v in values)} ({edge})")
    return ", ".join(parts)


def _divergence_flags(
    g: pd.DataFrame,
    regret_table: pd.DataFrame,
    row: Mapping[str, Any],
    show_w: bool,
    show_d: bool,
) -> str:
    """Shapes where every rate diverged, and where the base-tuned rate diverges."""
    flags = []
    dead = g[g["edge_cause"] == "all_diverged"]
    if len(dead):
        shapes = ", ".join(_shape_label(r, show_w, show_d) for _, r in dead.iterrows())
        flags.append(f"every learning rate diverged at {shapes}")
    sel = {k: row[k] for k in ("family", "scheme", "optimizer", "block_depth")}
    r = _select(regret_table, sel)
    if len(r):
        bad = r[r["regret"] == math.inf]
        if len(bad):
            shapes = ", ".join(sorted({_shape_label(b, show_w, show_d) for _, b in bad.iterrows()}))
            flags.append(f"the base-tuned learning rate diverges at {shapes}")
    return "; ".join(flags)


# --------------------------------------------------------------------------------------------
# The whole chain


@dataclass(frozen=True)
class Analysis:
    """Every table of one sweep's analysis (see the module docstring for the chain)."""

    results: pd.DataFrame
    finals: pd.DataFrame
    curves: pd.DataFrame
    optima: pd.DataFrame
    boot: pd.DataFrame
    drift: pd.DataFrame
    regret: pd.DataFrame
    movement: pd.DataFrame
    movement_slopes: pd.DataFrame
    scorecard: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    last_evals: int = 3
    ci: float = 0.9

    @property
    def name(self) -> str:
        return str(self.meta.get("config", {}).get("name", "sweep"))


def analyze(
    results: pd.DataFrame,
    meta: Mapping[str, Any] | None = None,
    *,
    last_evals: int = 3,
    n_boot: int = 200,
    seed: int = 0,
    ci: float = 0.9,
) -> Analysis:
    """Run the whole chain on a results table (module docstring); bootstrap with a fixed seed."""
    finals = final_losses(results, last_evals)
    curves = lr_curves(finals)
    optima = optimal_lr(finals)
    boot = bootstrap_optima(finals, n_boot=n_boot, seed=seed)
    optima = optima.merge(eta_intervals(boot, ci), on=list(GROUP), how="left")
    drift_table = drift(optima, boot, ci)
    regret_table = transfer_regret(curves, optima)
    movement = movement_at_optimum(finals, optima)
    mslopes = movement_slopes(movement) if len(movement) else pd.DataFrame()
    card = scorecard(optima, drift_table, regret_table, mslopes)
    return Analysis(
        results=results,
        finals=finals,
        curves=curves,
        optima=optima,
        boot=boot,
        drift=drift_table,
        regret=regret_table,
        movement=movement,
        movement_slopes=mslopes,
        scorecard=card,
        meta=dict(meta or {}),
        last_evals=last_evals,
        ci=ci,
    )


def analyze_run(run_dir: str | Path, **kwargs: Any) -> Analysis:
    """:func:`analyze` on a sweep directory (results.parquet + meta.json)."""
    results, meta = load_run(run_dir)
    return analyze(results, meta, **kwargs)


def training_curves(results: pd.DataFrame, optima: pd.DataFrame) -> pd.DataFrame:
    """The results rows of every group at its stable grid rate nearest eta* (log2_lr_nearest):
    the training curves of the tuned networks, one per seed."""
    at = optima[[*GROUP, "log2_lr_nearest"]].dropna()
    at = at.rename(columns={"log2_lr_nearest": "log2_lr"})
    return results.merge(at, on=[*GROUP, "log2_lr"])
