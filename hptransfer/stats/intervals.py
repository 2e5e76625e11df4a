"""Slopes and seed intervals: the statistics behind drift and its uncertainty (pure numpy).

- :func:`ols_rows` / :func:`ols_slope`: least-squares slope, row-wise, ignoring non-finite pairs.
- :func:`slope_range`: the smallest and largest OLS slope when each y_j is only known to lie
  in a bracket [lo_j, hi_j] (censored optima).
- :func:`seed_interval`: the interval for a quantity estimated once per seed. With S >= 3
  finite per-seed values v_1..v_S it is the Student-t interval

      mean(v) +- t_{(1+ci)/2, S-1} sd(v) / sqrt(S),

  which covers the seed-mean's expectation with probability ci when the v_s are independent
  and roughly normal (calibrated on planted curves: :mod:`hptransfer.stats.calibration`). With
  S = 2 no interval is calibrated (a percentile bootstrap over 2 seeds has 3 distinct
  resamples), so the result is the *range* of the two values, labelled as such.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats  # a dependency of jax; only its t quantile is used

T_INTERVAL, RANGE, NO_INTERVAL = "t", "range", "none"
MIN_SEEDS_T = 3


def ols_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Slope of the least-squares line of y [..., n] on x [n] over the leading axes, ignoring
    the pairs where y (or x) is non-finite; NaN where fewer than 2 distinct x remain."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    m = np.isfinite(y) & np.isfinite(x)
    w = m.astype(float)
    cnt = w.sum(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        xm = (w * np.where(m, x, 0.0)).sum(-1, keepdims=True) / cnt
        ym = np.where(m, y, 0.0).sum(-1, keepdims=True) / cnt
        dx = np.where(m, x - xm, 0.0)
        dy = np.where(m, y - ym, 0.0)
        sxx = (dx * dx).sum(-1)
        return np.where(sxx > 1e-12, (dx * dy).sum(-1) / np.where(sxx > 1e-12, sxx, 1.0), np.nan)


def ols_slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope of y on x over the pairs where both are finite; NaN if < 2 distinct x."""
    return float(ols_rows(np.asarray(x, float), np.asarray(y, float)))


def slope_range(
    x: Sequence[float], lo: Sequence[float], hi: Sequence[float]
) -> tuple[float, float]:
    """(min, max) of the OLS slope of y on x over all y with lo_j <= y_j <= hi_j.

    The slope is linear in y, sum_j c_j y_j with c_j = (x_j - mean x) / sum (x - mean x)^2, so
    its minimum takes lo_j where c_j > 0 and hi_j where c_j < 0 (the maximum the other way).
    An open bracket (infinite end) with c_j != 0 makes that side of the range infinite.
    Points with a NaN end are left out. (NaN, NaN) with fewer than 2 distinct x.
    """
    x, lo, hi = (np.asarray(v, float) for v in (x, lo, hi))
    keep = ~(np.isnan(lo) | np.isnan(hi) | np.isnan(x))
    x, lo, hi = x[keep], lo[keep], hi[keep]
    if np.unique(x).size < 2:
        return float("nan"), float("nan")
    dx = x - x.mean()
    c = dx / (dx * dx).sum()
    c = np.where(np.abs(c) < 1e-12, 0.0, c)
    with np.errstate(invalid="ignore"):
        low = np.where(c > 0, c * lo, np.where(c < 0, c * hi, 0.0)).sum()
        high = np.where(c > 0, c * hi, np.where(c < 0, c * lo, 0.0)).sum()
    return float(low), float(high)


