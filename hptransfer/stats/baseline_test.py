"""The baseline comparison as a two-sample test with a stated false-alarm rate.

A baseline (``results/baselines/<suite>.json``, format 2: :func:`baseline_record`) keeps, for
eta* of every cell and for every compared metric, the point value, its interval and each
seed's own value. A later run is compared with it quantity by quantity (:func:`compare`) by
Welch's two-sample statistic on the per-seed values,

    t = (x_run - x_base) / sqrt(s_run^2 / n_run + s_base^2 / n_base),

x the point estimates (from the seed-averaged curves), s the sd of the n per-seed values
(floored at :data:`SD_FLOOR`: two seed sets that happen to agree exactly must not make a
difference of 0.001 octave significant). A quantity fails when |t| exceeds the Student-t
quantile at the Welch-Satterthwaite degrees of freedom and level alpha / (2 m): Bonferroni
over the m comparisons of the baseline, so that unchanged code run with another seed set fails
any comparison with probability at most alpha (``false_alarm`` of the suite's expectations,
default :data:`FALSE_ALARM`) when the per-seed values are roughly normal. The allowed band
printed for each row is x_base +- quantile * se: the tolerance comes from the measured
seed-to-seed spread of both runs, not from a flat number. The rate actually measured (the
unchanged code with other seed sets) and the power (mutants of the schemes) are in
docs/ci-gate.md.

A quantity with fewer than two finite per-seed values on both sides (e.g. a movement slope of a
scheme that diverges at most depths) has no spread to test against: it is shown as "untested"
and does not fail the gate. Censored quantities are compared by overlap, since only a range is known for them: an eta* at
a grid edge or next to a diverging rate holds when the run's bracket and the baseline's
intersect (divergence may move by one grid step between seed sets); a drift whose interval was
widened by brackets holds when the two intervals intersect. Infinite values (the base-tuned
rate diverges) hold only when both sides are infinite.

A baseline of format 1 (eta* and metric points only, written before per-seed values were kept)
is compared with the run's own seed spread standing for both sides (n_base = n_run).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats  # a dependency of jax; only the t quantile is used

FORMAT = 2
UNTESTED = "untested"  # a quantity without per-seed spread on either side: shown, not compared
FALSE_ALARM = 0.05
# Metrics the baseline compares (with the _width / _path forms); abs_drift and the bracket ends
# restate drift, and metrics of axes beyond the learning rate carry their own intervals.
COMPARED_PREFIXES = ("drift_", "spread_", "regret_", "h1_own_slope_fixed_lr",
                     "h1_weight_slope_fixed_lr")  # fmt: skip
_NOT_COMPARED_SUFFIXES = ("_min", "_max")
# sd floors per quantity (octaves, octaves per doubling, relative loss): below these a
# difference does not matter to any verdict.
SD_FLOOR = {"log2_eta_star": 0.02, "drift": 0.01, "spread": 0.02, "regret": 0.002,
            "slope": 0.01}  # fmt: skip
COLUMNS = ["check", "what", "value", "lo", "hi", "allowed", "outcome", "held", "note"]
CELL_KEYS = ["scheme", "optimizer", "block_depth", "width", "depth"]
SERIES = ["scheme", "optimizer", "block_depth"]


def compared(metric: str) -> bool:
    """Whether the baseline compares ``metric``."""
    return metric.startswith(COMPARED_PREFIXES) and not metric.endswith(_NOT_COMPARED_SUFFIXES)


def _floor(name: str) -> float:
    if name == "log2_eta_star":
        return SD_FLOOR["log2_eta_star"]
    for key in ("drift", "spread", "regret"):
        if name.startswith(key):
            return SD_FLOOR[key]
    return SD_FLOOR["slope"]


def _clean(values: Sequence[Any]) -> list[float | None]:
    """Floats for JSON: NaN as None, infinities kept as +-1e308 would lie; keep them as strings."""
    out: list[Any] = []
    for v in values:
        v = float(v)
        out.append(None if math.isnan(v) else ("inf" if v == math.inf else "-inf") if math.isinf(v)
                   else v)  # fmt: skip
    return out


def _floats(values: Sequence[Any] | None) -> np.ndarray:
    """The inverse of :func:`_clean`: None -> NaN, "inf" -> inf."""
    if values is None:
        return np.array([], float)
    return np.array([math.nan if v is None else float(v) for v in values], float)


def baseline_record(
    optima: pd.DataFrame,
    seeds: pd.DataFrame,
    metrics: pd.DataFrame,
    samples: pd.DataFrame,
    config: Mapping[str, Any] | None = None,
    ci: float = 0.9,
) -> dict[str, Any]:
    """What a baseline keeps (format 2): per cell eta*, its censoring and bracket, the grid
    step and every seed's eta*; per compared metric its value, interval and every seed's value;
    the config of the run (compared with later runs' configs)."""
    cells = []
    for _, r in optima.iterrows():
        s = seeds
        for k in ("family", *CELL_KEYS):
            s = s[s[k] == r[k]]
        s = s.sort_values("seed")
        step = (r["grid_max"] - r["grid_min"]) / max(int(r["n_lr"]) - 1, 1)
        cells.append({
            **{k: (int(r[k]) if k in ("block_depth", "width", "depth") else str(r[k]))
               for k in CELL_KEYS},
            "log2_eta_star": _clean([r["log2_eta_star"]])[0],
            "edge": r["edge"] if isinstance(r["edge"], str) else None,
            "bracket_lo": _clean([r["bracket_lo"]])[0],
            "bracket_hi": _clean([r["bracket_hi"]])[0],
            "grid_step": float(step),
            "seeds": [int(v) for v in s["seed"]],
            "seed_values": _clean(s["log2_eta_star"].to_numpy(float)),
        })  # fmt: skip
    rows = []
    for _, m in metrics.iterrows():
        v = samples[
            (samples["scheme"] == m["scheme"]) & (samples["optimizer"] == m["optimizer"])
            & (samples["block_depth"] == m["block_depth"]) & (samples["metric"] == m["metric"])
        ].sort_values("seed")  # fmt: skip
        rows.append({
            "scheme": str(m["scheme"]), "optimizer": str(m["optimizer"]),
            "block_depth": int(m["block_depth"]), "metric": str(m["metric"]),
            "value": _clean([m["value"]])[0],
            "lo": _clean([m.get("lo", math.nan)])[0], "hi": _clean([m.get("hi", math.nan)])[0],
            "bracketed": bool(m.get("bracketed", False)),
            "seeds": [int(x) for x in v["seed"]],
            "seed_values": _clean(v["value"].to_numpy(float)),
        })  # fmt: skip
    record: dict[str, Any] = {"format": FORMAT, "ci": ci, "eta_star": cells, "metrics": rows}
    if config is not None:
        record["config"] = json.loads(json.dumps(dict(config), default=str))
    return record


def _sd(values: np.ndarray) -> tuple[float, int]:
    v = values[np.isfinite(values)]
    return (float(np.std(v, ddof=1)) if v.size >= 2 else math.nan), int(v.size)


def welch(
    x_run: float,
    run_values: np.ndarray,
    x_base: float,
    base_values: np.ndarray | None,
    floor: float,
    level: float,
) -> tuple[float, float, str]:
    """(half-width of the allowed band, degrees of freedom, note) of the two-sample test at
    two-sided ``level``; base_values None = a format-1 baseline (the run's spread stands for
    both sides). NaN half-width when neither side has two finite values."""
    s_r, n_r = _sd(run_values)
    if base_values is None:
        s_b, n_b = s_r, n_r
    else:
        s_b, n_b = _sd(base_values)
    if n_r < 2 and n_b < 2:
        return math.nan, math.nan, "no seed spread on either side"
    if n_r < 2:  # one side without spread: the other side's stands for it
        s_r, n_r = s_b, max(n_r, 1)
    if n_b < 2:
        s_b, n_b = s_r, max(n_b, 1)
    s_r, s_b = max(s_r, floor), max(s_b, floor)
    a, b = s_r**2 / n_r, s_b**2 / n_b
    se = math.sqrt(a + b)
    df = (a + b) ** 2 / (a**2 / max(n_r - 1, 1) + b**2 / max(n_b - 1, 1))
    q = float(stats.t.ppf(1.0 - level / 2.0, df))
    return q * se, df, f"Welch t, {df:.1f} df"


def _overlap(lo_a: float, hi_a: float, lo_b: float, hi_b: float) -> bool:
    lo_a, lo_b = (-math.inf if math.isnan(v) else v for v in (lo_a, lo_b))
    hi_a, hi_b = (math.inf if math.isnan(v) else v for v in (hi_a, hi_b))
    return max(lo_a, lo_b) <= min(hi_a, hi_b)


def compare(
    record: Mapping[str, Any], baseline: Mapping[str, Any], false_alarm: float = FALSE_ALARM
) -> pd.DataFrame:
    """Every quantity of ``baseline`` against the run's ``record`` (both :func:`baseline_record`
    dicts; the baseline may be of format 1): rows with the columns of the check table
    (outcome holds / fails / missing), decided as the module docstring says."""
    format_2 = int(baseline.get("format", 1)) >= 2
    now_cells = {tuple(c[k] for k in CELL_KEYS): c for c in record["eta_star"]}
    now_metrics = {(m["scheme"], m["optimizer"], m["block_depth"], m["metric"]): m
                   for m in record["metrics"]}  # fmt: skip
    base_metrics = [m for m in baseline["metrics"] if compared(m["metric"])]
    m_total = max(len(baseline["eta_star"]) + len(base_metrics), 1)
    level = false_alarm / m_total
    rows = []
    for b in baseline["eta_star"]:
        key = tuple(b[k] for k in CELL_KEYS)
        what = (f"log2 eta* {b['scheme']} k={b['block_depth']} n={b['width']} L={b['depth']}"
                + (f" (bound: {b['edge']})" if b.get("edge") else ""))  # fmt: skip
        rows.append(_compare_one(
            what, now_cells.get(key), b, "log2_eta_star", format_2, level,
            censored=lambda c: bool(c.get("edge")),
            bracket=lambda c: (_num(c.get("bracket_lo")), _num(c.get("bracket_hi"))),
        ))  # fmt: skip
    for b in base_metrics:
        key = (b["scheme"], b["optimizer"], b["block_depth"], b["metric"])
        what = f"{b['metric']} {b['scheme']} k={b['block_depth']}"
        rows.append(_compare_one(
            what, now_metrics.get(key), b, "value", format_2, level,
            censored=lambda c: bool(c.get("bracketed")),
            bracket=lambda c: (_num(c.get("lo")), _num(c.get("hi"))),
        ))  # fmt: skip
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame.attrs["level"] = level
    return frame


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


def _compare_one(what, now, base, field, format_2, level, censored, bracket) -> dict[str, Any]:
    row = {"check": "baseline", "what": what, "value": math.nan, "lo": math.nan,
           "hi": math.nan, "allowed": "", "outcome": "missing", "held": False, "note": ""}  # fmt: skip
    ref = _num(base.get(field))
    if now is None:
        return row | {"note": "missing: not in this run"}
    value = _num(now.get(field))
    row["value"] = value
    if math.isnan(ref) and math.isnan(value):  # e.g. every replica diverged in both runs
        return row | {"allowed": "none, as in the baseline", "outcome": "holds", "held": True,
                      "note": "no value in either run"}  # fmt: skip
    if not format_2 and base.get(field) is None and not math.isfinite(value):
        # format 1 wrote NaN and +-inf alike as null (JSON has no inf): either matches it
        return row | {"allowed": "non-finite, as in the baseline", "outcome": "holds",
                      "held": True, "note": "format-1 baseline: null stands for NaN or inf"}  # fmt: skip
    if math.isnan(ref) or math.isnan(value):
        side = "this run" if math.isnan(value) else "the baseline"
        return row | {"note": f"missing: no value in {side} (every replica diverged?)"}
    if math.isinf(ref) or math.isinf(value):
        same = value == ref
        return row | {"allowed": f"{ref:+}", "outcome": "holds" if same else "fails",
                      "held": same, "note": "" if same else "infinite on one side only"}  # fmt: skip
    if censored(base) or censored(now):
        lo_r, hi_r = bracket(now) if censored(now) else (value, value)
        lo_b, hi_b = bracket(base) if censored(base) else (ref, ref)
        ok = _overlap(lo_r, hi_r, lo_b, hi_b)
        return row | {
            "lo": lo_r, "hi": hi_r, "allowed": f"meets [{lo_b:+.2f}, {hi_b:+.2f}]",
            "outcome": "holds" if ok else "fails", "held": ok, "note": "censored: by overlap",
        }  # fmt: skip
    base_values = _floats(base.get("seed_values")) if format_2 else None
    half, _, note = welch(value, _floats(now.get("seed_values")), ref, base_values,
                          _floor(str(base.get("metric", field))), level)  # fmt: skip
    if math.isnan(half):  # nothing to test against: shown, never counted as a failure
        return row | {"outcome": UNTESTED, "held": True, "note": f"not compared: {note}"}
    ok = abs(value - ref) <= half
    return row | {"lo": ref - half, "hi": ref + half, "allowed": f"{ref:+.2f} +- {half:.2f}",
                  "outcome": "holds" if ok else "fails", "held": ok,
                  "note": note + ("" if format_2 else "; format-1 baseline: the run's spread for both")}  # fmt: skip
