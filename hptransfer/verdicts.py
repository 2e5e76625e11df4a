"""Verdicts from numbers: the scorecard, the paper's claims, the horizon of transfer, CI metrics.

Everything here is structured data computed from the tables of :mod:`hptransfer.tables`;
wording lives in the verdict strings only, layout in :mod:`hptransfer.report`.

A drift is counted in octaves of eta* (one octave = a factor 2) per doubling of depth or width,
i.e. the slope of log2 eta* against log2 L. Transfer along an axis means |drift| <
TRANSFER_SLOPE and the base-tuned rate costs < TRANSFER_REGRET extra loss everywhere. A claim is
decided only by a calibrated interval (>= 3 seeds, :mod:`hptransfer.intervals`): "holds" when
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

from hptransfer.hparams import LR, at_default_conditions, group_label, worst_joint_regret
from hptransfer.intervals import RANGE, T_INTERVAL, abs_interval, interval_label, seed_interval
from hptransfer.local_drift import at_held_width
from hptransfer.optimum import refine
from hptransfer.tables import AXES, OTHER_AXIS, fixed_lr_slopes, fmt_edges, held_value, rows_where
from hptransfer.tables import scheme_order as _scheme_order

# An Analysis (hptransfer.analysis) is read by attribute; it is not imported here because the
# analysis module imports this one.
Analysis = Any

TRANSFER_SLOPE = 0.25  # |slope| below this moves eta* by < 1 octave (a usual grid step) over 16x
TRANSFER_REGRET = 0.02  # worst relative excess loss of the base-tuned rate counted as "transfers"
MOVEMENT_SLOPE = 0.2  # |log-log slope| of hidden_1 own movement called fading/growing
COLLAPSE = (-0.75, -0.25)  # claim (c): hidden_1's own movement slope against depth near -1/2
RESTORED = 0.2  # claim (d): NFD's hidden_1 slope at least this far above depth-muP's
STABILITY_SHIFT = 1.0  # octaves the largest stable learning rate must move to be reported
HOLDS, FAILS, INCONCLUSIVE, NOT_MEASURED = "holds", "does not hold", "inconclusive", "not measured"

SERIES = ["scheme", "optimizer", "block_depth"]
CARD_KEYS = ["family", "scheme", "optimizer", "block_depth"]


# --------------------------------------------------------------------------------------------
# The training horizon


def transfer_from_step(steps: np.ndarray, slope: np.ndarray, threshold: float = TRANSFER_SLOPE):
    """The first evaluation step from which |slope| < threshold at every later step, or None
    when it fails at the last step (steps increasing, slope per step; NaN counts as failing)."""
    ok = np.abs(np.nan_to_num(np.asarray(slope, float), nan=np.inf)) < threshold
    if not len(ok) or not ok[-1]:
        return None
    return _from_step(steps, ok)


def _from_step(steps: np.ndarray, ok: np.ndarray):
    """The first step from which ``ok`` holds at every later step; None if not at the last."""
    if not len(ok) or not ok[-1]:
        return None
    bad = np.flatnonzero(~ok)
    return int(steps[bad[-1] + 1]) if len(bad) else int(steps[0])


def horizon_summary(horizon: pd.DataFrame) -> pd.DataFrame:
    """Per (series, axis): transfer_from_step (point drift within TRANSFER_SLOPE from then on),
    transfer_and_regret_from_step (and worst regret below TRANSFER_REGRET too) and
    transfer_from_step_ci (the whole interval within it from then on; None without a
    calibrated interval), drift_from_step (|drift| >= TRANSFER_SLOPE from then on), the steps,
    and the drift at the first and last step."""
    if horizon is None or horizon.empty:
        return pd.DataFrame()
    keys = [c for c in horizon.columns if c in ("family", *SERIES, "width", "depth", "axis")]
    rows = []
    for key, h in horizon.groupby(keys, sort=True, dropna=False):
        h = h.sort_values("step")
        steps = h["step"].to_numpy()
        wide = np.maximum(np.abs(h["slope_lo"]), np.abs(h["slope_hi"])).to_numpy(float)
        wide = np.where(h["interval"] == T_INTERVAL, wide, np.nan)
        regret = h["worst_regret"].to_numpy(float) if "worst_regret" in h else np.zeros(len(h))
        both = np.where(regret < TRANSFER_REGRET, h["slope"].to_numpy(float), np.nan)
        rows.append(
            dict(zip(keys, key, strict=True))
            | dict(
                transfer_from_step=transfer_from_step(steps, h["slope"].to_numpy(float)),
                transfer_and_regret_from_step=transfer_from_step(steps, both),
                transfer_from_step_ci=transfer_from_step(steps, wide),
                drift_from_step=_from_step(
                    steps, np.abs(h["slope"].to_numpy(float)) >= TRANSFER_SLOPE
                ),
                first_step=int(steps[0]),
                last_step=int(steps[-1]),
                slope_first=float(h["slope"].iloc[0]),
                slope_last=float(h["slope"].iloc[-1]),
            )
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Scorecard


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
    value of the other (:func:`hptransfer.tables.held_value`), with a verdict (:func:`verdict`).
    With a model path, the columns of :func:`hptransfer.path_transfer.path_summary` (paths,
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
    hs = horizon_summary(horizon) if horizon is not None else pd.DataFrame()
    rows = []
    for key, g in optima.groupby(CARD_KEYS, sort=False):
        row: dict[str, Any] = dict(zip(CARD_KEYS, key, strict=True))
        for axis in AXES:
            other = OTHER_AXIS[axis]
            if held[axis] is None:
                continue
            s = g[g[other] == held[axis]].sort_values(axis)
            sel = {k: row[k] for k in CARD_KEYS} | {other: held[axis], "axis": axis}
            d = rows_where(drift_table, sel)
            r = rows_where(regret_table, sel)
            row[f"at_{other}"] = held[axis]
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
            sr = rows_where(seed_regrets, sel)
            vals = sr["worst_regret"].to_numpy(float) if len(sr) else np.array([])
            ok = len(vals) >= 2 and not np.isnan(vals).any()
            row[f"regret_{axis}_seed_min"] = float(vals.min()) if ok else math.nan
            row[f"regret_{axis}_seed_max"] = float(vals.max()) if ok else math.nan
            row[f"edges_grid_{axis}"] = fmt_edges(s, axis, "grid")
            row[f"edges_div_{axis}"] = fmt_edges(s, axis, "divergence")
            h = rows_where(hs, sel)
            if len(h):
                row[f"transfer_from_step_{axis}"] = h["transfer_from_step"].iloc[0]
                row[f"transfer_from_step_ci_{axis}"] = h["transfer_from_step_ci"].iloc[0]
                row[f"drift_from_step_{axis}"] = h["drift_from_step"].iloc[0]
                row["last_step"] = int(h["last_step"].iloc[0])
            if axis == "depth" and len(s):
                first, last = s.iloc[0], s.iloc[-1]
                row["stable_shift_depth"] = float(
                    last["max_stable_log2_lr"] - first["max_stable_log2_lr"]
                )
                row["best_loss_deepest"] = float(last["best_loss"])
            if axis == "depth" and len(ms):
                for stat, name in (
                    ("own_movement", "h1_own_slope_at_eta"),
                    ("weight_change", "h1_weight_slope_at_eta"),
                ):
                    m = rows_where(ms, sel | {"role": "hidden_1", "stat": stat})
                    row[name] = float(m["slope"].iloc[0]) if len(m) else math.nan
            if axis == "depth" and fixed_slopes is not None and len(fixed_slopes):
                f = rows_where(fixed_slopes, {k: row[k] for k in SERIES} | {"width": held[axis]})
                for col in ("h1_own_slope_fixed_lr", "h1_weight_slope_fixed_lr"):
                    for suffix in ("", "_lo", "_hi"):
                        name = col + suffix
                        if name in f:
                            row[name] = float(f[name].iloc[0]) if len(f) else math.nan
        if "best_loss_deepest" not in row:
            deepest = g[g["depth"] == g["depth"].max()]
            row["best_loss_deepest"] = float(deepest["best_loss"].min())
        row["n_seeds"] = int(g["n_seeds"].max())
        edged = g[g["edge"].notna()].sort_values(["width", "depth"])
        row["edge_flags"] = "; ".join(
            f"{_shape_label(e, show_w, show_d)}: eta* in {bracket_text(e)} ({e['edge_cause']})"
            for _, e in edged.iterrows()
            if e["edge_cause"] != "all_diverged"
        )
        dead = g[g["edge_cause"] == "all_diverged"]
        row["all_diverged_at"] = ", ".join(
            _shape_label(r, show_w, show_d) for _, r in dead.iterrows()
        )
        row["divergence_flags"] = _divergence_flags(g, regret_table, row, show_w, show_d)
        row["ci"] = ci
        p = rows_where(path_summary, {k: row[k] for k in CARD_KEYS})
        if len(p):
            row |= {c: v for c, v in p.iloc[0].items() if c not in CARD_KEYS}
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
    r = rows_where(regret_table, {k: row[k] for k in CARD_KEYS})
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


def _cost_text(regret: float, sym: str, at: Any) -> str:
    """What the rate tuned at the base shape costs at the worst shape (``at``: its value of the
    axis, or a path point's label)."""
    where = at if isinstance(at, str) else f"{sym}={_int(at)}"
    if regret == math.inf:
        return f"the base-tuned rate diverges at {where}"
    if not np.isfinite(regret):
        return "the base-tuned rate is off the grid elsewhere (regret unknown)"
    return f"the base-tuned rate costs {regret:.1%} extra loss at {where}"


def _horizon_text(row: Mapping[str, Any], axis: str) -> str:
    if f"transfer_from_step_{axis}" not in row or "last_step" not in row:
        return ""
    start = row[f"transfer_from_step_{axis}"]
    last = _int(row["last_step"])
    if start is None or pd.isna(start):
        lost = row.get(f"drift_from_step_{axis}")
        if lost is not None and not pd.isna(lost):
            return f"; |drift| >= {TRANSFER_SLOPE} from step {_int(lost)} on (of {last})"
        return f"; |drift| >= {TRANSFER_SLOPE} at step {last} (the last evaluation)"
    return f"; |drift| < {TRANSFER_SLOPE} from step {_int(start)} on (of {last})"


# Per axis: the symbol of a shape, what doubles, where eta* transfers, where it is flat, and
# the prefix of a censored shape's name. Along a path the drift is per doubling of the width
# (the depth grows with it) and the shapes are named as path points ("n=16, L=2").
_WORDS = {
    "depth": ("L", "depth", "across depth", "in depth", "depth "),
    "width": ("n", "width", "across width", "in width", "width "),
    "path": ("n", "width along the path", "along the path", "along the path", ""),
}


def _axis_verdict(axis: str, row: Mapping[str, Any]) -> str:
    """Plain-language verdict for one axis ("depth", "width" or "path") from the scorecard
    numbers of that axis.

    The drift is fitted over the uncensored shapes; censored shapes (eta* at the grid edge or
    next to divergence: only a bracket) are excluded and named, with the slope range they
    allow. Fewer than 2 uncensored shapes: inconclusive. "Transfers" needs |drift| <
    TRANSFER_SLOPE, worst regret < TRANSFER_REGRET and a bracket slope range within the
    threshold; otherwise the drift is reported with its interval and cost. Along a path it
    also needs a t-interval of the drift inside (-TRANSFER_SLOPE, TRANSFER_SLOPE) and no
    censored point (as the path's drift table, :func:`axis_verdict`): else it is inconclusive.
    """
    sym, doubling, across, flat_in, prefix = _WORDS[axis]
    slope = row[f"drift_{axis}"]
    smin, smax = row.get(f"drift_{axis}_min", math.nan), row.get(f"drift_{axis}_max", math.nan)
    regret, regret_at = row[f"regret_{axis}"], row[f"regret_{axis}_at"]
    n_cens = int(row.get(f"censored_{axis}", 0) or 0)
    ci = _interval_text(row, axis)
    censored = ", ".join(
        f"{cause} at {prefix}{text}"
        for cause, text in (
            ("grid edge", row[f"edges_grid_{axis}"]),
            ("next to divergence", row[f"edges_div_{axis}"]),
        )
        if text
    )
    cens_note = (
        f"{n_cens} censored optima ({censored}); with each anywhere in its bracket the slope "
        f"lies in [{smin:+.2f}, {smax:+.2f}]"
        if n_cens
        else ""
    )
    if n_cens and _side(smin, smax, TRANSFER_SLOPE) == "across":
        return (
            f"inconclusive: the fit over the bracketed optima gives {slope:+.2f} octave per "
            f"doubling of {doubling}{ci}, but {cens_note}: refine or widen the grid there"
            + _horizon_text(row, axis)
        )
    within = True
    if abs(slope) < TRANSFER_SLOPE and regret < TRANSFER_REGRET:
        numbers = (
            f"|slope| = {abs(slope):.2f} < {TRANSFER_SLOPE} octave per doubling{ci} and "
            f"worst regret {regret:.1%} < {TRANSFER_REGRET:.0%}"
        )
        lo, hi = row[f"drift_{axis}_lo"], row[f"drift_{axis}_hi"]
        t_kind = row.get(f"drift_{axis}_interval") == T_INTERVAL
        t_inside = t_kind and -TRANSFER_SLOPE < lo and hi < TRANSFER_SLOPE
        if axis == "path" and not (t_inside and n_cens == 0):
            if not t_kind:
                why = f"no t-interval (>= 3 seeds) bounds |slope| below {TRANSFER_SLOPE}"
            elif not t_inside:
                why = f"the interval still allows |slope| >= {TRANSFER_SLOPE}: more seeds or steps"
            else:
                why = "censored points leave the slope only bracketed"
            msg = f"inconclusive {across}: {numbers}, but {why}"
        else:
            msg = (
                f"transfers {across}: {numbers}"
                if within
                else f"consistent with transfer {across} over the located optima ({numbers})"
            )
            if np.isfinite(lo) and max(abs(lo), abs(hi)) >= TRANSFER_SLOPE:
                msg += (
                    f"; the interval still allows |slope| >= {TRANSFER_SLOPE}: more seeds or steps"
                )
    elif abs(slope) < TRANSFER_SLOPE:
        msg = (
            f"eta* nearly flat {flat_in} (slope {slope:+.2f} octave per doubling{ci}) "
            f"but {_cost_text(regret, sym, regret_at)}"
        )
    else:
        direction = "up" if slope > 0 else "down"
        msg = (
            f"drifts {direction} by {abs(slope):.2f} octave per doubling of {doubling}{ci}; "
            f"{_cost_text(regret, sym, regret_at)}"
        )
        lo, hi = row[f"drift_{axis}_lo"], row[f"drift_{axis}_hi"]
        if np.isfinite(lo) and lo <= 0 <= hi:
            msg += "; the interval includes 0: not resolved from seed noise"
    msg += _horizon_text(row, axis)
    return "; ".join([msg, cens_note] if n_cens else [msg])


def verdict(row: Mapping[str, Any]) -> str:
    """The plain-language verdict of one scorecard row, computed from its numbers only.

    Per axis (depth, then width, then the model path when the row has one): :func:`_axis_verdict`;
    then the hidden_1 own-movement slope against depth at each depth's eta* (fading beyond
    MOVEMENT_SLOPE), a shift of the largest stable rate by >= STABILITY_SHIFT octaves (over
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
    h1 = row.get("h1_own_slope_at_eta", math.nan)
    one_layer = int(row.get("block_depth", 2)) == 1
    if h1 is not None and np.isfinite(h1) and one_layer:
        # With k = 1 the block's only layer *is* the branch output: under a 1/sqrt(L) branch its
        # weights are meant to move like L^-1/2 (the residual stream still moves O(1)), so a
        # falling slope there is not the feature collapse of claim (c).
        sentences.append(
            f"one-layer blocks: the block weight's own movement scales like L^{h1:.2f} "
            "(no internal layer whose features could fade)"
        )
    elif h1 is not None and np.isfinite(h1):
        if h1 <= -MOVEMENT_SLOPE:
            sentences.append(
                f"own movement of hidden_1 falls like L^{h1:.2f}: its features fade with depth"
            )
        elif h1 >= MOVEMENT_SLOPE:
            sentences.append(f"own movement of hidden_1 grows like L^{h1:.2f}")
        else:
            sentences.append(f"own movement of hidden_1 flat in depth (L^{h1:+.2f})")
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

    claim: str  # "a" .. "e"
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
}


def _card_row(card: pd.DataFrame, scheme: str, k: int) -> Mapping[str, Any] | None:
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


def _scale(row: Mapping[str, Any]) -> str:
    return f"n={_int(row.get('at_width'))}, L={row.get('depths')}, k={_int(row['block_depth'])}"


def _horizon(row: Mapping[str, Any], criterion: bool = True) -> str:
    last = row.get("last_step")
    text = f"{_int(last)} steps" if last is not None and not pd.isna(last) else ""
    if not criterion:
        return text
    start = row.get("transfer_from_step_depth")
    if start is not None and not pd.isna(start):
        text += f"; |drift| < {TRANSFER_SLOPE} from step {_int(start)} on"
    elif last is not None and not pd.isna(last) and "transfer_from_step_depth" in row:
        lost = row.get("drift_from_step_depth")
        text += (
            f"; |drift| >= {TRANSFER_SLOPE} from step {_int(lost)} on"
            if lost is not None and not pd.isna(lost)
            else f"; |drift| >= {TRANSFER_SLOPE} at the last step"
        )
    return text


def _side(lo: float, hi: float, threshold: float) -> str:
    """Where the interval [lo, hi] of |x| lies: "inside" (-t, t), "outside", or "across"."""
    if max(abs(lo), abs(hi)) < threshold:
        return "inside"
    if lo >= threshold or hi <= -threshold:
        return "outside"
    return "across"


def _drift_claim(claim: str, row: Mapping[str, Any] | None, want_transfer: bool) -> Claim:
    metric = "drift of log2 eta* per doubling of depth (octaves)"
    if row is None:
        return Claim(claim, STATEMENTS[claim], metric, math.nan, math.nan, math.nan, "", "", "",
                     NOT_MEASURED, "not measured in this run (needs the cells)")  # fmt: skip
    v, lo, hi = row["drift_depth"], row["drift_depth_lo"], row["drift_depth_hi"]
    method = row.get("drift_depth_interval", "none")
    n = int(row.get("drift_depth_seeds", 0) or 0)
    label = interval_label(n, row.get("ci", 0.9)) if np.isfinite(lo) else ""
    censored = int(row.get("censored_depth", 0) or 0)
    regret = row.get("regret_depth", math.nan)
    if not np.isfinite(v):
        verdict_, note = INCONCLUSIVE, "eta* not located at >= 2 depths: widen or refine the grid"
    elif method != T_INTERVAL:
        verdict_ = INCONCLUSIVE
        note = (
            "no calibrated interval "
            + ("(range of 2 seeds)" if method == RANGE else "(< 2 seeds)")
            + ": rerun with >= 3 seeds"
        )
    else:
        side = _side(lo, hi, TRANSFER_SLOPE)
        r_min = row.get("regret_depth_seed_min", math.nan)
        if side == "across" and np.isfinite(r_min) and r_min >= TRANSFER_REGRET:
            verdict_ = FAILS if want_transfer else HOLDS
            note = (
                f"the drift interval straddles {TRANSFER_SLOPE}, but the base-tuned rate costs "
                f"{regret:.1%} (every seed on its own curves: {r_min:.1%} to "
                f"{row['regret_depth_seed_max']:.1%}) >= {TRANSFER_REGRET:.0%}: no transfer"
            )
        elif side == "across":
            verdict_ = INCONCLUSIVE
            note = f"the interval straddles |drift| = {TRANSFER_SLOPE}: more seeds or depths"
        else:
            transfers = side == "inside"
            verdict_ = HOLDS if transfers == want_transfer else FAILS
            note = f"interval {'within' if transfers else 'beyond'} |drift| < {TRANSFER_SLOPE}"
            if transfers and np.isfinite(regret):
                note += f"; worst regret {regret:.1%}"
                r_min = row.get("regret_depth_seed_min", math.nan)
                if regret >= TRANSFER_REGRET and np.isfinite(r_min) and r_min >= TRANSFER_REGRET:
                    verdict_ = FAILS if want_transfer else HOLDS
                    note += (
                        f" >= {TRANSFER_REGRET:.0%} (every seed on its own curves: {r_min:.1%}"
                        f" to {row['regret_depth_seed_max']:.1%}): the base-tuned rate costs loss"
                    )
                elif regret >= TRANSFER_REGRET:
                    verdict_ = INCONCLUSIVE
                    note += f" >= {TRANSFER_REGRET:.0%}, but not in every seed: more seeds or steps"
    if censored:
        note += (
            f"; {censored} censored optima excluded (slope range "
            f"[{row['drift_depth_min']:+.2f}, {row['drift_depth_max']:+.2f}])"
        )
        if (
            verdict_ != NOT_MEASURED
            and _side(row["drift_depth_min"], row["drift_depth_max"], TRANSFER_SLOPE) == "across"
        ):
            verdict_, note = INCONCLUSIVE, note + ": refine the grid there"
    if _dead(row):  # a depth without eta* leaves the drift over depth undecided
        verdict_ = INCONCLUSIVE
        note = _dead_note(row) + ("; over the other depths: " + note if np.isfinite(v) else "")
    return Claim(claim, STATEMENTS[claim], metric, float(v), float(lo), float(hi), label,
                 _scale(row), _horizon(row), verdict_, note)  # fmt: skip


def _movement_claim(row: Mapping[str, Any] | None) -> Claim:
    metric = "log-log slope of hidden_1's own movement against depth, one fixed lr"
    if _dead(row):
        v = row.get("h1_own_slope_fixed_lr", math.nan)
        return Claim("c", STATEMENTS["c"], metric, float(v), math.nan, math.nan, "", _scale(row),
                     _horizon(row, criterion=False), INCONCLUSIVE, _dead_note(row))  # fmt: skip
    if row is None or not np.isfinite(row.get("h1_own_slope_fixed_lr", math.nan)):
        return Claim("c", STATEMENTS["c"], metric, math.nan, math.nan, math.nan, "", "", "",
                     NOT_MEASURED, "not measured in this run (needs depth_mup, k = 2, movement)")  # fmt: skip
    v = row["h1_own_slope_fixed_lr"]
    lo, hi = row.get("h1_own_slope_fixed_lr_lo", math.nan), row.get("h1_own_slope_fixed_lr_hi")
    n = int(row.get("n_seeds", 0))
    a, b = COLLAPSE
    if not np.isfinite(lo) or n < 3:
        verdict_, note, label = INCONCLUSIVE, "no calibrated interval: rerun with >= 3 seeds", ""
        if np.isfinite(lo):
            label = interval_label(n, row.get("ci", 0.9))
    elif a <= lo and hi <= b:
        verdict_, note = HOLDS, f"interval within [{a}, {b}] around -1/2"
        label = interval_label(n, row.get("ci", 0.9))
    elif hi < a or lo > b:
        verdict_, note = FAILS, f"interval outside [{a}, {b}]"
        label = interval_label(n, row.get("ci", 0.9))
    else:
        verdict_, note = INCONCLUSIVE, f"the interval overlaps the edge of [{a}, {b}]: more seeds"
        label = interval_label(n, row.get("ci", 0.9))
    return Claim("c", STATEMENTS["c"], metric, float(v), float(lo), float(hi or math.nan), label,
                 _scale(row), _horizon(row, criterion=False), verdict_, note)  # fmt: skip


def _nfd_claim(nfd: Mapping[str, Any] | None, dmup: Mapping[str, Any] | None) -> Claim:
    transfer = _drift_claim("d", nfd, want_transfer=True)
    if nfd is None or dmup is None:
        return Claim("d", STATEMENTS["d"], transfer.metric, math.nan, math.nan, math.nan, "", "",
                     "", NOT_MEASURED, "not measured in this run (needs nfd and depth_mup, k = 2)")  # fmt: skip
    gap = nfd.get("h1_own_slope_fixed_lr", math.nan) - dmup.get("h1_own_slope_fixed_lr", math.nan)
    dead = [f"{name} at {_dead(r)}" for name, r in (("NFD", nfd), ("depth-muP", dmup)) if _dead(r)]
    if dead:
        movement, mnote = INCONCLUSIVE, f"every learning rate diverged ({'; '.join(dead)})"
    elif not np.isfinite(gap):
        movement, mnote = INCONCLUSIVE, "movement slopes not measured"
    elif gap >= RESTORED:
        movement, mnote = HOLDS, f"hidden_1 slope {gap:+.2f} above depth-muP's"
    else:
        movement, mnote = FAILS, f"hidden_1 slope only {gap:+.2f} above depth-muP's (< {RESTORED})"
    parts = {transfer.verdict, movement}
    verdict_ = HOLDS if parts == {HOLDS} else FAILS if FAILS in parts else INCONCLUSIVE
    note = f"transfer: {transfer.verdict} ({transfer.note}); feature learning: {mnote}"
    return transfer.__class__(**{**asdict(transfer), "verdict": verdict_, "note": note})


def _loss_claim(finals: pd.DataFrame | None, nfd, dmup, ci: float) -> Claim:
    metric = "relative loss change NFD vs depth-muP at the deepest L (each at its refined best)"
    if finals is None or nfd is None or dmup is None:
        return Claim("e", STATEMENTS["e"], metric, math.nan, math.nan, math.nan, "", "", "",
                     NOT_MEASURED, "not measured in this run (needs nfd and depth_mup, k = 2)")  # fmt: skip
    depth, width = int(nfd["depth_max"]), int(nfd["at_width"])
    best = {}
    for scheme in ("nfd", "depth_mup"):
        f = finals[
            (finals["scheme"] == scheme)
            & (finals["block_depth"] == 2)
            & (finals["depth"] == depth)
            & (finals["width"] == width)
        ]
        # per seed: the refined minimum of its own loss curve (the tuned network of that seed)
        wide = f.pivot_table(index="seed", columns="log2_lr", values="final_train_loss")
        wide = wide.sort_index(axis=1)
        best[scheme] = pd.Series(
            refine(wide.columns.to_numpy(float), wide.to_numpy(float)).loss, index=wide.index
        )
    paired = pd.concat(best, axis=1).dropna()
    paired = paired[np.isfinite(paired).all(axis=1)]
    rel = (paired["nfd"] / paired["depth_mup"] - 1.0).to_numpy(float)
    v = float(nfd["best_loss_deepest"] / dmup["best_loss_deepest"] - 1.0)
    # seeds of a scheme without a finite best loss there: every rate diverged (left out)
    dead = [
        f"{name}: every rate diverged in {_seeds_text(b.index[np.isinf(b.to_numpy(float))])}"
        for name, b in (("NFD", best["nfd"]), ("depth-muP", best["depth_mup"]))
        if np.isinf(b.to_numpy(float)).any()
    ]
    if not np.isfinite([nfd["best_loss_deepest"], dmup["best_loss_deepest"]]).all():
        v = math.nan  # a seed-mean curve diverged at every rate: no best loss to compare
    _, lo, hi, n = seed_interval(rel, ci)
    label = interval_label(int(n), ci) if np.isfinite(lo) else ""
    if int(n) < 3 and dead:
        verdict_ = INCONCLUSIVE
        note = (
            f"at L={depth} {'; '.join(dead)}: {int(n)} seed(s) with a finite best loss for "
            "both, too few for an interval (extend the grid downwards)"
        )
    elif int(n) < 3:
        verdict_, note = INCONCLUSIVE, "no calibrated interval: rerun with >= 3 seeds"
    elif hi < 0:
        verdict_, note = HOLDS, "paired over seeds, the interval is below 0"
    elif lo > 0:
        verdict_, note = FAILS, "paired over seeds, NFD's loss is higher"
    else:
        verdict_, note = INCONCLUSIVE, "the paired interval includes 0: more seeds or steps"
    if dead and int(n) >= 3:
        note += f" (at L={depth} {'; '.join(dead)}: those seeds left out)"
    scale = f"n={width}, L={depth}, k=2"
    return Claim("e", STATEMENTS["e"], metric, v, float(lo), float(hi), label, scale,
                 _horizon(nfd, criterion=False), verdict_, note)  # fmt: skip


def _seeds_text(seeds: Sequence[Any]) -> str:
    seeds = [str(s) for s in seeds]
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {', '.join(seeds)}"


def claims(card: pd.DataFrame, finals: pd.DataFrame | None = None, ci: float = 0.9) -> pd.DataFrame:
    """The paper's claims (a)-(e) as rows of :class:`Claim` (columns = its fields), decided from
    the scorecard (and the per-seed final losses for (e)); "not measured" when the run lacks
    the cells (optimizer: the first in the run; depth series at the held width). Then the open
    question (f), decided on the deepest-half slope the scorecard has when it carries the
    local-drift columns (:func:`hptransfer.local_drift.local_columns`; :func:`_deep_claim`)."""
    if card is not None and len(card) and card["optimizer"].nunique() > 1:
        card = card[card["optimizer"] == card["optimizer"].iloc[0]]
    dmup1, dmup2 = _card_row(card, "depth_mup", 1), _card_row(card, "depth_mup", 2)
    nfd2 = _card_row(card, "nfd", 2)
    rows = [
        _drift_claim("a", dmup1, want_transfer=True),
        _drift_claim("b", dmup2, want_transfer=False),
        _movement_claim(dmup2),
        _nfd_claim(nfd2, dmup2),
        _loss_claim(finals, nfd2, dmup2, ci),
        _deep_claim(_local_row(card, "nfd", 2)),
    ]
    return pd.DataFrame([asdict(r) for r in rows])


def _local_row(card: pd.DataFrame, scheme: str, k: int) -> Mapping[str, Any] | None:
    """The scorecard row of (scheme, k) when it has a deepest-half slope column, else None."""
    if card is None or card.empty or "deep_drift_depth" not in card:
        return None
    sel = card[(card["scheme"] == scheme) & (card["block_depth"] == k)]
    return None if sel.empty else sel.iloc[0].to_dict()


def _deep_claim(row: Mapping[str, Any] | None) -> Claim:
    """Claim (f): NFD's OLS slope of log2 eta* over the deepest half of the depths (k = 2),
    decided on its checked interval (:func:`hptransfer.local_drift.checked_interval`: the seed
    interval, pushed out to the bracket slope range when an optimum there is censored) against
    |slope| < TRANSFER_SLOPE: holds when inside, does not hold when outside, inconclusive when
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
            "no calibrated interval over the deepest half: rerun with >= 3 seeds",
        )
    else:
        side = _side(lo, hi, TRANSFER_SLOPE)
        verdict_ = {"inside": HOLDS, "outside": FAILS}.get(side, INCONCLUSIVE)
        note = {
            "inside": f"interval within |slope| < {TRANSFER_SLOPE}",
            "outside": f"interval beyond |slope| < {TRANSFER_SLOPE}",
        }.get(side, f"the interval straddles |slope| = {TRANSFER_SLOPE}: more seeds or depths")
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
        f"{_int(row.get('depth_max'))}, k={_int(row['block_depth'])}"
    )
    return Claim("f", STATEMENTS["f"], metric, v, lo, hi, label, scale,
                 _horizon(row, criterion=False), verdict_, note)  # fmt: skip


