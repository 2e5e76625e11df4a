"""Regression check of transfer quality: a run against the suite's expectations and baseline.

Two kinds of checks, both data (benchmarks/expectations.toml and results/baselines/SUITE.json):

- *Expectations* state what the science says at this scale, per (scheme, block depth): a metric
  of the run (:func:`suite_metrics`) must lie above ``min`` / below ``max``, or relative to the
  same metric of another series (``min_ref`` / ``max_ref`` = {scheme, block_depth, offset}:
  bound = that series' value + offset).
- *Baseline*: eta* of every cell and the suite metrics must stay within the suite's stated
  tolerances of the committed baseline (``--update-baseline`` rewrites it deliberately). An eta*
  that is a bound gets at least one grid step of tolerance.

Metrics per (scheme, optimizer, block depth), over depth at the held width (and the same with
_width over width at the held depth, when the sweep has several widths):
  drift_depth          slope of log2 eta* against log2 L (octaves per doubling)
  abs_drift_depth      |drift_depth|
  spread_depth         max - min of log2 eta* (octaves)
  regret_depth         worst relative transfer regret of the base-tuned rate
  drift_depth_min, drift_depth_max
                       the slope range allowed by optima that are only bracketed
  h1_own_slope_fixed_lr, h1_weight_slope_fixed_lr
                       log-log slope against L of hidden_1's own movement / relative weight
                       change, all depths trained at ONE learning rate: the grid rate nearest
                       the base shape's eta*. A fixed rate isolates the depth scaling of the
                       scheme from the drift of eta* itself (the scorecard's
                       h1_own_slope_at_eta reads each depth at its own eta*).
The metrics are computed by :func:`hptransfer.verdicts.suite_metrics`.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hptransfer import analysis
from hptransfer.results import write_json
from hptransfer.verdicts import suite_metrics

ROOT = Path(__file__).resolve().parents[1]
EXPECTATIONS = ROOT / "benchmarks" / "expectations.toml"
BASELINES = ROOT / "results" / "baselines"
SERIES = ["scheme", "optimizer", "block_depth"]


class CheckError(ValueError):
    """The expectations file or the baseline is malformed or missing."""


def load_expectations(suite: str, path: Path = EXPECTATIONS) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise CheckError(f"expectations file {str(path)!r} does not exist") from None
    if suite not in data:
        raise CheckError(f"{path}: no suite {suite!r}; allowed: {sorted(data)}")
    spec = data[suite]
    allowed = {"description", "expect", "tolerance"}
    unknown = set(spec) - allowed
    if unknown:
        raise CheckError(
            f"{path}: [{suite}] has unknown field(s) {sorted(unknown)}; allowed: {sorted(allowed)}"
        )
    keys = {
        "claim",
        "scheme",
        "block_depth",
        "optimizer",
        "metric",
        "min",
        "max",
        "min_ref",
        "max_ref",
    }
    for i, e in enumerate(spec.get("expect", [])):
        bad = set(e) - keys
        if bad:
            raise CheckError(
                f"{path}: {suite}.expect[{i}] has unknown field(s) {sorted(bad)}; allowed: {sorted(keys)}"
            )
        for need in ("claim", "scheme", "block_depth", "metric"):
            if need not in e:
                raise CheckError(f"{path}: {suite}.expect[{i}] is missing {need!r}")
        if not any(k in e for k in ("min", "max", "min_ref", "max_ref")):
            raise CheckError(
                f"{path}: {suite}.expect[{i}] needs a bound: min, max, min_ref or max_ref"
            )
    return spec


def _lookup(
    metrics: pd.DataFrame, scheme: str, k: int, metric: str, optimizer: str | None
) -> float:
    sel = metrics[
        (metrics["scheme"] == scheme)
        & (metrics["block_depth"] == k)
        & (metrics["metric"] == metric)
    ]
    if optimizer is not None:
        sel = sel[sel["optimizer"] == optimizer]
    return float(sel["value"].iloc[0]) if len(sel) == 1 else math.nan


def check_expectations(metrics: pd.DataFrame, spec: Mapping[str, Any]) -> pd.DataFrame:
    """One row per expectation: claim, measured value, bound text, held (bool)."""
    rows = []
    for e in spec.get("expect", []):
        opt = e.get("optimizer")
        value = _lookup(metrics, e["scheme"], e["block_depth"], e["metric"], opt)
        lo, hi = e.get("min", -math.inf), e.get("max", math.inf)
        parts = []
        for side, ref in (("min", e.get("min_ref")), ("max", e.get("max_ref"))):
            if ref is None:
                continue
            other = _lookup(
                metrics, ref["scheme"], ref["block_depth"], ref.get("metric", e["metric"]), opt
            )
            bound = other + ref.get("offset", 0.0)
            parts.append(
                f"{side} = {ref['scheme']} k={ref['block_depth']} {other:+.2f} {ref.get('offset', 0.0):+.2f}"
            )
            lo, hi = (max(lo, bound), hi) if side == "min" else (lo, min(hi, bound))
        held = bool(
            np.isfinite(value) and lo <= value <= hi and not (math.isnan(lo) or math.isnan(hi))
        )
        rows.append({
            "check": "expectation",
            "what": f"{e['claim']} [{e['scheme']}, k={e['block_depth']}, {e['metric']}]",
            "value": value,
            "allowed": f"[{lo:+.2f}, {hi:+.2f}]" + (f" ({'; '.join(parts)})" if parts else ""),
            "held": held,
        })  # fmt: skip
    return pd.DataFrame(rows)


def baseline_record(a: analysis.Analysis, metrics: pd.DataFrame) -> dict[str, Any]:
    """What the baseline keeps: eta* per cell (with its edge flag) and the suite metrics."""
    cols = [*SERIES, "width", "depth", "log2_eta_star", "edge", "bracket_lo", "bracket_hi"]
    eta = a.optima[cols].copy()
    eta["grid_step"] = (a.optima["grid_max"] - a.optima["grid_min"]) / (a.optima["n_lr"] - 1)
    eta["edge"] = eta["edge"].where(eta["edge"].notna(), None)
    return {
        "eta_star": json.loads(eta.to_json(orient="records")),
        "metrics": json.loads(metrics.to_json(orient="records")),
    }


def check_baseline(
    record: dict[str, Any], baseline: dict[str, Any], tolerance: Mapping[str, float]
) -> pd.DataFrame:
    """Compare eta* per cell and the toleranced metrics with the baseline."""
    rows = []
    tol_eta = float(tolerance.get("log2_eta_star", 1.0))
    now = {
        (r["scheme"], r["optimizer"], r["block_depth"], r["width"], r["depth"]): r
        for r in record["eta_star"]
    }
    for b in baseline["eta_star"]:
        key = (b["scheme"], b["optimizer"], b["block_depth"], b["width"], b["depth"])
        r = now.get(key)
        value = r["log2_eta_star"] if r else math.nan
        # A bound (optimum at the grid edge or next to a diverging rate) is a grid point: where
        # divergence sets in may move by one grid step between runs, so allow at least that.
        tol = max(tol_eta, b.get("grid_step") or 0.0) if b.get("edge") else tol_eta
        ok = (
            r is not None
            and value is not None
            and b["log2_eta_star"] is not None
            and abs(value - b["log2_eta_star"]) <= tol
        )
        # a censored eta* now passes when its bracket (null = open end) contains the baseline
        if r is not None and r.get("edge") and value is not None and b["log2_eta_star"] is not None:
            lo, hi = r.get("bracket_lo"), r.get("bracket_hi")
            ok = ok or (
                (lo is None or lo <= b["log2_eta_star"])
                and (hi is None or b["log2_eta_star"] <= hi)
            )
        rows.append({
            "check": "baseline",
            "what": f"log2 eta* {b['scheme']} k={b['block_depth']} n={b['width']} L={b['depth']}"
                    + (f" (bound: {b['edge']})" if b.get("edge") else ""),
            "value": value,
            "allowed": f"{b['log2_eta_star']:+.2f} +- {tol:g}",
            "held": bool(ok),
        })  # fmt: skip
    metrics_now = pd.DataFrame(record["metrics"])
    for m in baseline["metrics"]:
        if m["metric"] not in tolerance:
            continue
        tol = float(tolerance[m["metric"]])
        value = (
            _lookup(metrics_now, m["scheme"], m["block_depth"], m["metric"], m["optimizer"])
            if len(metrics_now)
            else math.nan
        )
        rows.append({
            "check": "baseline",
            "what": f"{m['metric']} {m['scheme']} k={m['block_depth']}",
            "value": value,
            "allowed": f"{m['value']:+.2f} +- {tol:g}",
            "held": bool(np.isfinite(value) and abs(value - m["value"]) <= tol),
        })  # fmt: skip
    return pd.DataFrame(rows)


def evaluate_run(
    run_dir: str | Path,
    suite: str,
    *,
    expectations: Path = EXPECTATIONS,
    baselines: Path = BASELINES,
    update_baseline: bool = False,
    n_boot: int = 100,
) -> pd.DataFrame:
    """All checks of ``run_dir`` for ``suite`` as a table (check, what, value, allowed, held)."""
    spec = load_expectations(suite, expectations)
    a = analysis.analyze_run(run_dir, n_boot=n_boot)
    metrics = suite_metrics(a)
    table = check_expectations(metrics, spec)
    record = baseline_record(a, metrics)
    path = Path(baselines) / f"{suite}.json"
    if update_baseline:
        write_json(record, path)
        print(f"baseline written to {path}")
    elif path.exists():
        table = pd.concat(
            [table, check_baseline(record, json.loads(path.read_text()), spec.get("tolerance", {}))]
        )
    else:
        table = pd.concat([table, pd.DataFrame([{
            "check": "baseline", "what": f"baseline {path}", "value": math.nan,
            "allowed": "exists (create it with --update-baseline)", "held": False,
        }])])  # fmt: skip
    return table.reset_index(drop=True)


def run_check(run_dir: str | Path, suite: str, update_baseline: bool = False) -> int:
    """Print the check table; 0 when everything held, 1 otherwise."""
    table = evaluate_run(run_dir, suite, update_baseline=update_baseline)
    shown = table.assign(
        value=table["value"].map(lambda v: f"{v:+.3f}" if np.isfinite(v) else "n/a"),
        held=table["held"].map({True: "ok", False: "FAILED"}),
    )
    with pd.option_context("display.max_colwidth", 90, "display.width", 200):
        print(shown.to_string(index=False))
    failed = int((~table["held"]).sum())
    print(f"\n{suite}: {len(table) - failed} held, {failed} failed")
    return 1 if failed else 0
