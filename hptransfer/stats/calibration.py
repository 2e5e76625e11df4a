"""Does a nominal 90% interval cover the truth 90% of the time? Measured on planted loss curves.

A planted case (:class:`Case`) is a kind of data: the log2 lr grid (step, and where the optimum
sits between grid points), the shape of the loss around the optimum (curvature below and above
it, and how it changes with depth), a divergence cliff (where it sits above the optimum and how
it moves with depth), the noise on each loss value and the seed-to-seed spread of the optimum.
One draw of a case is a sweep over depths L in DEPTHS, seeds s = 1..S and the grid x. With
u = log2(L / L_0), c(d) = curv_lo for d < 0 and curv_hi for d >= 0,

    eta*_{s,L}   = ETA0 + offset step + drift u + seed_sd z_{s,L},
    loss_s,L(x)  = 1 + c(x - eta*_{s,L}) 2^(curv_depth u) (x - eta*_{s,L})^2 + noise e_{s,L,x},
    loss_s,L(x)  = +inf                      where x > ETA0 + offset step + drift u + cliff
                                                         + cliff_depth u     (diverged),

z, e ~ N(0, 1): a rate past the cliff diverges, exactly as a diverged replica enters a real sweep
(+inf final loss, :func:`hptransfer.stats.tables.final_losses`). The truth is what the estimators
claim to estimate: eta*_L = the argmin over x below the cliff of the expected (infinitely many
seeds) loss curve E_z loss_s,L(x) (computed by Gauss-Hermite quadrature on a fine grid; it
differs from the median seed optimum when the curve is asymmetric), and the drift = the OLS
slope of eta*_L on u.

Each draw runs the analysis's own estimators on the planted losses, as
:func:`hptransfer.stats.tables.optimal_lr` / :func:`hptransfer.stats.tables.drift` do: the seed-mean curve
(+inf at a rate where any seed diverged, :func:`hptransfer.stats.tables._seed_mean`), its refined
optimum, edge and bracket (:func:`hptransfer.stats.optimum.refine`), the per-seed optima (NaN where
a seed's bracket is open, :func:`hptransfer.stats.tables._per_seed_eta`), the per-cell interval
(:func:`hptransfer.stats.tables.eta_interval`), the drift with
its interval (:func:`hptransfer.stats.tables.drift_fit`) and the check's drift interval, widened to
the brackets' slope range when optima are censored
(:func:`hptransfer.stats.verdicts.drift_rows`). Coverage = the fraction of intervals that contain
the truth. The methods (:data:`METHODS`):

    eta_t          per-cell interval of :func:`hptransfer.stats.tables.eta_interval`, cells whose
                   seed-mean optimum is located (interior): the t-interval widened to cover a
                   local asymmetric fit's optimum
    eta_t_parabola the t-interval around the parabola vertex alone (the method before the
                   asymmetric term: it undercovers on asymmetric bowls and coarse grids)
    eta_t_censored the same t-interval at censored cells, read as if it were a point estimate
    eta_bracket    the bracket [x_{i-1}, x_{i+1}] at censored cells
    eta_printed    what the report prints per cell: the t-interval, or the bracket if censored
    drift_t        the drift's t-interval over per-seed slopes (the report's drift column)
    drift_check    the check's drift interval (drift_t widened to the bracket slope range
                   when optima are censored); the report prints it as the drift's interval
    drift_range    the bracket slope range [slope_min, slope_max] alone, series with a
                   censored optimum (the report's "drift with brackets" column)
    regret_t       the worst transfer regret over depths (the eta* tuned at the shallowest
                   depth, read on each depth's seed-mean curve, :func:`hptransfer.stats.tables.
                   _worst_regret`) with the interval the verdicts and the check read
                   (:func:`hptransfer.stats.verdicts.regret_interval`: each seed's own regret at
                   each depth, per-depth t-intervals at a Bonferroni level, the largest
                   ends); truth: the same regret of the true eta* on the expected curves,
                   max_L (E loss_L(eta*_2) - E loss_L(eta*_L)) / E loss_L(eta*_L); measured
                   on ``regret_draws`` draws
    regret_seed_t  the interval before it: a t-interval over each seed's own worst regret
                   around the point (kept as the reference it was replaced for)
    eta_boot, drift_boot   percentile bootstrap of the same per-seed values (not used: it
                   undercovers at 3-5 seeds; kept as the reference it was replaced for)

:func:`coverage_table` measures every case, seed count and method;
``python -m hptransfer.tools.coverage_doc --out PATH [--markdown docs/coverage.md]`` writes it, and
the committed table
(:data:`COVERAGE_FILE`, read by :func:`committed_coverage`) is what reports show.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from importlib import resources

import numpy as np
import pandas as pd

from hptransfer.stats.intervals import ols_rows, seed_interval, worst_interval
from hptransfer.stats.optimum import refine
from hptransfer.stats.rules import FAILS, TRANSFER_REGRET, cost_outcome
from hptransfer.stats.tables import (
    _per_seed_eta,
    _seed_mean,
    _worst_regret,
    drift_fit,
    eta_interval,
    series_seed_regret,
)
from hptransfer.stats.verdicts import drift_rows

DEPTHS = np.array([2, 4, 8, 16, 32])
U = np.log2(DEPTHS / DEPTHS[0])  # log2 depth relative to the shallowest: 0..4
GRID_LO, GRID_HI = -5.0, 2.0  # the quick suite's grid span for depth-muP and NFD
ETA0 = -0.5  # a grid point of both the 0.75- and the 1.5-octave grid
CI = 0.9
CALIBRATED = (0.85, 0.95)  # a nominal 90% interval is called calibrated inside this band
SEED_COUNTS = (3, 5)
COVERAGE_FILE = "data/coverage.csv"  # inside the package
FALSE_ALARM_FILE = "data/false_alarm.csv"  # inside the package
NULL_CASES = ("null_deep",)  # zero true regret: where the regret rule's false alarms are counted
METHODS = (
    "eta_t",
    "eta_t_parabola",
    "eta_t_censored",
    "eta_bracket",
    "eta_printed",
    "drift_t",
    "drift_check",
    "drift_range",
    "regret_t",
    "regret_seed_t",
    "eta_boot",
    "drift_boot",
)
COLUMNS = [
    "case",
    "n_seeds",
    "method",
    "coverage",
    "n_intervals",
    "n_draws",
    "median_width",
    "mean_error",
    "ci",
    "status",
]


@dataclass(frozen=True)
class Case:
    """One kind of planted data (module docstring). Octaves of log2 lr throughout; loss per
    octave^2 for curvatures; ``offset`` is a fraction of ``step``; cliff / cliff_depth: the
    divergence cliff's distance above the optimum at the shallowest depth and its change per
    doubling of depth (inf: no cliff); curv_depth: log2 of the curvature's factor per doubling."""

    name: str
    description: str
    step: float = 0.75
    offset: float = 0.0
    curv_lo: float = 0.1
    curv_hi: float = 0.1
    curv_depth: float = 0.0
    cliff: float = math.inf
    cliff_depth: float = 0.0
    drift: float = 0.1
    noise: float = 0.01
    seed_sd: float = 0.1

    @property
    def grid(self) -> np.ndarray:
        """The log2 lr grid: GRID_LO to GRID_HI in steps of ``step``."""
        return np.arange(GRID_LO, GRID_HI + 1e-9, self.step)

    @property
    def centre(self) -> np.ndarray:
        """The median seed's optimum per depth, ETA0 + offset step + drift u [depth]."""
        return ETA0 + self.offset * self.step + self.drift * U

    @property
    def cliff_at(self) -> np.ndarray:
        """log2 lr of the divergence cliff per depth (+inf: none) [depth]."""
        return self.centre + self.cliff + self.cliff_depth * U


