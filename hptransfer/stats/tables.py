"""The table chain: from a sweep's tidy results to eta*, drift, regret and feature movement.

Pure pandas/numpy on the table the engine writes (one row per replica and evaluation step; the
design notes are in docs/design.md). Each step is a public function usable from a notebook:

    results --final_losses-->  finals   one row per replica (group, learning rate, seed)
            --lr_curves-->     curves   one row per group and learning rate, seed-averaged
    finals  --optimal_lr-->    optima   one row per group: eta*, bracket, per-seed interval
            --seed_optima-->            eta* of every seed's own curve (long table)
    optima  --drift-->                  slope of log2 eta* against log2 depth / log2 width
    curves  --transfer_regret-->        relative loss of the base-shape eta* at every shape
    finals  --seed_regret-->            each seed's own worst regret (its spread)
    finals  --movement_at_optimum--> --movement_slopes-->  feature movement and its slopes
    finals  --fixed_lr_slopes-->        hidden_1 movement slopes at one learning rate
    results --losses_by_step--> --horizon_drift-->  eta*, drift and regret at every step

A group is one shape cell of one scheme: (family, scheme, optimizer, width, depth, block_depth).
A series is the groups that differ only along one axis (depth or width), the other held fixed.
The estimators themselves live in :mod:`hptransfer.stats.optimum` and :mod:`hptransfer.stats.intervals`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from hptransfer.network.movement import MOVEMENT_STATS
from hptransfer.network.scaling import AXES
from hptransfer.network.schemes import BUILTIN_SCHEMES
from hptransfer.stats.columns import GROUP, REPLICA, REQUIRED, split_stat_column, stat_column
from hptransfer.stats.frames import wide_mean
from hptransfer.stats.intervals import (
    MIN_SEEDS_T,
    T_INTERVAL,
    checked_interval,
    interval_method,
    ols_rows,
    ols_slope,
    seed_interval,
    slope_range,
)
from hptransfer.stats.optimum import (
    asymmetric_vertex,
    curve_value,
    refine,
    refine_optimum,
    sorted_curve,
)

OTHER_AXIS = {"depth": "width", "width": "depth"}
SCHEME_ORDER = tuple(BUILTIN_SCHEMES)  # the order of the built-in scheme tables (schemes.toml)


LOSS_COLUMNS = ("train_loss", "test_loss", "test_accuracy")  # held by hold_stopped


class AnalysisError(ValueError):
    """The results table cannot be analysed as given (missing columns, empty table)."""


# --------------------------------------------------------------------------------------------
# Per-replica reduction


def _check(results: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED if c not in results.columns]
    if missing:
        raise AnalysisError(
            f"results table lacks columns {missing}; it has {list(results.columns)}"
        )
    if results.empty:
        raise AnalysisError("results table is empty: nothing to analyse")


def rows_where(df: pd.DataFrame | None, sel: Mapping[str, Any]) -> pd.DataFrame:
    """The rows of ``df`` whose columns equal ``sel``'s values (keys that are not columns are
    ignored); an empty frame for None or an empty table."""
    if df is None or df.empty:
        return pd.DataFrame()
    mask = np.ones(len(df), bool)
    for k, v in sel.items():
        if k in df.columns:
            mask &= (df[k] == v).fillna(False).to_numpy(bool)
    return df[mask]


def movement_columns(df: pd.DataFrame) -> list[str]:
    """The "<stat>/<role>" feature-movement columns of a table, in table order."""
    return [c for c in df.columns if split_stat_column(c) is not None]


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
    A replica stopped by early elimination holds its losses at its stop step
    (:func:`hold_stopped`): known worse, not diverged.
    """
    _check(results)
    if last_evals < 1:
        raise AnalysisError(f"last_evals = {last_evals}; it must be >= 1")
    results = hold_stopped(results, REPLICA)
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


# eta* per group


def _group_curves(finals: pd.DataFrame) -> Iterator[tuple[tuple, np.ndarray, np.ndarray]]:
    """(group key, grid x [n_lr], per-seed final losses [S, n_lr]) per group, seeds sorted;
    NaN where a (seed, rate) was not run, +inf where it diverged."""
    for key, f in finals.groupby(list(GROUP), sort=True):
        wide = wide_mean(f, "seed", "log2_lr", "final_train_loss")
        yield key, wide.columns.to_numpy(float), wide.to_numpy(float)


