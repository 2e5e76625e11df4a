"""Verdicts from numbers: the scorecard, the paper's claims, the horizon of transfer, CI metrics.

Everything here is structured data computed from the tables of :mod:`hptransfer.stats.tables`;
wording lives in the verdict strings only, layout in :mod:`hptransfer.reports.report`.

A drift is counted in octaves of eta* (one octave = a factor 2) per doubling of depth or width,
i.e. the slope of log2 eta* against log2 L. Transfer along an axis means |drift| <
TRANSFER_SLOPE and the base-tuned rate costs < TRANSFER_REGRET extra loss everywhere. A claim is
decided only by a calibrated interval (>= 3 seeds, :mod:`hptransfer.stats.intervals`): "holds" when
the interval lies on the claimed side of the threshold, "does not hold" when it lies on the
other side, "inconclusive" otherwise (with what would settle it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from hptransfer.network.schemes import scheme_label
from hptransfer.stats.columns import METRIC_KEYS, SERIES
from hptransfer.stats.frames import wide_mean
from hptransfer.stats.hparams import LR, at_default_conditions, group_label, worst_joint_regret
from hptransfer.stats.intervals import (
    MIN_SEEDS_T,
    T_INTERVAL,
    abs_interval,
    checked_interval,
    interval_label,
    seed_interval,
    worst_interval,
)
from hptransfer.stats.local_drift import at_held_width
from hptransfer.stats.optimum import refine
from hptransfer.stats.rules import (
    EXPONENT_BAND,
    MOVEMENT_SLOPE,
    TRANSFER_OCTAVES,
    TRANSFER_REGRET,
    TRANSFER_SLOPE,
    direction,
    drift_band,
    exponent_outcome,
    interval_outcome,
    transfer_outcome,
)
from hptransfer.stats.rules import FAILS as FAILS_RULE
from hptransfer.stats.rules import HOLDS as HOLDS_RULE
from hptransfer.stats.rules import INCONCLUSIVE as INCONCLUSIVE_RULE
from hptransfer.stats.tables import (
    AXES,
    OTHER_AXIS,
    fit_interval,
    fixed_lr_slopes,
    fmt_edges,
    held_value,
    rows_where,
)
from hptransfer.stats.tables import scheme_order as _scheme_order

# An Analysis (hptransfer.stats.analysis) is read by attribute; it is not imported here because the
# analysis module imports this one.
Analysis = Any

COLLAPSE = -0.5  # claim (c): hidden_1's own movement slope against depth, within EXPONENT_BAND
RESTORED = 0.2  # claim (d): NFD's hidden_1 slope at least this far above depth-muP's
STABILITY_SHIFT = 1.0  # octaves the largest stable learning rate must move to be reported
HOLDS, FAILS, INCONCLUSIVE, NOT_MEASURED = "holds", "does not hold", "inconclusive", "not measured"


# --------------------------------------------------------------------------------------------
# The training horizon


def _from_step(steps: np.ndarray, ok: np.ndarray):
    """The first step from which ``ok`` holds at every later step; None if not at the last."""
    if not len(ok) or not ok[-1]:
        return None
    bad = np.flatnonzero(~ok)
    return int(steps[bad[-1] + 1]) if len(bad) else int(steps[0])


# --------------------------------------------------------------------------------------------
# Scorecard


def regret_interval(
    shapes: pd.DataFrame | None, point: float, axis: str, ci: float = 0.9
) -> dict[str, float]:
    """regret_<axis>_lo / _hi / _seeds: the interval of the worst transfer regret over the
    non-base shapes of one series, from each seed's regret at each shape on its own curves
    with its own base optimum (``shapes``: rows of :func:`hptransfer.stats.tables.seed_shape_regret`,
    paired by seed): :func:`hptransfer.stats.intervals.worst_interval` (per-shape t-intervals at a
    Bonferroni level over the shapes, so the choice of the worst shape is accounted for),
    stretched to hold ``point`` (the worst regret read on the seed-mean curves, which the
    tables print). NaN without >= 3 seeds."""
    out = {f"regret_{axis}_lo": math.nan, f"regret_{axis}_hi": math.nan, f"regret_{axis}_seeds": 0}
    if shapes is None or shapes.empty:
        return out
    wide = shapes.pivot_table(index="seed_index", columns="shape", values="regret", dropna=False)
    _, lo, hi, n = worst_interval(wide.to_numpy(float), ci, point=point)
    return out | {f"regret_{axis}_lo": lo, f"regret_{axis}_hi": hi, f"regret_{axis}_seeds": n}


def transfer_columns(row: Mapping[str, Any], axis: str, band: float) -> dict[str, Any]:
    """The transfer decision of one axis of a scorecard row (:func:`hptransfer.stats.rules.
    transfer_outcome`): drift_<A>_band, drift_<A>_check_lo / _hi (the drift interval the
    decision reads: the seed t-interval widened over censored optima by
    :func:`hptransfer.stats.intervals.checked_interval`; NaN without a t-interval), transfer_<A>
    (holds / fails / inconclusive), transfer_<A>_drift and transfer_<A>_cost (its parts).
    A shape along A where every rate diverged leaves the axis inconclusive."""
    slope = float(row.get(f"drift_{axis}", math.nan))
    d_lo, d_hi = math.nan, math.nan
    if row.get(f"drift_{axis}_interval") == T_INTERVAL:
        d_lo, d_hi = checked_interval(
            slope,
            float(row[f"drift_{axis}_lo"]),
            float(row[f"drift_{axis}_hi"]),
            float(row.get(f"drift_{axis}_min", slope)),
            float(row.get(f"drift_{axis}_max", slope)),
        )
    t = transfer_outcome(
        d_lo, d_hi, row.get(f"regret_{axis}_lo", math.nan),
        row.get(f"regret_{axis}_hi", math.nan), band,
    )  # fmt: skip
    outcome = t.outcome
    dead = row.get(f"all_diverged_{axis}")
    if isinstance(dead, str) and dead:  # eta* unknown at a shape: the axis is not decided
        outcome = INCONCLUSIVE_RULE
    return {
        f"drift_{axis}_band": band,
        f"drift_{axis}_check_lo": d_lo,
        f"drift_{axis}_check_hi": d_hi,
        f"transfer_{axis}": outcome,
        f"transfer_{axis}_drift": t.drift,
        f"transfer_{axis}_cost": t.cost,
    }


def horizon_steps(h: pd.DataFrame, axis: str, band: float) -> dict[str, Any]:
    """The training horizon of one series along one axis (``h``: its rows of
    :func:`hptransfer.stats.tables.horizon_drift`, one per evaluation step), decided by
    :func:`hptransfer.stats.rules.direction` on each step's drift interval (widened over censored
    optima; no t-interval: unclear): transfer_from_step_<A> (the first step from which the
    interval lies inside (-band, band) at every later step; None when not at the last),
    drift_from_step_<A> (from which it lies wholly outside), last_step."""
    h = h.sort_values("step")
    steps = h["step"].to_numpy()
    states = []
    for r in h.to_dict("records"):
        states.append(direction(*fit_interval(r), band))
    states = np.array(states)
    return {
        f"transfer_from_step_{axis}": _from_step(steps, states == "flat"),
        f"drift_from_step_{axis}": _from_step(steps, np.isin(states, ["falls", "rises"])),
        "last_step": int(steps[-1]),
    }


def _shape_label(r: Mapping[str, Any], show_width: bool, show_depth: bool) -> str:
    parts = ([f"n={int(r['width'])}"] if show_width else []) + (
        [f"L={int(r['depth'])}"] if show_depth else []
    )
    return " ".join(parts) or "base"


def scorecard(
    optima: pd.DataFrame,
    drift_table: pd.DataFrame,
    regret_table: pd.DataFrame,
    movement_slope_table: pd.DataFrame | None = None,
    fixed_slopes: pd.DataFrame | None = None,
    horizon: pd.DataFrame | None = None,
    ci: float = 0.9,
    seed_regrets: pd.DataFrame | None = None,
    path_summary: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per (family, scheme, optimizer, block_depth), each axis summarised at the held
    value of the other (:func:`hptransfer.stats.tables.held_value`), with a verdict (:func:`verdict`).
    With a model path, the columns of :func:`hptransfer.stats.path_transfer.path_summary` (paths,
    drift_path, regret_path, ...) join each row and its verdict reads them.

    Per axis A in {depth, width} (when the sweep has >= 2 values of A): at_<other>, <A>s,
    <A>_min, <A>_max, n_<A>; drift_<A> (OLS over uncensored shapes), drift_<A>_lo / _hi and
    drift_<A>_interval (seed interval and its method), drift_<A>_min / _max (slope range with
    censored optima anywhere in their brackets), censored_<A> (count), spread_<A>, regret_<A>,
    regret_<A>_at, edges_grid_<A> / edges_div_<A>, transfer_from_step_<A> /
    transfer_from_step_ci_<A> and last_step. Then best_loss_deepest, h1_own_slope_at_eta /
    h1_weight_slope_at_eta (movement at each depth's eta*), h1_own_slope_fixed_lr (+ _lo/_hi)
    and h1_weight_slope_fixed_lr (one learning rate for all depths), stable_shift_depth,
    n_seeds, edge_flags, all_diverged_at, divergence_flags, verdict. all_diverged_<A> ("L=8"):
    the shapes along A where every rate diverged (eta* unknown: the axis is left undecided and
    :func:`suite_metrics` leaves its metrics out, so the check reports them missing).
    """
    show_w = optima["width"].nunique() > 1
    show_d = optima["depth"].nunique() > 1
    held = {a: held_value(optima, a) for a in AXES}
    ms = movement_slope_table if movement_slope_table is not None else pd.DataFrame()
    rows = []
    for key, g in optima.groupby(list(SERIES), sort=False):
        row: dict[str, Any] = dict(zip(SERIES, key, strict=True))
        for axis in AXES:
            if held[axis] is None:
                continue
            s = g[g[OTHER_AXIS[axis]] == held[axis]].sort_values(axis)
            sel = {k: row[k] for k in SERIES} | {OTHER_AXIS[axis]: held[axis], "axis": axis}
            row |= _axis_columns(s, sel, axis, drift_table, regret_table, seed_regrets, ci)
            h = rows_where(horizon, sel) if horizon is not None else pd.DataFrame()
            if len(h):
                row |= horizon_steps(h, axis, row[f"drift_{axis}_band"])
            if axis == "depth":
                row |= _depth_columns(s, sel, ms, fixed_slopes)
        row |= _series_columns(g, regret_table, row, show_w, show_d, ci)
        row |= _path_columns(row, path_summary, seed_regrets, ci)
        rows.append(row)
    card = pd.DataFrame(rows)
    if card.empty:
        return card
    for axis in AXES:
        for col in (f"regret_{axis}_at", f"{axis}_min", f"{axis}_max", f"at_{OTHER_AXIS[axis]}"):
            if col in card:
                card[col] = card[col].astype("Int64")
    card["verdict"] = [verdict(r) for r in card.to_dict("records")]
    order = {s: i for i, s in enumerate(_scheme_order(card["scheme"].unique()))}
    card = card.sort_values(
        ["family", "optimizer", "block_depth", "scheme"],
        key=lambda c: c.map(order) if c.name == "scheme" else c,
    )
    return card.reset_index(drop=True)


