"""Per-seed samples of the check's metrics, and the intervals the check decides on.

A metric of the regression check (:func:`hptransfer.stats.verdicts.suite_metrics`) is estimated once
from the seed-averaged loss curves. The same quantity computed on every seed's own data gives
S samples v_1..v_S, from which the metric gets its interval (:func:`with_intervals`) and the
baseline comparison its two-sample test (:mod:`hptransfer.stats.baseline_test`):

    drift_<A>       the seed's OLS slope of its own log2 eta* on log2 A, over the shapes the
                    seed-mean slope uses (:func:`hptransfer.stats.tables.seed_slopes`)
    abs_drift_<A>   |drift_<A>| of the seed
    spread_<A>      max - min of the seed's own log2 eta* over those shapes
    regret_<A>      the seed's worst transfer regret on its own curves
                    (:func:`hptransfer.stats.tables.seed_regret`)
    h1_*_fixed_lr   the seed's log-log movement slope at the fixed rate
                    (:func:`hptransfer.stats.tables.fixed_lr_seed_slopes`)

with A = depth (at the held width) or width (at the held depth), as in the scorecard. The
interval of a metric is :func:`hptransfer.stats.intervals.seed_interval` of its samples centred on
the point value; a drift whose series has censored optima is widened to also cover the slope
range its brackets allow, [drift_min, drift_max], each end pushed out by the same half-width,
because the seed-mean slope leaves open-bracket shapes out and the brackets are the only
statement about them. Samples are paired by seed across schemes (replicas of one seed share
their initial draw and their batches), which :func:`paired_samples` uses for relative bounds.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hptransfer.stats.columns import METRIC_KEYS
from hptransfer.stats.intervals import (
    abs_interval,
    checked_interval,
    interval_method,
    seed_interval,
)
from hptransfer.stats.tables import (
    AXES,
    OTHER_AXIS,
    fixed_lr_seed_slopes,
    held_value,
    movement_columns,
    seed_regret,
    seed_slopes,
)

if TYPE_CHECKING:
    from hptransfer.stats.analysis import Analysis

SAMPLE_COLUMNS = [*METRIC_KEYS, "metric", "seed", "value"]


def _drift_samples(a: Analysis, axis: str, held: int) -> list[dict]:
    """drift_, abs_drift_ and spread_<axis> of every seed, per series at the held value."""
    other = OTHER_AXIS[axis]
    opt = a.optima[a.optima[other] == held]
    seeds = a.seeds[a.seeds[other] == held]
    rows = []
    for key, s in opt.groupby(["family", *METRIC_KEYS], sort=True):
        if s[axis].nunique() < 2:
            continue
        s = s.sort_values(axis)
        x = np.log2(s[axis].to_numpy(float))
        usable = (
            np.isfinite(s["bracket_lo"].to_numpy(float))
            & np.isfinite(s["bracket_hi"].to_numpy(float))
            & np.isfinite(s["log2_eta_star"].to_numpy(float))
        )
        sel = seeds
        for k, v in zip(["family", *METRIC_KEYS], key, strict=True):
            sel = sel[sel[k] == v]
        wide = sel.pivot_table(
            index="seed", columns=axis, values="log2_eta_star", dropna=False
        ).reindex(columns=s[axis])
        seed_eta = wide.to_numpy(float)
        slopes = seed_slopes(x, usable, seed_eta)
        kept = np.where(usable[None, :], seed_eta, np.nan)
        # the point spread spans every shape with a finite eta*: a seed's spread is comparable
        # only when those are all usable (no optimum at a grid edge) and at least two
        same = bool((usable == np.isfinite(s["log2_eta_star"].to_numpy(float))).all())
        complete = np.isfinite(kept[:, usable]).all(-1) & (usable.sum() >= 2) & same
        with np.errstate(invalid="ignore"):
            spread = np.where(
                complete, np.nanmax(kept, axis=-1, initial=-np.inf) - np.nanmin(
                    kept, axis=-1, initial=np.inf), np.nan
            )  # fmt: skip
        base = dict(zip(METRIC_KEYS, key[1:], strict=True))
        for seed, slope, sp in zip(wide.index, slopes, spread, strict=True):
            rows.append(base | dict(metric=f"drift_{axis}", seed=int(seed), value=float(slope)))
            rows.append(base | dict(metric=f"abs_drift_{axis}", seed=int(seed),
                                    value=abs(float(slope))))  # fmt: skip
            rows.append(base | dict(metric=f"spread_{axis}", seed=int(seed), value=float(sp)))
    return rows


def _regret_samples(a: Analysis, axis: str, held: int) -> list[dict]:
    """regret_<axis> of every seed (its worst regret on its own curves)."""
    other = OTHER_AXIS[axis]
    table = seed_regret(a.finals, a.optima, axes=(axis,))
    if table.empty:
        return []
    table = table[table[other] == held]
    seeds = np.sort(a.finals["seed"].unique())
    return [
        {k: r[k] for k in METRIC_KEYS}
        | dict(metric=f"regret_{axis}", seed=int(seeds[int(r["seed_index"])]),
               value=float(r["worst_regret"]))
        for _, r in table.iterrows()
    ]  # fmt: skip


def seed_samples(a: Analysis) -> pd.DataFrame:
    """Long table (scheme, optimizer, block_depth, metric, seed, value): every check metric
    that has a per-seed form (module docstring), computed on each seed's own data."""
    rows: list[dict] = []
    for axis in AXES:
        held = held_value(a.optima, axis)
        if held is None:
            continue
        rows += _drift_samples(a, axis, held)
        rows += _regret_samples(a, axis, held)
    if movement_columns(a.finals):
        fixed = fixed_lr_seed_slopes(a.finals, a.optima)
        held = held_value(a.optima, "depth")
        if held is not None:
            fixed = fixed[fixed["width"] == held]
        rows += fixed.drop(columns="width").to_dict("records")
    frame = pd.DataFrame(rows, columns=SAMPLE_COLUMNS)
    frame["block_depth"] = frame["block_depth"].astype(int)
    frame["seed"] = frame["seed"].astype(int)
    return frame