def _seed_mean(v: np.ndarray, axis: int = -2) -> np.ndarray:
    """Mean over seeds with +inf where any seed diverged (NaN = not run is left out)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        finite = np.isfinite(v)
        out = np.where(finite, v, 0.0).sum(axis) / finite.sum(axis)
    return np.where(np.isinf(v).any(axis=axis), np.inf, out)


def _per_seed_eta(x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """eta* of each seed's own curve v [..., S, n_lr]; NaN where that seed's bracket is open
    (optimum at the grid edge: no value on the grid stands for it) or unknown (all diverged).
    Next to a diverged rate it is the best grid point, inside its finite bracket."""
    r = refine(x, v)
    return np.where(np.isfinite(r.bracket_lo) & np.isfinite(r.bracket_hi), r.log2_eta, np.nan)


def eta_interval(
    x: np.ndarray, y: np.ndarray, seed_eta: np.ndarray, ci: float = 0.9
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lo, hi, n) of eta* of seed-mean loss curves y [..., n_lr] on the grid x, with the
    per-seed optima seed_eta [..., S] (:func:`_per_seed_eta`), vectorised over leading axes.

    With x_v the parabola vertex of y (:func:`hptransfer.stats.optimum.refine`, the point estimate)
    and [lo_t, hi_t] the :func:`hptransfer.stats.intervals.seed_interval` of the per-seed optima
    around it: when it is a t-interval (n >= 3) and the optimum is located, the interval is
    also pushed to cover the optimum x_a of a local asymmetric bowl fit
    (:func:`hptransfer.stats.optimum.asymmetric_vertex`) with the same half-widths,

        lo = min(lo_t, x_a - (x_v - lo_t)),   hi = max(hi_t, x_a + (hi_t - x_v)),

    because the parabola vertex is biased on a bowl steeper on one side (by up to ~0.1-0.3
    octave on a 0.75-1.5 octave grid) and the seed spread says nothing about that bias; on a
    symmetric bowl x_a ~ x_v and the interval barely moves. Coverage with and without this
    term: :mod:`hptransfer.stats.calibration` (methods eta_t and eta_t_parabola). Otherwise (range
    of 2 seeds, no interval, censored optimum) the seed interval unchanged.
    """
    r = refine(x, y)
    _, lo, hi, n = seed_interval(seed_eta, ci, centre=r.log2_eta)
    alt = asymmetric_vertex(x, y)
    widen = (n >= MIN_SEEDS_T) & (r.edge == 0) & np.isfinite(alt) & np.isfinite(lo)
    with np.errstate(invalid="ignore"):
        w_lo = np.minimum(lo, alt - (r.log2_eta - lo))
        w_hi = np.maximum(hi, alt + (hi - r.log2_eta))
    return np.where(widen, w_lo, lo), np.where(widen, w_hi, hi), n