def _axis_columns(
    s: pd.DataFrame,
    sel: Mapping[str, Any],
    axis: str,
    drift_table: pd.DataFrame,
    regret_table: pd.DataFrame,
    seed_regrets: pd.DataFrame | None,
    ci: float,
) -> dict[str, Any]:
    """A scorecard row's columns of one axis (``s``: the series' optima along it at the held
    value of the other): its range, drift with interval and brackets, worst regret with
    interval, censored edges and the transfer decision (:func:`transfer_columns`)."""
    other = OTHER_AXIS[axis]
    d = rows_where(drift_table, sel)
    r = rows_where(regret_table, sel)
    row: dict[str, Any] = {f"at_{other}": sel[other]}
    row[f"{axis}s"] = f"{int(s[axis].min())}-{int(s[axis].max())}" if len(s) else None
    row[f"{axis}_min"] = int(s[axis].min()) if len(s) else None
    row[f"{axis}_max"] = int(s[axis].max()) if len(s) else None
    row[f"n_{axis}"] = int(s[axis].nunique())
    dead = s.loc[s["edge_cause"] == "all_diverged", axis]
    sym = _WORDS[axis][0]
    row[f"all_diverged_{axis}"] = ", ".join(f"{sym}={int(v)}" for v in dead)
    drow = d.iloc[0] if len(d) else None
    for name, col in (
        ("", "slope"),
        ("_lo", "slope_lo"),
        ("_hi", "slope_hi"),
        ("_min", "slope_min"),
        ("_max", "slope_max"),
    ):
        row[f"drift_{axis}{name}"] = float(drow[col]) if drow is not None else math.nan
    row[f"drift_{axis}_interval"] = drow["interval"] if drow is not None else "none"
    row[f"drift_{axis}_seeds"] = int(drow["n_seed_slopes"]) if drow is not None else 0
    row[f"censored_{axis}"] = int(drow["n_censored"]) if drow is not None else 0
    row[f"spread_{axis}"] = float(drow["spread"]) if drow is not None else math.nan
    if len(r) and r["regret"].notna().any():
        worst = r.loc[r["regret"].fillna(-1.0).idxmax()]
        row[f"regret_{axis}"] = float(worst["regret"])
        row[f"regret_{axis}_at"] = int(worst[axis])
    else:
        row[f"regret_{axis}"], row[f"regret_{axis}_at"] = math.nan, None
    row |= regret_interval(rows_where(seed_regrets, sel), row[f"regret_{axis}"], axis, ci)
    row[f"edges_grid_{axis}"] = fmt_edges(s, axis, "grid")
    row[f"edges_div_{axis}"] = fmt_edges(s, axis, "divergence")
    return row | transfer_columns(row, axis, drift_band(row[f"{axis}_min"], row[f"{axis}_max"]))


def _depth_columns(
    s: pd.DataFrame,
    sel: Mapping[str, Any],
    movement_slopes: pd.DataFrame,
    fixed_slopes: pd.DataFrame | None,
) -> dict[str, Any]:
    """The depth axis's extra columns: the shift of the largest stable rate, the best loss at
    the deepest depth, and hidden_1's movement slopes (at each depth's eta*, and at one fixed
    rate with its interval)."""
    row: dict[str, Any] = {}
    if len(s):
        first, last = s.iloc[0], s.iloc[-1]
        row["stable_shift_depth"] = float(last["max_stable_log2_lr"] - first["max_stable_log2_lr"])
        row["best_loss_deepest"] = float(last["best_loss"])
    if len(movement_slopes):
        for stat, name in (
            ("own_movement", "h1_own_slope_at_eta"),
            ("weight_change", "h1_weight_slope_at_eta"),
        ):
            m = rows_where(movement_slopes, sel | {"role": "hidden_1", "stat": stat})
            row[name] = float(m["slope"].iloc[0]) if len(m) else math.nan
    if fixed_slopes is not None and len(fixed_slopes):
        f = rows_where(fixed_slopes, {k: sel[k] for k in METRIC_KEYS} | {"width": sel["width"]})
        for col in ("h1_own_slope_fixed_lr", "h1_weight_slope_fixed_lr"):
            for suffix in ("", "_lo", "_hi"):
                name = col + suffix
                if name in f:
                    row[name] = float(f[name].iloc[0]) if len(f) else math.nan
    return row


def _series_columns(
    g: pd.DataFrame,
    regret_table: pd.DataFrame,
    row: Mapping[str, Any],
    show_w: bool,
    show_d: bool,
    ci: float,
) -> dict[str, Any]:
    """A scorecard row's columns of the whole series ``g``: the best loss at the deepest depth
    (when the depth axis did not give it), seeds, censored and diverged shapes."""
    out: dict[str, Any] = {}
    if "best_loss_deepest" not in row:
        deepest = g[g["depth"] == g["depth"].max()]
        out["best_loss_deepest"] = float(deepest["best_loss"].min())
    out["n_seeds"] = int(g["n_seeds"].max())
    edged = g[g["edge"].notna()].sort_values(["width", "depth"])
    out["edge_flags"] = "; ".join(
        f"{_shape_label(e, show_w, show_d)}: eta* in {bracket_text(e)} ({e['edge_cause']})"
        for _, e in edged.iterrows()
        if e["edge_cause"] != "all_diverged"
    )
    dead = g[g["edge_cause"] == "all_diverged"]
    out["all_diverged_at"] = ", ".join(_shape_label(r, show_w, show_d) for _, r in dead.iterrows())
    out["divergence_flags"] = _divergence_flags(g, regret_table, row, show_w, show_d)
    out["ci"] = ci
    return out


