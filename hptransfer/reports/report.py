"""Reports of a sweep: Markdown and standalone HTML, side-by-side comparison of runs, text tables.

    write_report(run_dir)   -> run_dir/report.md (figures linked from run_dir/figures/) and
                               run_dir/report.html (the same, figures embedded as base64)
    compare(run_dirs)       -> the runs' scorecards stacked with a `run` column
    compare_markdown(dirs)  -> the same as a Markdown table
    format_table(df)        -> an aligned plain-text table for the terminal

The report is built once as a list of blocks (heading, paragraph, list, table, figure, code)
and rendered twice, so the Markdown and HTML versions always say the same thing.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hptransfer.network.schemes import scheme_label
from hptransfer.reports.axis_figures import axis_figure_names, make_axis_figures
from hptransfer.reports.figures import FIGURES, make_figures
from hptransfer.stats.analysis import (
    AXES,
    OTHER_AXIS,
    STABILITY_SHIFT,
    TRANSFER_REGRET,
    TRANSFER_SLOPE,
    Analysis,
    analyze_run,
    held_value,
    role_order,
    scheme_order,
)
from hptransfer.stats.calibration import (
    CALIBRATED,
    CASES,
    cases_table,
    committed_coverage,
    committed_false_alarm,
)
from hptransfer.stats.columns import SERIES
from hptransfer.stats.frames import wide_mean
from hptransfer.stats.hparams import at_default_conditions, worst_joint_regret
from hptransfer.stats.intervals import MIN_SEEDS_T
from hptransfer.stats.lm_claims import transformer_claims
from hptransfer.stats.path_transfer import point_label
from hptransfer.stats.rules import EXPONENT_BAND, TRANSFER_OCTAVES
from hptransfer.stats.tables import rows_where
from hptransfer.stats.twins import twin_groups, twin_labels, without_twins
from hptransfer.stats.verdicts import COLLAPSE, RESTORED, axis_verdict, bracket_text, drift_rows

FIGURE_DIR = "figures"
FIGURE_CAPTIONS = {
    "loss_vs_lr_depth": "Seed-averaged final training loss against the swept learning rate, one "
    "line per depth; stars mark eta* (parabola refinement), hollow diamonds with a bar a "
    "censored eta* and the bracket that must contain it, crosses the rates at which a seed "
    "diverged.",
    "eta_star_depth": "log2 eta* against depth for every scheme with seed intervals (bars); a "
    "censored eta* is drawn as its bracket (arrow: open past the grid), X = every rate diverged. "
    "A flat line is depth-wise transfer. The legend under each panel gives the drift slope.",
    "loss_vs_lr_width": "As above, one line per width.",
    "eta_star_width": "log2 eta* against width; a flat line is width-wise transfer.",
    "movement_depth": "Feature movement of each layer role at each depth's eta*, log-log. The "
    "dashed guide has slope -1/2 (the collapse of the first internal layer under depth-muP "
    "with two-layer blocks, claim (c) of the report).",
    "training_curves": "Training loss against step at each depth's eta* (nearest stable grid "
    "rate): the tuned runs themselves.",
    "horizon_depth": "Drift of eta* per doubling of depth against training steps: at step t, "
    "eta* of every depth comes from the losses up to t (with a constant learning rate, the "
    "t-step run). Bands: seed intervals; grey: the transfer threshold.",
    "horizon_width": "As above, across width.",
    "loss_vs_lr_path": "Seed-averaged final training loss against the swept learning rate, one "
    "line per point (n, L) of the model path; markers as in the depth figure (stars: eta*, "
    "hollow diamonds: a censored eta* and its bracket, crosses: a seed diverged).",
    "eta_star_path": "log2 eta* against log2(n / n0) along the model path (the depth grows with "
    "the width) for every scheme, with seed intervals (bars); censored optima as their "
    "brackets. A flat line is transfer along the path; the legend under each panel gives the "
    "drift slope per doubling of the width.",
}
AXIS_CAPTIONS = {
    "axis_loss": "Seed-mean final training loss against the axis's value, one line per shape; "
    "for an axis crossed with another (the learning rate), each point is the best over that "
    "axis. Stars: the group's optimum (parabola or local quadratic); hollow diamonds: a "
    "censored optimum (grid edge or next to divergence).",
    "axis_heatmap": "Seed-mean final training loss over the group's two axes at each shape "
    "(log colour scale); blank cells: a seed diverged there or the point was not run; star: "
    "the optimum (local quadratic on the 3 x 3 neighbourhood of the grid argmin).",
}


# --------------------------------------------------------------------------------------------
# Blocks


@dataclass(frozen=True)
class _Block:
    kind: str  # "h1", "h2", "p", "ul", "table", "fig", "code"
    text: str = ""
    items: tuple = ()
    table: pd.DataFrame | None = None
    path: Path | None = None


def _fmt_num(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return ""
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.{digits}g}" if abs(v) >= 1e4 or (0 < abs(v) < 1e-3) else f"{v:.{digits}f}"
    return str(v)


def _pct(v: float) -> str:
    if v is None or pd.isna(v):
        return ""
    return "diverges" if v == math.inf else f"{100 * v:.1f}%"


def _signed(v: float) -> str:
    return "" if v is None or pd.isna(v) else f"{v:+.2f}"


def _slope_ci(v: float, lo: float, hi: float, kind: str = "t") -> str:
    if pd.isna(v):
        return ""
    text = f"{v:+.2f}"
    if pd.isna(lo) or pd.isna(hi):
        return text
    return text + f" [{lo:+.2f}, {hi:+.2f}]" + ("" if kind == "t" else f" ({kind})")


def _checked_slope_ci(
    v: float, lo: float, hi: float, kind: str, smin: float = math.nan, smax: float = math.nan
) -> str:
    """A drift with the interval the check decides on (:func:`hptransfer.stats.verdicts.drift_rows`):
    the seed interval [lo, hi], and when optima are censored (smin < smax, the bracket slope
    range) that range pushed out by the same half-widths, marked "with brackets". The seed
    interval alone undercovers there (hptransfer.stats.calibration: cases cliff_approaching and
    censored)."""
    if pd.isna(v):
        return ""
    row = dict(slope=v, slope_lo=lo, slope_hi=hi, slope_min=smin, slope_max=smax)
    (checked,) = drift_rows({}, "drift", None, row)
    if checked["bracketed"]:
        kind = f"{kind}, with brackets"
    return _slope_ci(v, checked["lo"], checked["hi"], kind)


def _interval_header(card: pd.DataFrame) -> str:
    n = int(card["n_seeds"].max()) if "n_seeds" in card else 0
    pct = round(100 * float(card["ci"].iloc[0])) if "ci" in card and len(card) else 90
    if n < 2:
        return "no interval: 1 seed"
    return f"{pct}% t, {n} seeds" if n >= MIN_SEEDS_T else f"range of {n} seeds"


def scorecard_display(
    card: pd.DataFrame, names: Mapping[tuple[str, int], str] | None = None
) -> pd.DataFrame:
    """The scorecard as short strings for a table (verdicts left out: they are listed apart);
    ``names``: {(scheme, k): label} for twins shown once (:mod:`hptransfer.stats.twins`)."""
    out = pd.DataFrame(index=card.index)
    if "run" in card:
        out["run"] = card["run"]
    out["scheme"] = [
        _scheme_name(s, k, names) for s, k in zip(card["scheme"], card["block_depth"], strict=True)
    ]
    if card["family"].nunique() > 1:
        out["family"] = card["family"]
    out["optimizer"] = card["optimizer"]
    out["k"] = card["block_depth"].astype(int).astype(str)
    for axis in AXES:
        if f"drift_{axis}" not in card:
            continue
        sym = "L" if axis == "depth" else "n"
        out[f"{axis}s"] = card[f"{axis}s"].fillna("")
        out[f"drift vs {axis} (oct/doubling) [{_interval_header(card)}]"] = [
            _checked_slope_ci(v, lo, hi, kind, smin, smax)
            for v, lo, hi, kind, smin, smax in zip(
                card[f"drift_{axis}"],
                card[f"drift_{axis}_lo"],
                card[f"drift_{axis}_hi"],
                card[f"drift_{axis}_interval"],
                card[f"drift_{axis}_min"],
                card[f"drift_{axis}_max"],
                strict=True,
            )
        ]
        out[f"drift with brackets ({axis})"] = [
            f"[{lo:+.2f}, {hi:+.2f}]" if n else ""
            for lo, hi, n in zip(
                card[f"drift_{axis}_min"],
                card[f"drift_{axis}_max"],
                card[f"censored_{axis}"],
                strict=True,
            )
        ]
        if f"transfer_from_step_{axis}" in card:
            out["drift interval inside its band from step"] = [
                "never" if pd.isna(v) else str(int(v)) for v in card[f"transfer_from_step_{axis}"]
            ]
        out[f"spread ({axis}, oct)"] = card[f"spread_{axis}"].map(lambda v: _fmt_num(v, 2))
        out[f"worst regret ({axis})"] = [
            "" if pd.isna(r) else f"{_pct(r)} @{sym}={int(at)}"
            for r, at in zip(card[f"regret_{axis}"], card[f"regret_{axis}_at"], strict=True)
        ]
    out["best loss (deepest)"] = card["best_loss_deepest"].map(_fmt_num)
    if "h1_own_slope_at_eta" in card:
        out["hidden_1 own-movement slope"] = card["h1_own_slope_at_eta"].map(_signed)
    if "stable_shift_depth" in card:
        out["stable-rate shift (oct)"] = card["stable_shift_depth"].map(_signed)
    if "max_shift_depth" in card:
        out[f"largest shift of eta* from base depth (oct) [{_interval_header(card)}]"] = [
            _shift_cell(r) for r in card.to_dict("records")
        ]
    if "drift_path" in card:
        out["path (n)"] = card["paths"].fillna("")
        out[f"drift along path (oct/doubling of n) [{_interval_header(card)}]"] = [
            "" if pd.isna(v) else _slope_ci(v, lo, hi, kind)
            for v, lo, hi, kind in zip(
                card["drift_path"],
                card["drift_path_lo"],
                card["drift_path_hi"],
                card["drift_path_interval"],
                strict=True,
            )
        ]
        out["worst regret (path)"] = [
            "" if pd.isna(r) else f"{_pct(r)} @{at}"
            for r, at in zip(card["regret_path"], card["regret_path_at"], strict=True)
        ]
        out["stable-rate shift along path (oct)"] = card["stable_shift_path"].map(_signed)
    flags = [
        "; ".join(x for x in (e, d) if isinstance(x, str) and x)
        for e, d in zip(card["edge_flags"], card["divergence_flags"], strict=True)
    ]
    out["flags"] = flags
    return out.reset_index(drop=True)


def _eta_cell(r: Mapping[str, Any]) -> str:
    """ "-0.75 [-0.80, -0.70]" (seed interval), "in [-3.00, -1.50]" (censored: its bracket),
    or "unknown (all diverged)"."""
    if r["edge_cause"] == "all_diverged" or pd.isna(r["log2_eta_star"]):
        return "unknown (all diverged)"
    if not pd.isna(r["edge"]):
        return f"in {bracket_text(r)}"
    v = f"{r['log2_eta_star']:+.2f}"
    lo, hi = r.get("log2_eta_lo", math.nan), r.get("log2_eta_hi", math.nan)
    return v if pd.isna(lo) or pd.isna(hi) else f"{v} [{lo:+.2f}, {hi:+.2f}]"


def _scheme_name(scheme: str, k: Any, names: Mapping[tuple[str, int], str] | None) -> str:
    """A scheme's display label, or its twins' joint one ("SP = muP") at block depth k."""
    return (names or {}).get((scheme, int(k)), scheme_label(scheme))


def _row_label(
    df: pd.DataFrame, r: Mapping[str, Any], names: Mapping[tuple[str, int], str] | None = None
) -> str:
    parts = [_scheme_name(r["scheme"], r["block_depth"], names)]
    if df["optimizer"].nunique() > 1:
        parts.append(str(r["optimizer"]))
    if df["family"].nunique() > 1:
        parts.append(str(r["family"]))
    parts.append(f"k={int(r['block_depth'])}")
    return ", ".join(parts)


def _stable_cell(r: Mapping[str, Any]) -> str:
    """The largest stable grid rate of a shape; '>=' when it is the top of the grid."""
    v = r["max_stable_log2_lr"]
    if pd.isna(v):
        return "none"
    return f"{'≥' if r.get('max_stable_at_top') else ''}{v:+.2f}"


def _pivot(df: pd.DataFrame, axis: str, cell, label=None, names=None) -> pd.DataFrame:
    """Rows: scheme/optimizer/k (twins under their joint ``names``); columns: values of ``axis``
    (named by label(row) when given, else "L=2" / "n=64"); cells: cell(row) strings."""
    order = {s: i for i, s in enumerate(scheme_order(df["scheme"].unique()))}
    df = df.assign(_o=df["scheme"].map(order)).sort_values(
        ["family", "optimizer", "block_depth", "_o", axis]
    )
    table: dict[str, dict[str, str]] = {}
    for _, r in df.iterrows():
        name = label(r) if label else f"{'L' if axis == 'depth' else 'n'}={int(r[axis])}"
        table.setdefault(_row_label(df, r, names), {})[name] = cell(r)
    out = pd.DataFrame.from_dict(table, orient="index").fillna("")
    out.index.name = "scheme, k"
    return out.reset_index()


def _movement_pivot(a: Analysis) -> pd.DataFrame | None:
    ms = a.movement_slopes
    held = held_value(a.optima, "depth")
    if ms is None or ms.empty or held is None:
        return None
    ms = ms[(ms["axis"] == "depth") & (ms["width"] == held)]
    if ms.empty:
        return None
    wide = wide_mean(ms, list(SERIES), ["role", "stat"], "slope")
    rows = []
    for key, r in wide.iterrows():
        labels = dict(zip(SERIES, key, strict=True))
        row = {"scheme, k": _row_label(ms, labels)}
        for role in role_order(ms["role"].unique()):
            vals = [
                r.get((role, s), np.nan)
                for s in ("own_movement", "weight_change", "total_movement")
            ]
            if not all(pd.isna(v) for v in vals):
                row[role] = " / ".join(_signed(v) or "–" for v in vals)
        rows.append(row)
    return pd.DataFrame(rows).fillna("")


def _config_items(a: Analysis) -> list[str]:
    """Facts of the sweep, read from the table itself (and meta where only it knows)."""
    res, meta = a.results, a.meta
    grid = np.sort(res["log2_lr"].unique())
    steps = np.diff(grid)
    step_text = f" in steps of {steps[0]:g}" if len(steps) and np.allclose(steps, steps[0]) else ""
    seeds = sorted(res["seed"].unique())
    n_rep = len(a.finals)

    def values(col: str) -> str:
        return ", ".join(str(v) for v in sorted(res[col].unique()))

    items = [
        f"schemes: {', '.join(scheme_label(s) for s in sorted(res['scheme'].unique()))}",
        f"model family: {values('family')}; optimizer: {values('optimizer')}",
        f"widths n: {values('width')}; depths L: {values('depth')}; block depth k: {values('block_depth')}",
    ]
    if {"base_width", "base_depth"} <= set(res.columns):
        items.append(f"base shape (n0, L0): {values('base_width')}, {values('base_depth')}")
    items += [
        f"learning-rate grid: log2 lr from {grid[0]:g} to {grid[-1]:g}{step_text} ({len(grid)} rates)",
        f"seeds: {len(seeds)} ({', '.join(str(s) for s in seeds)}); replicas: {n_rep}, "
        f"of which {a.finals['diverged'].mean():.0%} diverged",
        f"steps: {int(res['step'].max())}, {res['step'].nunique()} evaluations per replica; "
        f"final loss = mean of the last {a.last_evals}",
    ]
    if "eliminated_step" in res.columns:  # [elimination] enabled (hptransfer.sweeps.elimination)
        keys = [c for c in ("cell", "scheme", "width", "depth", "block_depth", "log2_lr", "seed")
                if c in res.columns]  # fmt: skip
        stopped = res.loc[res["eliminated_step"].notna(), keys]
        items.append(
            f"early elimination: {len(stopped.drop_duplicates())} replicas stopped before the "
            "last step (rates two or more grid points below their shape's optimum that could "
            "not reach it; their loss held at the stop, never a divergence)"
        )
    if meta.get("device"):
        items.append(f"device: {meta['device']}")
    if meta.get("wall_seconds") is not None:
        rate = meta.get("replica_steps_per_second")
        extra = f", {rate:,.0f} replica-steps per second" if rate else ""
        items.append(f"wall time: {meta['wall_seconds']:.0f} s{extra}")
    if meta.get("versions"):
        items.append("versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()))
    return items


def percent_text(v: float, lo: float, hi: float) -> str:
    """A relative value with its interval in percent ("12.5% [3.0%, 20.1%]"); "diverges" for +inf."""
    if not np.isfinite(v):
        return "diverges" if v == math.inf else ""
    text = f"{v:.1%}"
    if np.isfinite(lo) and np.isfinite(hi):
        text += f" [{lo:.1%}, {hi:.1%}]"
    elif np.isfinite(lo):
        text += f" [{lo:.1%}, +inf]"
    return text


RELATIVE = ("e", "l")  # claims measured as a relative loss change: shown in percent


def claims_display(claims: pd.DataFrame) -> pd.DataFrame:
    """The claims table (:func:`hptransfer.stats.verdicts.claims`) as short strings."""

    def measured(r: Mapping[str, Any]) -> str:
        if pd.isna(r["value"]):
            return ""
        return f"{100 * r['value']:+.1f}%" if r["claim"] in RELATIVE else f"{r['value']:+.2f}"

    def interval(r: Mapping[str, Any]) -> str:
        if pd.isna(r["lo"]) or pd.isna(r["hi"]):
            return ""
        if r["claim"] in RELATIVE:
            return f"[{100 * r['lo']:+.1f}%, {100 * r['hi']:+.1f}%] ({r['interval']})"
        return f"[{r['lo']:+.2f}, {r['hi']:+.2f}] ({r['interval']})"

    return pd.DataFrame(
        {
            "claim": [f"({r['claim']}) {r['statement']}" for _, r in claims.iterrows()],
            "measured": [measured(r) for _, r in claims.iterrows()],
            "interval": [interval(r) for _, r in claims.iterrows()],
            "what": claims["metric"],
            "scale": claims["scale"],
            "horizon": claims["horizon"],
            "verdict": claims["verdict"],
            "why / what would settle it": claims["note"],
        }
    )


COVERAGE_METHODS = {  # calibration method -> what the report prints
    "eta_t": "eta*: t-interval with the asymmetric-fit term (located optimum)",
    "eta_t_parabola": "eta*: t-interval around the parabola vertex alone (not printed)",
    "eta_bracket": "eta*: bracket (censored optimum)",
    "eta_printed": "eta* as printed (t-interval, or bracket if censored)",
    "eta_t_censored": "eta*: t-interval at a censored optimum (not printed)",
    "drift_t": "drift: t over per-seed slopes alone (not printed when censored)",
    "drift_check": "drift as printed and checked (with brackets when censored)",
    "drift_range": "drift with brackets: the bracket slope range alone (censored series)",
    "regret_t": "worst regret as printed and decided (paired, simultaneous over the shapes)",
    "regret_seed_t": "worst regret: t over each seed's own worst regret (before; not printed)",
}


def coverage_display(table: pd.DataFrame) -> pd.DataFrame:
    """The committed coverage table (:func:`hptransfer.stats.calibration.committed_coverage`) per
    planted case and interval method, one column per seed count: "91%", or "67% (not
    calibrated: undercovers)" below the band CALIBRATED and "... conservative)" above it; a
    case without such an interval (nothing censored) has no row."""
    order = {c.name: i for i, c in enumerate(CASES)}
    rows = []
    for (case, method), g in table.groupby(["case", "method"], sort=False):
        if method not in COVERAGE_METHODS:
            continue
        row = {"case": case, "interval": COVERAGE_METHODS[method]}
        for _, r in g.sort_values("n_seeds").iterrows():
            c = float(r["coverage"])
            text = "-" if pd.isna(c) else f"{100 * c:.0f}%"
            if not pd.isna(c) and not CALIBRATED[0] <= c <= CALIBRATED[1]:
                how = "undercovers" if c < CALIBRATED[0] else "conservative"
                text += f" (not calibrated: {how})"
            row[f"{int(r['n_seeds'])} seeds"] = text
        if g["coverage"].notna().any():
            rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    rank = out["case"].map(order).fillna(len(order)) * 100 + out["interval"].map(
        list(COVERAGE_METHODS.values()).index
    )
    return out.iloc[rank.argsort(kind="stable")].reset_index(drop=True)


def false_alarm_text(alarms: pd.DataFrame) -> str:
    """One sentence: how often the regret rule declares a cost >= TRANSFER_REGRET on planted
    sweeps whose true regret is 0 (the committed false-alarm table), before and now."""
    if alarms is None or alarms.empty:
        return ""
    parts = [
        f"{_pct(r['interval_rule'])} with {int(r['n_seeds'])} seeds (the rule before, every "
        f"seed's own worst regret >= {TRANSFER_REGRET:.0%}: {_pct(r['old_rule'])})"
        for _, r in alarms.sort_values("n_seeds").iterrows()
    ]
    cases = ", ".join(sorted(set(alarms["case"])))
    return (
        f"False alarms of the regret rule on planted zero-drift sweeps ({cases}, "
        f"{int(alarms['n_draws'].max())} draws): the base-tuned rate declared to cost >= "
        f"{TRANSFER_REGRET:.0%} in " + "; ".join(parts) + "."
    )


def coverage_markdown(table: pd.DataFrame, alarms: pd.DataFrame | None = None) -> str:
    """docs/coverage.md: the planted cases (:func:`hptransfer.stats.calibration.cases_table`) and the
    coverage table as the report shows it, the regret rule's false alarms (``alarms``:
    :func:`hptransfer.stats.calibration.false_alarm_table`), then every measured number of
    ``table``."""
    cases = cases_table().drop(columns="description")
    full = table.drop(columns=["ci"]).copy()
    for col in ("coverage", "median_width", "mean_error"):
        full[col] = full[col].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    descriptions = "\n".join(f"- `{c.name}`: {c.description}" for c in CASES)
    return (
        "\n\n".join(
            [
                "# Coverage of the nominal intervals on planted sweeps",
                "Generated by `python -m hptransfer.tools.coverage_doc --out hptransfer/data/coverage.csv "
                "--markdown docs/coverage.md`; do not edit by hand. What the cases and methods "
                "mean: [statistics.md](statistics.md).",
                "## Planted cases",
                descriptions,
                markdown_table(cases),
                f"## Coverage of the nominal {round(100 * float(table['ci'].iloc[0]))}% intervals "
                "(as every report's Method section shows it)",
                markdown_table(coverage_display(table)),
                "## False alarms of the regret rule",
                false_alarm_text(alarms) if alarms is not None else "not measured",
                "## Every measurement",
                markdown_table(full),
            ]
        )
        + "\n"
    )


def _method_items(a: Analysis, coverage: pd.DataFrame, alarms: pd.DataFrame) -> list[str]:
    pct = round(100 * a.ci)
    draws = int(coverage["n_draws"].max()) if len(coverage) else 0
    fewer = sorted({int(v) for v in coverage["n_draws"]} - {draws}) if len(coverage) else []
    fewer_text = f", the worst regret on {fewer[0]}" if fewer else ""
    cases = coverage["case"].nunique() if len(coverage) else 0
    return [
        f"Final loss of a replica: mean training loss over its last {a.last_evals} evaluations; "
        "a replica that diverged counts as +inf, and a learning rate where any seed diverged "
        "loses to every finite one.",
        "eta*: argmin of the seed-averaged final loss over the log2 lr grid, refined by the "
        "vertex of a parabola through the argmin and its two neighbours. At the grid edge or "
        "next to a diverging rate it is censored: if the loss is unimodal in log2 lr, the "
        "optimum lies in the bracket [x_{i-1}, x_{i+1}] around the best grid rate x_i, open "
        "past the grid's ends ((-inf, x_2] at the low edge, [x_{n-1}, +inf) at the high edge); "
        "tables show that bracket, never a one-sided bound.",
        false_alarm_text(alarms),
        f"Intervals: the same estimator on each seed's own curve gives per-seed optima, and on "
        f"each seed's optima a per-seed drift slope; with n >= {MIN_SEEDS_T} seeds the interval "
        f"is the estimate +- t(n-1) sd(per-seed values) / sqrt(n), a {pct}% Student-t "
        "interval on n-1 degrees of freedom; an eta* interval is widened to also cover, with "
        "the same half-widths, the optimum of a local fit of a bowl steeper on one side "
        "(5 grid points around the argmin), whose bias the seed spread does not show; "
        "with 2 seeds it is the "
        "range of the 2 values (no calibrated interval exists there; it covers about half the "
        f"time). Measured coverage on {cases} planted cases x {draws} draws each{fewer_text} "
        "(symmetric "
        "and asymmetric bowls, a divergence cliff, optima next to divergence, a coarse grid, "
        "curvature changing with depth; hptransfer/data/coverage.csv, written by python -m "
        "hptransfer.tools.coverage_doc) is in the table below; an interval outside "
        f"{100 * CALIBRATED[0]:.0f}-{100 * CALIBRATED[1]:.0f}% there is not calibrated for "
        "that kind of data.",
        "Drift: OLS slope of log2 eta* against log2 depth (width), in octaves per doubling, "
        "over the shapes with a finite bracket (a censored optimum next to a diverging rate "
        "enters at its best grid rate; one at the grid edge is left out). 'Drift with "
        "brackets': the range of OLS slopes when every censored optimum may lie anywhere in "
        "its bracket; a verdict is inconclusive when that range crosses the threshold.",
        "Training horizon: with a constant learning rate the run read at step t is the t-step "
        f"run, so eta* and drift are recomputed at every evaluation step from the last "
        f"{a.last_evals} evaluations up to t; 'from step t on' = the first step after which "
        "the drift's interval lies inside the band at every later evaluation.",
        "Transfer regret at a shape: (loss at the eta* tuned at the smallest shape of the series, "
        "read off the loss curve in log2 lr) / (best loss at the shape) - 1.",
        "Feature movement: seed mean at the final step at the stable grid rate nearest eta*; "
        "slopes are log-log OLS against depth (own / weight / total). Claim (c) uses one fixed "
        "rate for all depths (the grid rate nearest the shallowest depth's eta*), with a t "
        "interval over per-seed slopes.",
        "Verdict rule (one for every verdict, hptransfer.stats.rules): an interval is judged against "
        "an allowed range: holds inside, fails wholly outside, inconclusive across an end or "
        f"without a t-interval (>= {MIN_SEEDS_T} seeds). Transfer along an axis needs both: "
        "the drift's interval (widened over censored optima) inside +-band, band = "
        f"{TRANSFER_OCTAVES:g} octave / log2(largest / smallest shape) (the fitted line moves "
        f"eta* by less than {TRANSFER_OCTAVES:g} octave over the range: {TRANSFER_SLOPE} per "
        "doubling over 16x, 0.17 over 64x), and the worst regret's interval below "
        f"{TRANSFER_REGRET:.0%} (paired over seeds: each seed's own base optimum read on its own "
        "curves; per-shape t-intervals at a Bonferroni level over the shapes, so the choice of "
        "the worst shape is accounted for). "
        f"Claim (c) holds when the exponent's interval lies within {COLLAPSE:g} +- "
        f"{EXPONENT_BAND:g}, (d) needs NFD's transfer and the paired interval of its hidden_1 "
        f"slope minus depth-muP's at or above {RESTORED}, (e) a paired interval of the relative "
        "loss below 0; "
        f"a shift of the largest stable rate is reported from {STABILITY_SHIFT:g} octave.",
    ]


def _report_blocks(a: Analysis, figures: Mapping[str, Path], run_dir: Path) -> list[_Block]:
    """The report's content, independent of the output format, section by section. Schemes that
    are the same network in this run (:mod:`hptransfer.stats.twins`) get one row and one verdict."""
    twins = twin_groups(a.finals)
    names = twin_labels(twins, {s: scheme_label(s) for _, _, g in twins for s in g})
    card = without_twins(a.scorecard, twins)
    blocks = _summary_blocks(a, card, twins, names)
    for axis in AXES:
        blocks += _axis_blocks(a, card, axis, twins, names)
    blocks += _local_blocks(a, card, names)
    blocks += _movement_blocks(a)
    blocks += _path_blocks(a)
    blocks += _hparams_blocks(a, figures)
    blocks += _figure_blocks(figures)
    blocks += _roofline_blocks(a)
    blocks += _method_blocks(a)
    if a.meta.get("config"):
        blocks += [
            _Block("h2", "Configuration"),
            _Block("code", json.dumps(a.meta["config"], indent=2, default=str)),
        ]
    return blocks


def _claims(a: Analysis) -> pd.DataFrame:
    """The run's claims, and a transformer run's own (:func:`hptransfer.stats.lm_claims.
    transformer_claims`: the best loss at the deepest L, transfer across width)."""
    extra = transformer_claims(a)
    return a.claims if extra.empty else pd.concat([a.claims, extra], ignore_index=True)


def _summary_blocks(
    a: Analysis, card: pd.DataFrame, twins: list, names: Mapping[tuple[str, int], str]
) -> list[_Block]:
    """The title, the claims, the sweep, the verdicts and the scorecard."""
    return [
        _Block("h1", f"hptransfer report: {a.name}"),
        _Block(
            "p", "Does the learning rate tuned at the base shape stay optimal as the network grows?"
        ),
        _Block("h2", "Claims"),
        _Block(
            "p",
            "The paper's claims, each decided from this run's numbers: holds / does not hold "
            "when the interval lies on one side of the threshold (Method), otherwise "
            "inconclusive with what would settle it.",
        ),
        _Block("table", table=claims_display(_claims(a))),
        _Block("h2", "Sweep"),
        _Block("ul", items=tuple(_config_items(a))),
        _Block("h2", "Verdicts"),
        *_twins_blocks(twins, names),
        _Block(
            "ul",
            items=tuple(
                (
                    f"{_scheme_name(r['scheme'], r['block_depth'], names)}, {r['optimizer']}, "
                    f"k={int(r['block_depth'])}",
                    _with_local(r),
                )
                for _, r in card.iterrows()
            ),
        ),
        _Block("h2", "Scorecard"),
        _Block("table", table=scorecard_display(card, names)),
    ]


def _axis_blocks(
    a: Analysis,
    card: pd.DataFrame,
    axis: str,
    twins: list,
    names: Mapping[tuple[str, int], str],
) -> list[_Block]:
    """eta*, the stable range and the transfer regret at every shape along ``axis`` (at the
    held value of the other axis); nothing when the sweep has one value of ``axis``."""
    held = held_value(a.optima, axis)
    if held is None:
        return []
    other = OTHER_AXIS[axis]
    sym = "n" if other == "width" else "L"
    opt = without_twins(a.optima[a.optima[other] == held], twins)
    reg = without_twins(a.regret[(a.regret["axis"] == axis) & (a.regret[other] == held)], twins)
    blocks = [
        _Block("h2", f"Optimal learning rate across {axis} ({sym} = {held})"),
        _Block(
            "p",
            "log2 eta* (octaves) [seed interval: "
            + _interval_header(card)
            + "]; a censored eta* (grid edge or next to a diverging rate) is given as the "
            "bracket that must contain it.",
        ),
        _Block("table", table=_pivot(opt, axis, _eta_cell, names=names)),
    ]
    if "max_stable_log2_lr" in opt:
        blocks += [
            _Block(
                "p",
                "Stable range: log2 of the largest grid rate at which no seed diverged "
                "(>= : the top of the grid is stable, so the range reaches past it).",
            ),
            _Block("table", table=_pivot(opt, axis, _stable_cell, names=names)),
        ]
    if len(reg):
        blocks += [
            _Block("p", f"Transfer regret: extra loss of the rate tuned at the smallest {axis}."),
            _Block("table", table=_pivot(reg, axis, lambda r: _pct(r["regret"]), names=names)),
        ]
    return blocks


def _movement_blocks(a: Analysis) -> list[_Block]:
    """The table of feature-movement slopes against depth, when the run measured movement."""
    mp = _movement_pivot(a)
    if mp is None:
        return []
    return [
        _Block("h2", "Feature movement against depth"),
        _Block(
            "p",
            "Log-log slope against depth of own movement / relative weight change / total "
            "movement per layer role (-0.5 = shrinks like L^-1/2).",
        ),
        _Block("table", table=mp),
    ]


def _figure_blocks(figures: Mapping[str, Path]) -> list[_Block]:
    """The learning-rate figures (:data:`hptransfer.reports.figures.FIGURES`) with captions."""
    lr_figures = {n: p for n, p in figures.items() if n in FIGURES}
    if not lr_figures:
        return []
    blocks = [_Block("h2", "Figures")]
    for name, path in lr_figures.items():
        blocks += [
            _Block("fig", FIGURES[name].title, path=path),
            _Block("p", FIGURE_CAPTIONS.get(name, "")),
        ]
    return blocks


def _roofline_blocks(a: Analysis) -> list[_Block]:
    """Achieved rates against the device's measured roofs (:mod:`hptransfer.sweeps.costmodel`),
    when the run measured them."""
    if not a.meta.get("device_peaks"):
        return []
    from hptransfer.sweeps.costmodel import roofline

    roof = roofline(a.meta.get("cells", []), a.meta["device_peaks"])
    if not len(roof):
        return []
    return [_Block("h2", "Where the time goes"), _Block("table", table=roof)]


def _method_blocks(a: Analysis) -> list[_Block]:
    """How every number is computed, and the committed coverage of the intervals
    (:func:`hptransfer.stats.calibration.committed_coverage`)."""
    coverage = committed_coverage()
    alarms = committed_false_alarm()
    return [
        _Block("h2", "Method"),
        _Block("ul", items=tuple(i for i in _method_items(a, coverage, alarms) if i)),
        _Block(
            "p",
            f"Measured coverage of the nominal {round(100 * float(coverage['ci'].iloc[0]))}% "
            "intervals per planted case (hptransfer.stats.calibration)"
            + (
                ""
                if math.isclose(float(coverage["ci"].iloc[0]), a.ci)
                else f"; this report's intervals are {round(100 * a.ci)}%, so it does not apply"
            )
            + ":",
        ),
        _Block("table", table=coverage_display(coverage)),
    ]


def _with_local(r: Mapping[str, Any]) -> str:
    """A row's verdict with its local-drift sentence appended (the verdict itself unchanged)."""
    local = r.get("local_verdict")
    return f"{r['verdict']} {local}" if isinstance(local, str) and local else str(r["verdict"])