def _samples_of(samples: pd.DataFrame, scheme: str, optimizer: str, k: int, metric: str):
    sel = samples[
        (samples["scheme"] == scheme)
        & (samples["optimizer"] == optimizer)
        & (samples["block_depth"] == k)
        & (samples["metric"] == metric)
    ]
    return sel.set_index("seed")["value"].sort_index()


def with_intervals(metrics: pd.DataFrame, samples: pd.DataFrame, ci: float = 0.9) -> pd.DataFrame:
    """``metrics`` (verdicts.suite_metrics) with lo, hi, n (finite samples) and interval (its
    method: "t", "range", "none", or "given" for a row that brought its own lo / hi) and
    bracketed (the interval was widened by censored optima): the interval the check decides
    on (module docstring). abs_drift_<A> gets |.| of drift_<A>'s
    interval, so both decide on the same statistics."""
    out = metrics.copy()
    for col, default in (("lo", math.nan), ("hi", math.nan), ("n", 0), ("interval", "none")):
        if col not in out:
            out[col] = default
    out["interval"] = out["interval"].astype(object)
    if "bracketed" not in out:
        out["bracketed"] = False
    point = {
        (r.scheme, r.optimizer, r.block_depth, r.metric): float(r.value) for r in out.itertuples()
    }
    for i, r in out.iterrows():
        if pd.notna(r["lo"]) and pd.notna(r["hi"]):
            out.at[i, "interval"] = "given"
            continue
        series = (r["scheme"], r["optimizer"], int(r["block_depth"]))
        metric = str(r["metric"])
        absolute = metric.startswith("abs_drift_") and "/" not in metric
        source = metric.removeprefix("abs_") if absolute else metric
        v = _samples_of(samples, *series, source)
        if v.empty or (*series, source) not in point:
            continue
        centre = point[(*series, source)]
        _, lo, hi, n = seed_interval(v.to_numpy(float), ci, centre=centre)
        lo, hi = float(lo), float(hi)
        if np.isfinite(lo) and np.isfinite(centre):  # a range of 2 seeds holds the estimate too
            lo, hi = min(lo, centre), max(hi, centre)
        smin, smax = point.get((*series, f"{source}_min")), point.get((*series, f"{source}_max"))
        if source.startswith("drift_") and smin is not None and smax is not None:
            if np.isfinite(lo) and smin < smax:  # censored: the bracket range, pushed out
                lo, hi = checked_interval(centre, lo, hi, smin, smax)
                out.at[i, "bracketed"] = True
        if absolute and np.isfinite(lo):
            lo, hi = abs_interval(lo, hi)
        out.at[i, "lo"], out.at[i, "hi"], out.at[i, "n"] = lo, hi, int(n)
        out.at[i, "interval"] = interval_method(int(n))
    out["n"] = out["n"].astype(int)
    return out


def paired_samples(
    samples: pd.DataFrame,
    a: tuple[str, str, int],
    b: tuple[str, str, int],
    metric: str,
    metric_b: str | None = None,
) -> np.ndarray:
    """Per-seed differences metric(a) - metric_b(b) over the seeds both series have
    (a, b = (scheme, optimizer, block_depth)); empty when they share fewer than 1 seed."""
    va = _samples_of(samples, *a, metric)
    vb = _samples_of(samples, *b, metric_b or metric)
    joined = pd.concat([va.rename("a"), vb.rename("b")], axis=1, join="inner")
    return (joined["a"] - joined["b"]).to_numpy(float)