def _path_columns(
    row: Mapping[str, Any],
    path_summary: pd.DataFrame | None,
    seed_regrets: pd.DataFrame | None,
    ci: float,
) -> dict[str, Any]:
    """The model path's columns (:func:`hptransfer.stats.path_transfer.path_summary`), its
    regret interval and transfer decision; empty without a path."""
    p = rows_where(path_summary, {k: row[k] for k in SERIES})
    if not len(p):
        return {}
    out = {c: v for c, v in p.iloc[0].items() if c not in SERIES}
    path_seeds = rows_where(seed_regrets, {k: row[k] for k in SERIES} | {"axis": "path"})
    out |= regret_interval(path_seeds, out["regret_path"], "path", ci)
    return out | transfer_columns(out, "path", drift_band(out["path_min"], out["path_max"]))


def bracket_text(r: Mapping[str, Any]) -> str:
    """ "[-3.00, -1.50]", "(-inf, -10.50]" or "[1.50, +inf)": where a censored eta* must lie."""
    lo, hi = r["bracket_lo"], r["bracket_hi"]
    if pd.isna(lo) or pd.isna(hi):
        return "unknown"
    left = "(-inf" if np.isinf(lo) else f"[{lo:+.2f}"
    right = "+inf)" if np.isinf(hi) else f"{hi:+.2f}]"
    return f"{left}, {right}"


def _divergence_flags(
    g: pd.DataFrame, regret_table: pd.DataFrame, row: Mapping[str, Any], show_w: bool, show_d: bool
) -> str:
    """Shapes where every rate diverged, and where the base-tuned rate diverges."""
    flags = []
    dead = g[g["edge_cause"] == "all_diverged"]
    if len(dead):
        shapes = ", ".join(_shape_label(r, show_w, show_d) for _, r in dead.iterrows())
        flags.append(f"every learning rate diverged at {shapes}: eta* unknown there")
    r = rows_where(regret_table, {k: row[k] for k in SERIES})
    if len(r):
        bad = r[r["regret"] == math.inf]
        if len(bad):
            shapes = ", ".join(sorted({_shape_label(b, show_w, show_d) for _, b in bad.iterrows()}))
            flags.append(f"the base-tuned learning rate diverges at {shapes}")
    return "; ".join(flags)


# --------------------------------------------------------------------------------------------
# Verdict text of one scorecard row


def _int(v: Any) -> str:
    return "?" if v is None or pd.isna(v) else str(int(v))


def _interval_text(row: Mapping[str, Any], axis: str) -> str:
    lo, hi = row[f"drift_{axis}_lo"], row[f"drift_{axis}_hi"]
    n = int(row.get(f"drift_{axis}_seeds", 0) or 0)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        if int(row.get("n_seeds", 0) or 0) < 2:
            return " (no interval: 1 seed)"
        return " (no interval: < 2 seeds with a located optimum at every fitted shape)"
    return f" ({interval_label(n, row.get('ci', 0.9))}: {lo:+.2f} to {hi:+.2f})"


def _horizon_text(row: Mapping[str, Any], axis: str) -> str:
    """ "; the drift interval lies inside +-0.25 from step 100 on (of 1000)" (or beyond it, or
    neither at the last step), from :func:`horizon_steps`."""
    if f"transfer_from_step_{axis}" not in row or "last_step" not in row:
        return ""
    band = f"+-{row.get(f'drift_{axis}_band', TRANSFER_SLOPE):.2f}"
    start, last = row[f"transfer_from_step_{axis}"], _int(row["last_step"])
    if start is not None and not pd.isna(start):
        return f"; the drift interval lies inside {band} from step {_int(start)} on (of {last})"
    lost = row.get(f"drift_from_step_{axis}")
    if lost is not None and not pd.isna(lost):
        return f"; the drift interval lies beyond {band} from step {_int(lost)} on (of {last})"
    return f"; the drift interval is not inside {band} at step {last} (the last evaluation)"


# Per axis: the symbol of a shape, what doubles, where eta* transfers, where it is flat, and
# the prefix of a censored shape's name. Along a path the drift is per doubling of the width
# (the depth grows with it) and the shapes are named as path points ("n=16, L=2").
_WORDS = {
    "depth": ("L", "depth", "across depth", "in depth", "depth "),
    "width": ("n", "width", "across width", "in width", "width "),
    "path": ("n", "width along the path", "along the path", "along the path", ""),
}


def _pct_ci(v: float, lo: float, hi: float) -> str:
    """ "3.0% [1.2%, 7.5%]" (no bracket without an interval)."""
    text = "diverges" if v == math.inf else f"{v:.1%}"
    if lo == math.inf:
        return "diverges (in every seed)"
    if np.isnan(lo) or np.isnan(hi):
        return text
    return text + f" [{lo:.1%}, {'+inf' if hi == math.inf else f'{hi:.1%}'}]"


def _range_text(axis: str, row: Mapping[str, Any]) -> str:
    """ "L=2-32" (or the path's widths)."""
    if axis == "path":
        return f"n={row.get('paths')}"
    return f"{_WORDS[axis][0]}={row.get(f'{axis}s')}"


def _drift_part(axis: str, row: Mapping[str, Any]) -> str:
    """The drift statement with the interval the decision read and its band."""
    doubling = _WORDS[axis][1]
    slope, band = row[f"drift_{axis}"], row[f"drift_{axis}_band"]
    lo, hi = row[f"drift_{axis}_check_lo"], row[f"drift_{axis}_check_hi"]
    n = int(row.get(f"drift_{axis}_seeds", 0) or 0)
    if np.isnan(slope) and np.isnan(lo):
        return f"no drift: eta* located at fewer than 2 shapes along {doubling} (widen the grid)"
    if np.isnan(lo):
        why = _interval_text(row, axis).strip(" ()")
        return f"drift {slope:+.2f} octave per doubling of {doubling} ({why})"
    brackets = ", with brackets" if int(row.get(f"censored_{axis}", 0) or 0) else ""
    return (
        f"drift {slope:+.2f} [{lo:+.2f}, {hi:+.2f}] octave per doubling of {doubling} "
        f"({interval_label(n, row.get('ci', 0.9))}{brackets}; within +-{band:.2f} the line "
        f"moves eta* < {TRANSFER_OCTAVES:g} octave over {_range_text(axis, row)})"
    )


def _cost_part(axis: str, row: Mapping[str, Any]) -> str:
    """The worst regret with its interval and where it is worst."""
    sym = _WORDS[axis][0]
    regret, at = row[f"regret_{axis}"], row[f"regret_{axis}_at"]
    where = at if isinstance(at, str) else f"{sym}={_int(at)}"
    lo, hi = row.get(f"regret_{axis}_lo", math.nan), row.get(f"regret_{axis}_hi", math.nan)
    if not np.isfinite(regret) and regret != math.inf:
        return "the base-tuned rate is off the grid elsewhere (regret unknown)"
    if np.isnan(lo):
        return (
            f"worst regret {_pct_ci(regret, lo, hi)} at {where} (no interval: it needs every "
            "seed's own regret at each shape, >= 3 seeds)"
        )
    return (
        f"worst regret of the base-tuned rate {_pct_ci(regret, lo, hi)} at {where} (paired "
        "over seeds, simultaneous over the shapes)"
    )


_PART_WORDS = {
    "drift": {
        FAILS_RULE: "beyond +-{band:.2f}",
        INCONCLUSIVE_RULE: "across +-{band:.2f}",
        HOLDS_RULE: "inside +-{band:.2f}",
        "missing": "without a t-interval",
    },
    "cost": {
        FAILS_RULE: f">= {TRANSFER_REGRET:.0%}",
        INCONCLUSIVE_RULE: f"across {TRANSFER_REGRET:.0%}",
        HOLDS_RULE: f"< {TRANSFER_REGRET:.0%}",
        "missing": "without an interval",
    },
}


