"""eta*, its drift and its regret against the training horizon T, under any schedule.

The horizon of a run is its length T (steps). Which rows are "the T-step run" depends on the
schedule:

- **constant rate** (no ``[schedule]``, or kind constant): the rate and the batches
  (``randint(fold_in(data_key, step))``, :mod:`hptransfer.network.train`) do not depend on the
  run's length, so the T-step run *is* the first T steps of any longer run: its rows are the
  longer run's rows up to step T (a truncation; T must be an evaluation step), a divergence
  or an elimination after step T undone. One run of the longest horizon serves every shorter
  one.
- **a schedule of the run's length** (a warm-up or a decay given as fractions of ``steps``):
  the T-step run differs from the longer one from the first step on, so each T is a run of
  its own: the ``steps`` shape axis (rows whose ``steps`` column is T; the default horizon's
  rows have it at its default).

::

    kind_runs(results, meta)               -> {kind: (results_k, meta_k)}: a schedule axis split
    horizon_runs(results, meta, horizons)  -> {T: (results_T, meta_T)}, each a plain sweep
    horizon_analyses(results, meta, ...)   -> {T: Analysis}, the whole chain on each T-step run
    horizon_optima(analyses)               -> eta* (seed-mean and per seed) per shape and T
    horizon_slopes(analyses, ci)           -> per series and depth, the drift of log2 eta*
                                              per doubling of T (octaves), with its interval

The slope against the horizon is :func:`hptransfer.stats.tables.drift_fit` with x = log2 T in
place of log2 depth: the OLS of the seed-mean eta* on log2 T, its Student-t interval over the
per-seed slopes, and its range over the brackets of censored optima, so that the one rule of
:mod:`hptransfer.stats.rules` decides whether eta* moves with the horizon as it decides whether
it moves with depth (band: one octave over the measured range of horizons,
:func:`hptransfer.stats.rules.drift_band`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from hptransfer.network.schedules import ScheduleConfig
from hptransfer.stats.analysis import Analysis, analyze
from hptransfer.stats.rules import drift_band, drift_outcome
from hptransfer.stats.tables import AnalysisError, drift_fit, first_steps, fit_interval

STEPS = "steps"  # the shape axis of the run length (hptransfer.sweeps.axes)
SCHEDULE = "schedule"  # the shape axis of the schedule kind
SERIES = ("family", "scheme", "optimizer", "width", "block_depth")  # held along the horizon


def schedule_kind(meta: Mapping[str, Any]) -> str:
    """The run's schedule kind as meta.json records it ("constant" without a [schedule])."""
    sched = (meta.get("config") or {}).get("schedule") or {}
    return str(sched.get("kind", "constant"))


def kind_runs(
    results: pd.DataFrame, meta: Mapping[str, Any]
) -> dict[str, tuple[pd.DataFrame, dict[str, Any]]]:
    """(results, meta) of each schedule kind of a run: a run with a ``schedule`` axis split
    into the sweeps of its kinds, each as if it had run alone (its config's ``[schedule]`` that
    kind with the fractions the kind reads, no schedule axis); a run without one: itself."""
    if SCHEDULE not in results.columns:
        return {schedule_kind(meta): (results, copy.deepcopy(dict(meta)))}
    cfg = _config(meta)
    default = ScheduleConfig(**(cfg.get("schedule") or {}))
    out = {}
    for kind in sorted(results[SCHEDULE].unique(), key=lambda k: (k != "constant", k)):
        rows = results[results[SCHEDULE] == kind].drop(columns=[SCHEDULE]).reset_index(drop=True)
        c = _without_axis(cfg, SCHEDULE)
        c.pop("schedule", None)
        if kind != "constant":  # meta.json records the constant rate as no [schedule]
            c["schedule"] = {"kind": kind, **default.as_kind(kind).values()}
        out[str(kind)] = rows, copy.deepcopy(dict(meta)) | {"config": c}
    return out