def _shift_cell(r: Mapping[str, Any]) -> str:
    """ "1.00 [0.94, 1.06] @L=64" (the largest shift from the base depth, its seed interval of
    the per-seed maxima) or, with censored optima, "in [min, max] (brackets)"."""
    v = r.get("max_shift_depth", math.nan)
    smin, smax = r.get("max_shift_depth_min", math.nan), r.get("max_shift_depth_max", math.nan)
    if v is None or pd.isna(v):
        return "" if pd.isna(smin) else f"in [{smin:.2f}, {smax:.2f}] (brackets)"
    lo, hi = r.get("max_shift_depth_lo", math.nan), r.get("max_shift_depth_hi", math.nan)
    text = f"{v:.2f}" + ("" if pd.isna(lo) or pd.isna(hi) else f" [{lo:.2f}, {hi:.2f}]")
    kind = r.get("max_shift_depth_interval")
    if kind and kind != "t" and not pd.isna(lo):
        text += f" ({kind})"
    if not pd.isna(smin) and smin < smax:
        text += f"; brackets [{smin:.2f}, {smax:.2f}]"
    at = r.get("max_shift_depth_at")
    return text + ("" if at is None or pd.isna(at) else f" @L={int(at)}")


def _local_slope_cell(r: Mapping[str, Any]) -> str:
    """A local slope with the interval a decision reads (intervals.checked_interval): "-1.00
    [-1.01, -0.99]", "(range)" for 2 seeds, "with brackets" when an optimum is censored, or
    "in [min, max] (brackets)" when the slope rests on brackets alone."""
    v, lo, hi = r["slope"], r["check_lo"], r["check_hi"]
    if pd.isna(v):
        return "" if pd.isna(lo) else f"in [{lo:+.2f}, {hi:+.2f}] (brackets)"
    kind = str(r.get("interval", "t"))
    if int(r.get("n_censored", 0) or 0) and r["slope_min"] < r["slope_max"]:
        kind = f"{kind}, with brackets"
    return _slope_ci(v, lo, hi, kind)


