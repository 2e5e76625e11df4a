"""eta* of a loss curve over a log2 learning-rate grid: parabola refinement and brackets.

Pure numpy, vectorised over any leading axes (groups, seeds, evaluation steps). For a curve y
over the increasing grid x_1 < ... < x_n with argmin i (non-finite = diverged = +inf):

- interior argmin with finite neighbours: the vertex of the parabola through x_{i-1..i+1},
  clamped to [x_{i-1}, x_{i+1}];
- otherwise eta* is not located by the grid. If the curve is unimodal in log2 lr (diverged
  rates count as +inf), the optimum still lies in the *bracket* [x_{i-1}, x_{i+1}], where a
  missing neighbour at the grid edge opens that side: (-inf, x_2] when i = 1, [x_{n-1}, +inf)
  when i = n (the optimum can sit anywhere up to the next grid point, on either side of x_i).

The bracket is reported for every curve; it is the only statement about eta* when ``edge``
is set. A curve with no finite point has no optimum (NaN, bracket (NaN, NaN)).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

EDGE = {-1: "low", 0: None, 1: "high"}
CAUSE = {0: None, 1: "grid", 2: "divergence", 3: "all_diverged"}


class CurveError(ValueError):
    """A loss curve is malformed (shapes differ, duplicate learning rates)."""


class Optimum(NamedTuple):
    """eta* of one loss curve. edge: "low"/"high"/None; edge_cause: "grid", "divergence",
    "all_diverged" or None. With an edge, log2_eta is the best grid point and the optimum is only
    known to lie in [bracket_lo, bracket_hi] (module docstring)."""

    log2_eta: float
    loss: float
    edge: str | None
    edge_cause: str | None
    bracket_lo: float
    bracket_hi: float


class Refined(NamedTuple):
    """Arrays over the leading axes of a curve batch (see :func:`refine`)."""

    log2_eta: np.ndarray
    loss: np.ndarray
    edge: np.ndarray  # -1 low, 0 interior, +1 high
    cause: np.ndarray  # 0 none, 1 grid, 2 divergence, 3 all diverged
    argmin: np.ndarray
    bracket_lo: np.ndarray
    bracket_hi: np.ndarray


def quadratic(x0, x1, x2, y0, y1, y2, at):
    """The parabola through (x0, y0), (x1, y1), (x2, y2) evaluated at ``at`` (Lagrange form)."""
    return (
        y0 * (at - x1) * (at - x2) / ((x0 - x1) * (x0 - x2))
        + y1 * (at - x0) * (at - x2) / ((x1 - x0) * (x1 - x2))
        + y2 * (at - x0) * (at - x1) / ((x2 - x0) * (x2 - x1))
    )


def refine(x: np.ndarray, y: np.ndarray) -> Refined:
    """Vectorised eta* over the leading axes of y [..., n] on the increasing grid x [n].

    i = argmin y (non-finite = +inf). Interior with finite neighbours: the parabola vertex

        x_v = x_i - 1/2 [(x_i-x_{i-1})^2 (y_i-y_{i+1}) - (x_i-x_{i+1})^2 (y_i-y_{i-1})]
                      / [(x_i-x_{i-1})   (y_i-y_{i+1}) - (x_i-x_{i+1})   (y_i-y_{i-1})],

    clamped to [x_{i-1}, x_{i+1}], and its value there. Otherwise x_i itself, flagged: edge -1
    (low) when i = 0 or the lower neighbour is non-finite, +1 (high) when i = n-1 or the upper
    one is; cause 1 = grid edge, 2 = next to a non-finite point, 3 = no finite point at all.
    bracket_lo / bracket_hi = x_{i-1} / x_{i+1}, -inf / +inf past the grid's ends.
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
            quadratic(
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
    b_lo = np.where(none, np.nan, np.where(at_low, -np.inf, x0))
    b_hi = np.where(none, np.nan, np.where(at_high, np.inf, x2))
    return Refined(log2_eta, value, edge, cause, i, b_lo, b_hi)


def sorted_curve(log2_lr, loss) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) sorted by x; raises CurveError on mismatched shapes or duplicate rates."""
    x = np.asarray(log2_lr, float)
    y = np.asarray(loss, float)
    if x.ndim != 1 or x.shape != y.shape or x.size == 0:
        raise CurveError(f"a loss curve needs matching 1-d arrays; got {x.shape} and {y.shape}")
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if np.any(np.diff(x) == 0):
        raise CurveError("duplicate learning rates in one loss curve: seed-average first")
    return x, y


def refine_optimum(log2_lr: Sequence[float], loss: Sequence[float]) -> Optimum:
    """eta* of one loss curve over a log2 learning-rate grid (see :func:`refine`).

    Non-finite losses (diverged) count as worse than any finite loss. An argmin at the grid
    edge or next to a non-finite point is returned as the grid point with ``edge`` set, and
    the bracket that must contain the optimum of a unimodal curve.
    """
    x, y = sorted_curve(log2_lr, loss)
    r = refine(x, y)
    return Optimum(
        float(r.log2_eta),
        float(r.loss),
        EDGE[int(r.edge)],
        CAUSE[int(r.cause)],
        float(r.bracket_lo),
        float(r.bracket_hi),
    )


def curve_value(
    log2_lr: Sequence[float], loss: Sequence[float], at: float, refined: Refined | None = None
) -> float:
    """The loss curve read at log2 lr = ``at``, on the same curve that defines eta*.

    Inside the bracket [x_{i-1}, x_{i+1}] of an interior argmin: the refining parabola (so the
    value at eta* is the refined best loss and nothing on the curve lies below it); elsewhere:
    linear interpolation in log2 lr between grid points, +inf if either end is non-finite.
    NaN outside the grid or when ``at`` is NaN. ``refined``: :func:`refine` of this very curve
    (sorted), when the caller has it already (it is the costly part).
    """
    x, y = sorted_curve(log2_lr, loss)
    if not np.isfinite(at) or at < x[0] - 1e-12 or at > x[-1] + 1e-12:
        return math.nan
    r = refine(x, y) if refined is None else refined
    i = int(r.argmin)
    if r.edge == 0 and x[i - 1] <= at <= x[i + 1]:
        y0, y1, y2 = y[i - 1], y[i], y[i + 1]
        return float(quadratic(x[i - 1], x[i], x[i + 1], y0, y1, y2, np.clip(at, x[0], x[-1])))
    j = int(np.clip(np.searchsorted(x, at, side="right") - 1, 0, x.size - 1))
    if x[j] == at or j == x.size - 1:
        return float(y[j]) if np.isfinite(y[j]) else math.inf
    if not (np.isfinite(y[j]) and np.isfinite(y[j + 1])):
        return math.inf
    t = (at - x[j]) / (x[j + 1] - x[j])
    return float(y[j] + t * (y[j + 1] - y[j]))


def asymmetric_vertex(x: np.ndarray, y: np.ndarray, n_candidates: int = 121) -> np.ndarray:
    """The optimum of a local *asymmetric* bowl fit, vectorised over the leading axes of y.

    Around the argmin i of y [..., n] on the increasing grid x [n] (non-finite = +inf), the
    finite points among x_{i-2..i+2} are fitted by least squares with

        y ~ a + c_lo (x - m)^2 [x < m] + c_hi (x - m)^2 [x >= m],     c_lo, c_hi > 0,

    profiling m over ``n_candidates`` values spanning the bracket [x_{i-1}, x_{i+1}] (for each
    m the fit is linear in a, c_lo, c_hi). Returns the m with the least residual: the optimum
    of a bowl that may be steeper on one side, which the parabola vertex of :func:`refine`
    (exact for a symmetric quadratic) misses by up to a sizeable part of a grid step. NaN
    where the optimum is censored (edge != 0), fewer than 4 of the 5 points are finite, or no
    m gives both curvatures positive. Used only to widen an interval
    (:func:`hptransfer.stats.tables.eta_interval`), never as the point estimate.
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    n = x.size
    r = refine(x, y)
    yy = np.where(np.isfinite(y), y, np.inf)
    j = r.argmin[..., None] + np.arange(-2, 3)  # [..., 5]
    inside = (j >= 0) & (j < n)
    jc = np.clip(j, 0, n - 1)
    ys = np.take_along_axis(yy, jc, -1)
    ok = inside & np.isfinite(ys)
    usable = (r.edge == 0) & (ok.sum(-1) >= 4)
    t = np.linspace(0.0, 1.0, n_candidates)
    b_lo = np.where(usable, r.bracket_lo, 0.0)[..., None]
    b_hi = np.where(usable, r.bracket_hi, 1.0)[..., None]
    m = b_lo + t * (b_hi - b_lo)  # [..., M]
    d = x[jc][..., None, :] - m[..., :, None]  # [..., M, 5]
    w = ok[..., None, :].astype(float)
    design = np.stack(
        [np.ones_like(d), np.where(d < 0, d * d, 0.0), np.where(d >= 0, d * d, 0.0)], -1
    ) * w[..., None]  # fmt: skip
    target = np.where(ok, ys, 0.0)[..., None, :] * w
    gram = np.einsum("...ka,...kb->...ab", design, design) + 1e-12 * np.eye(3)
    beta = np.linalg.solve(gram, np.einsum("...ka,...k->...a", design, target)[..., None])[..., 0]
    resid = target - np.einsum("...ka,...a->...k", design, beta)
    rss = np.where((beta[..., 1] > 0) & (beta[..., 2] > 0), (resid * resid).sum(-1), np.inf)
    k = np.argmin(rss, -1)[..., None]
    found = np.isfinite(np.take_along_axis(rss, k, -1)[..., 0])
    return np.where(usable & found, np.take_along_axis(m, k, -1)[..., 0], np.nan)