# --------------------------------------------------------------------------------------------
# Local drift across depth (hptransfer.local_drift)


def pair_state(lo: float, hi: float, band: float = TRANSFER_SLOPE) -> str:
    """Where a local slope's (checked) interval [lo, hi] lies against the band (-band, band):
    "flat" inside it, "falls" below -band, "rises" above band, "unclear" otherwise."""
    if np.isnan(lo) or np.isnan(hi):  # an infinite end (an open bracket) still decides
        return "unclear"
    if -band < lo and hi < band:
        return "flat"
    if hi < -band:
        return "falls"
    if lo > band:
        return "rises"
    return "unclear"


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


def _ci_text(v: float, lo: float, hi: float, sign: str = "+") -> str:
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
    curv = _ci_text(row.get("curvature_depth", math.nan), row.get("curvature_depth_lo", math.nan),
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
        shift_ci = _ci_text(shift, row.get("max_shift_depth_lo", math.nan),
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
        p = pairs[
            (pairs["family"] == r["family"])
            & (pairs["scheme"] == r["scheme"])
            & (pairs["optimizer"] == r["optimizer"])
            & (pairs["block_depth"] == r["block_depth"])
        ]
        texts.append(local_verdict(p, r) if len(p) else "")
    out["local_verdict"] = texts
    return out


# --------------------------------------------------------------------------------------------
# Metrics of the regression check


def axis_verdict(row: Mapping[str, Any], threshold: float = TRANSFER_SLOPE) -> str:
    """The verdict word of one drift row of an axis optimum (slope, slope_lo / slope_hi,
    interval, n_censored): "transfers" when |slope| < threshold and a calibrated (t) interval
    lies inside (-threshold, threshold); "inconclusive" when an optimum is censored or the
    point drift is small but no calibrated interval excludes a larger one; "drifts" when
    |slope| >= threshold; "not measured" without a slope."""
    slope = float(row.get("slope", math.nan))
    if not np.isfinite(slope):
        return NOT_MEASURED
    if int(row.get("n_censored", 0) or 0) > 0:
        return INCONCLUSIVE
    if abs(slope) >= threshold:
        return "drifts"
    lo, hi = float(row.get("slope_lo", math.nan)), float(row.get("slope_hi", math.nan))
    if row.get("interval") == T_INTERVAL and -threshold < lo and hi < threshold:
        return "transfers"
    return INCONCLUSIVE


def drift_rows(
    base: Mapping[str, Any], metric: str, abs_metric: str | None, r: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """A drift row of :func:`drift_fit`'s columns as check metrics with their interval: the
    seed interval (slope_lo / slope_hi), widened to the bracket range [slope_min, slope_max]
    pushed out by the same half-widths when optima are censored; abs_metric gets |.| of it."""
    slope = float(r["slope"])
    lo, hi = float(r.get("slope_lo", math.nan)), float(r.get("slope_hi", math.nan))
    smin, smax = float(r.get("slope_min", slope)), float(r.get("slope_max", slope))
    bracketed = bool(np.isfinite(lo) and smin < smax)
    if bracketed:
        lo, hi = min(lo, smin - (slope - lo)), max(hi, smax + (hi - slope))
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
                base = {k: r[k] for k in SERIES}
                rows += drift_rows(base, "drift_path", "abs_drift_path", r)
    path_regret = getattr(a, "path_regret", None)
    if path_regret is not None and len(path_regret):
        worst = path_regret.groupby(["family", *SERIES], sort=True)["regret"].max()
        for key, v in worst.items():
            if pd.notna(v):
                rows.append({**dict(zip(SERIES, key[1:], strict=True)), "metric": "regret_path",
                             "value": float(v)})  # fmt: skip
    h = a.hparams
    if h is None:
        return rows
    first = {}
    for group in h.groups:
        for name in group:
            if name != LR:
                first.setdefault(name, group_label(group))
    optima = at_default_conditions(h.optima, h.config)
    drift = at_default_conditions(h.drift, h.config)
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
                base = {k: r[k] for k in SERIES}
                absolute = f"abs_drift_depth/{name}" if axis == "depth" else None
                rows += drift_rows(base, f"drift_{axis}/{name}", absolute, r)
        if h.path_drift is not None and len(h.path_drift):
            p = at_default_conditions(h.path_drift, h.config)
            p = p[(p["hparam"] == name) & (p["group"] == label)]
            for _, r in p.iterrows():
                if pd.notna(r["slope"]):
                    rows += drift_rows({k: r[k] for k in SERIES}, f"drift_path/{name}", None, r)
    worst = at_default_conditions(worst_joint_regret(h.regret), h.config)
    for _, r in worst.iterrows():
        if pd.notna(r["regret"]):
            rows.append({**{k: r[k] for k in SERIES}, "metric": f"regret_joint/{r['group']}",
                         "value": float(r["regret"])})  # fmt: skip
    return rows


def suite_metrics(a: Analysis) -> pd.DataFrame:
    """Long table (scheme, optimizer, block_depth, metric, value) of the check's metrics.

    Per series over depth at the held width (and over width at the held depth): drift_<A>,
    abs_drift_<A>, spread_<A>, regret_<A>, plus drift_<A>_min / drift_<A>_max (the slope range
    allowed by censored optima); and h1_own_slope_fixed_lr / h1_weight_slope_fixed_lr
    (:func:`hptransfer.tables.fixed_lr_slopes`); with axes or a model path, the rows of
    :func:`axis_metrics` (drift_depth/<axis>, regret_joint/<group>, drift_path, ...).
    A series with a shape along A where every rate diverged (scorecard all_diverged_<A>) has
    no metrics over A (nor fixed-lr slopes for A = depth): they are not measured, and the
    check reports them missing, naming the shape.
    """
    rows = []
    dead_depth = set()
    for _, r in a.scorecard.iterrows():
        base = {k: r[k] for k in SERIES}
        for axis in AXES:
            dead = r.get(f"all_diverged_{axis}")
            if isinstance(dead, str) and dead:
                if axis == "depth":
                    dead_depth.add(tuple(base.values()))
                continue
            for metric in (
                f"drift_{axis}",
                f"spread_{axis}",
                f"regret_{axis}",
                f"drift_{axis}_min",
                f"drift_{axis}_max",
            ):
                if metric in r and pd.notna(r[metric]):
                    rows.append({**base, "metric": metric, "value": float(r[metric])})
            if f"drift_{axis}" in r and pd.notna(r[f"drift_{axis}"]):
                value = abs(float(r[f"drift_{axis}"]))
                rows.append({**base, "metric": f"abs_drift_{axis}", "value": value})
    slopes = fixed_lr_slopes(a.finals, a.optima)
    held = held_value(a.optima, "depth")
    if len(slopes):
        if held is not None:
            slopes = slopes[slopes["width"] == held]
        for _, r in slopes.iterrows():
            if tuple(r[k] for k in SERIES) in dead_depth:
                continue
            for metric in ("h1_own_slope_fixed_lr", "h1_weight_slope_fixed_lr"):
                if pd.notna(r[metric]):
                    rows.append({**{k: r[k] for k in SERIES}, "metric": metric, "value": r[metric]})
    rows += axis_metrics(a)
    frame = pd.DataFrame(rows, columns=[*SERIES, "metric", "value", "lo", "hi", "bracketed"])
    frame["bracketed"] = frame["bracketed"].map(lambda v: v is True)
    frame["block_depth"] = frame["block_depth"].astype(int)
    return frame