CASES: tuple[Case, ...] = (
    Case(
        "easy",
        "symmetric bowl, equal curvature, optimum between grid points, no divergence",
        offset=0.5,
    ),
    Case(
        "asymmetric",
        "steeper on the high-rate side (curvature 0.05 below, 0.15 above the optimum)",
        offset=0.5,
        curv_lo=0.05,
        curv_hi=0.15,
    ),
    Case(
        "cliff_approaching",
        "divergence cliff 2.5 octaves above the optimum at L=2, 0.5 at L=32; eta* flat",
        offset=0.25,
        cliff=2.5,
        cliff_depth=-0.5,
        drift=0.0,
    ),
    Case(
        "censored",
        "the optimum next to divergence: cliff 0.4 octave above it at every depth",
        offset=0.25,
        cliff=0.4,
    ),
    Case(
        "sp_like",
        "1.5-octave grid, asymmetric (0.05 below, 0.15 above), drift -0.4, cliff 1.6 above",
        step=1.5,
        offset=0.25,
        curv_lo=0.05,
        curv_hi=0.15,
        cliff=1.6,
        drift=-0.4,
    ),
    Case(
        "null_deep",
        "zero drift with deep-like noise: seed sd 0.35 octave, asymmetric bowl, 0.5-octave grid",
        step=0.5,
        offset=0.25,
        curv_lo=0.05,
        curv_hi=0.15,
        drift=0.0,
        seed_sd=0.35,
    ),
    Case(
        "curvature_depth",
        "curvature falling 8-fold from L=2 to L=32 (flatter bowls at depth), symmetric",
        offset=0.5,
        curv_depth=-0.75,
    ),
)
CASE_BY_NAME = {c.name: c for c in CASES}