def _axis_verdict(axis: str, row: Mapping[str, Any]) -> str:
    """Plain-language verdict for one axis ("depth", "width" or "path") of a scorecard row:
    the decision of :func:`transfer_columns` (:func:`hptransfer.stats.rules.transfer_outcome`, on
    the drift's interval against the range's band and the worst regret's interval against
    TRANSFER_REGRET) with the numbers it read, which part decided it, the censored shapes and
    the horizon."""
    across = _WORDS[axis][2]
    outcome = row[f"transfer_{axis}"]
    band = row[f"drift_{axis}_band"]
    parts = {"drift": row[f"transfer_{axis}_drift"], "cost": row[f"transfer_{axis}_cost"]}
    state = {k: _PART_WORDS[k][v].format(band=band) for k, v in parts.items()}
    drift, cost = _drift_part(axis, row), _cost_part(axis, row)
    if outcome == HOLDS_RULE:
        msg = f"transfers {across}: {drift}, inside +-{band:.2f}; {cost}, < {TRANSFER_REGRET:.0%}"
    elif outcome == FAILS_RULE:
        why = [f"{text}, {state[k]}" for k, text in (("drift", drift), ("cost", cost))
               if parts[k] == FAILS_RULE]  # fmt: skip
        rest = [f"{text}, {state[k]}" for k, text in (("drift", drift), ("cost", cost))
                if parts[k] != FAILS_RULE]  # fmt: skip
        msg = f"does not transfer {across}: " + "; ".join(why + rest)
    else:
        msg = f"undecided {across}: {drift}, {state['drift']}; {cost}, {state['cost']}"
    n_cens = int(row.get(f"censored_{axis}", 0) or 0)
    if n_cens:
        prefix = _WORDS[axis][4]
        censored = ", ".join(
            f"{cause} at {prefix}{text}"
            for cause, text in (
                ("grid edge", row[f"edges_grid_{axis}"]),
                ("next to divergence", row[f"edges_div_{axis}"]),
            )
            if text
        )
        msg += (
            f"; {n_cens} censored optima ({censored}): the drift interval covers their bracket "
            f"slope range [{row[f'drift_{axis}_min']:+.2f}, {row[f'drift_{axis}_max']:+.2f}]"
        )
    return msg + _horizon_text(row, axis)


def verdict(row: Mapping[str, Any]) -> str:
    """The plain-language verdict of one scorecard row, computed from its numbers only.

    Per axis (depth, then width, then the model path when the row has one): :func:`_axis_verdict`;
    then the hidden_1 own-movement slope against depth at one learning rate, decided on its
    interval (:func:`hptransfer.stats.rules.direction`: fading below -MOVEMENT_SLOPE), a shift of the largest stable rate by >= STABILITY_SHIFT octaves (over
    depth, and along the path), and shapes where every rate diverged.
    """
    axes = [a for a in AXES if f"drift_{a}" in row and not pd.isna(row.get(f"{a}s"))]
    if "drift_path" in row and not pd.isna(row.get("paths")):
        axes.append("path")
    sentences = []
    for axis in axes:
        text = _axis_verdict(axis, row)
        dead = row.get(f"all_diverged_{axis}")
        if isinstance(dead, str) and dead:  # eta* unknown there: the axis is not decided
            text = (
                f"inconclusive: eta* unknown at {dead} (every learning rate diverged); over "
                f"the other shapes: {text}"
                if np.isfinite(row[f"drift_{axis}"])
                else f"inconclusive: eta* unknown at {dead} (every learning rate diverged) and "
                "located at fewer than 2 other shapes"
            )
        sentences.append(f"{axis.capitalize()}: {text}" if len(axes) > 1 else text)
    if not axes:
        sentences.append("a single shape: no transfer measured")
    h1 = row.get("h1_own_slope_fixed_lr", math.nan)
    h1_lo = row.get("h1_own_slope_fixed_lr_lo", math.nan)
    h1_hi = row.get("h1_own_slope_fixed_lr_hi", math.nan)
    one_layer = int(row.get("block_depth", 2)) == 1
    if h1 is not None and np.isfinite(h1):
        h1_text = ci_text(h1, h1_lo, h1_hi)
        if int(row.get("n_seeds", 0) or 0) < MIN_SEEDS_T:
            h1_lo = h1_hi = math.nan  # a range of 2 seeds decides nothing
        state = direction(h1_lo, h1_hi, MOVEMENT_SLOPE)
    if h1 is not None and np.isfinite(h1) and one_layer:
        # With k = 1 the block's only layer *is* the branch output: under a 1/sqrt(L) branch its
        # weights are meant to move like L^-1/2 (the residual stream still moves O(1)), so a
        # falling slope there is not the feature collapse of claim (c).
        sentences.append(
            f"one-layer blocks: the block weight's own movement scales like L^{h1_text} at one "
            "learning rate (no internal layer whose features could fade)"
        )
    elif h1 is not None and np.isfinite(h1):
        words = {
            "falls": f"falls with depth, beyond -{MOVEMENT_SLOPE}: its features fade",
            "rises": f"grows with depth, beyond +{MOVEMENT_SLOPE}",
            "flat": f"is flat in depth, inside +-{MOVEMENT_SLOPE}",
            "unclear": f"is undecided against +-{MOVEMENT_SLOPE}",
        }
        sentences.append(
            f"own movement of hidden_1 scales like L^{h1_text} at one learning rate: it "
            + words[state]
        )
    shift = row.get("stable_shift_depth", math.nan)
    if shift is not None and np.isfinite(shift) and abs(shift) >= STABILITY_SHIFT:
        word = "falls" if shift < 0 else "rises"
        sentences.append(
            f"the largest stable rate {word} by {abs(shift):.1f} octaves from "
            f"L={_int(row['depth_min'])} to L={_int(row['depth_max'])}"
        )
    shift = row.get("stable_shift_path", math.nan) if "path" in axes else math.nan
    if shift is not None and np.isfinite(shift) and abs(shift) >= STABILITY_SHIFT:
        word = "falls" if shift < 0 else "rises"
        sentences.append(
            f"the largest stable rate {word} by {abs(shift):.1f} octaves along the path, from "
            f"{row['path_from']} to {row['path_to']}"
        )
    dead = row.get("all_diverged_at")
    if isinstance(dead, str) and dead:
        sentences.append(
            f"every learning rate diverged at {dead}: eta* unknown there (extend the grid "
            "downwards)"
        )
    text = ". ".join(s[0].upper() + s[1:] for s in sentences)
    return text + "."


# --------------------------------------------------------------------------------------------
# The paper's claims


@dataclass(frozen=True)
class Claim:
    """One row of the claims table: what was measured, where, and the verdict."""

    claim: str  # "a" .. "h"
    statement: str
    metric: str
    value: float
    lo: float
    hi: float
    interval: str  # how to read [lo, hi]: intervals.interval_label, or "" without one
    scale: str  # widths, depths, block depth
    horizon: str  # steps (and from when the criterion held)
    verdict: str  # HOLDS, FAILS, INCONCLUSIVE or NOT_MEASURED
    note: str  # why, or what would settle it


STATEMENTS = {
    "a": "depth-muP transfers eta* across depth for one-layer blocks (k = 1)",
    "b": "depth-muP fails to transfer eta* across depth for two-layer blocks (k = 2)",
    "c": "under depth-muP with k = 2, hidden_1's feature movement collapses like L^-1/2",
    "d": "NFD (hidden_1's lr times sqrt(depth)) restores transfer and feature learning (k = 2)",
    "e": "NFD improves the deeper network's loss over depth-muP (k = 2)",
    "f": "NFD keeps eta* where it is at the deepest depths (k = 2)",
    "g": "NFD's Adam form (extrapolated) keeps eta* across depth for two-layer blocks (k = 2)",
    "h": "CompleteP keeps eta* across depth for two-layer blocks (k = 2)",
}
ADAPTIVE = ("adam", "adamw")  # optimizers whose runs ask claim (g), NFD's extrapolated Adam form


def card_row(card: pd.DataFrame, scheme: str, k: int) -> Mapping[str, Any] | None:
    if card is None or card.empty or "drift_depth" not in card:
        return None
    sel = card[(card["scheme"] == scheme) & (card["block_depth"] == k)]
    if sel.empty:
        return None
    row = sel.iloc[0].to_dict()
    if pd.isna(row["drift_depth"]) and not row["censored_depth"] and not _dead(row):
        return None
    return row


def _dead(row: Mapping[str, Any] | None) -> str:
    """The depths (at the held width) where every learning rate diverged: "L=8", or ""."""
    dead = row.get("all_diverged_depth") if row is not None else None
    return dead if isinstance(dead, str) else ""


def _dead_note(row: Mapping[str, Any]) -> str:
    return f"every learning rate diverged at {_dead(row)}: eta* unknown there (extend the grid downwards)"


def _named(row: Mapping[str, Any] | None) -> str:
    """ ", adam": the optimizer of a claim's scale when it is not SGD; "" for SGD."""
    opt = row.get("optimizer") if row is not None else None
    return f", {opt}" if isinstance(opt, str) and opt != "sgd" else ""


