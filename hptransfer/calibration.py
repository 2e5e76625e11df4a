"""Does a nominal 90% interval cover the truth 90% of the time? Measured on planted loss curves.

Planted sweep (one draw): depths L in DEPTHS, seeds s = 1..S, the log2 lr grid GRID. Seed s at
depth L has its own optimum and a noisy bowl,

    eta*_{s,L} = ETA0 + offset + drift log2(L / L_0) + seed_sd z_{s,L},
    loss_s,L(x) = 1 + CURVATURE (x - eta*_{s,L})^2 + noise e_{s,L,x},     z, e ~ N(0, 1),

so the truth is eta*_L = ETA0 + offset + drift log2(L / L_0) per depth and ``drift`` for the
slope; ``offset`` (a fraction of a grid step) moves the optimum between grid points. Each draw
runs the analysis's own estimators: per-seed optima (:func:`hptransfer.optimum.refine`, as
:func:`hptransfer.tables.optimal_lr` does), the per-group interval
(:func:`hptransfer.intervals.seed_interval`) and the drift with its interval
(:func:`hptransfer.tables.drift_fit`). Coverage = the fraction of draws whose interval
contains the truth. For comparison the percentile bootstrap over seeds of the same per-seed
values is measured too (the method this package used before: it undercovers at 3-5 seeds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hptransfer.intervals import ols_rows, seed_interval
from hptransfer.optimum import refine
from hptransfer.tables import drift_fit

DEPTHS = np.array([2, 4, 8, 16, 32])
GRID = np.arange(-5.0, 2.0 + 1e-9, 0.75)  # the quick suite's grid for depth-muP and NFD
ETA0 = -1.0
CURVATURE = 0.1  # loss per octave^2 around the optimum (the quick suite's bowls: 0.05-0.2)
SETTINGS = (  # (noise on each loss value, seed-to-seed sd of eta* in octaves)
    (0.0, 0.05),
    (0.01, 0.1),
    (0.05, 0.2),
)
OFFSETS = (0.0, 0.375)  # 0 and half a grid step


@dataclass(frozen=True)
class Coverage:
    """Measured coverage of the nominal ``ci`` intervals over ``n_draws`` planted sweeps."""

    n_seeds: int
    noise: float
    seed_sd: float
    offset: float
    n_draws: int
    eta_t: float  # per-depth eta* interval (t, or range at 2 seeds), all depths pooled
    drift_t: float  # drift interval
    eta_boot: float  # percentile bootstrap of the same per-seed values
    drift_boot: float
    drift_width: float  # median width of the drift interval (octaves per doubling)


def plant(
    rng: np.random.Generator,
    n_draws: int,
    n_seeds: int,
    *,
    noise: float,
    seed_sd: float,
    offset: float,
    drift: float = 0.1,
) -> tuple[np.ndarray, np.ndarray]:
    """(loss [draw, seed, depth, lr], true log2 eta* [depth]) of the module docstring."""
    x = np.log2(DEPTHS / DEPTHS[0])
    truth = ETA0 + offset + drift * x
    eta = truth[None, None, :] + seed_sd * rng.standard_normal((n_draws, n_seeds, DEPTHS.size))
    loss = 1.0 + CURVATURE * (GRID - eta[..., None]) ** 2
    loss = loss + noise * rng.standard_normal(loss.shape)
    return loss, truth


def _bootstrap(values: np.ndarray, ci: float, rng: np.random.Generator, n_boot: int = 200):
    """Percentile bootstrap of the mean over the last axis (resampling the S values)."""
    s = values.shape[-1]
    idx = rng.integers(0, s, size=(n_boot, s))
    means = values[..., idx].mean(-1)  # [..., n_boot]
    q = [(1 - ci) / 2, (1 + ci) / 2]
    return np.quantile(means, q[0], axis=-1), np.quantile(means, q[1], axis=-1)


def coverage(
    n_seeds: int,
    noise: float,
    seed_sd: float,
    offset: float,
    *,
    n_draws: int = 300,
    ci: float = 0.9,
    drift: float = 0.1,
    seed: int = 0,
) -> Coverage:
    """Coverage of the eta* and drift intervals on ``n_draws`` planted sweeps (docstring)."""
    rng = np.random.default_rng(seed)
    loss, truth = plant(
        rng, n_draws, n_seeds, noise=noise, seed_sd=seed_sd, offset=offset, drift=drift
    )
    r = refine(GRID, loss)  # per seed, as optimal_lr does: [draw, seed, depth]
    per_seed = np.where(np.isfinite(r.bracket_lo) & np.isfinite(r.bracket_hi), r.log2_eta, np.nan)
    values = np.moveaxis(per_seed, 1, -1)  # [draw, depth, seed]
    mean_curve = refine(GRID, loss.mean(1))  # the seed-averaged curve: [draw, depth]
    _, lo, hi, _ = seed_interval(values, ci, centre=mean_curve.log2_eta)
    eta_t = np.mean((lo <= truth) & (truth <= hi))
    b_lo, b_hi = _bootstrap(values, ci, rng)
    eta_boot = np.mean((b_lo <= truth) & (truth <= b_hi))

    x = np.log2(DEPTHS / DEPTHS[0])
    hits, widths, slopes = [], [], []
    for d in range(n_draws):
        fit = drift_fit(
            x,
            mean_curve.log2_eta[d],
            mean_curve.edge[d] != 0,
            mean_curve.bracket_lo[d],
            mean_curve.bracket_hi[d],
            per_seed[d],
            ci,
        )
        hits.append(fit["slope_lo"] <= drift <= fit["slope_hi"])
        widths.append(fit["slope_hi"] - fit["slope_lo"])
        slopes.append(ols_rows(x, per_seed[d]))
    s_lo, s_hi = _bootstrap(np.array(slopes), ci, rng)
    return Coverage(
        n_seeds=n_seeds,
        noise=noise,
        seed_sd=seed_sd,
        offset=offset,
        n_draws=n_draws,
        eta_t=float(eta_t),
        drift_t=float(np.mean(hits)),
        eta_boot=float(eta_boot),
        drift_boot=float(np.mean((s_lo <= drift) & (drift <= s_hi))),
        drift_width=float(np.nanmedian(widths)),
    )


def coverage_table(
    seed_counts: tuple[int, ...] = (2, 3, 5), n_draws: int = 300, ci: float = 0.9
) -> pd.DataFrame:
    """:func:`coverage` for every setting, offset and seed count: one row each."""
    rows = [
        coverage(n, noise, sd, off, n_draws=n_draws, ci=ci, seed=i)
        for i, (n, (noise, sd), off) in enumerate(
            (n, s, o) for n in seed_counts for s in SETTINGS for o in OFFSETS
        )
    ]
    return pd.DataFrame([r.__dict__ for r in rows])


def coverage_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per seed count: the lowest and highest coverage over settings, per method and quantity."""
    cols = ["eta_t", "drift_t", "eta_boot", "drift_boot"]
    return table.groupby("n_seeds")[cols].agg(["min", "max"])