def _curvature(case: Case, d: np.ndarray, u: np.ndarray) -> np.ndarray:
    """c(d) 2^(curv_depth u): the curvature at distance d from the seed's optimum."""
    return np.where(d < 0, case.curv_lo, case.curv_hi) * 2.0 ** (case.curv_depth * u)


def expected_loss(case: Case, x: np.ndarray, n_nodes: int = 40) -> np.ndarray:
    """E_z loss_{s,L}(x) [depth, len(x)]: the noise-free loss averaged over the seed spread
    z ~ N(0, 1) by Gauss-Hermite quadrature; +inf past the cliff."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(n_nodes)
    weights = weights / weights.sum()
    eta = case.centre[:, None, None] + case.seed_sd * nodes[None, :, None]  # [L, node, 1]
    d = x[None, None, :] - eta
    bowl = 1.0 + _curvature(case, d, U[:, None, None]) * d * d
    mean = (weights[None, :, None] * bowl).sum(1)
    return np.where(x[None, :] > case.cliff_at[:, None], np.inf, mean)


def truth(case: Case, resolution: float = 1e-3) -> tuple[np.ndarray, float]:
    """(true eta*_L [depth], true drift): the argmin of :func:`expected_loss` below the cliff,
    found on a grid of ``resolution`` octaves, and its OLS slope on u."""
    x = np.arange(GRID_LO - 2.0, GRID_HI + 2.0, resolution)
    eta = x[np.argmin(expected_loss(case, x), axis=-1)]
    return eta, float(ols_rows(U, eta))


def plant(case: Case, rng: np.random.Generator, n_draws: int, n_seeds: int) -> np.ndarray:
    """Final losses [draw, seed, depth, lr] of ``n_draws`` planted sweeps (module docstring);
    +inf where a rate diverged."""
    eta = case.centre[None, None, :] + case.seed_sd * rng.standard_normal(
        (n_draws, n_seeds, DEPTHS.size)
    )
    d = case.grid - eta[..., None]
    loss = 1.0 + _curvature(case, d, U[:, None]) * d * d
    loss = loss + case.noise * rng.standard_normal(loss.shape)
    return np.where(case.grid > case.cliff_at[:, None], np.inf, loss)


@dataclass(frozen=True)
class Estimates:
    """The analysis's estimates on a batch of planted sweeps: per cell [draw, depth] and per
    draw [draw] (module docstring)."""

    eta: np.ndarray  # seed-mean optimum (the report's point)
    lo: np.ndarray  # its interval (tables.eta_interval; range at 2 seeds)
    hi: np.ndarray
    parabola_lo: np.ndarray  # the seed t-interval alone, without the asymmetric-fit term
    parabola_hi: np.ndarray
    censored: np.ndarray  # edge != 0 and not all diverged
    bracket_lo: np.ndarray
    bracket_hi: np.ndarray
    per_seed: np.ndarray  # [draw, seed, depth]
    slope: np.ndarray  # [draw]
    slope_lo: np.ndarray
    slope_hi: np.ndarray
    check_lo: np.ndarray  # the check's drift interval (widened by brackets)
    check_hi: np.ndarray
    slope_min: np.ndarray  # the bracket slope range
    slope_max: np.ndarray


def estimate(case: Case, loss: np.ndarray, ci: float = CI) -> Estimates:
    """Run the estimators of :func:`hptransfer.stats.tables.optimal_lr` and
    :func:`hptransfer.stats.tables.drift` (and the check's drift interval) on ``loss`` [draw, seed,
    depth, lr] from :func:`plant`."""
    grid = case.grid
    per_seed = _per_seed_eta(grid, loss)  # [draw, seed, depth]
    curve = _seed_mean(loss, axis=1)  # [draw, depth, lr]
    mean = refine(grid, curve)
    seed_eta = np.moveaxis(per_seed, 1, -1)  # [draw, depth, seed]
    lo, hi, _ = eta_interval(grid, curve, seed_eta, ci)
    _, p_lo, p_hi, _ = seed_interval(seed_eta, ci, centre=mean.log2_eta)
    censored = (mean.edge != 0) & (mean.cause != 3)
    fits = []
    for d in range(loss.shape[0]):
        fit = drift_fit(
            U,
            mean.log2_eta[d],
            censored[d],
            mean.bracket_lo[d],
            mean.bracket_hi[d],
            per_seed[d],
            ci,
        )
        (check,) = drift_rows({}, "drift", None, fit)
        fits.append(
            (fit["slope"], fit["slope_lo"], fit["slope_hi"], check["lo"], check["hi"],
             fit["slope_min"], fit["slope_max"])
        )  # fmt: skip
    columns = (np.array(v, float) for v in zip(*fits, strict=True))
    return Estimates(
        mean.log2_eta,
        lo,
        hi,
        p_lo,
        p_hi,
        censored,
        mean.bracket_lo,
        mean.bracket_hi,
        per_seed,
        *columns,
    )


def _bootstrap(values: np.ndarray, ci: float, rng: np.random.Generator, n_boot: int = 200):
    """Percentile bootstrap of the mean over the last axis (resampling the S values; NaN left
    out of each resample's mean)."""
    s = values.shape[-1]
    idx = rng.integers(0, s, size=(n_boot, s))
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample of NaN only: NaN
        means = np.nanmean(values[..., idx], -1)  # [..., n_boot]
        q = [(1 - ci) / 2, (1 + ci) / 2]
        return np.nanquantile(means, q[0], axis=-1), np.nanquantile(means, q[1], axis=-1)


def _row(method: str, lo, hi, point, true, select=None) -> dict:
    """Coverage of the intervals [lo, hi] of the truth over the selected entries (all finite
    intervals when ``select`` is None; an interval with a NaN end is not counted)."""
    lo, hi, point = (np.asarray(v, float) for v in (lo, hi, point))
    true = np.broadcast_to(np.asarray(true, float), lo.shape)
    ok = ~(np.isnan(lo) | np.isnan(hi))
    if select is not None:
        ok &= select
    n = int(ok.sum())
    hit = (lo <= true) & (true <= hi)
    with np.errstate(invalid="ignore"):
        width = np.where(ok, hi - lo, np.nan)
        err = (point - true)[ok & np.isfinite(point)]  # a diverged regret (+inf) left out
    return dict(
        method=method,
        coverage=float(hit[ok].mean()) if n else math.nan,
        n_intervals=n,
        median_width=float(np.median(width[ok])) if n else math.nan,
        mean_error=float(np.mean(err)) if err.size else math.nan,
    )


def true_regret(case: Case) -> float:
    """The worst regret over depths of the true eta* of the shallowest depth, on the expected
    curves: max_L (E loss_L(eta*_base) - E loss_L(eta*_L)) / E loss_L(eta*_L)."""
    eta, _ = truth(case)
    at_base = expected_loss(case, np.array([eta[0]]))[:, 0]
    best = np.array([expected_loss(case, np.array([e]))[j, 0] for j, e in enumerate(eta)])
    return float(np.max((at_base - best) / best))


def seed_shape_regrets(case: Case, loss: np.ndarray) -> np.ndarray:
    """Each seed's regret at every non-base depth on its own curves with its own shallowest
    optimum [draw, seed, depth - 1] (:func:`hptransfer.stats.tables.series_seed_regret`, as
    :func:`hptransfer.stats.tables.seed_shape_regret` computes it on a sweep)."""
    grid = case.grid
    out = np.full(loss.shape[:2] + (loss.shape[2] - 1,), np.nan)
    for d in range(loss.shape[0]):
        cs = [(grid, loss[d, :, j]) for j in range(loss.shape[2])]
        for seed, j, regret in series_seed_regret(cs):
            out[d, seed, j - 1] = regret
    return out


def regret_estimates(
    case: Case, loss: np.ndarray, ci: float = CI, shapes: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(point, lo, hi, seed_lo, seed_hi) [draw] of the worst regret on ``loss`` [draw, seed,
    depth, lr]: the point on the seed-mean curves at their optima (as
    :func:`hptransfer.stats.tables.transfer_regret` and the scorecard's max over shapes); [lo, hi]
    the interval the verdicts read (:func:`hptransfer.stats.verdicts.regret_interval`: paired
    per-seed, per-shape regrets, Bonferroni over the shapes, stretched to hold the point);
    [seed_lo, seed_hi] the interval before it (a t-interval over each seed's own worst regret
    around the point). ``shapes``: :func:`seed_shape_regrets` of ``loss`` when the caller has
    it already (it is the costly part)."""
    grid = case.grid
    curve = _seed_mean(loss, axis=1)  # [draw, depth, lr]
    eta = refine(grid, curve).log2_eta
    if shapes is None:
        shapes = seed_shape_regrets(case, loss)  # [draw, seed, depth - 1]
    point = np.array(
        [_worst_regret([(grid, c[None]) for c in curve[d]], eta[d], 0)
         for d in range(loss.shape[0])], float
    )  # fmt: skip
    lo, hi = np.full(len(point), np.nan), np.full(len(point), np.nan)
    for d in range(len(point)):
        _, lo[d], hi[d], _ = worst_interval(shapes[d], ci, point=point[d])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a seed without any regret: NaN
        worst = np.where(np.isnan(shapes).all(-1), np.nan, np.nanmax(np.nan_to_num(
            shapes, nan=-np.inf), axis=-1))  # fmt: skip
    worst = np.maximum(worst, 0.0)  # the base shape's own regret is 0
    _, seed_lo, seed_hi, _ = seed_interval(worst, ci, centre=point)
    return point, lo, hi, seed_lo, seed_hi


def regret_false_alarm(
    case: Case, n_seeds: int, n_draws: int = 300, ci: float = CI, seed: int = 0
) -> dict[str, float]:
    """How often the cost part of transfer is declared failed (the base-tuned rate costs >=
    TRANSFER_REGRET) on planted sweeps of ``case`` whose true regret is below it (a
    zero-drift case: 0), by the rule before ("every seed's own worst regret >= 2%") and by
    the interval rule (:func:`hptransfer.stats.rules.cost_outcome`: the interval
    of :func:`regret_estimates` wholly above 2%): dict(case, n_seeds, n_draws, true_regret,
    old_rule, interval_rule)."""
    rng = np.random.default_rng(seed)
    loss = plant(case, rng, n_draws, n_seeds)
    shapes = seed_shape_regrets(case, loss)
    _, lo, hi, _, _ = regret_estimates(case, loss, ci, shapes=shapes)
    with np.errstate(invalid="ignore"):
        every_seed = (np.nan_to_num(shapes, nan=-np.inf).max(-1) >= TRANSFER_REGRET).all(-1)
    fails = np.array([cost_outcome(a, b) == FAILS for a, b in zip(lo, hi, strict=True)])
    return dict(case=case.name, n_seeds=n_seeds, n_draws=n_draws, true_regret=true_regret(case),
                old_rule=float(every_seed.mean()), interval_rule=float(fails.mean()))  # fmt: skip


def status(coverage: float, band: tuple[float, float] = CALIBRATED) -> str:
    """ "calibrated" inside ``band``, "undercovers" below, "overcovers" above, "not measured"
    without intervals. Only "calibrated" is a calibrated interval for that kind of data."""
    if math.isnan(coverage):
        return "not measured"
    return "undercovers" if coverage < band[0] else "overcovers" if coverage > band[1] else (
        "calibrated"
    )  # fmt: skip


def coverage(
    case: Case,
    n_seeds: int,
    *,
    n_draws: int = 400,
    ci: float = CI,
    seed: int = 0,
    regret_draws: int | None = None,
) -> pd.DataFrame:
    """Coverage of every method (:data:`METHODS`) on ``n_draws`` planted sweeps of ``case``
    with ``n_seeds`` seeds (regret on the first ``regret_draws`` of them, default all; it is
    the slow one): one row per method (columns :data:`COLUMNS`, n_draws per row)."""
    rng = np.random.default_rng(seed)
    loss = plant(case, rng, n_draws, n_seeds)
    e = estimate(case, loss, ci)
    eta_true, drift_true = truth(case)
    interior = ~e.censored
    shown_lo = np.where(e.censored, e.bracket_lo, e.lo)
    shown_hi = np.where(e.censored, e.bracket_hi, e.hi)
    values = np.moveaxis(e.per_seed, 1, -1)
    b_lo, b_hi = _bootstrap(values, ci, rng)
    slopes = ols_rows(U, e.per_seed)  # [draw, seed]
    d_lo, d_hi = _bootstrap(slopes, ci, rng)
    n_regret = n_draws if regret_draws is None else min(regret_draws, n_draws)
    r_point, r_lo, r_hi, rs_lo, rs_hi = regret_estimates(case, loss[:n_regret], ci)
    rows = [
        _row("eta_t", e.lo, e.hi, e.eta, eta_true, interior),
        _row("eta_t_parabola", e.parabola_lo, e.parabola_hi, e.eta, eta_true, interior),
        _row("eta_t_censored", e.lo, e.hi, e.eta, eta_true, e.censored),
        _row("eta_bracket", e.bracket_lo, e.bracket_hi, e.eta, eta_true, e.censored),
        _row("eta_printed", shown_lo, shown_hi, e.eta, eta_true),
        _row("drift_t", e.slope_lo, e.slope_hi, e.slope, drift_true),
        _row("drift_check", e.check_lo, e.check_hi, e.slope, drift_true),
        _row("drift_range", e.slope_min, e.slope_max, e.slope, drift_true, e.censored.any(-1)),
        _row("regret_t", r_lo, r_hi, r_point, true_regret(case)),
        _row("regret_seed_t", rs_lo, rs_hi, r_point, true_regret(case)),
        _row("eta_boot", b_lo, b_hi, e.eta, eta_true, interior),
        _row("drift_boot", d_lo, d_hi, e.slope, drift_true),
    ]
    frame = pd.DataFrame(rows)
    frame.insert(0, "case", case.name)
    frame.insert(1, "n_seeds", n_seeds)
    frame["n_draws"] = np.where(frame["method"].str.startswith("regret"), n_regret, n_draws)
    frame["ci"] = ci
    frame["status"] = [status(c) for c in frame["coverage"]]
    return frame[COLUMNS]


def coverage_table(
    cases: tuple[Case, ...] = CASES,
    seed_counts: tuple[int, ...] = SEED_COUNTS,
    n_draws: int = 400,
    ci: float = CI,
    regret_draws: int | None = None,
) -> pd.DataFrame:
    """:func:`coverage` of every case and seed count: one row per (case, n_seeds, method)."""
    frames = [
        coverage(case, n, n_draws=n_draws, ci=ci, seed=1000 * i + n, regret_draws=regret_draws)
        for i, case in enumerate(cases)
        for n in seed_counts
    ]
    return pd.concat(frames, ignore_index=True)


def cases_table(cases: tuple[Case, ...] = CASES) -> pd.DataFrame:
    """The planted cases as a table: one row per case, its fields and its true drift."""
    return pd.DataFrame([asdict(c) | {"true_drift": truth(c)[1]} for c in cases])


def committed_coverage() -> pd.DataFrame:
    """The coverage table committed with the package (written by ``python -m
    hptransfer.tools.coverage_doc --out hptransfer/data/coverage.csv``)."""
    with resources.files("hptransfer").joinpath(COVERAGE_FILE).open() as f:
        return pd.read_csv(f)


def false_alarm_table(
    n_draws: int = 1000, seed_counts: tuple[int, ...] = SEED_COUNTS, ci: float = CI
) -> pd.DataFrame:
    """:func:`regret_false_alarm` of every case in NULL_CASES and seed count: one row each."""
    return pd.DataFrame(
        [
            regret_false_alarm(CASE_BY_NAME[name], n, n_draws, ci, seed=7000 + 10 * i + n)
            for i, name in enumerate(NULL_CASES)
            for n in seed_counts
        ]
    )


def committed_false_alarm() -> pd.DataFrame:
    """The false-alarm table committed with the package (written by ``python -m
    hptransfer.tools.coverage_doc``)."""
    with resources.files("hptransfer").joinpath(FALSE_ALARM_FILE).open() as f:
        return pd.read_csv(f)