def _scale(row: Mapping[str, Any]) -> str:
    """ "n=64, L=2-32, k=2", and the optimizer when it is not SGD (", adam")."""
    k = _int(row["block_depth"])
    return f"n={_int(row.get('at_width'))}, L={row.get('depths')}, k={k}{_named(row)}"


def _width_scale(row: Mapping[str, Any]) -> str:
    """ "n=32-256, L=2, k=2", and the optimizer when it is not SGD."""
    k = _int(row["block_depth"])
    return f"n={row.get('widths')}, L={_int(row.get('at_depth'))}, k={k}{_named(row)}"


def _horizon(row: Mapping[str, Any], criterion: bool = True, axis: str = "depth") -> str:
    """ "1000 steps" and, with ``criterion``, that axis's horizon (:func:`_horizon_text`)."""
    last = row.get("last_step")
    text = f"{_int(last)} steps" if last is not None and not pd.isna(last) else ""
    if criterion and text:
        text += _horizon_text(row, axis)
    return text


def claim_verdict(outcome: str, want: bool = True) -> str:
    """A rule outcome (:mod:`hptransfer.stats.rules`) as a claim's verdict; ``want`` False for a
    claim that states the opposite (claim (b): depth-muP fails to transfer)."""
    if outcome == HOLDS_RULE:
        return HOLDS if want else FAILS
    if outcome == FAILS_RULE:
        return FAILS if want else HOLDS
    return INCONCLUSIVE


def drift_claim(
    claim: str, row: Mapping[str, Any] | None, want_transfer: bool, statement: str | None = None,
    axis: str = "depth",
) -> Claim:  # fmt: skip
    """A claim that eta* transfers across ``axis`` (depth or width; or, want_transfer False,
    that it does not): the scorecard's own decision of that axis (:func:`transfer_columns`),
    with the same words as its verdict. ``statement``: the claim's words (default
    :data:`STATEMENTS`)."""
    metric = f"drift of log2 eta* per doubling of {axis} (octaves)"
    statement = STATEMENTS[claim] if statement is None else statement
    if row is None or f"drift_{axis}" not in row:
        return Claim(claim, statement, metric, math.nan, math.nan, math.nan, "", "", "",
                     NOT_MEASURED, "not measured in this run (needs the cells)")  # fmt: skip
    v = row[f"drift_{axis}"]
    lo, hi = row[f"drift_{axis}_check_lo"], row[f"drift_{axis}_check_hi"]
    n = int(row.get(f"drift_{axis}_seeds", 0) or 0)
    label = interval_label(n, row.get("ci", 0.9)) if np.isfinite(lo) else ""
    if np.isfinite(lo) and int(row.get(f"censored_{axis}", 0) or 0):
        label += ", with brackets"
    note = _axis_verdict(axis, row)
    if axis == "depth" and _dead(row):  # a depth without eta* leaves the drift undecided
        note = _dead_note(row) + ("; over the other depths: " + note if np.isfinite(v) else "")
    scale = _scale(row) if axis == "depth" else _width_scale(row)
    return Claim(claim, statement, metric, float(v), float(lo), float(hi), label, scale,
                 _horizon(row, axis=axis), claim_verdict(row[f"transfer_{axis}"],
                                                         want_transfer), note)  # fmt: skip


def _movement_claim(row: Mapping[str, Any] | None) -> Claim:
    """Claim (c): the exponent of hidden_1's own movement against depth (one fixed rate) is
    -1/2: holds when its t-interval lies within COLLAPSE +- EXPONENT_BAND
    (:func:`hptransfer.stats.rules.exponent_outcome`); otherwise the note states the exponent
    measured."""
    metric = "log-log slope of hidden_1's own movement against depth, one fixed lr"
    if _dead(row):
        v = row.get("h1_own_slope_fixed_lr", math.nan)
        return Claim("c", STATEMENTS["c"], metric, float(v), math.nan, math.nan, "", _scale(row),
                     _horizon(row, criterion=False), INCONCLUSIVE, _dead_note(row))  # fmt: skip
    if row is None or not np.isfinite(row.get("h1_own_slope_fixed_lr", math.nan)):
        return Claim("c", STATEMENTS["c"], metric, math.nan, math.nan, math.nan, "", "", "",
                     NOT_MEASURED, "not measured in this run (needs depth_mup, k = 2, movement)")  # fmt: skip
    v = float(row["h1_own_slope_fixed_lr"])
    lo = float(row.get("h1_own_slope_fixed_lr_lo", math.nan))
    hi = float(row.get("h1_own_slope_fixed_lr_hi", math.nan))
    n = int(row.get("n_seeds", 0))
    a, b = COLLAPSE - EXPONENT_BAND, COLLAPSE + EXPONENT_BAND
    label = interval_label(n, row.get("ci", 0.9)) if np.isfinite(lo) else ""
    outcome = exponent_outcome(lo, hi, COLLAPSE) if n >= MIN_SEEDS_T else "missing"
    measured = f"measured exponent {ci_text(v, lo, hi)}"
    note = {
        HOLDS_RULE: f"interval within [{a:g}, {b:g}] around -1/2",
        FAILS_RULE: f"interval outside [{a:g}, {b:g}]: {measured}",
        INCONCLUSIVE_RULE: f"the interval crosses an end of [{a:g}, {b:g}]: {measured}",
    }.get(outcome, f"no calibrated interval: rerun with >= {MIN_SEEDS_T} seeds")
    return Claim("c", STATEMENTS["c"], metric, v, lo, hi, label, _scale(row),
                 _horizon(row, criterion=False), claim_verdict(outcome), note)  # fmt: skip


def restored_gap(
    movement_seeds: pd.DataFrame | None, nfd: Mapping[str, Any], dmup: Mapping[str, Any],
    ci: float = 0.9,
) -> tuple[float, float, float, int]:  # fmt: skip
    """(gap, lo, hi, n): NFD's hidden_1 own-movement slope (one fixed rate) minus depth-muP's,
    paired by seed (rows of :func:`hptransfer.stats.tables.fixed_lr_seed_slopes`; replicas of one
    seed share their initial draw and batches), its t-interval centred on the scorecard's gap."""
    gap = nfd.get("h1_own_slope_fixed_lr", math.nan) - dmup.get("h1_own_slope_fixed_lr", math.nan)
    if movement_seeds is None or movement_seeds.empty:
        return float(gap), math.nan, math.nan, 0
    own = movement_seeds[
        (movement_seeds["metric"] == "h1_own_slope_fixed_lr")
        & (movement_seeds["block_depth"] == 2)
        & (movement_seeds["optimizer"] == nfd["optimizer"])
        & (movement_seeds["width"] == nfd.get("at_width"))
    ]
    wide = wide_mean(own, "seed", "scheme", "value")
    if not {"nfd", "depth_mup"} <= set(wide.columns):
        return float(gap), math.nan, math.nan, 0
    _, lo, hi, n = seed_interval((wide["nfd"] - wide["depth_mup"]).to_numpy(float), ci,
                                 centre=gap)  # fmt: skip
    return float(gap), float(lo), float(hi), int(n)


def _nfd_claim(
    nfd: Mapping[str, Any] | None,
    dmup: Mapping[str, Any] | None,
    movement_seeds: pd.DataFrame | None = None,
    ci: float = 0.9,
) -> Claim:
    """Claim (d): NFD transfers across depth (:func:`drift_claim`) and restores feature
    learning: its hidden_1 slope at least RESTORED above depth-muP's, decided on the paired
    interval of the gap (:func:`restored_gap`) against [RESTORED, +inf)."""
    transfer = drift_claim("d", nfd, want_transfer=True)
    if nfd is None or dmup is None:
        return Claim("d", STATEMENTS["d"], transfer.metric, math.nan, math.nan, math.nan, "", "",
                     "", NOT_MEASURED, "not measured in this run (needs nfd and depth_mup, k = 2)")  # fmt: skip
    gap, lo, hi, n = restored_gap(movement_seeds, nfd, dmup, ci)
    gap_text = f"hidden_1 slope {ci_text(gap, lo, hi)} above depth-muP's (paired over seeds)"
    dead = [
        f"{name} at {_dead(r)}"
        for name, r in ((scheme_label("nfd"), nfd), (scheme_label("depth_mup"), dmup))
        if _dead(r)
    ]
    if dead:
        movement, mnote = INCONCLUSIVE, f"every learning rate diverged ({'; '.join(dead)})"
    elif not np.isfinite(gap):
        movement, mnote = INCONCLUSIVE, "movement slopes not measured"
    elif n < MIN_SEEDS_T:
        movement, mnote = (
            INCONCLUSIVE,
            f"{gap_text}: no calibrated interval (< {MIN_SEEDS_T} seeds)",
        )
    else:
        movement = claim_verdict(interval_outcome(lo, hi, RESTORED, math.inf))
        mnote = gap_text + {HOLDS: f", >= {RESTORED}", FAILS: f", below {RESTORED}"}.get(
            movement, f", across {RESTORED}"
        )
    parts = {transfer.verdict, movement}
    verdict_ = HOLDS if parts == {HOLDS} else FAILS if FAILS in parts else INCONCLUSIVE
    note = f"transfer: {transfer.verdict} ({transfer.note}); feature learning: {movement} ({mnote})"
    return transfer.__class__(**{**asdict(transfer), "verdict": verdict_, "note": note})