def _own_kind(
    results: pd.DataFrame, meta: Mapping[str, Any]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The run of the default schedule kind (:func:`kind_runs`): a run with a schedule axis is
    read as that kind's run; others as they are."""
    return kind_runs(results, meta)[schedule_kind(meta)]


def _without_axis(cfg: Mapping[str, Any], *names: str) -> dict[str, Any]:
    """A copy of a run's config without the sweep axes ``names`` (no axes left: none)."""
    c = copy.deepcopy(dict(cfg))
    axes = {k: v for k, v in (c.get("axes") or {}).items() if k not in names}
    if c.get("axes") is not None:
        c["axes"] = axes or None
        if not axes:
            c["axis_groups"] = None
    return c


def _config(meta: Mapping[str, Any]) -> dict[str, Any]:
    cfg = meta.get("config")
    if not isinstance(cfg, Mapping) or "steps" not in cfg:
        raise AnalysisError("meta.json has no config with 'steps': the run's horizon is unknown")
    return dict(cfg)


def available_horizons(results: pd.DataFrame, meta: Mapping[str, Any]) -> list[int]:
    """Every horizon the run holds: under the constant rate each evaluation step (truncations
    of the longest run, plus the values of a ``steps`` axis); otherwise the run's own length and
    the values of its ``steps`` axis."""
    results, meta = _own_kind(results, meta)
    cfg = _config(meta)
    own = {int(cfg["steps"])}
    if STEPS in results.columns:
        own |= {int(v) for v in results[STEPS].unique()}
    if schedule_kind(meta) == "constant":
        own |= {int(s) for s in results["step"].unique()}
    return sorted(own)


def horizon_runs(
    results: pd.DataFrame, meta: Mapping[str, Any], horizons: Sequence[int] | None = None
) -> dict[int, tuple[pd.DataFrame, dict[str, Any]]]:
    """(results, meta) of the T-step run for each T of ``horizons`` (default: the run's own
    length and its ``steps`` axis values), each a plain sweep without a ``steps`` axis whose
    config says steps = T: the analysis reads it as it reads a run of that length.

    Raises AnalysisError naming T when the run does not hold it (module docstring)."""
    results, meta = _own_kind(results, meta)
    cfg = _config(meta)
    default = int(cfg["steps"])
    if horizons is None:
        horizons = sorted({default, *(int(v) for v in results.get(STEPS, pd.Series()).unique())})
    allowed = available_horizons(results, meta)
    constant = schedule_kind(meta) == "constant"
    out: dict[int, tuple[pd.DataFrame, dict[str, Any]]] = {}
    for t in horizons:
        t = int(t)
        if t not in allowed:
            raise AnalysisError(
                f"horizon {t} steps is not in this run (schedule {schedule_kind(meta)!r}); "
                f"allowed: {allowed}"
            )
        rows = results
        if STEPS in rows.columns:
            own = rows[STEPS].to_numpy(float) == t
            # the constant rate: the longest run at its default length is cut at step t
            rows = rows[own] if own.any() or not constant else rows[rows[STEPS] == default]
        if constant:
            rows = first_steps(rows, t)
        rows = rows.drop(columns=[STEPS], errors="ignore").reset_index(drop=True)
        out[t] = rows, _meta_at(meta, cfg, t)
    return out


def _meta_at(meta: Mapping[str, Any], cfg: Mapping[str, Any], steps: int) -> dict[str, Any]:
    """meta.json of the T-step run: the config with steps = T and no ``steps`` axis."""
    return copy.deepcopy(dict(meta)) | {"config": _without_axis(cfg, STEPS) | {"steps": steps}}


def horizon_analyses(
    results: pd.DataFrame,
    meta: Mapping[str, Any],
    horizons: Sequence[int] | None = None,
    *,
    last_evals: int = 3,
    ci: float = 0.9,
) -> dict[int, Analysis]:
    """:func:`hptransfer.stats.analysis.analyze` of each T-step run (:func:`horizon_runs`)."""
    runs = horizon_runs(results, meta, horizons)
    return {t: analyze(r, m, last_evals=last_evals, ci=ci) for t, (r, m) in runs.items()}


def horizon_optima(analyses: Mapping[int, Analysis]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(optima, seeds): every T-step run's eta* table and per-seed eta* table with a column
    ``horizon`` (T) in front."""
    optima = [a.optima.assign(horizon=t) for t, a in sorted(analyses.items())]
    seeds = [a.seeds.assign(horizon=t) for t, a in sorted(analyses.items())]
    if not optima:
        return pd.DataFrame(columns=["horizon"]), pd.DataFrame(columns=["horizon"])
    return pd.concat(optima, ignore_index=True), pd.concat(seeds, ignore_index=True)


def horizon_slopes(analyses: Mapping[int, Analysis], ci: float = 0.9) -> pd.DataFrame:
    """The drift of eta* against the horizon, per series and depth: one row per (family,
    scheme, optimizer, width, block_depth, depth) present at two or more horizons.

    Columns: the keys, horizon_min / horizon_max, :func:`drift_fit`'s columns (slope in octaves
    of eta* per doubling of T), band (one octave over the range of T), check_lo / check_hi
    (the seed interval widened over censored optima, :func:`checked_interval`; NaN without a
    t-interval) and outcome (:func:`hptransfer.stats.rules.drift_outcome`: "holds" = eta*
    stays within the band, "fails" = it moves, "inconclusive")."""
    optima, seeds = horizon_optima(analyses)
    if optima.empty:
        return pd.DataFrame()
    keys = [*SERIES, "depth"]
    wide = seeds.pivot_table(index=[*keys, "seed"], columns="horizon", values="log2_eta_star",
                             dropna=False)  # fmt: skip
    rows = []
    for key, s in optima.groupby(keys, sort=True):
        s = s.sort_values("horizon")
        if s["horizon"].nunique() < 2:
            continue
        t = s["horizon"].to_numpy(float)
        censored = (s["edge"].notna() & (s["edge_cause"] != "all_diverged")).to_numpy()
        try:
            per_seed = wide.xs(key, level=keys).reindex(columns=s["horizon"]).to_numpy(float)
        except KeyError:
            per_seed = np.full((0, len(s)), np.nan)
        fit = drift_fit(
            np.log2(t),
            s["log2_eta_star"].to_numpy(float),
            censored,
            s["bracket_lo"].to_numpy(float),
            s["bracket_hi"].to_numpy(float),
            per_seed,
            ci,
        )
        band = drift_band(t.min(), t.max())
        lo, hi = fit_interval(fit)
        rows.append(
            dict(zip(keys, key, strict=True))
            | dict(horizon_min=int(t.min()), horizon_max=int(t.max()))
            | fit
            | dict(band=band, check_lo=lo, check_hi=hi, outcome=drift_outcome(lo, hi, band))
        )
    return pd.DataFrame(rows)