def local_drift_display(
    local: pd.DataFrame, card: pd.DataFrame, names: Mapping[tuple[str, int], str] | None = None
) -> pd.DataFrame:
    """The local-drift table of the report: one row per scorecard row (scheme, k), one column
    per consecutive depth pair, the deepest-half slope, the largest shift from the base depth
    and the curvature test; ``local`` = the local_drift rows at the held width."""
    rows = []
    pairs = local[local["kind"] == "pair"]
    labels = {
        (a, b): f"L {a}→{b}"
        for a, b in sorted(set(zip(pairs["depth_from"], pairs["depth_to"], strict=True)))
    }
    for r in card.to_dict("records"):
        sel = rows_where(local, {k: r[k] for k in SERIES})
        if sel.empty:
            continue
        row = {"scheme": _scheme_name(r["scheme"], r["block_depth"], names)}
        if card["optimizer"].nunique() > 1:
            row["optimizer"] = r["optimizer"]
        row["k"] = str(int(r["block_depth"]))
        cells = {
            (int(p["depth_from"]), int(p["depth_to"])): _local_slope_cell(p)
            for p in sel[sel["kind"] == "pair"].to_dict("records")
        }
        row |= {label: cells.get(key, "") for key, label in labels.items()}
        deep = sel[sel["kind"] == "deep_half"]
        row["deepest-half slope"] = (
            f"{_local_slope_cell(deep.iloc[0])} (L={int(deep['depth_from'].iloc[0])}-"
            f"{int(deep['depth_to'].iloc[0])})"
            if len(deep)
            else ""
        )
        row["largest shift (oct)"] = _shift_cell(r)
        curv = r.get("curvature_depth", math.nan)
        kind = r.get("curvature_depth_interval")
        row["curvature (oct/doubling per doubling)"] = (
            ""
            if pd.isna(curv)
            else _slope_ci(curv, r["curvature_depth_lo"], r["curvature_depth_hi"], str(kind))
            + f": {r['curvature_depth_test']}"
        )
        rows.append(row)
    return pd.DataFrame(rows)