def seed_best_losses(
    finals: pd.DataFrame, scheme: str, width: int, depth: int, block_depth: int = 2
) -> pd.Series:
    """Per seed, the refined minimum of that seed's own final training loss over the learning
    rates (:func:`hptransfer.stats.optimum.refine`): the tuned network of each seed at one
    shape; +inf for a seed whose every rate diverged. Index: seed."""
    f = finals[
        (finals["scheme"] == scheme)
        & (finals["block_depth"] == block_depth)
        & (finals["depth"] == depth)
        & (finals["width"] == width)
    ]
    wide = wide_mean(f, "seed", "log2_lr", "final_train_loss")
    return pd.Series(
        refine(wide.columns.to_numpy(float), wide.to_numpy(float)).loss, index=wide.index
    )


def _loss_claim(finals: pd.DataFrame | None, nfd, dmup, ci: float) -> Claim:
    metric = "relative loss change NFD vs depth-muP at the deepest L (each at its refined best)"
    if finals is None or nfd is None or dmup is None:
        return Claim("e", STATEMENTS["e"], metric, math.nan, math.nan, math.nan, "", "", "",
                     NOT_MEASURED, "not measured in this run (needs nfd and depth_mup, k = 2)")  # fmt: skip
    depth, width = int(nfd["depth_max"]), int(nfd["at_width"])
    best = {s: seed_best_losses(finals, s, width, depth) for s in ("nfd", "depth_mup")}
    paired = pd.concat(best, axis=1).dropna()
    paired = paired[np.isfinite(paired).all(axis=1)]
    rel = (paired["nfd"] / paired["depth_mup"] - 1.0).to_numpy(float)
    # the value is the mean of the paired per-seed changes: the centre of its interval
    v = float(np.mean(rel)) if rel.size else math.nan
    # seeds of a scheme without a finite best loss there: every rate diverged (left out)
    dead = [
        f"{name}: every rate diverged in {_seeds_text(b.index[np.isinf(b.to_numpy(float))])}"
        for name, b in (
            (scheme_label("nfd"), best["nfd"]),
            (scheme_label("depth_mup"), best["depth_mup"]),
        )
        if np.isinf(b.to_numpy(float)).any()
    ]
    if not np.isfinite([nfd["best_loss_deepest"], dmup["best_loss_deepest"]]).all():
        v = math.nan  # a seed-mean curve diverged at every rate: no best loss to compare
    _, lo, hi, n = seed_interval(rel, ci)
    label = interval_label(int(n), ci) if np.isfinite(lo) else ""
    if int(n) < MIN_SEEDS_T and dead:
        verdict_ = INCONCLUSIVE
        note = (
            f"at L={depth} {'; '.join(dead)}: {int(n)} seed(s) with a finite best loss for "
            "both, too few for an interval (extend the grid downwards)"
        )
    elif int(n) < MIN_SEEDS_T:
        verdict_, note = INCONCLUSIVE, f"no calibrated interval: rerun with >= {MIN_SEEDS_T} seeds"
    elif hi < 0:
        verdict_, note = HOLDS, "paired over seeds, the interval is below 0"
    elif lo > 0:
        verdict_, note = FAILS, "paired over seeds, NFD's loss is higher"
    else:
        verdict_, note = INCONCLUSIVE, "the paired interval includes 0: more seeds or steps"
    if dead and int(n) >= MIN_SEEDS_T:
        note += f" (at L={depth} {'; '.join(dead)}: those seeds left out)"
    scale = f"n={width}, L={depth}, k=2{_named(nfd)}"
    return Claim("e", STATEMENTS["e"], metric, v, float(lo), float(hi), label, scale,
                 _horizon(nfd, criterion=False), verdict_, note)  # fmt: skip


def _seeds_text(seeds: Sequence[Any]) -> str:
    seeds = [str(s) for s in seeds]
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {', '.join(seeds)}"


def claims(
    card: pd.DataFrame,
    finals: pd.DataFrame | None = None,
    ci: float = 0.9,
    movement_seeds: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The paper's claims (a)-(e) as rows of :class:`Claim` (columns = its fields), decided from
    the scorecard (and the per-seed final losses for (e)); "not measured" when the run lacks
    the cells (optimizer: the first in the run; depth series at the held width). Then the open
    question (f), decided on the deepest-half slope the scorecard has when it carries the
    local-drift columns (:func:`hptransfer.stats.local_drift.local_columns`; :func:`_deep_claim`).
    Then, where the run asks them, (g) and (h) (:func:`_optimizer_claims`)."""
    if card is not None and len(card) and card["optimizer"].nunique() > 1:
        card = card[card["optimizer"] == card["optimizer"].iloc[0]]
    dmup1, dmup2 = card_row(card, "depth_mup", 1), card_row(card, "depth_mup", 2)
    nfd2 = card_row(card, "nfd", 2)
    rows = [
        drift_claim("a", dmup1, want_transfer=True),
        drift_claim("b", dmup2, want_transfer=False),
        _movement_claim(dmup2),
        _nfd_claim(nfd2, dmup2, movement_seeds, ci),
        _loss_claim(finals, nfd2, dmup2, ci),
        _deep_claim(_local_row(card, "nfd", 2)),
    ]
    return pd.DataFrame([asdict(r) for r in rows + _optimizer_claims(card)])


def _optimizer_claims(card: pd.DataFrame | None) -> list[Claim]:
    """The questions of runs beyond SGD's paper (decided like (a): the scorecard's transfer
    decision of the depth axis, :func:`transfer_columns`): (g), NFD's extrapolated Adam form keeps
    eta* across depth with k = 2, asked when the claims' optimizer is Adam or AdamW; (h),
    CompleteP keeps it with k = 2, asked when the run has CompleteP with k = 2. A run that asks
    neither (every SGD run without CompleteP) has rows (a)-(f) only."""
    if card is None or card.empty:
        return []
    rows = []
    if card["optimizer"].iloc[0] in ADAPTIVE:
        rows.append(drift_claim("g", card_row(card, "nfd", 2), want_transfer=True))
    has_completep = ((card["scheme"] == "completep") & (card["block_depth"] == 2)).any()
    if has_completep:
        rows.append(drift_claim("h", card_row(card, "completep", 2), want_transfer=True))
    return rows


def _local_row(card: pd.DataFrame, scheme: str, k: int) -> Mapping[str, Any] | None:
    """The scorecard row of (scheme, k) when it has a deepest-half slope column, else None."""
    if card is None or card.empty or "deep_drift_depth" not in card:
        return None
    sel = card[(card["scheme"] == scheme) & (card["block_depth"] == k)]
    return None if sel.empty else sel.iloc[0].to_dict()


def _deep_claim(row: Mapping[str, Any] | None) -> Claim:
    """Claim (f): NFD's OLS slope of log2 eta* over the deepest half of the depths (k = 2),
    decided on its checked interval (:func:`hptransfer.stats.intervals.checked_interval`: the seed
    interval, pushed out to the bracket slope range when an optimum there is censored) against
    the band of its range (:func:`hptransfer.stats.rules.drift_band`: the line moves eta* by less than
    one octave over the deepest half): holds when inside, does not hold when outside, inconclusive when
    it straddles the threshold, has no t-interval (< 3 seeds) or a depth of the deepest half
    has no eta* (every rate diverged)."""
    metric = "OLS slope of log2 eta* over the deepest half of the depths (octaves per doubling)"
    if row is None or pd.isna(row.get("deep_depth_from")):
        return Claim("f", STATEMENTS["f"], metric, math.nan, math.nan, math.nan, "", "", "",
                     NOT_MEASURED, "not measured in this run (needs nfd, k = 2, >= 2 depths in "
                     "the deepest half)")  # fmt: skip
    v = float(row["deep_drift_depth"])
    lo, hi = float(row["deep_drift_depth_check_lo"]), float(row["deep_drift_depth_check_hi"])
    n = int(row.get("deep_drift_depth_seeds", 0) or 0)
    method = row.get("deep_drift_depth_interval", "none")
    label = interval_label(n, row.get("ci", 0.9)) if np.isfinite(lo) else ""
    bracketed = np.isfinite(lo) and not (
        math.isclose(lo, row["deep_drift_depth_lo"])
        and math.isclose(hi, row["deep_drift_depth_hi"])
    )
    if bracketed:
        label += ", with brackets" if label else "bracket range"
    if method != T_INTERVAL or not np.isfinite(lo):
        verdict_, note = (
            INCONCLUSIVE,
            f"no calibrated interval over the deepest half: rerun with >= {MIN_SEEDS_T} seeds",
        )
    else:
        band = drift_band(row["deep_depth_from"], row.get("depth_max"))
        side = direction(lo, hi, band)
        verdict_ = {"flat": HOLDS, "falls": FAILS, "rises": FAILS}.get(side, INCONCLUSIVE)
        reach = f"|slope| < {band:.2f} (eta* moves < {TRANSFER_OCTAVES:g} octave over L=" + (
            f"{_int(row['deep_depth_from'])}-{_int(row.get('depth_max'))})"
        )
        note = {
            "flat": f"interval within {reach}",
            "falls": f"interval below {reach}",
            "rises": f"interval above {reach}",
        }.get(side, f"the interval straddles {reach}: more seeds or depths")
    if bracketed:
        note += "; censored optima in the deepest half: the interval covers their bracket range"
    if int(row.get("deep_drift_depth_unknown", 0) or 0):  # a depth without eta* there
        verdict_ = INCONCLUSIVE
        note = (
            f"every learning rate diverged at a depth of the deepest half ({_dead(row)}): eta* "
            "unknown there" + ("; over the other depths: " + note if np.isfinite(v) else "")
        )
    scale = (
        f"n={_int(row.get('at_width'))}, L={_int(row['deep_depth_from'])}-"
        f"{_int(row.get('depth_max'))}, k={_int(row['block_depth'])}{_named(row)}"
    )
    return Claim("f", STATEMENTS["f"], metric, v, lo, hi, label, scale,
                 _horizon(row, criterion=False), verdict_, note)  # fmt: skip


# --------------------------------------------------------------------------------------------
# Local drift across depth (hptransfer.stats.local_drift)


def pair_state(lo: float, hi: float, band: float = TRANSFER_SLOPE) -> str:
    """Where a local slope's (checked) interval lies: :func:`hptransfer.stats.rules.direction`."""
    return direction(lo, hi, band)


