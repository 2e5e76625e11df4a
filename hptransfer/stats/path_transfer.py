"""Transfer of eta* along a width x depth model path (``[model] path`` in the config).

A path lists its shapes as (n_i, L_i), i = 0..m-1, with the base shape (n_0, L_0) first. Every
width has one depth, so the depth and width series of :mod:`hptransfer.stats.tables` are empty; the
path itself is the series. With x_i = log2(n_i / n_0) and L_s the seed-averaged loss curve of
path point i in log2 lr:

    path_optima(optima, path)     eta* at every path point (path_index i, path_x = x_i, point)
    path_regret(curves, optima, path)
                                  regret_i = L_i(x*_0) / L_i(x*_i) - 1: the rate tuned at the
                                  base point, read off the curve of point i
    path_summary(optima, drift, regret, path)
                                  the scorecard columns of the path, one row per series

The drift of log2 eta* along the path (OLS on x_i) is :func:`hptransfer.stats.hparams.path_drift`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from hptransfer.stats.columns import SERIES
from hptransfer.stats.tables import (
    GROUP,
    regret_on_curve,
    rows_where,
    seed_curves,
    series_seed_regret,
)


def point_label(width: int, depth: int) -> str:
    """ "n=16, L=2": the name of a path point in tables and figures."""
    return f"n={int(width)}, L={int(depth)}"


def path_optima(optima: pd.DataFrame, path: Sequence[tuple[int, int]]) -> pd.DataFrame:
    """The rows of ``optima`` (one per group) whose (width, depth) is a point of the path, with
    path_index i (its position on the path), path_x = log2(n_i / n_0) and point ("n=16, L=2");
    sorted by series, then along the path."""
    index = {(int(w), int(d)): i for i, (w, d) in enumerate(path)}
    n0 = path[0][0]
    at = [index.get((int(w), int(d)), -1) for w, d in zip(optima["width"], optima["depth"],
                                                         strict=True)]  # fmt: skip
    out = optima.assign(path_index=np.asarray(at, int))
    out = out[out["path_index"] >= 0].copy()
    out["path_x"] = np.log2(out["width"].to_numpy(float) / n0)
    out["point"] = [point_label(w, d) for w, d in zip(out["width"], out["depth"], strict=True)]
    return out.sort_values([*SERIES, "path_index"]).reset_index(drop=True)


def path_regret(
    curves: pd.DataFrame, optima: pd.DataFrame, path: Sequence[tuple[int, int]]
) -> pd.DataFrame:
    """Transfer regret of the base-tuned eta* at every point of the path, per series.

    x*_0 = log2 eta* at the path's first point (n_0, L_0); at point i with seed-averaged curve
    L_i, regret_i = (L_i(x*_0) - L_i(x*_i)) / L_i(x*_i) (:func:`hptransfer.stats.tables.
    regret_on_curve`: 0 at the base, +inf where the base rate diverges, NaN off the grid).
    A series without its base point is left out. Columns: GROUP, path_index, point,
    log2_eta_base, log2_eta_star, loss_at_base_eta, best_loss, regret, base_edge.
    """
    opt = path_optima(optima, path)
    curve_of = {k: c for k, c in curves.groupby(list(GROUP), sort=False)}
    rows = []
    for _, s in opt.groupby(list(SERIES), sort=True):
        base = s[s["path_index"] == 0]
        if base.empty:
            continue
        x_base = float(base["log2_eta_star"].iloc[0])
        for _, r in s.iterrows():
            at_base, best, regret = regret_on_curve(
                curve_of[tuple(r[k] for k in GROUP)], r["log2_eta_star"], x_base
            )
            rows.append(
                {k: r[k] for k in GROUP}
                | dict(path_index=int(r["path_index"]), point=r["point"], log2_eta_base=x_base,
                       log2_eta_star=float(r["log2_eta_star"]), loss_at_base_eta=at_base,
                       best_loss=best, regret=regret, base_edge=base["edge"].iloc[0])
            )  # fmt: skip
    columns = None if rows else [*GROUP, "path_index", "point", "regret"]
    return pd.DataFrame(rows, columns=columns)


def path_seed_regret(
    finals: pd.DataFrame, optima: pd.DataFrame, path: Sequence[tuple[int, int]]
) -> pd.DataFrame:
    """Each seed's regret at every point i >= 1 of the path on its own curves, with its own
    optimum at the first point (:func:`hptransfer.stats.tables.series_seed_regret`, as
    :func:`hptransfer.stats.tables.seed_shape_regret` does along an axis): columns SERIES, axis
    ("path"), seed_index, shape (the path index), regret. The worst regret's interval along
    the path is read from it (:func:`hptransfer.stats.verdicts.regret_interval`)."""
    opt = path_optima(optima, path)
    curves = seed_curves(finals)
    rows = []
    for key, s in opt.groupby(list(SERIES), sort=True):
        if (s["path_index"] != 0).all() or len(s) < 2:
            continue
        cs = [curves[tuple(r)] for r in s[list(GROUP)].itertuples(index=False)]
        for seed, j, regret in series_seed_regret(cs):
            rows.append(dict(zip(SERIES, key, strict=True))
                        | dict(axis="path", seed_index=seed,
                               shape=int(s["path_index"].iloc[j]), regret=regret))  # fmt: skip
    return pd.DataFrame(rows, columns=[*SERIES, "axis", "seed_index", "shape", "regret"])


def _edges(s: pd.DataFrame, cause: str) -> str:
    """The path points whose eta* is censored by ``cause``: "n=16, L=2 (low)"."""
    e = s[s["edge"].notna() & (s["edge_cause"] == cause)]
    return ", ".join(f"{r['point']} ({r['edge']})" for _, r in e.iterrows())


def path_summary(
    optima: pd.DataFrame,
    drift: pd.DataFrame | None,
    regret: pd.DataFrame | None,
    path: Sequence[tuple[int, int]],
) -> pd.DataFrame:
    """The path's scorecard columns, one row per series (family, scheme, optimizer, block_depth)
    with >= 2 path points; the names follow the scorecard's per-axis columns with axis "path".

    paths ("16-128", the widths), path_min / path_max (its smallest and largest width),
    path_from / path_to (first and last point), n_path;
    drift_path (+ _lo / _hi / _min / _max / _interval / _seeds), censored_path, spread_path
    (max - min of log2 eta*) from :func:`hptransfer.stats.hparams.path_drift`; regret_path /
    regret_path_at: the worst :func:`path_regret` and its point; edges_grid_path /
    edges_div_path: the censored points; stable_shift_path: the largest stable grid rate at the
    last point minus at the first (octaves).
    """
    opt = path_optima(optima, path)
    rows = []
    for key, s in opt.groupby(list(SERIES), sort=True):
        if len(s) < 2:
            continue
        sel = dict(zip(SERIES, key, strict=True))
        first, last = s.iloc[0], s.iloc[-1]
        eta = s["log2_eta_star"].to_numpy(float)
        eta = eta[np.isfinite(eta)]
        row = sel | dict(
            paths=f"{int(s['width'].min())}-{int(s['width'].max())}",
            path_min=int(s["width"].min()),
            path_max=int(s["width"].max()),
            path_from=first["point"],
            path_to=last["point"],
            n_path=len(s),
            spread_path=float(eta.max() - eta.min()) if eta.size else math.nan,
            edges_grid_path=_edges(s, "grid"),
            edges_div_path=_edges(s, "divergence"),
            stable_shift_path=float(last["max_stable_log2_lr"] - first["max_stable_log2_lr"]),
        )
        d = rows_where(drift, sel)
        dr = d.iloc[0] if len(d) else None
        for name, col in (("", "slope"), ("_lo", "slope_lo"), ("_hi", "slope_hi"),
                          ("_min", "slope_min"), ("_max", "slope_max")):  # fmt: skip
            row[f"drift_path{name}"] = float(dr[col]) if dr is not None else math.nan
        row["drift_path_interval"] = dr["interval"] if dr is not None else "none"
        row["drift_path_seeds"] = int(dr["n_seed_slopes"]) if dr is not None else 0
        row["censored_path"] = int(dr["n_censored"]) if dr is not None else 0
        r = rows_where(regret, sel)
        if len(r) and r["regret"].notna().any():
            worst = r.loc[r["regret"].fillna(-1.0).idxmax()]
            row["regret_path"], row["regret_path_at"] = float(worst["regret"]), worst["point"]
        else:
            row["regret_path"], row["regret_path_at"] = math.nan, None
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else [*SERIES, "paths", "drift_path"])