def _local_blocks(a: Analysis, card: pd.DataFrame, names) -> list[_Block]:
    """The section "Local drift across depth" (hptransfer.stats.local_drift), at the held width."""
    held = held_value(a.optima, "depth")
    if a.local_drift is None or held is None or "curvature_depth" not in card:
        return []
    local = a.local_drift[a.local_drift["width"] == held]
    table = local_drift_display(local, card, names)
    if table.empty:
        return []
    return [
        _Block("h2", f"Local drift across depth (n = {held})"),
        _Block(
            "p",
            "Slope of log2 eta* between consecutive depths and by OLS over the deepest half of "
            f"the depth range (octaves per doubling of depth) [{_interval_header(card)}; the "
            "bracket range where an optimum is censored]; the largest shift of eta* from the "
            "base depth, max over L of |log2 eta*(L) - log2 eta*(base)| (interval over each "
            "seed's own maximum); the curvature, 2c of a quadratic in log2 L (the change of "
            "the local slope per doubling): curved when its t-interval excludes 0. "
            f"A slope within +-{TRANSFER_SLOPE} is flat.",
        ),
        _Block("table", table=table),
    ]


def _twins_blocks(twins: Sequence[tuple[str, int, tuple[str, ...]]], names) -> list[_Block]:
    """One sentence per set of twins: which schemes are the same network here, at which k."""
    ks: dict[str, list[int]] = {}
    for _, k, group in twins:
        ks.setdefault(names[(group[0], k)], []).append(k)
    return [
        _Block(
            "p",
            f"{label}: the same network in this run at k = {', '.join(map(str, sorted(set(k))))} "
            "(equal results at every shape, rate and seed), so one row and one verdict stand "
            "for them.",
        )
        for label, k in ks.items()
    ]


