"""Does early elimination keep every verdict? Compare a run with ``[elimination] enabled = true``
against the same config without it (issue: time to verdict).

    python benchmarks/elimination_agreement.py OFF_DIR ON_DIR [--json out.json]

Per run pair it prints one table of agreement and cost, read from both runs' own analyses:

- eta*: the largest |delta log2 eta*| over cells interior in both runs (required <= 0.05
  octave), and how many censored cells changed their bracket (edge, bracket_lo, bracket_hi);
- drift and regret: the largest change of a scorecard drift or worst regret, and how many
  scorecard verdicts and transfer statements changed;
- claims: how many claims changed verdict; horizon: the largest change of a drift slope at any
  evaluation step, and how many "transfers from step" statements changed;
- axes (a run with ``[axes]``): the largest |delta| of an axis optimum interior in both runs
  (the 2-D optimum of a group (lr, x) included, coordinate by coordinate), how many censored
  axis optima changed their bracket, the largest change of an axis drift slope and of the
  joint regret of the base shape's joint optimum;
- cost: replica-steps computed and wall seconds of each run (meta.json), and their ratio.

Exit status 1 when an agreement requirement fails, so it can gate a change of the rule.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import pandas as pd

from hptransfer.api import analyze
from hptransfer.stats.analysis import Analysis
from hptransfer.stats.columns import GROUP, SERIES

ETA_TOLERANCE = 0.05  # octaves: the agreement the issue asks of interior optima
STATEMENTS = ["verdict", "transfer_depth", "transfer_width", "transfer_from_step_depth",
              "drift_from_step_depth", "edge_flags", "divergence_flags"]  # fmt: skip


def _max_abs(a: pd.Series, b: pd.Series) -> float:
    d = (a.astype(float) - b.astype(float)).abs()
    return float(d.max()) if d.notna().any() else 0.0


def _changed(a: pd.Series, b: pd.Series) -> int:
    """How many rows differ, a missing value equal to a missing value."""

    def text(s: pd.Series) -> pd.Series:
        return s.astype(object).where(s.notna(), "").astype(str)

    return int((text(a) != text(b)).sum())


def axes_agreement(off: Analysis, on: Analysis) -> dict[str, float | int]:
    """The axes' part of :func:`agreement` (zeros for a run without ``[axes]``)."""
    if off.hparams is None or on.hparams is None:
        return {"axis_optima": 0, "max_abs_delta_axis_optimum": 0.0,
                "axis_brackets_changed": 0, "axis_interior_became_censored": 0,
                "max_abs_delta_axis_drift": 0.0, "max_abs_delta_joint_regret": 0.0,
                "joint_regret_divergence_changed": 0}  # fmt: skip
    a, b = off.hparams, on.hparams
    keys = [c for c in a.optima.columns if c in (*GROUP, *a.conditions, "group", "hparam")]
    opt = a.optima.merge(b.optima, on=keys, suffixes=("_off", "_on"), validate="1:1")
    interior = opt["edge_off"].isna() & opt["edge_on"].isna()
    censored = ~interior
    d_keys = [c for c in a.drift.columns if c in (*SERIES, *a.conditions, "group", "hparam",
                                                 "axis", "width", "depth")]  # fmt: skip
    drift = a.drift.merge(b.drift, on=d_keys, suffixes=("_off", "_on"))
    r_keys = [c for c in a.regret.columns if c in (*SERIES, *a.conditions, "group", "width",
                                                  "depth")]  # fmt: skip
    regret = a.regret.merge(b.regret, on=r_keys, suffixes=("_off", "_on"))
    finite = np.isfinite(regret["regret_off"]) & np.isfinite(regret["regret_on"])
    return {
        "axis_optima": len(opt),
        "max_abs_delta_axis_optimum": _max_abs(
            opt.loc[interior, "optimum_off"], opt.loc[interior, "optimum_on"]
        ),
        "axis_brackets_changed": sum(
            _changed(opt.loc[censored, f"{c}_off"], opt.loc[censored, f"{c}_on"])
            for c in ("edge", "bracket_lo", "bracket_hi")
        ),
        "axis_interior_became_censored": int(
            (opt["edge_off"].isna() != opt["edge_on"].isna()).sum()
        ),
        "max_abs_delta_axis_drift": (
            _max_abs(drift["slope_off"], drift["slope_on"]) if len(drift) else 0.0
        ),
        "max_abs_delta_joint_regret": _max_abs(
            regret.loc[finite, "regret_off"], regret.loc[finite, "regret_on"]
        ),
        "joint_regret_divergence_changed": int(
            (np.isfinite(regret["regret_off"]) != np.isfinite(regret["regret_on"])).sum()
        ),
    }


