"""The analysis of one sweep: runs the table chain once and keeps every table.

    load_run(dir)            -> (results table, meta)
    analyze(results, meta)   -> Analysis (every table below)
    analyze_run(dir)         -> analyze(*load_run(dir))

The pieces, each usable alone: :mod:`hptransfer.stats.optimum` (eta* of a loss curve: parabola
refinement and brackets), :mod:`hptransfer.stats.intervals` (slopes and seed intervals),
:mod:`hptransfer.stats.tables` (results -> finals -> curves -> optima -> drift, regret, movement,
horizon), :mod:`hptransfer.stats.verdicts` (scorecard, claims, check metrics) and
:mod:`hptransfer.stats.hparams` (axes beyond the learning rate, model paths),
:mod:`hptransfer.stats.path_transfer` (eta* and regret at every point of a model path). Their public names
are re-exported here so ``from hptransfer.stats.analysis import ...`` keeps working.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from hptransfer.stats.hparams import (
    HparamsAnalysis,
    RunDesign,
    default_rows,
    hparams_analysis,
    path_drift,
)
from hptransfer.stats.intervals import ols_slope, seed_interval, slope_range
from hptransfer.stats.local_drift import local_columns, local_drift
from hptransfer.stats.optimum import Optimum, curve_value, refine, refine_optimum
from hptransfer.stats.path_transfer import path_optima, path_regret, path_seed_regret, path_summary
from hptransfer.stats.results import META_FILE, read_meta, read_results
from hptransfer.stats.tables import (
    AXES,
    GROUP,
    OTHER_AXIS,
    REPLICA,
    REQUIRED,
    SCHEME_ORDER,
    AnalysisError,
    drift,
    final_losses,
    fixed_lr_seed_slopes,
    fixed_lr_slopes,
    held_value,
    horizon_drift,
    losses_by_step,
    lr_curves,
    movement_at_optimum,
    movement_columns,
    movement_slopes,
    optimal_lr,
    role_order,
    scheme_order,
    seed_optima,
    seed_regret,
    seed_shape_regret,
    series_keys,
    training_curves,
    transfer_regret,
)
from hptransfer.stats.verdicts import (
    MOVEMENT_SLOPE,
    STABILITY_SHIFT,
    TRANSFER_REGRET,
    TRANSFER_SLOPE,
    claims,
    local_verdicts,
    scorecard,
    suite_metrics,
    verdict,
)

__all__ = [
    "AXES", "GROUP", "OTHER_AXIS", "REPLICA", "REQUIRED", "SCHEME_ORDER", "MOVEMENT_SLOPE",
    "STABILITY_SHIFT", "TRANSFER_REGRET", "TRANSFER_SLOPE", "Analysis", "AnalysisError",
    "Optimum", "analyze", "analyze_run", "claims", "curve_value", "drift", "final_losses",
    "fixed_lr_slopes", "held_value", "horizon_drift", "load_run",
    "losses_by_step", "lr_curves", "movement_at_optimum", "movement_columns", "movement_slopes",
    "ols_slope", "optimal_lr", "refine", "refine_optimum", "role_order", "scheme_order",
    "scorecard", "seed_interval", "seed_optima", "seed_regret", "seed_shape_regret", "series_keys", "slope_range", "suite_metrics",
    "training_curves", "transfer_regret", "verdict",
]  # fmt: skip


def load_run(run_dir: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(results table, meta dict) of a sweep directory; meta is {} when meta.json is missing.
    A missing results.parquet raises FileNotFoundError (:func:`hptransfer.stats.results.read_results`)."""
    run_dir = Path(run_dir)
    results = read_results(run_dir)
    meta = read_meta(run_dir) if (run_dir / META_FILE).exists() else {}
    return results, meta