def _series_label(r: Mapping[str, Any]) -> str:
    return f"{scheme_label(r['scheme'])}, {r['optimizer']}, k={int(r['block_depth'])}"


def _drift_cells(r: Mapping[str, Any]) -> dict[str, str]:
    """drift [interval], verdict word and censoring of one drift row."""
    kind = str(r.get("interval", "t"))
    smin, smax = r.get("slope_min", math.nan), r.get("slope_max", math.nan)
    return {
        "drift / doubling": _checked_slope_ci(
            r["slope"], r["slope_lo"], r["slope_hi"], kind, smin, smax
        ),
        "verdict": axis_verdict(r),
        "censored": _fmt_num(r.get("n_censored")),
    }


def _base_point(opt: pd.DataFrame) -> str:
    """The label of the path's first point ("n=16, L=2")."""
    base = opt.loc[opt["path_index"].idxmin()]
    return point_label(base["width"], base["depth"])


def _path_blocks(a: Analysis) -> list[_Block]:
    """The section along model.path (nothing without a path): the drift of eta* per series,
    then eta*, the largest stable rate and the base-tuned regret at every path point."""
    if a.path_drift is None or a.path_drift.empty:
        return []
    per_point: list[_Block] = []
    opt = a.path_optima
    if opt is not None and len(opt):
        point = lambda r: r["point"]  # noqa: E731
        per_point += [
            _Block(
                "p",
                "log2 eta* (octaves) at every path point [seed interval: "
                + _interval_header(a.scorecard)
                + "]; a censored eta* is given as the bracket that must contain it.",
            ),
            _Block("table", table=_pivot(opt, "path_index", _eta_cell, point)),
            _Block(
                "p",
                "Stable range: log2 of the largest grid rate at which no seed diverged "
                "(>= : the top of the grid is stable, so the range reaches past it).",
            ),
            _Block("table", table=_pivot(opt, "path_index", _stable_cell, point)),
        ]
    reg = a.path_regret
    if reg is not None and len(reg):
        worst = reg.groupby(list(SERIES), sort=False)
        reg = reg.assign(worst=worst["regret"].transform("max"))
        table = _pivot(reg, "path_index", lambda r: _pct(r["regret"]), lambda r: r["point"])
        table["worst"] = _pivot(reg, "path_index", lambda r: _pct(r["worst"]), lambda r: "w")["w"]
        per_point += [
            _Block(
                "p",
                f"Transfer regret along the path: extra loss of the rate tuned at the first "
                f"point ({_base_point(a.path_optima)}), read off "
                f"each point's loss curve; transfers needs a worst regret < "
                f"{TRANSFER_REGRET:.0%}.",
            ),
            _Block("table", table=table),
        ]
    gamma = float(a.path_drift["gamma"].iloc[0])
    rows = [
        {"series": _series_label(r), "n": f"{int(r['n_min'])}-{int(r['n_max'])}"} | _drift_cells(r)
        for _, r in a.path_drift.iterrows()
    ]
    return [
        _Block("h2", "Optimal learning rate along the model path"),
        _Block(
            "p",
            f"Drift of log2 eta* per doubling of the width n along the path, with the depth L "
            f"growing by 2^{gamma:.2f} at each doubling (L ~ n^{gamma:.2f}); seed interval in "
            f"brackets; verdict: transfers when the interval (widened over censored points) lies "
            f"within +-{TRANSFER_SLOPE}, drifts when it lies beyond.",
        ),
        _Block("table", table=pd.DataFrame(rows)),
        *per_point,
    ]