def optimal_lr(table: pd.DataFrame, last_evals: int = 3, ci: float = 0.9) -> pd.DataFrame:
    """One row per group (family, scheme, optimizer, width, depth, block_depth).

    log2_eta_star / eta_star: refined argmin of the seed-averaged final training loss
    (:func:`hptransfer.stats.optimum.refine`); best_loss: the curve there. edge / edge_cause: the
    optimum is censored (grid edge or next to a diverging rate) and only bracket_lo <= eta* <=
    bracket_hi is known (log2; an end may be infinite). log2_eta_lo / log2_eta_hi: the interval
    of :func:`eta_interval`: the seed interval around eta* with the spread of the per-seed
    optima (n_seed_optima of them, interval = its method: "t", "range" or "none"; per-seed
    optima at the grid edge are left out), a t-interval widened to cover a local asymmetric
    fit's optimum too; for a censored group only the bracket is a statement about eta*).
    max_stable_log2_lr: the largest grid rate at which no seed diverged and the loss is finite
    (max_stable_at_top: it is the top of the grid); log2_eta_star_test / edge_test: the same
    argmin on the test loss; log2_lr_nearest: the stable grid rate nearest eta* (where per-rate
    quantities such as movement are read); test_accuracy: mean test accuracy there;
    frac_diverged; n_seeds, n_lr, grid_min, grid_max: the data behind it.
    """
    finals = _as_finals(table, last_evals)
    curves = lr_curves(finals)
    seed_eta = {key: _per_seed_eta(x, v) for key, x, v in _group_curves(finals)}  # key -> [S]
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
        lo, hi, n = eta_interval(*sorted_curve(x, y), seed_eta[key], ci)
        rows.append(
            dict(
                zip(GROUP, key, strict=True),
                log2_eta_star=opt.log2_eta,
                eta_star=2.0**opt.log2_eta,
                best_loss=opt.loss,
                edge=opt.edge,
                edge_cause=opt.edge_cause,
                bracket_lo=opt.bracket_lo,
                bracket_hi=opt.bracket_hi,
                log2_eta_lo=float(lo),
                log2_eta_hi=float(hi),
                n_seed_optima=int(n),
                interval=interval_method(int(n)),
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


def seed_optima(table: pd.DataFrame, last_evals: int = 3) -> pd.DataFrame:
    """eta* of every seed's own loss curve: columns GROUP, seed, log2_eta_star (NaN where that
    seed's optimum is censored: at the grid edge or next to a rate where it diverged)."""
    finals = _as_finals(table, last_evals)
    frames = []
    for key, x, v in _group_curves(finals):
        seeds = np.sort(finals["seed"].unique())[: v.shape[0]]
        frame = pd.DataFrame({"seed": seeds, "log2_eta_star": _per_seed_eta(x, v)})
        for k, val in zip(GROUP, key, strict=True):
            frame[k] = val
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=[*GROUP, "seed", "log2_eta_star"])
    return pd.concat(frames, ignore_index=True)[[*GROUP, "seed", "log2_eta_star"]]


# --------------------------------------------------------------------------------------------
# Transfer along an axis


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


def fmt_edges(s: pd.DataFrame, axis: str, cause: str) -> str:
    """The shapes along ``axis`` whose eta* is censored by ``cause``: "2, 4 (low), 64 (high)"."""
    e = s[(s["edge"].notna()) & (s["edge_cause"] == cause)]
    parts = []
    for edge in ("low", "high"):
        values = e.loc[e["edge"] == edge, axis]
        if len(values):
            parts.append(f"{', '.join(str(int(v)) for v in values)} ({edge})")
    return ", ".join(parts)


def _edge_list(s: pd.DataFrame, axis: str) -> str:
    """ "grid: 2, 4 (low); divergence: 64 (high)": the shapes whose eta* is censored."""
    parts = [(cause, fmt_edges(s, axis, cause)) for cause in ("grid", "divergence")]
    return "; ".join(f"{cause}: {text}" for cause, text in parts if text)


def seed_slopes(x: np.ndarray, usable: np.ndarray, seed_eta: np.ndarray) -> np.ndarray:
    """Each seed's own drift [S]: the OLS slope of its eta* [S, m] on x [m] over the ``usable``
    shapes (those the seed-mean slope uses); NaN for a seed whose optimum is open at one of
    them, so every finite value is a slope over the same shapes as the seed-mean one."""
    per_seed = ols_rows(x, np.where(usable[None, :], seed_eta, np.nan))
    complete = np.isfinite(seed_eta[:, usable]).all(-1)
    return np.where(complete, per_seed, np.nan)


def drift_fit(
    x: np.ndarray,
    eta: np.ndarray,
    censored: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    seed_eta: np.ndarray,
    ci: float = 0.9,
) -> dict[str, float]:
    """Drift of one series: x = log2 axis values [m]; eta, censored, lo, hi = seed-mean eta*,
    its censoring and bracket [m]; seed_eta = per-seed eta* [S, m] (NaN = open bracket).

    slope: OLS of eta on x over the shapes with a finite bracket (located optima, and optima
    next to a diverging rate at their best grid point); shapes with an open bracket (grid edge)
    or none (all diverged) are excluded (n_excluded). slope_min / slope_max: the range of OLS
    slopes over every shape when each censored eta* may lie anywhere in its bracket
    (:func:`slope_range`; infinite where an open bracket matters). slope_lo / slope_hi:
    :func:`seed_interval` over the per-seed slopes, each seed's OLS over the same shapes (a
    seed lacking one of them is left out), so the interval is for the same quantity as slope.
    """
    usable = np.isfinite(lo) & np.isfinite(hi) & np.isfinite(eta)
    fit = np.where(usable, eta, np.nan)
    slope = float(ols_rows(x, fit))
    b_lo = np.where(censored, lo, eta)
    b_hi = np.where(censored, hi, eta)
    smin, smax = slope_range(x, b_lo, b_hi) if censored.any() else (slope, slope)
    per_seed = seed_slopes(x, usable, seed_eta)
    _, s_lo, s_hi, n = seed_interval(per_seed, ci, centre=slope)
    return dict(
        slope=slope,
        slope_lo=float(s_lo),
        slope_hi=float(s_hi),
        n_seed_slopes=int(n),
        interval=interval_method(int(n)),
        slope_min=smin,
        slope_max=smax,
        n_points=int(usable.sum()),
        n_censored=int(censored.sum()),
        n_excluded=int((~usable).sum()),
    )


def fit_interval(fit: Mapping[str, Any]) -> tuple[float, float]:
    """The interval a decision reads of one :func:`drift_fit` result (a drift or horizon row):
    its seed t-interval widened over the brackets of censored optima
    (:func:`hptransfer.stats.intervals.checked_interval`); (NaN, NaN) without a t-interval."""
    if fit.get("interval") != T_INTERVAL:
        return math.nan, math.nan
    return checked_interval(float(fit["slope"]), float(fit["slope_lo"]), float(fit["slope_hi"]),
                            float(fit["slope_min"]), float(fit["slope_max"]))  # fmt: skip


def drift(
    optima: pd.DataFrame,
    seeds: pd.DataFrame | None = None,
    ci: float = 0.9,
    axes: Sequence[str] = AXES,
) -> pd.DataFrame:
    """Drift of eta* along each axis, one row per series with >= 2 shapes along it.

    Columns of :func:`drift_fit` (slope in octaves of eta* per doubling of depth or width),
    plus axis_min / axis_max, spread (max - min of log2 eta*), n_edge / edges
    (the censored shapes, by cause; a shape where every rate diverged is not censored but
    excluded: n_excluded). ``seeds`` = :func:`seed_optima` (no interval without it).
    """
    rows = []
    for axis in axes:
        wide = None
        if seeds is not None and len(seeds):
            wide = seeds.pivot_table(
                index=[*series_keys(axis), "seed"], columns=axis, values="log2_eta_star",
                dropna=False,
            )  # fmt: skip
        for key, s in _series(optima, axis):
            x = np.log2(s[axis].to_numpy(float))
            y = s["log2_eta_star"].to_numpy(float)
            # a shape where every rate diverged has no bracket: excluded, not censored
            censored = (s["edge"].notna() & (s["edge_cause"] != "all_diverged")).to_numpy()
            per_seed = np.full((0, len(s)), np.nan)
            if wide is not None:
                try:
                    b = wide.xs(tuple(key.values()), level=list(key))
                    per_seed = b.reindex(columns=s[axis]).to_numpy(float)
                except KeyError:
                    pass
            fit = drift_fit(
                x,
                y,
                censored,
                s["bracket_lo"].to_numpy(float),
                s["bracket_hi"].to_numpy(float),
                per_seed,
                ci,
            )
            kept = y[np.isfinite(y)]
            rows.append(
                key
                | dict(axis=axis, axis_min=int(s[axis].min()), axis_max=int(s[axis].max()))
                | fit
                | dict(
                    spread=float(kept.max() - kept.min()) if kept.size else math.nan,
                    n_edge=int(censored.sum()),
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


def regret_on_curve(
    curve: pd.DataFrame, log2_eta_star: float, log2_eta_base: float
) -> tuple[float, float, float]:
    """(L(x_base), L(x*), regret) on one shape's seed-averaged loss curve L (log2_lr,
    loss_mean; read by :func:`curve_value`): regret = (L(x_base) - L(x*)) / L(x*), +inf where
    the base rate diverges, NaN where it lies outside the grid or L(x*) is not finite."""
    x, y = curve["log2_lr"].to_numpy(float), curve["loss_mean"].to_numpy(float)
    best = curve_value(x, y, log2_eta_star)
    at_base = curve_value(x, y, log2_eta_base)
    with np.errstate(invalid="ignore", divide="ignore"):
        regret = (at_base - best) / best if np.isfinite(best) else math.nan
    if at_base == math.inf and np.isfinite(best):
        regret = math.inf
    return float(at_base), float(best), float(regret)


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
                at_base, best, regret = regret_on_curve(c, r["log2_eta_star"], x_base)
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
    parts = {c: split_stat_column(c) for c in mcols}
    long["stat"] = long["column"].map(lambda c: parts[c][0])
    long["role"] = long["column"].map(lambda c: parts[c][1])
    long = long.dropna(subset=["value"]).drop(columns="column")
    return long[[*GROUP, "log2_lr", "role", "stat", "value"]].reset_index(drop=True)


def movement_slopes(
    movement: pd.DataFrame, axes: Sequence[str] = AXES, stats: Sequence[str] = MOVEMENT_STATS
) -> pd.DataFrame:
    """Log-log OLS slope of each movement statistic against depth (width), per series and role.

    slope = d log(value) / d log(axis), from the values of :func:`movement_at_optimum`
    (positive values only). Claim (c) of the report: about -1/2 for hidden_1 own movement and
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


def training_curves(results: pd.DataFrame, optima: pd.DataFrame) -> pd.DataFrame:
    """The results rows of every group at its stable grid rate nearest eta* (log2_lr_nearest):
    the training curves of the tuned networks, one per seed."""
    at = optima[[*GROUP, "log2_lr_nearest"]].dropna()
    at = at.rename(columns={"log2_lr_nearest": "log2_lr"})
    return results.merge(at, on=[*GROUP, "log2_lr"])


FIXED_LR_SLOPES = {
    "own_movement": "h1_own_slope_fixed_lr",
    "weight_change": "h1_weight_slope_fixed_lr",
}
_FIXED_SERIES = ["scheme", "optimizer", "block_depth", "width"]


def _fixed_lr_rows(finals: pd.DataFrame, optima: pd.DataFrame):
    """(series key dict, finals rows of that series at its fixed rate) per (scheme, optimizer,
    block_depth, width) series with >= 2 depths and a stable base rate."""
    for key, s in optima.groupby(_FIXED_SERIES, sort=True):
        base = s.loc[s["depth"].idxmin()]
        lr = base["log2_lr_nearest"]
        if pd.isna(lr) or s["depth"].nunique() < 2:
            continue
        sel = finals[
            (finals["scheme"] == key[0])
            & (finals["optimizer"] == key[1])
            & (finals["block_depth"] == key[2])
            & (finals["width"] == key[3])
            & np.isclose(finals["log2_lr"], lr)
            & ~finals["diverged"]
        ]
        yield dict(zip(_FIXED_SERIES, key, strict=True)), sel


def _per_seed_log_slopes(sel: pd.DataFrame, col: str) -> tuple[np.ndarray, np.ndarray]:
    """(seeds, each seed's log-log OLS slope of ``col`` against depth)."""
    per_seed = wide_mean(sel, "seed", "depth", col)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log2(per_seed.where(per_seed > 0).to_numpy(float))
    slopes = ols_rows(np.log2(per_seed.columns.to_numpy(float)), logs)
    return per_seed.index.to_numpy(), np.atleast_1d(slopes)


def fixed_lr_slopes(finals: pd.DataFrame, optima: pd.DataFrame) -> pd.DataFrame:
    """hidden_1 movement slopes against depth, every depth trained at ONE learning rate.

    Per (scheme, optimizer, block_depth, width) series: the rate is the stable grid rate
    nearest the shallowest shape's eta* (log2_lr_nearest there); h1_own_slope_fixed_lr /
    h1_weight_slope_fixed_lr = log-log OLS slope against depth of the seed mean of
    own_movement/hidden_1 / weight_change/hidden_1 at that rate (replicas that diverged left
    out), with _lo / _hi = :func:`seed_interval` over the per-seed slopes
    (:func:`fixed_lr_seed_slopes`), centred on that slope. A fixed rate isolates the depth scaling of the scheme from
    the drift of eta* itself; compare movement_slopes, which reads each depth at its own eta*.
    """
    rows = []
    for row, sel in _fixed_lr_rows(finals, optima):
        for stat, name in FIXED_LR_SLOPES.items():
            col = stat_column(stat, "hidden_1")
            if col not in sel:
                row[name] = row[f"{name}_lo"] = row[f"{name}_hi"] = math.nan
                continue
            per_depth = sel.groupby("depth")[col].mean()
            per_depth = per_depth[per_depth > 0]
            row[name] = (
                ols_slope(np.log2(per_depth.index.to_numpy(float)), np.log2(per_depth))
                if len(per_depth) >= 2
                else math.nan
            )
            _, slopes = _per_seed_log_slopes(sel, col)
            # centred on the printed slope, as the check's interval of the same metric
            _, lo, hi, _ = seed_interval(slopes, centre=row[name])
            row[f"{name}_lo"], row[f"{name}_hi"] = float(lo), float(hi)
        rows.append(row)
    return pd.DataFrame(rows)


def fixed_lr_seed_slopes(finals: pd.DataFrame, optima: pd.DataFrame) -> pd.DataFrame:
    """Each seed's own hidden_1 movement slope at the fixed rate of :func:`fixed_lr_slopes`:
    one row per (scheme, optimizer, block_depth, width, metric, seed) with ``value`` (NaN
    where the seed lacks a positive movement at fewer than 2 depths)."""
    rows = []
    for key, sel in _fixed_lr_rows(finals, optima):
        for stat, name in FIXED_LR_SLOPES.items():
            col = stat_column(stat, "hidden_1")
            if col not in sel:
                continue
            seeds, slopes = _per_seed_log_slopes(sel, col)
            rows += [key | dict(metric=name, seed=int(seed), value=float(v))
                     for seed, v in zip(seeds, slopes, strict=True)]  # fmt: skip
    return pd.DataFrame(rows, columns=[*_FIXED_SERIES, "metric", "seed", "value"])


# --------------------------------------------------------------------------------------------
# The training horizon


def losses_by_step(results: pd.DataFrame, last_evals: int = 3) -> pd.DataFrame:
    """Final training loss of every replica as if training had stopped at each evaluation step.

    With a constant learning rate a T-step run read at step t is the t-step run, so column t
    (every evaluation step t > 0) holds the mean train_loss of the last ``last_evals``
    evaluations up to t, and +inf once the replica has diverged (diverged flag, diverged_step
    <= t, or a non-finite loss at or before t). Index: REPLICA. The last column equals
    :func:`final_losses`'s final_train_loss. An eliminated replica holds its loss at its stop
    step at every later step (:func:`hold_stopped`).
    """
    _check(results)
    results = hold_stopped(results, REPLICA)
    trained = results[results["step"] > 0]
    loss = trained.set_index([*REPLICA, "step"])["train_loss"].unstack("step").sort_index(axis=1)
    steps = loss.columns.to_numpy(float)
    dead = trained.set_index([*REPLICA, "step"])["diverged"].unstack("step")
    dead = dead.reindex(columns=loss.columns).fillna(False).astype(bool).to_numpy().copy()
    dead |= ~np.isfinite(loss.to_numpy(float))
    if "diverged_step" in trained:
        ds = trained.groupby(list(REPLICA))["diverged_step"].max().reindex(loss.index)
        dead |= ds.to_numpy(float)[:, None] <= steps[None, :]
    dead = np.maximum.accumulate(dead, axis=1)
    window = loss.T.rolling(last_evals, min_periods=1).mean().T.to_numpy(float)
    return pd.DataFrame(np.where(dead, np.inf, window), index=loss.index, columns=loss.columns)


def horizon_drift(
    results: pd.DataFrame,
    last_evals: int = 3,
    ci: float = 0.9,
    axes: Sequence[str] = AXES,
) -> pd.DataFrame:
    """Drift of eta* at every evaluation step: one row per (series, axis, step).

    At step t every group's eta* and per-seed optima are computed from
    :func:`losses_by_step` column t exactly as :func:`optimal_lr` does from the final losses
    (vectorised over steps), and the series' drift by :func:`drift_fit`. Columns: the series
    keys, axis, step, drift_fit's columns and worst_regret (the largest transfer regret of
    the base shape's eta* over the series at that step, as :func:`transfer_regret`); the last
    step reproduces :func:`drift` and the scorecard's worst regret.
    """
    by_step = losses_by_step(results, last_evals)
    steps = by_step.columns.to_numpy(float)
    seeds = np.sort(by_step.index.get_level_values("seed").unique())
    cells: dict[tuple, dict[str, np.ndarray]] = {}
    curves: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
    for key, g in by_step.groupby(list(GROUP), sort=True):
        g = g.droplevel(list(GROUP))  # index (log2_lr, seed)
        grid = np.sort(g.index.get_level_values("log2_lr").unique())
        full = pd.MultiIndex.from_product([grid, seeds], names=["log2_lr", "seed"])
        v = g.reindex(full).to_numpy(float).reshape(len(grid), len(seeds), len(steps))
        v = v.transpose(2, 1, 0)  # [T, S, n_lr]
        mean = _seed_mean(v)  # [T, n_lr]
        r = refine(grid, mean)
        curves[key] = (grid, mean)
        cells[key] = dict(
            eta=r.log2_eta,
            censored=r.edge != 0,
            lo=r.bracket_lo,
            hi=r.bracket_hi,
            seed_eta=_per_seed_eta(grid, v),  # [T, S]
        )
    index = pd.DataFrame(list(cells), columns=list(GROUP))
    rows = []
    for axis in axes:
        keys = series_keys(axis)
        for key, s in index.groupby(keys, sort=True):
            if s[axis].nunique() < 2:
                continue
            s = s.sort_values(axis)
            cs = [cells[tuple(r)] for r in s[list(GROUP)].itertuples(index=False)]
            x = np.log2(s[axis].to_numpy(float))
            stack = {k: np.stack([c[k] for c in cs], axis=-1) for k in cs[0]}
            for t, step in enumerate(steps):
                fit = drift_fit(
                    x,
                    stack["eta"][t],
                    stack["censored"][t],
                    stack["lo"][t],
                    stack["hi"][t],
                    stack["seed_eta"][t],
                    ci,
                )
                regret = _worst_regret(
                    [curves[tuple(r)] for r in s[list(GROUP)].itertuples(index=False)],
                    stack["eta"][t],
                    t,
                )
                rows.append(
                    dict(zip(keys, key, strict=True))
                    | dict(axis=axis, step=int(step))
                    | fit
                    | dict(worst_regret=regret)
                )
    return _int_axes(pd.DataFrame(rows, columns=_columns(rows)))


def _worst_regret(curves: list[tuple[np.ndarray, np.ndarray]], eta: np.ndarray, t: int) -> float:
    """max over the shapes of (L_s(x*_base) - L_s(x*_s)) / L_s(x*_s) at step t (shape 0 = base)."""
    worst = -math.inf
    for (grid, mean), x_s in zip(curves, eta, strict=True):
        y = mean[t]
        best = curve_value(grid, y, x_s)
        at_base = curve_value(grid, y, eta[0])
        if not np.isfinite(best):
            continue
        regret = math.inf if at_base == math.inf else (at_base - best) / best
        if not math.isnan(regret):
            worst = max(worst, regret)
    return worst if worst > -math.inf else math.nan


def seed_curves(finals: pd.DataFrame) -> dict[tuple, tuple[np.ndarray, np.ndarray]]:
    """Every group's per-seed final-loss curves: GROUP key -> (log2 lr grid, losses [seed,
    lr]) (the input of :func:`series_seed_regret`)."""
    return {key: (x, v) for key, x, v in _group_curves(_as_finals(finals, 3))}


def series_seed_regret(
    cs: Sequence[tuple[np.ndarray, np.ndarray]],
) -> Iterator[tuple[int, int, float]]:
    """(seed, j, regret) for every seed and every shape j >= 1 of a series whose per-seed
    curves are ``cs`` (shape 0 the base): the regret of that seed's own base optimum on its own
    curve at shape j (:func:`seed_shape_regret`; NaN where unknown)."""
    n_seeds = min(v.shape[0] for _, v in cs)
    for seed in range(n_seeds):
        xb, vb = cs[0]
        base = refine(xb, vb[seed])
        known = np.isfinite(base.bracket_lo) and np.isfinite(base.bracket_hi)
        for j, (x, v) in enumerate(cs[1:], start=1):
            regret = math.nan
            if known:
                ok = ~np.isnan(v[seed])
                xs, ys = x[ok], v[seed][ok]  # x increasing: refine once, read twice
                own = refine(xs, ys)
                best = curve_value(xs, ys, float(own.log2_eta), refined=own)
                at = curve_value(xs, ys, float(base.log2_eta), refined=own)
                if np.isfinite(best) and not math.isnan(at):
                    regret = math.inf if at == math.inf else (at - best) / best
            yield seed, j, regret


def seed_shape_regret(
    finals: pd.DataFrame, optima: pd.DataFrame, axes: Sequence[str] = AXES
) -> pd.DataFrame:
    """Transfer regret of every seed at every non-base shape on its own curves: one row per
    (series, seed, shape), columns the series keys, axis, seed_index, the shape's value of the
    axis (column ``shape``) and regret.

    For seed s with loss curves L_{s,shape} and its own base-shape optimum x*_{s,base}
    (:func:`hptransfer.stats.optimum.refine` on its base curve),

        regret_{s,shape} = (L_{s,shape}(x*_{s,base}) - min L_{s,shape}) / min L_{s,shape},

    read by :func:`curve_value` as :func:`transfer_regret` does: +inf where the base rate
    diverges; NaN at every shape when the seed's base optimum is at the grid edge or unknown,
    and at a shape where the seed's own minimum is not finite (every rate diverged) or the base
    rate is off its grid. Seed and base are paired: the base rate that seed would have tuned,
    read on that seed's own curves (same initial draw and batches).
    """
    curves = seed_curves(finals)
    rows = []
    for axis in axes:
        for key, s in _series(optima, axis):
            cs = [curves[tuple(r)] for r in s[list(GROUP)].itertuples(index=False)]
            for seed, j, regret in series_seed_regret(cs):
                shape = int(s[axis].iloc[j])
                rows.append(key | dict(axis=axis, seed_index=seed, shape=shape, regret=regret))
    columns = None if rows else [*series_keys("depth"), "depth", "axis", "seed_index", "shape",
                                 "regret"]  # fmt: skip
    return _int_axes(pd.DataFrame(rows, columns=columns))


def seed_regret(finals: pd.DataFrame, optima: pd.DataFrame, axes: Sequence[str] = AXES):
    """Worst transfer regret of every seed on its own curves: one row per (series, seed),
    worst_regret = the max over the shapes of :func:`seed_shape_regret` and 0 (the base
    shape's own; NaN when the seed's
    base optimum is at the grid edge or unknown, or no shape has a regret). The spread of
    these values gives the baseline comparison its per-seed samples."""
    shapes = seed_shape_regret(finals, optima, axes)
    if shapes.empty:
        return _int_axes(pd.DataFrame(columns=[*GROUP, "axis", "seed_index", "worst_regret"]))
    keys = [c for c in shapes.columns if c not in ("shape", "regret")]
    worst = shapes.groupby(keys, sort=False, dropna=False)["regret"].max().reset_index()
    worst["regret"] = worst["regret"].clip(lower=0.0)  # the base shape's own regret is 0
    return _int_axes(worst.rename(columns={"regret": "worst_regret"}))


def hold_stopped(results: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """``results`` with every eliminated replica's losses after its stop step (column
    ``eliminated_step``) replaced by its values at the stop step: its final loss is the loss
    where it stopped (an upper bound of the loss it would have reached), not a divergence.
    A table without the column (elimination off) is returned unchanged. ``keys``: the columns
    naming a replica."""
    if "eliminated_step" not in results.columns or results["eliminated_step"].isna().all():
        return results
    df = results.sort_values([*keys, "step"], kind="stable")
    after = (df["step"] > df["eliminated_step"]).to_numpy(bool)
    cols = [c for c in LOSS_COLUMNS if c in df.columns]
    held = (
        df[cols]
        .mask(np.broadcast_to(after[:, None], (len(df), len(cols))))
        .groupby([df[k] for k in keys], sort=False)
        .ffill()
    )
    df.loc[after, cols] = held.loc[after, cols]
    return df.loc[results.index]


def first_steps(rows: pd.DataFrame, t: int) -> pd.DataFrame:
    """The first t steps of a run: its rows up to step t, with a divergence or an elimination
    that came after step t undone (the T-step run had not diverged or stopped yet)."""
    rows = rows[rows["step"] <= t].copy()
    for col in ("diverged_step", "eliminated_step"):
        if col in rows.columns:
            later = rows[col].to_numpy(float) > t
            rows.loc[later, col] = np.nan
    return rows