@dataclass(frozen=True)
class Analysis:
    """Every table of one sweep's analysis (see :mod:`hptransfer.stats.tables` for each)."""

    results: pd.DataFrame
    finals: pd.DataFrame
    curves: pd.DataFrame
    optima: pd.DataFrame
    seeds: pd.DataFrame  # per-seed eta*
    drift: pd.DataFrame
    regret: pd.DataFrame
    movement: pd.DataFrame
    movement_slopes: pd.DataFrame
    fixed_slopes: pd.DataFrame
    horizon: pd.DataFrame  # drift at every evaluation step
    scorecard: pd.DataFrame
    claims: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    last_evals: int = 3
    ci: float = 0.9
    hparams: HparamsAnalysis | None = (
        None  # axes beyond the learning rate (hptransfer.stats.hparams)
    )
    path_drift: pd.DataFrame | None = None  # drift of eta* along model.path (None without one)
    path_optima: pd.DataFrame | None = None  # eta* at every path point (None without a path)
    path_regret: pd.DataFrame | None = None  # regret of the base-tuned eta* along the path
    # slopes between consecutive depths, over the deepest half, largest shift and curvature
    # (hptransfer.stats.local_drift); None only for an Analysis built by hand
    local_drift: pd.DataFrame | None = None

    @property
    def name(self) -> str:
        return str(self.meta.get("config", {}).get("name", "sweep"))


def analyze(
    results: pd.DataFrame,
    meta: Mapping[str, Any] | None = None,
    *,
    last_evals: int = 3,
    ci: float = 0.9,
) -> Analysis:
    """Run the whole chain on a results table. Intervals are Student-t over per-seed estimates
    (:mod:`hptransfer.stats.intervals`).

    With axes beyond the learning rate (meta config ``axes``) the learning-rate chain reads
    only the rows where every other axis is at its default (:func:`hptransfer.stats.hparams.
    default_rows`), so eta*, drift and the claims mean what they mean without axes; the axes
    themselves are analysed by :func:`hptransfer.stats.hparams.hparams_analysis` (Analysis.hparams).
    With model.path, Analysis.path_drift is the drift of eta* along the path, path_optima and
    path_regret its eta* and base-tuned regret per point (:mod:`hptransfer.stats.path_transfer`), and
    the scorecard's verdicts read them. Analysis.local_drift is the drift between consecutive
    depths, over the deepest half, the largest shift and the curvature test
    (:mod:`hptransfer.stats.local_drift`); the scorecard gets its columns at the held width and a
    local_verdict sentence, and the claims row (f) reads them.
    """
    design = RunDesign.from_config(dict(meta or {}).get("config"))
    everything = results
    results = default_rows(results, design)
    finals = final_losses(results, last_evals)
    curves = lr_curves(finals)
    optima = optimal_lr(finals, ci=ci)
    seeds = seed_optima(finals)
    drift_table = drift(optima, seeds, ci)
    regret_table = transfer_regret(curves, optima)
    movement = movement_at_optimum(finals, optima)
    mslopes = movement_slopes(movement) if len(movement) else pd.DataFrame()
    fixed = fixed_lr_slopes(finals, optima) if movement_columns(finals) else pd.DataFrame()
    horizon = horizon_drift(results, last_evals, ci)
    path = design.path
    seed_regrets = seed_shape_regret(finals, optima)
    if path:
        seed_regrets = pd.concat([seed_regrets, path_seed_regret(finals, optima, path)],
                                 ignore_index=True)  # fmt: skip
    p_drift = path_drift(optima, seeds, path, ci, "log2_eta_star") if path else None
    p_optima = path_optima(optima, path) if path else None
    p_regret = path_regret(curves, optima, path) if path else None
    p_summary = path_summary(optima, p_drift, p_regret, path) if path else None
    card = scorecard(
        optima, drift_table, regret_table, mslopes, fixed, horizon, ci, seed_regrets, p_summary
    )
    local = local_drift(optima, seeds, ci)
    card = local_verdicts(local_columns(card, local, optima), local, optima)
    return Analysis(
        results=results,
        finals=finals,
        curves=curves,
        optima=optima,
        seeds=seeds,
        drift=drift_table,
        regret=regret_table,
        movement=movement,
        movement_slopes=mslopes,
        fixed_slopes=fixed,
        horizon=horizon,
        scorecard=card,
        claims=claims(
            card, finals, ci, fixed_lr_seed_slopes(finals, optima) if len(fixed) else None
        ),
        meta=dict(meta or {}),
        last_evals=last_evals,
        ci=ci,
        hparams=hparams_analysis(everything, design, last_evals, ci),
        path_drift=p_drift,
        path_optima=p_optima,
        path_regret=p_regret,
        local_drift=local,
    )


def analyze_run(run_dir: str | Path, **kwargs: Any) -> Analysis:
    """:func:`analyze` on a sweep directory (results.parquet + meta.json)."""
    results, meta = load_run(run_dir)
    return analyze(results, meta, **kwargs)