def _shape_text(value: Any) -> str:
    """A shape axis's value as shown: a number in %g, or a name (the schedule kind)."""
    return value if isinstance(value, str) else f"{float(value):g}"


def _hparams_blocks(a: Analysis, figures: Mapping[str, Path]) -> list[_Block]:
    """The section "Hyperparameters beyond the learning rate" (nothing without axes): drift of
    every axis's optimum, joint regret, eta* per shape-axis value, the axis figures."""
    h = a.hparams
    if h is None:
        return []
    optima = at_default_conditions(h.optima, h.design)
    drift = at_default_conditions(h.drift, h.design)
    rows = []
    for (label, name), d in drift.groupby(["group", "hparam"], sort=False):
        opt = optima[(optima["group"] == label) & (optima["hparam"] == name)]
        for axis in AXES:
            other = OTHER_AXIS[axis]
            held = held_value(opt, axis)
            if held is None or other not in d:
                continue
            sym = "n" if other == "width" else "L"
            for _, r in d[(d["axis"] == axis) & (d[other] == held)].iterrows():
                rows.append(
                    {"axis": name, "group": label, "series": _series_label(r),
                     "along": f"{axis} ({sym} = {held})"} | _drift_cells(r)
                )  # fmt: skip
    if h.path_drift is not None and len(h.path_drift):
        for _, r in at_default_conditions(h.path_drift, h.design).iterrows():
            rows.append(
                {"axis": r["hparam"], "group": r["group"], "series": _series_label(r),
                 "along": f"path (L ~ n^{float(r['gamma']):.2f})"} | _drift_cells(r)
            )  # fmt: skip
    units = ", ".join(f"{n}: {ax.unit}" for n, ax in h.axes.items())
    blocks = [
        _Block("h2", "Hyperparameters beyond the learning rate"),
        _Block(
            "p",
            "The learning-rate sections above read only the points where every other axis is at "
            "its default. Here each group of axes is searched jointly at every shape; the "
            "optimum of each axis drifts by the slope of its value against log2 depth (width, "
            f"path), in its own unit per doubling ({units}; log2 axes in octaves). Verdict: "
            f"transfers when the drift's t-interval (widened over censored optima) lies within "
            f"+-{TRANSFER_SLOPE}, drifts when it lies wholly beyond, inconclusive otherwise.",
        ),
    ]
    if rows:
        blocks.append(_Block("table", table=pd.DataFrame(rows)))
    worst = at_default_conditions(worst_joint_regret(h.regret), h.design)
    if len(worst):
        table = pd.DataFrame(
            {"group": r["group"], "series": _series_label(r), "worst joint regret": _pct(r["regret"]),
             "at": f"n={int(r['at_width'])}, L={int(r['at_depth'])}"}
            for _, r in worst.iterrows()
        )  # fmt: skip
        blocks += [
            _Block(
                "p",
                "Joint regret: the grid point that is best at the base shape, all of the "
                "group's axes together, used at every other shape: its seed-mean loss over "
                f"that shape's best in the group, minus 1 (transfer: < {_pct(TRANSFER_REGRET)}).",
            ),
            _Block("table", table=table),
        ]
    shape = h.shape_drift
    if shape is not None and len(shape) and "axis" in shape:
        shape = shape[shape["axis"] == "depth"]
        table = pd.DataFrame(
            {"shape axis": r["shape_axis"], "value": _shape_text(r["shape_value"]),
             "series": _series_label(r), "at width": _fmt_num(r.get("width"))}
            | _drift_cells(r)
            for _, r in shape.iterrows()
        )  # fmt: skip
        if len(table):
            blocks += [
                _Block(
                    "p",
                    "eta* at each value of a shape axis (every other axis at its default): "
                    "drift of log2 eta* per doubling of depth.",
                ),
                _Block("table", table=table),
            ]
    named = axis_figure_names(h)
    for name, path in figures.items():
        if name in named:
            title, kind = named[name]
            blocks += [_Block("fig", title, path=path), _Block("p", AXIS_CAPTIONS[kind])]
    return blocks