def flat_then(states: Sequence[str]) -> tuple[int, str] | None:
    """(j, "falls" / "rises") when the first j >= 1 consecutive-depth slopes are "flat" and
    every later one (at least one) is that same direction; None otherwise."""
    j = 0
    while j < len(states) and states[j] == "flat":
        j += 1
    rest = set(states[j:])
    if j >= 1 and len(rest) == 1 and rest <= {"falls", "rises"}:
        return j, states[j]
    return None


def ci_text(v: float, lo: float, hi: float, sign: str = "+") -> str:
    """ "+0.12 [-0.05, +0.30]" (sign "+") or "0.12 [0.05, 0.30]" (sign "")."""
    text = f"{v:{sign}.2f}"
    return text + (f" [{lo:{sign}.2f}, {hi:{sign}.2f}]" if np.isfinite([lo, hi]).all() else "")


def local_verdict(pairs: pd.DataFrame, row: Mapping[str, Any], band: float = TRANSFER_SLOPE) -> str:
    """The local-drift sentence of one series: ``pairs`` = its local_drift rows of kind "pair"
    (sorted by depth), ``row`` its scorecard row with the local columns. "flat to L = L_j,
    falls beyond" when the checked intervals of the consecutive-depth slopes lie inside
    (-band, band) up to L_j and below -band after it (rises: above band), else whether the
    straight line fits by the curvature test (curved / line fits / undecided); then the
    largest shift from the base depth with its interval."""
    pairs = pairs.sort_values("depth_from")
    states = [pair_state(lo, hi, band) for lo, hi in zip(pairs["check_lo"], pairs["check_hi"],
                                                         strict=True)]  # fmt: skip
    curv = ci_text(row.get("curvature_depth", math.nan), row.get("curvature_depth_lo", math.nan),
                    row.get("curvature_depth_hi", math.nan))  # fmt: skip
    test = row.get("curvature_depth_test")
    bend = flat_then(states)
    if bend is not None:
        j, word = bend
        at = int(pairs["depth_to"].iloc[j - 1])
        side = f"below -{band}" if word == "falls" else f"above {band}"
        text = (
            f"local drift: flat to L = {at}, {word} beyond (consecutive-depth slopes inside "
            f"+-{band} up to L = {at}, {side} after it; curvature {curv} per doubling)"
        )
    elif test == "curved":
        text = (
            f"local drift: the straight line does not fit (curvature {curv} octave per "
            "doubling per doubling, its interval excludes 0)"
        )
    elif test == "line fits":
        text = f"local drift: the straight line fits (curvature {curv}, its interval includes 0)"
    else:
        text = (
            "local drift: the straight line's fit is not tested (the curvature needs a "
            "t-interval over >= 3 seeds and >= 3 located depths)"
        )
    shift = row.get("max_shift_depth", math.nan)
    if shift is not None and np.isfinite(shift):
        shift_ci = ci_text(shift, row.get("max_shift_depth_lo", math.nan),
                            row.get("max_shift_depth_hi", math.nan), sign="")  # fmt: skip
        text += (
            f"; largest shift from L={_int(row.get('depth_min'))}: {shift_ci} "
            f"octave (at L={_int(row.get('max_shift_depth_at'))})"
        )
    return text[0].upper() + text[1:] + "."


def local_verdicts(card: pd.DataFrame, local: pd.DataFrame, optima: pd.DataFrame) -> pd.DataFrame:
    """``card`` with a column local_verdict (:func:`local_verdict` of each row's depth series
    at the held width; "" without one); the verdict column is left as it is."""
    if card is None or card.empty or "curvature_depth_test" not in card:
        return card
    sel = at_held_width(local, optima)
    pairs = sel[sel["kind"] == "pair"]
    out = card.copy()
    texts = []
    for r in out.to_dict("records"):
        p = rows_where(pairs, {k: r[k] for k in SERIES})
        texts.append(local_verdict(p, r) if len(p) else "")
    out["local_verdict"] = texts
    return out


# --------------------------------------------------------------------------------------------
# Metrics of the regression check


def axis_verdict(row: Mapping[str, Any], threshold: float = TRANSFER_SLOPE) -> str:
    """The verdict word of one drift row of an axis optimum (slope, slope_lo / slope_hi,
    slope_min / slope_max, interval), decided on its interval (widened over censored optima,
    :func:`hptransfer.stats.intervals.checked_interval`) by :func:`hptransfer.stats.rules.direction`:
    "transfers" inside (-threshold, threshold), "drifts" wholly outside, "inconclusive"
    across an end or without a t-interval, "not measured" without a slope."""
    slope = float(row.get("slope", math.nan))
    if not np.isfinite(slope):
        return NOT_MEASURED
    if row.get("interval") != T_INTERVAL:
        return INCONCLUSIVE
    lo, hi = checked_interval(slope, float(row.get("slope_lo", math.nan)),
                              float(row.get("slope_hi", math.nan)),
                              float(row.get("slope_min", slope)),
                              float(row.get("slope_max", slope)))  # fmt: skip
    state = direction(lo, hi, threshold)
    return {"flat": "transfers", "falls": "drifts", "rises": "drifts"}.get(state, INCONCLUSIVE)