def seed_interval(
    values: np.ndarray, ci: float = 0.9, centre: np.ndarray | float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mean, lo, hi, n) over the last axis of per-seed values [..., S], non-finite left out.

    n >= 3: Student-t interval on n - 1 degrees of freedom (module docstring), around
    ``centre`` when given (an estimate from the seed-averaged data, whose spread the per-seed
    values' sd / sqrt(n) stands for) else around their mean; n = 2: the range [min, max];
    n < 2: NaN. :func:`interval_method` names which one a row got.
    """
    v = np.asarray(values, float)
    ok = np.isfinite(v)
    n = ok.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(ok, v, 0.0).sum(-1) / n
        dev = np.where(ok, v - mean[..., None], 0.0)
        sd = np.sqrt((dev * dev).sum(-1) / np.maximum(n - 1, 1))
        t = stats.t.ppf(0.5 + ci / 2, np.maximum(n - 1, 1))
        half = t * sd / np.sqrt(n)
        vmin = np.where(ok, v, np.inf).min(-1, initial=np.inf)  # initial: S = 0 is allowed
        vmax = np.where(ok, v, -np.inf).max(-1, initial=-np.inf)
    mid = mean if centre is None else np.asarray(centre, float)
    lo = np.where(n >= MIN_SEEDS_T, mid - half, np.where(n == 2, vmin, np.nan))
    hi = np.where(n >= MIN_SEEDS_T, mid + half, np.where(n == 2, vmax, np.nan))
    mean = np.where(n >= 1, mean, np.nan)
    return mean, lo, hi, n


def interval_method(n: int) -> str:
    """The interval a row with n per-seed values gets: "t", "range" or "none"."""
    return T_INTERVAL if n >= MIN_SEEDS_T else RANGE if n == 2 else NO_INTERVAL


def interval_label(n: int, ci: float = 0.9) -> str:
    """How a person should read the interval of a row with n seeds."""
    method = interval_method(n)
    if method == T_INTERVAL:
        return f"{round(100 * ci)}% t-interval over {n} seeds"
    if method == RANGE:
        return "range of 2 seeds"
    return "no interval (1 seed)"


HOLDS, FAILS, INCONCLUSIVE, MISSING = "holds", "fails", "inconclusive", "missing"


def interval_outcome(lo: float, hi: float, bound_lo: float, bound_hi: float) -> str:
    """The one rule by which an interval [lo, hi] is judged against an allowed range
    [bound_lo, bound_hi] (an end may be infinite): "holds" when the whole interval lies inside,
    "fails" when it lies wholly outside, "inconclusive" when it straddles an end, "missing" when
    the interval is unknown (an end NaN) or the range is empty or unknown."""
    values = (lo, hi, bound_lo, bound_hi)
    if any(v is None or np.isnan(v) for v in values) or bound_lo > bound_hi:
        return MISSING
    if bound_lo <= lo and hi <= bound_hi:
        return HOLDS
    if hi < bound_lo or lo > bound_hi:
        return FAILS
    return INCONCLUSIVE


def worst_outcome(outcomes: Sequence[str]) -> str:
    """The outcome of several parts of one statement: missing before fails before
    inconclusive before holds (an empty list holds nothing: missing)."""
    for outcome in (MISSING, FAILS, INCONCLUSIVE, HOLDS):
        if outcome in outcomes:
            return outcome
    return MISSING


def abs_interval(lo: float, hi: float) -> tuple[float, float]:
    """The interval of |d| when d lies in [lo, hi] (NaN ends stay NaN)."""
    if np.isnan(lo) or np.isnan(hi):
        return float("nan"), float("nan")
    if lo <= 0.0 <= hi:
        return 0.0, max(-lo, hi)
    return min(abs(lo), abs(hi)), max(abs(lo), abs(hi))


def checked_interval(
    point: float, lo: float, hi: float, range_lo: float, range_hi: float
) -> tuple[float, float]:
    """The interval a decision reads for an estimate ``point`` with seed interval [lo, hi]
    whose inputs may be censored, allowing the range [range_lo, range_hi] (e.g. the slope
    range of :func:`slope_range` over the brackets). Without censoring (range_lo == range_hi
    or NaN): [lo, hi], stretched to hold the point (a range of 2 seeds may not). With it: the
    range pushed out by the seed half-widths on each side,
    [min(lo, range_lo - (point - lo)), max(hi, range_hi + (hi - point))], and the bare range
    when the point or its interval is unknown (every input censored).

    The one widening every censored drift gets: the report's and the claims' intervals, the
    check's (:func:`hptransfer.stats.verdicts.drift_rows`) and the local slopes'."""
    bracketed = not (np.isnan(range_lo) or np.isnan(range_hi)) and range_lo < range_hi
    if np.isfinite(point) and np.isfinite(lo) and np.isfinite(hi):
        lo, hi = min(lo, point), max(hi, point)
    if not np.isfinite(point):
        return (float(range_lo), float(range_hi)) if bracketed else (float("nan"), float("nan"))
    if not bracketed or not np.isfinite(lo):
        return (float(range_lo), float(range_hi)) if bracketed else (float(lo), float(hi))
    return (
        float(min(lo, range_lo - (point - lo))),
        float(max(hi, range_hi + (hi - point))),
    )


def worst_interval(
    values: np.ndarray, ci: float = 0.9, point: float | None = None
) -> tuple[float, float, float, int]:
    """(point, lo, hi, n) for the largest of M per-shape means, from paired per-seed values
    [S, M] (seed s's value at shape j; the worst shape is chosen after seeing the data).

    Each shape gets the Student-t interval of its S values at level 1 - (1 - ci) / M
    (Bonferroni over the M shapes), so all M intervals hold together with probability >= ci;
    then max_j mean_j lies in [max_j lo_j, max_j hi_j], which is returned: the selection of
    the worst shape is accounted for. A +inf value (the quantity diverged in that seed) makes
    its shape's upper end +inf and counts at its lower end as the largest finite value of that
    shape (all +inf: +inf). A seed that is NaN at every shape is left out (its base value is
    unknown), then a shape NaN in any kept seed (the values are paired); n = the seeds kept.
    Fewer than :data:`MIN_SEEDS_T` seeds: (point, NaN, NaN, n). ``point``: an estimate of
    the same worst value made elsewhere (the seed-mean curves'), returned instead of the
    largest mean, with the interval stretched to hold it."""
    v = np.asarray(values, float)
    if v.ndim != 2 or v.shape[1] == 0:
        return float("nan"), float("nan"), float("nan"), 0
    v = v[~np.isnan(v).all(axis=1)]
    v = v[:, ~np.isnan(v).any(axis=0)]
    n, m = v.shape
    if n == 0 or m == 0:
        return float("nan"), float("nan"), float("nan"), 0
    inf = np.isinf(v) & (v > 0)
    with np.errstate(invalid="ignore"):
        mean_max = float(np.max(np.where(inf.any(0), np.inf, v.mean(0))))
    if n < MIN_SEEDS_T:
        return mean_max if point is None else float(point), float("nan"), float("nan"), n
    finite_max = np.where(inf, -np.inf, v).max(0)
    capped = np.where(inf, finite_max[None, :], v)
    _, lo, hi, _ = seed_interval(capped.T, 1.0 - (1.0 - ci) / m)
    lo = np.where(inf.all(0), np.inf, lo)
    hi = np.where(inf.any(0), np.inf, hi)
    lo_w, hi_w = float(lo.max()), float(hi.max())
    if point is not None and not np.isnan(point):
        return float(point), min(lo_w, float(point)), max(hi_w, float(point)), n
    return mean_max, lo_w, hi_w, n