# --------------------------------------------------------------------------------------------
# Rendering


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of ``df`` (values formatted, "|" escaped)."""
    cols = [str(c) for c in df.columns]

    def cell(v: Any) -> str:
        return _fmt_num(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(c.replace("|", "\\|") for c in cols) + " |"]
    lines.append("|" + "|".join("---" for _ in cols) + "|")
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)


def _render_md(blocks: Sequence[_Block], run_dir: Path) -> str:
    out = []
    for b in blocks:
        if b.kind == "h1":
            out.append(f"# {b.text}")
        elif b.kind == "h2":
            out.append(f"## {b.text}")
        elif b.kind == "p":
            out.append(b.text)
        elif b.kind == "ul":
            out.append(
                "\n".join(
                    f"- **{i[0]}**: {i[1]}" if isinstance(i, tuple) else f"- {i}" for i in b.items
                )
            )
        elif b.kind == "table":
            out.append(markdown_table(b.table))
        elif b.kind == "fig":
            rel = b.path.relative_to(run_dir).as_posix()
            out.append(f"### {b.text}\n\n![{b.text}]({rel})")
        elif b.kind == "code":
            out.append(
                f"<details><summary>sweep config</summary>\n\n```json\n{b.text}\n```\n\n</details>"
            )
    return "\n\n".join(out) + "\n"


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1280px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.88em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.55em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
tr:nth-child(even) td { background: #fafafa; }
img { max-width: 100%; border: 1px solid #eee; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
"""