def agreement(off: Analysis, on: Analysis) -> dict[str, float | int]:
    """The agreement and cost of one run pair (see the module docstring)."""
    opt = off.optima.merge(on.optima, on=list(GROUP), suffixes=("_off", "_on"), validate="1:1")
    interior = opt["edge_off"].isna() & opt["edge_on"].isna()
    censored = ~interior
    brackets = sum(
        _changed(opt.loc[censored, f"{c}_off"], opt.loc[censored, f"{c}_on"])
        for c in ("edge", "bracket_lo", "bracket_hi")
    )
    card_keys = [c for c in (*SERIES, "at_width") if c in off.scorecard]
    card = off.scorecard.merge(on.scorecard, on=card_keys, suffixes=("_off", "_on"))
    numeric = [c for c in off.scorecard.columns
               if c.startswith(("drift_", "regret_")) and c.endswith(("depth", "width"))
               and f"{c}_on" in card]  # fmt: skip
    statements = [c for c in STATEMENTS if f"{c}_on" in card]
    claims = off.claims.merge(on.claims, on="claim", suffixes=("_off", "_on"))
    hz_keys = [c for c in (*SERIES, "width", "axis", "step") if c in off.horizon]
    hz = (
        off.horizon.merge(on.horizon, on=hz_keys, suffixes=("_off", "_on"))
        if len(off.horizon) and len(on.horizon)
        else pd.DataFrame()
    )
    m_off, m_on = off.meta, on.meta
    return {
        "cells": len(opt),
        "interior_cells": int(interior.sum()),
        "max_abs_delta_eta_star": _max_abs(
            opt.loc[interior, "log2_eta_star_off"], opt.loc[interior, "log2_eta_star_on"]
        ),
        "censored_brackets_changed": brackets,
        "interior_became_censored": int((opt["edge_off"].isna() != opt["edge_on"].isna()).sum()),
        "max_abs_delta_drift_or_regret": max(
            (_max_abs(card[f"{c}_off"], card[f"{c}_on"]) for c in numeric), default=0.0
        ),
        "scorecard_statements_changed": sum(
            _changed(card[f"{c}_off"], card[f"{c}_on"]) for c in statements
        ),
        "claims": len(claims),
        "claim_verdicts_changed": _changed(claims["verdict_off"], claims["verdict_on"]),
        "max_abs_delta_horizon_slope": (
            _max_abs(hz["slope_off"], hz["slope_on"]) if "slope_off" in hz else 0.0
        ),  # a run of one shape has no drift at any step
        **axes_agreement(off, on),
        "replica_steps_computed_off": int(m_off.get("replica_steps_computed", 0)),
        "replica_steps_computed_on": int(m_on.get("replica_steps_computed", 0)),
        "replica_steps_eliminated": int(m_on.get("replica_steps_eliminated", 0)),
        "replicas_stopped": len(m_on.get("eliminated", [])),
        "wall_seconds_off": float(m_off.get("wall_seconds", np.nan)),
        "wall_seconds_on": float(m_on.get("wall_seconds", np.nan)),
    }


def holds(row: dict[str, float | int]) -> bool:
    """Every verdict kept: interior eta* and axis optima within the tolerance, brackets,
    statements and claims unchanged."""
    return (
        row["max_abs_delta_eta_star"] <= ETA_TOLERANCE
        and row.get("max_abs_delta_axis_optimum", 0.0) <= ETA_TOLERANCE
        and row.get("axis_brackets_changed", 0) == 0
        and row.get("axis_interior_became_censored", 0) == 0
        and row.get("joint_regret_divergence_changed", 0) == 0
        and row["censored_brackets_changed"] == 0
        and row["interior_became_censored"] == 0
        and row["scorecard_statements_changed"] == 0
        and row["claim_verdicts_changed"] == 0
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("off", help="the run without elimination")
    parser.add_argument("on", help="the same config with [elimination] enabled = true")
    parser.add_argument("--json", help="also write the table here (JSON)")
    args = parser.parse_args(argv)
    row = agreement(analyze(args.off), analyze(args.on))
    row["steps_ratio_on_off"] = row["replica_steps_computed_on"] / max(
        row["replica_steps_computed_off"], 1
    )
    row["wall_ratio_on_off"] = row["wall_seconds_on"] / row["wall_seconds_off"]
    row["verdicts_kept"] = holds(row)
    for key, value in row.items():
        print(f"{key:32s} {value:.4g}" if isinstance(value, float) else f"{key:32s} {value}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(row, fh, indent=1)
    return 0 if row["verdicts_kept"] else 1


if __name__ == "__main__":
    sys.exit(main())
