"""Local drift of eta* across depth: where the straight line of :func:`hptransfer.stats.tables.drift`
bends (issue 17 item 3, "curvature at depth").

For one series (scheme, optimizer, k, held width) with depths L_0 < ... < L_{m-1}, x_i =
log2 L_i, seed-mean eta*_i = log2 eta* (censoring and brackets from
:func:`hptransfer.stats.tables.optimal_lr`) and per-seed y_si (:func:`hptransfer.stats.tables.
seed_optima`, NaN where a seed's optimum is open):

- :func:`pair_slopes`: the slope between consecutive depths, (eta*_{i+1} - eta*_i) /
  (x_{i+1} - x_i), octaves per doubling of depth;
- :func:`deep_half_slope`: the OLS slope over the deepest half of the depth range, the depths
  with x_i >= (x_0 + x_{m-1}) / 2;

  both are :func:`hptransfer.stats.tables.drift_fit` over those depths, so they are computed the way
  the drift is: the point over located optima, a 90% t-interval over the per-seed slopes over
  the same depths, and with a censored optimum the bracket slope range
  (:func:`hptransfer.stats.intervals.slope_range`) instead; :func:`hptransfer.stats.intervals.checked_interval` is the interval
  a decision reads (the seed interval, pushed out to cover the bracket range when censored);
- :func:`largest_shift`: max_{i>0} |eta*_i - eta*_0| in octaves, with a seed interval over
  each seed's own max_{i>0} |y_si - y_s0| (paired per seed, then the max);
- :func:`curvature`: 2 c of the least-squares quadratic a + b x + c x^2, the change of the
  local slope per doubling of depth, with a seed interval over each seed's own 2 c; the line
  is "curved" when that (t-)interval excludes 0.

:func:`local_drift` builds the table of all series; :func:`local_columns` the scorecard
columns at the held width. Wording (verdict sentence, claim (f)) is in
:mod:`hptransfer.stats.verdicts`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from hptransfer.stats.columns import SERIES
from hptransfer.stats.intervals import MIN_SEEDS_T, checked_interval, interval_method, seed_interval
from hptransfer.stats.tables import drift_fit, held_value, series_keys

CURVED, STRAIGHT, UNDECIDED = "curved", "line fits", "undecided"


def _window(x, eta, censored, lo, hi, seed_eta, idx, ci) -> dict[str, float]:
    """:func:`drift_fit` over the depths ``idx`` only."""
    idx = np.asarray(idx, int)
    return drift_fit(x[idx], eta[idx], censored[idx], lo[idx], hi[idx], seed_eta[:, idx], ci)


def _holding(mean, lo, hi, n, centre: float):
    """A :func:`seed_interval` result whose range of 2 seeds is stretched to hold the point
    estimate ``centre`` too (as the check's intervals: :mod:`hptransfer.stats.seed_metrics`)."""
    lo, hi = float(lo), float(hi)
    if int(n) == 2 and np.isfinite(lo) and np.isfinite(centre):
        lo, hi = min(lo, centre), max(hi, centre)
    return mean, lo, hi, n


def pair_slopes(
    x: np.ndarray,
    eta: np.ndarray,
    censored: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    seed_eta: np.ndarray,
    ci: float = 0.9,
) -> list[dict[str, float]]:
    """One :func:`drift_fit` dict per consecutive pair (x_i, x_{i+1}): slope = (eta_{i+1} -
    eta_i) / (x_{i+1} - x_i) (NaN when either optimum is censored), slope_lo / slope_hi the
    seed interval of the per-seed slopes, slope_min / slope_max the range the brackets allow."""
    return [_window(x, eta, censored, lo, hi, seed_eta, [i, i + 1], ci) for i in range(len(x) - 1)]


def deep_half(x: np.ndarray) -> np.ndarray:
    """Indices of the deepest half of the depth range: x_i >= (min x + max x) / 2."""
    x = np.asarray(x, float)
    return np.flatnonzero(x >= (x.min() + x.max()) / 2 - 1e-12)


def deep_half_slope(
    x: np.ndarray,
    eta: np.ndarray,
    censored: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    seed_eta: np.ndarray,
    ci: float = 0.9,
) -> dict[str, float]:
    """:func:`drift_fit` over :func:`deep_half` (the OLS slope over the deepest half, octaves
    per doubling, its seed interval and bracket range)."""
    return _window(x, eta, censored, lo, hi, seed_eta, deep_half(x), ci)


def max_shift(eta: np.ndarray) -> np.ndarray:
    """max_{i>0} |eta_i - eta_0| over the last axis [..., m] (NaN when any value is NaN or
    m < 2): the largest shift of eta* from the base (shallowest) depth, in octaves."""
    eta = np.asarray(eta, float)
    if eta.shape[-1] < 2:
        return np.full(eta.shape[:-1], np.nan)
    d = np.abs(eta[..., 1:] - eta[..., :1])
    return np.where(np.isfinite(d).all(-1), d.max(-1, initial=0.0), np.nan)


def largest_shift(
    eta: np.ndarray,
    censored: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    seed_eta: np.ndarray,
    ci: float = 0.9,
) -> dict[str, float]:
    """The largest shift of eta* from the base depth, max_{i>0} |eta_i - eta_0| (octaves).

    shift: on the seed-mean eta* (NaN when a depth has an open or no bracket: the drift's
    usable shapes, :func:`hptransfer.stats.tables.drift_fit`); shift_at: the index
    i of the max. shift_lo / shift_hi: :func:`seed_interval` of the per-seed maxima
    max_{i>0} |y_si - y_s0| (paired per seed: each seed's own shifts, then its own max; a seed
    with an open optimum at any depth is left out) around shift, its lower end clipped at 0
    (a shift is never negative). The max is taken inside each
    seed, so the interval is for E[max_i |shift_si|], which seed noise pushes above
    max_i |E shift_i|: an upward-biased, conservative statement when a small shift is claimed.
    shift_min / shift_max: with censored optima, the outer range the brackets allow, from
    max_i dist(0, [lo_i - hi_0, hi_i - lo_0]) to max_i max(|hi_i - lo_0|, |lo_i - hi_0|)
    (located optima enter with lo = hi = eta); equal to shift otherwise.
    """
    eta, lo, hi = (np.asarray(v, float) for v in (eta, lo, hi))
    censored = np.asarray(censored, bool)
    usable = np.isfinite(lo) & np.isfinite(hi) & np.isfinite(eta)  # as the drift's fit
    point = float(max_shift(np.where(usable, eta, np.nan)))
    at = int(np.argmax(np.abs(eta[1:] - eta[0]))) + 1 if np.isfinite(point) else -1
    _, s_lo, s_hi, n = _holding(*seed_interval(max_shift(seed_eta), ci, centre=point), point)
    s_lo = max(s_lo, 0.0) if np.isfinite(s_lo) else s_lo  # a shift is >= 0
    smin = smax = point
    if censored.any():
        b_lo, b_hi = np.where(censored, lo, eta), np.where(censored, hi, eta)
        with np.errstate(invalid="ignore"):
            d_lo, d_hi = b_lo[1:] - b_hi[0], b_hi[1:] - b_lo[0]
            smin = float(np.max(np.where(d_lo > 0, d_lo, np.where(d_hi < 0, -d_hi, 0.0))))
            smax = float(np.max(np.maximum(np.abs(d_lo), np.abs(d_hi))))
    return dict(
        shift=point,
        shift_at=at,
        shift_lo=float(s_lo),
        shift_hi=float(s_hi),
        shift_seeds=int(n),
        shift_interval=interval_method(int(n)),
        shift_min=smin,
        shift_max=smax,
    )


def quadratic_coefficient(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """2 c of the least-squares quadratic y ~ a + b x + c x^2, row-wise over y [..., m],
    using the finite pairs of each row (NaN with fewer than 3 distinct x): the change of the
    local slope dy/dx = b + 2 c x per unit of x (per doubling of depth)."""
    x = np.asarray(x, float)
    y = np.atleast_2d(np.asarray(y, float))
    out = np.full(y.shape[0], np.nan)
    for r, row in enumerate(y):
        ok = np.isfinite(row) & np.isfinite(x)
        if np.unique(x[ok]).size < 3:
            continue
        xc = x[ok] - x[ok].mean()  # centred: the same c, better conditioned
        design = np.stack([np.ones_like(xc), xc, xc * xc], axis=1)
        coef, *_ = np.linalg.lstsq(design, row[ok], rcond=None)
        out[r] = 2.0 * coef[2]
    return out


def curvature(
    x: np.ndarray, eta: np.ndarray, usable: np.ndarray, seed_eta: np.ndarray, ci: float = 0.9
) -> dict[str, float | str]:
    """The straight line's fit: curv = :func:`quadratic_coefficient` of the seed-mean eta* over
    the ``usable`` depths (located optima, as the drift uses), curv_lo / curv_hi the seed
    interval of each seed's own 2 c over the same depths (a seed open at one of them left
    out). curv_test: "curved" when a t-interval (>= 3 seeds) excludes 0, "line fits" when it
    contains 0, "undecided" without a t-interval or with fewer than 3 usable depths."""
    usable = np.asarray(usable, bool)
    point = float(quadratic_coefficient(x, np.where(usable, eta, np.nan))[0])
    seed_eta = np.asarray(seed_eta, float)
    per_seed = quadratic_coefficient(x, np.where(usable[None, :], seed_eta, np.nan))
    per_seed = np.where(np.isfinite(seed_eta[:, usable]).all(-1), per_seed, np.nan)
    _, c_lo, c_hi, n = _holding(*seed_interval(per_seed, ci, centre=point), point)
    c_lo, c_hi = float(c_lo), float(c_hi)
    if not np.isfinite(point) or int(n) < MIN_SEEDS_T:
        test = UNDECIDED
    else:
        test = STRAIGHT if c_lo <= 0.0 <= c_hi else CURVED
    return dict(curv=point, curv_lo=c_lo, curv_hi=c_hi, curv_seeds=int(n),
                curv_interval=interval_method(int(n)), curv_test=test)  # fmt: skip


def series_local_drift(
    depths: Sequence[int],
    eta: np.ndarray,
    censored: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    seed_eta: np.ndarray,
    ci: float = 0.9,
) -> list[dict]:
    """The rows of one series: kind "pair" (one per consecutive depth pair, depth_from /
    depth_to), "deep_half" (depth_from / depth_to = the deepest half's ends), each with the
    :func:`drift_fit` columns and check_lo / check_hi (:func:`checked_interval`); and one row
    kind "series" with :func:`largest_shift` and :func:`curvature` (depth_from / depth_to = the
    whole range, shift_depth = the depth of the largest shift). n_unknown: the depths of a
    window where every rate diverged (no bracket: eta* unknown, left out of the fit)."""
    depths = np.asarray(depths, int)
    x = np.log2(depths.astype(float))
    eta, lo, hi = (np.asarray(v, float) for v in (eta, lo, hi))
    censored = np.asarray(censored, bool)
    seed_eta = np.asarray(seed_eta, float).reshape(-1, len(depths))
    rows: list[dict] = []

    def with_check(fit: dict) -> dict:
        c_lo, c_hi = checked_interval(
            fit["slope"], fit["slope_lo"], fit["slope_hi"], fit["slope_min"], fit["slope_max"]
        )
        return fit | dict(check_lo=c_lo, check_hi=c_hi)

    def unknown(idx) -> dict:  # depths where every rate diverged: no bracket, eta* unknown
        return dict(n_unknown=int((np.isnan(lo[idx]) | np.isnan(hi[idx])).sum()))

    for i, fit in enumerate(pair_slopes(x, eta, censored, lo, hi, seed_eta, ci)):
        rows.append(dict(kind="pair", depth_from=int(depths[i]), depth_to=int(depths[i + 1]))
                    | with_check(fit) | unknown([i, i + 1]))  # fmt: skip
    deep = deep_half(x)
    if deep.size >= 2:
        fit = deep_half_slope(x, eta, censored, lo, hi, seed_eta, ci)
        rows.append(dict(kind="deep_half", depth_from=int(depths[deep[0]]),
                         depth_to=int(depths[deep[-1]])) | with_check(fit)
                    | unknown(deep))  # fmt: skip
    usable = np.isfinite(lo) & np.isfinite(hi) & np.isfinite(eta)
    shift = largest_shift(eta, censored, lo, hi, seed_eta, ci)
    at = shift.pop("shift_at")
    rows.append(
        dict(kind="series", depth_from=int(depths[0]), depth_to=int(depths[-1]),
             shift_depth=int(depths[at]) if at > 0 else None)
        | shift
        | curvature(x, eta, usable, seed_eta, ci)
    )  # fmt: skip
    return rows


LOCAL_KEYS = series_keys("depth")  # family, scheme, optimizer, width, block_depth


def local_drift(optima: pd.DataFrame, seeds: pd.DataFrame | None, ci: float = 0.9) -> pd.DataFrame:
    """Local drift across depth of every series (LOCAL_KEYS) with >= 2 depths: the rows of
    :func:`series_local_drift` with the series keys. ``optima`` = tables.optimal_lr, ``seeds``
    = tables.seed_optima (no seed intervals without it). A depth where every rate diverged has
    no bracket: it is not censored, and the slopes that need it are NaN."""
    rows: list[dict] = []
    wide = None
    if seeds is not None and len(seeds):
        wide = seeds.pivot_table(index=[*LOCAL_KEYS, "seed"], columns="depth",
                                 values="log2_eta_star", dropna=False)  # fmt: skip
    if optima is None or optima.empty:
        return pd.DataFrame(columns=[*LOCAL_KEYS, "kind"])
    for key, s in optima.groupby(LOCAL_KEYS, sort=True):
        if s["depth"].nunique() < 2:
            continue
        s = s.sort_values("depth")
        per_seed = np.full((0, len(s)), np.nan)
        if wide is not None:
            try:
                per_seed = (
                    wide.xs(key, level=LOCAL_KEYS).reindex(columns=s["depth"]).to_numpy(float)
                )
            except KeyError:
                pass
        censored = (s["edge"].notna() & (s["edge_cause"] != "all_diverged")).to_numpy()
        base = dict(zip(LOCAL_KEYS, key, strict=True))
        rows += [
            base | r
            for r in series_local_drift(
                s["depth"].to_numpy(int), s["log2_eta_star"].to_numpy(float), censored,
                s["bracket_lo"].to_numpy(float), s["bracket_hi"].to_numpy(float), per_seed, ci,
            )
        ]  # fmt: skip
    frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=[*LOCAL_KEYS, "kind"])
    if "shift_depth" in frame:
        frame["shift_depth"] = frame["shift_depth"].astype("Int64")
    return frame


SERIES_COLUMNS = {  # local_drift "series" row -> scorecard column
    "shift": "max_shift_depth", "shift_lo": "max_shift_depth_lo",
    "shift_hi": "max_shift_depth_hi", "shift_interval": "max_shift_depth_interval",
    "shift_seeds": "max_shift_depth_seeds", "shift_min": "max_shift_depth_min",
    "shift_max": "max_shift_depth_max", "shift_depth": "max_shift_depth_at",
    "curv": "curvature_depth", "curv_lo": "curvature_depth_lo", "curv_hi": "curvature_depth_hi",
    "curv_interval": "curvature_depth_interval", "curv_test": "curvature_depth_test",
}  # fmt: skip
DEEP_COLUMNS = {  # local_drift "deep_half" row -> scorecard column
    "slope": "deep_drift_depth", "slope_lo": "deep_drift_depth_lo",
    "slope_hi": "deep_drift_depth_hi", "interval": "deep_drift_depth_interval",
    "n_seed_slopes": "deep_drift_depth_seeds", "check_lo": "deep_drift_depth_check_lo",
    "check_hi": "deep_drift_depth_check_hi", "depth_from": "deep_depth_from",
    "n_unknown": "deep_drift_depth_unknown",
}  # fmt: skip


def at_held_width(local: pd.DataFrame, optima: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``local`` at the width where the scorecard summarises depth
    (:func:`hptransfer.stats.tables.held_value`); empty when there is none."""
    held = held_value(optima, "depth") if optima is not None and len(optima) else None
    if held is None or local is None or local.empty:
        return local.iloc[:0] if local is not None else pd.DataFrame()
    return local[local["width"] == held]


def local_columns(card: pd.DataFrame, local: pd.DataFrame, optima: pd.DataFrame) -> pd.DataFrame:
    """``card`` (verdicts.scorecard) with the local-drift columns at the held width joined on
    (family, scheme, optimizer, block_depth): max_shift_depth (+ _lo, _hi, _interval, _seeds,
    _min, _max, _at), deep_drift_depth (+ _lo, _hi, _interval, _seeds, _check_lo, _check_hi),
    deep_depth_from, deep_drift_depth_unknown (depths of the deepest half where every rate
    diverged), curvature_depth (+ _lo, _hi, _interval, _test). Existing columns are
    unchanged; a card without depth series comes back as it is."""
    sel = at_held_width(local, optima)
    if card is None or card.empty or sel.empty:
        return card
    series = sel[sel["kind"] == "series"][[*SERIES, *SERIES_COLUMNS]]
    deep = sel[sel["kind"] == "deep_half"][[*SERIES, *DEEP_COLUMNS]]
    out = card.merge(series.rename(columns=SERIES_COLUMNS), on=list(SERIES), how="left")
    out = out.merge(deep.rename(columns=DEEP_COLUMNS), on=list(SERIES), how="left")
    out.index = card.index
    return out