def _html_table(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt_num(v))}</td>" for v in row) + "</tr>"
        for row in df.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _render_html(blocks: Sequence[_Block]) -> str:
    esc = html.escape
    out = []
    title = next((b.text for b in blocks if b.kind == "h1"), "hptransfer report")
    for b in blocks:
        if b.kind in ("h1", "h2"):
            out.append(f"<{b.kind}>{esc(b.text)}</{b.kind}>")
        elif b.kind == "p":
            out.append(f"<p>{esc(b.text)}</p>")
        elif b.kind == "ul":
            items = (
                f"<li><b>{esc(i[0])}</b>: {esc(i[1])}</li>"
                if isinstance(i, tuple)
                else f"<li>{esc(i)}</li>"
                for i in b.items
            )
            out.append("<ul>" + "".join(items) + "</ul>")
        elif b.kind == "table":
            out.append(_html_table(b.table))
        elif b.kind == "fig":
            data = base64.b64encode(b.path.read_bytes()).decode("ascii")
            out.append(
                f'<h3>{esc(b.text)}</h3><img alt="{esc(b.text)}" src="data:image/png;base64,{data}">'
            )
        elif b.kind == "code":
            out.append(
                f"<details><summary>sweep config</summary><pre>{esc(b.text)}</pre></details>"
            )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f"<style>{_CSS}</style></head><body>\n" + "\n".join(out) + "\n</body></html>\n"
    )


# --------------------------------------------------------------------------------------------
# Public API


def write_report(run_dir: str | Path, *, last_evals: int = 3) -> Path:
    """Analyse a sweep directory and write run_dir/report.md, run_dir/report.html and the
    figures under run_dir/figures/; returns the path of report.md."""
    run_dir = Path(run_dir)
    a = analyze_run(run_dir, last_evals=last_evals)
    figures = make_figures(a, run_dir / FIGURE_DIR)
    if a.hparams is not None:  # axes beyond the learning rate
        figures |= make_axis_figures(a.hparams, run_dir / FIGURE_DIR)
    blocks = _report_blocks(a, figures, run_dir)
    md_path = run_dir / "report.md"
    md_path.write_text(_render_md(blocks, run_dir), encoding="utf-8")
    (run_dir / "report.html").write_text(_render_html(blocks), encoding="utf-8")
    return md_path


def _run_names(run_dirs: Sequence[Path], analyses: Sequence[Analysis]) -> list[str]:
    """The config name of each run, or its directory name where names are missing or repeat."""
    names = [a.meta.get("config", {}).get("name") for a in analyses]
    if any(n is None for n in names) or len(set(names)) < len(names):
        names = [p.name or str(p) for p in run_dirs]
    if len(set(names)) < len(names):
        names = [str(p) for p in run_dirs]
    if len(set(names)) < len(names):
        names = [f"{n}#{i + 1}" for i, n in enumerate(names)]
    return [str(n) for n in names]


def compare(run_dirs: Sequence[str | Path], **kwargs: Any) -> pd.DataFrame:
    """The scorecards of several sweep directories stacked, with a leading ``run`` column.
    Keyword arguments go to :func:`hptransfer.stats.analysis.analyze` (last_evals, ci)."""
    paths = [Path(p) for p in run_dirs]
    if not paths:
        raise ValueError("compare needs at least one run directory")
    analyses = [analyze_run(p, **kwargs) for p in paths]
    frames = [
        a.scorecard.assign(run=name)
        for a, name in zip(analyses, _run_names(paths, analyses), strict=True)
    ]
    card = pd.concat(frames, ignore_index=True)
    return card[["run", *[c for c in card.columns if c != "run"]]]


def compare_markdown(run_dirs: Sequence[str | Path], **kwargs: Any) -> str:
    """:func:`compare` as Markdown: a scorecard table with a `run` column, then the verdicts."""
    card = compare(run_dirs, **kwargs)
    lines = [markdown_table(scorecard_display(card)), ""]
    for _, r in card.iterrows():
        lines.append(
            f"- **{r['run']}: {scheme_label(r['scheme'])}, {r['optimizer']}, "
            f"k={int(r['block_depth'])}**: {r['verdict']}"
        )
    return "\n".join(lines) + "\n"


def format_table(df: pd.DataFrame, max_colwidth: int = 48) -> str:
    """An aligned plain-text table for the terminal: numbers formatted, long cells cut with "…".

    A scorecard (it has a ``verdict`` column) is shown in its display form with the verdicts
    listed in full below the table.
    """
    verdicts: list[str] = []
    if "verdict" in df.columns and "scheme" in df.columns:
        verdicts = [
            f"{(r['run'] + ': ') if 'run' in df else ''}{scheme_label(r['scheme'])}, "
            f"{r['optimizer']}, k={int(r['block_depth'])}: {r['verdict']}"
            for _, r in df.iterrows()
        ]
        df = scorecard_display(df)

    def cut(s: str) -> str:
        return s if len(s) <= max_colwidth else s[: max_colwidth - 1] + "…"

    cols = [cut(str(c)) for c in df.columns]
    cells = [[cut(_fmt_num(v)) for v in row] for row in df.itertuples(index=False)]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(cols)]
    numeric = [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    out = [line(cols), line(["-" * w for w in widths]), *(line(r) for r in cells)]
    if verdicts:
        out += ["", *verdicts]
    return "\n".join(out)