def drift_rows(
    base: Mapping[str, Any], metric: str, abs_metric: str | None, r: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """A drift row of :func:`drift_fit`'s columns as check metrics with their interval: the
    seed interval (slope_lo / slope_hi), widened when optima are censored
    (:func:`hptransfer.stats.intervals.checked_interval` with the bracket range [slope_min,
    slope_max]); abs_metric gets |.| of it."""
    slope = float(r["slope"])
    lo, hi = float(r.get("slope_lo", math.nan)), float(r.get("slope_hi", math.nan))
    smin, smax = float(r.get("slope_min", slope)), float(r.get("slope_max", slope))
    bracketed = bool(np.isfinite(lo) and smin < smax)
    if bracketed:
        lo, hi = checked_interval(slope, lo, hi, smin, smax)
    rows = [{**base, "metric": metric, "value": slope, "lo": lo, "hi": hi,
             "bracketed": bracketed}]  # fmt: skip
    if abs_metric is not None:
        a_lo, a_hi = abs_interval(lo, hi)
        rows.append({**base, "metric": abs_metric, "value": abs(slope), "lo": a_lo, "hi": a_hi,
                     "bracketed": bracketed})  # fmt: skip
    return rows


def axis_metrics(a: Analysis) -> list[dict[str, Any]]:
    """The check's metrics of the axes beyond the learning rate (rows of :func:`suite_metrics`).

    For every traced axis but "lr", from the first group that holds it, at the default of
    every shape axis: drift_depth/<axis> and abs_drift_depth/<axis> (over depth at the held
    width), drift_width/<axis> (over width at the held depth), drift_path/<axis> (along
    model.path); regret_joint/<group label> (the worst joint regret of each group over the
    shapes); drift_path and abs_drift_path (eta* along model.path, octaves per doubling of the
    width) and regret_path (the worst regret of the base-tuned eta* along the path).
    """
    rows: list[dict[str, Any]] = []
    if a.path_drift is not None:
        for _, r in a.path_drift.iterrows():
            if pd.notna(r["slope"]):
                base = {k: r[k] for k in METRIC_KEYS}
                rows += drift_rows(base, "drift_path", "abs_drift_path", r)
    path_regret = getattr(a, "path_regret", None)
    if path_regret is not None and len(path_regret):
        worst = path_regret.groupby(["family", *METRIC_KEYS], sort=True)["regret"].max()
        for key, v in worst.items():
            if pd.notna(v):
                rows.append({**dict(zip(METRIC_KEYS, key[1:], strict=True)), "metric": "regret_path",
                             "value": float(v)})  # fmt: skip
    h = a.hparams
    if h is None:
        return rows
    first = {}
    for group in h.groups:
        for name in group:
            if name != LR:
                first.setdefault(name, group_label(group))
    optima = at_default_conditions(h.optima, h.design)
    drift = at_default_conditions(h.drift, h.design)
    for name, label in first.items():
        opt = optima[(optima["hparam"] == name) & (optima["group"] == label)]
        sel = drift[(drift["hparam"] == name) & (drift["group"] == label)]
        for axis in AXES:
            held, other = held_value(opt, axis), OTHER_AXIS[axis]
            if held is None or other not in sel.columns:
                continue
            d = sel[(sel["axis"] == axis) & (sel[other] == held)]
            for _, r in d.iterrows():
                if pd.isna(r["slope"]):
                    continue
                base = {k: r[k] for k in METRIC_KEYS}
                absolute = f"abs_drift_depth/{name}" if axis == "depth" else None
                rows += drift_rows(base, f"drift_{axis}/{name}", absolute, r)
        if h.path_drift is not None and len(h.path_drift):
            p = at_default_conditions(h.path_drift, h.design)
            p = p[(p["hparam"] == name) & (p["group"] == label)]
            for _, r in p.iterrows():
                if pd.notna(r["slope"]):
                    rows += drift_rows(
                        {k: r[k] for k in METRIC_KEYS}, f"drift_path/{name}", None, r
                    )
    worst = at_default_conditions(worst_joint_regret(h.regret), h.design)
    for _, r in worst.iterrows():
        if pd.notna(r["regret"]):
            rows.append({**{k: r[k] for k in METRIC_KEYS}, "metric": f"regret_joint/{r['group']}",
                         "value": float(r["regret"])})  # fmt: skip
    return rows


def _decided_rows(base: Mapping[str, Any], r: Mapping[str, Any], axis: str) -> list[dict]:
    """The check's rows of the quantities the scorecard decides transfer on, with the very
    intervals it read (so the check and the verdicts cannot disagree): drift_<A> and
    abs_drift_<A> (the drift's decision interval, :func:`transfer_columns`), abs_move_<A>
    (|drift| * log2(largest / smallest shape): octaves the fitted line moves eta* over the
    range, the quantity whose bound means the same over any range; rules.TRANSFER_OCTAVES)
    and regret_<A> (:func:`regret_interval`). An end is NaN without a t-interval (the check
    then computes one from the per-seed samples, or reports none)."""
    rows: list[dict] = []
    slope = r.get(f"drift_{axis}", math.nan)
    if slope is not None and pd.notna(slope):
        lo, hi = (
            r.get(f"drift_{axis}_check_lo", math.nan),
            r.get(f"drift_{axis}_check_hi", math.nan),
        )
        bracketed = bool(int(r.get(f"censored_{axis}", 0) or 0)) and np.isfinite(lo)
        a_lo, a_hi = abs_interval(lo, hi)
        reach = TRANSFER_OCTAVES / float(r.get(f"drift_{axis}_band", TRANSFER_SLOPE))
        rows += [
            {**base, "metric": f"drift_{axis}", "value": float(slope), "lo": lo, "hi": hi,
             "bracketed": bracketed},
            {**base, "metric": f"abs_drift_{axis}", "value": abs(float(slope)), "lo": a_lo,
             "hi": a_hi, "bracketed": bracketed},
            {**base, "metric": f"abs_move_{axis}", "value": abs(float(slope)) * reach,
             "lo": a_lo * reach, "hi": a_hi * reach, "bracketed": bracketed},
        ]  # fmt: skip
    regret = r.get(f"regret_{axis}", math.nan)
    if regret is not None and pd.notna(regret):
        rows.append({**base, "metric": f"regret_{axis}", "value": float(regret),
                     "lo": r.get(f"regret_{axis}_lo", math.nan),
                     "hi": r.get(f"regret_{axis}_hi", math.nan)})  # fmt: skip
    return rows


def suite_metrics(a: Analysis) -> pd.DataFrame:
    """Long table (scheme, optimizer, block_depth, metric, value) of the check's metrics.

    Per series over depth at the held width (and over width at the held depth): drift_<A>,
    abs_drift_<A>, abs_move_<A> and regret_<A> with the intervals the scorecard decided on
    (:func:`_decided_rows`), spread_<A>, plus drift_<A>_min / drift_<A>_max (the slope range
    allowed by censored optima); and h1_own_slope_fixed_lr / h1_weight_slope_fixed_lr
    (:func:`hptransfer.stats.tables.fixed_lr_slopes`); with axes or a model path, the rows of
    :func:`axis_metrics` (drift_depth/<axis>, regret_joint/<group>, drift_path, ...).
    A series with a shape along A where every rate diverged (scorecard all_diverged_<A>) has
    no metrics over A (nor fixed-lr slopes for A = depth): they are not measured, and the
    check reports them missing, naming the shape.
    """
    rows = []
    dead_depth = set()
    for _, r in a.scorecard.iterrows():
        base = {k: r[k] for k in METRIC_KEYS}
        for axis in AXES:
            dead = r.get(f"all_diverged_{axis}")
            if isinstance(dead, str) and dead:
                if axis == "depth":
                    dead_depth.add(tuple(base.values()))
                continue
            for metric in (f"spread_{axis}", f"drift_{axis}_min", f"drift_{axis}_max"):
                if metric in r and pd.notna(r[metric]):
                    rows.append({**base, "metric": metric, "value": float(r[metric])})
            rows += _decided_rows(base, r, axis)
    slopes = fixed_lr_slopes(a.finals, a.optima)
    held = held_value(a.optima, "depth")
    if len(slopes):
        if held is not None:
            slopes = slopes[slopes["width"] == held]
        for _, r in slopes.iterrows():
            if tuple(r[k] for k in METRIC_KEYS) in dead_depth:
                continue
            for metric in ("h1_own_slope_fixed_lr", "h1_weight_slope_fixed_lr"):
                if pd.notna(r[metric]):
                    rows.append(
                        {**{k: r[k] for k in METRIC_KEYS}, "metric": metric, "value": r[metric]}
                    )
    rows += axis_metrics(a)
    frame = pd.DataFrame(rows, columns=[*METRIC_KEYS, "metric", "value", "lo", "hi", "bracketed"])
    frame["bracketed"] = frame["bracketed"].map(lambda v: v is True)
    frame["block_depth"] = frame["block_depth"].astype(int)
    return frame
