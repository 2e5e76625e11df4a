"""Regression check of transfer quality: a run against a suite's expectations and baseline.

Three kinds of checks, all data (an expectations TOML file and a baseline JSON file), and all
decided by one rule on intervals, :func:`hptransfer.stats.intervals.interval_outcome`: *holds* when
the whole interval lies inside the allowed range, *fails* when it lies wholly outside,
*inconclusive* otherwise, *missing* when the metric, the scheme or the reference is not in the
run (named in the note). Only *holds* passes the gate, and *inconclusive* where the expectation
says ``allow_inconclusive = true`` (shown as "ok (inconclusive)").

- *Expectations* ([[SUITE.expect]]) state what the science says at this scale, per (scheme,
  block depth): a metric of the run (:func:`suite_metrics`) must lie in [min, max], or relative
  to the same metric of another series (``min_ref`` / ``max_ref`` = {scheme, block_depth,
  offset}: metric - reference >= offset / <= offset). A metric's interval is
  :func:`hptransfer.stats.seed_metrics.with_intervals`: a Student-t interval over the per-seed values
  around the point value, for a drift with censored optima widened to the slope range the
  brackets allow; a relative bound is decided on the paired per-seed differences.
- *Coordinate checks* ([[SUITE.coordcheck]]) train a few steps across widths (or depths) and
  decide every layer role on the interval of its log-log slope over seeds: the gate's view of
  width scaling when the sweep itself has a single width.
- *Baseline*: eta* of every cell and the compared metrics are tested against the baseline by a
  two-sample test with a stated family-wise false-alarm rate (:mod:`hptransfer.stats.baseline_test`;
  ``false_alarm`` in the suite's table, default 0.05). ``--update-baseline`` rewrites it
  deliberately: refused when the run's config is not the suite's or an expectation fails,
  unless ``--force``.

The built-in suites (benchmarks/*.toml: sweep configs and expectations.toml) and their baselines
(results/baselines/*.json) ship as package data (``hptransfer.suites``,
``hptransfer.baselines``), so the check runs from any directory; a project of its own passes
``--expectations FILE`` (and optionally ``--baseline FILE``): see docs/ci-gate.md. The gate's
power against regressions is measured by :mod:`hptransfer.tools.mutation`.

Metrics per (scheme, optimizer, block depth), over depth at the held width (and the same with
_width over width at the held depth, when the sweep has several widths):
  drift_depth          slope of log2 eta* against log2 L (octaves per doubling)
  abs_drift_depth      |drift_depth| (its interval: |.| of drift_depth's)
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
With a model path ([model] path: one depth per width), along the path:
  drift_path           slope of log2 eta* against log2(n / n0) (octaves per doubling of n)
  abs_drift_path       |drift_path|
  regret_path          worst relative regret of the eta* tuned at the path's first point
The metrics are computed by :func:`hptransfer.stats.verdicts.suite_metrics`.
"""

from __future__ import annotations

import importlib.util
import json
import math
import textwrap
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hptransfer.stats import analysis, baseline_test, seed_metrics
from hptransfer.stats.baseline_test import COLUMNS
from hptransfer.stats.intervals import (
    HOLDS,
    INCONCLUSIVE,
    MISSING,
    abs_interval,
    interval_method,
    interval_outcome,
    seed_interval,
    worst_outcome,
)
from hptransfer.stats.results import META_FILE, check_results, read_meta, write_json
from hptransfer.stats.verdicts import suite_metrics

ROOT = Path(__file__).resolve().parents[2]  # the checkout: hptransfer/tools/check.py


def _data_dir(package: str, source: Path) -> Path:
    """Where the package data ``package`` lies: the installed package (pip install, or an
    editable install that maps it), else the source checkout's folder. (The data folders have
    no __init__.py, so they are namespace packages: their location comes from the import spec.)"""
    try:
        spec = importlib.util.find_spec(package)
    except ModuleNotFoundError:
        spec = None
    places = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    return next((p for p in places if p.is_dir()), source)


SUITES = _data_dir("hptransfer.suites", ROOT / "benchmarks")
EXPECTATIONS = SUITES / "expectations.toml"
BASELINES = _data_dir("hptransfer.baselines", ROOT / "results" / "baselines")
SERIES = ["scheme", "optimizer", "block_depth"]
# Config fields that do not change what a run measures.
IGNORED_CONFIG_FIELDS = ("name", "max_replicas_per_chunk")


class CheckError(ValueError):
    """The expectations file or the baseline is malformed or missing."""


def suite_names(path: str | Path = EXPECTATIONS) -> list[str]:
    """The suites (top-level tables) of an expectations file."""
    return sorted(k for k, v in _read_toml(Path(path)).items() if isinstance(v, dict))


def _suite_tables(path: Path, data: Mapping[str, Any], needed: str | None) -> None:
    """Refuse top-level entries that are not suite tables (a top-level [[expect]] or a bare
    key), naming the suite tables the file has and the one the run needs."""
    stray = sorted(k for k, v in data.items() if not isinstance(v, dict))
    if stray:
        tables = sorted(k for k, v in data.items() if isinstance(v, dict))
        need = f"; this run needs [{needed}]" if needed else ""
        raise CheckError(
            f"{path}: top-level {stray} are not suite tables; put each expectation under its "
            f"suite ([[SUITE.expect]]); the file has suite tables {tables}{need}"
        )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise CheckError(f"expectations file {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as err:
        raise CheckError(f"expectations file {str(path)!r} is not valid TOML: {err}") from None


def choose_suite(path: str | Path, suite: str | None, config_name: str | None) -> str:
    """The suite to check: ``suite`` when given; else the file's only table; else the table
    named like the run's config."""
    _suite_tables(Path(path), _read_toml(Path(path)), suite or config_name)
    names = suite_names(path)
    if suite is not None:
        return suite
    if len(names) == 1:
        return names[0]
    if config_name in names:
        return str(config_name)
    raise CheckError(
        f"{path}: no suite named like the run's config ({config_name!r}); choose one with "
        f"--suite, allowed: {names}"
    )


def load_expectations(suite: str, path: str | Path = EXPECTATIONS) -> dict[str, Any]:
    """The validated table ``suite`` of an expectations file."""
    path = Path(path)
    data = _read_toml(path)
    _suite_tables(path, data, suite)
    if suite not in data:
        raise CheckError(f"{path}: no suite {suite!r}; allowed: {sorted(data)}")
    spec = data[suite]
    allowed = {"description", "expect", "false_alarm", "coordcheck"}
    if "tolerance" in spec:
        raise CheckError(
            f"{path}: [{suite}] tolerance is no longer read: the baseline is compared by a "
            "two-sample test on per-seed values at the family-wise rate false_alarm (default "
            f"{baseline_test.FALSE_ALARM}); remove it (docs/ci-gate.md)"
        )
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
        "allow_inconclusive",
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
        for key in ("min_ref", "max_ref"):
            ref = e.get(key)
            if ref is not None and not (
                isinstance(ref, dict) and {"scheme", "block_depth"} <= set(ref)
                and set(ref) <= {"scheme", "block_depth", "offset", "metric"}
            ):  # fmt: skip
                raise CheckError(
                    f"{path}: {suite}.expect[{i}].{key} = {ref!r}; allowed: a table with "
                    "scheme, block_depth and optionally offset and metric"
                )
        if not isinstance(e.get("allow_inconclusive", False), bool):
            raise CheckError(
                f"{path}: {suite}.expect[{i}].allow_inconclusive: allowed: true or false"
            )
    for i, c in enumerate(spec.get("coordcheck", [])):
        _coord_setting(c, f"{path}: {suite}.coordcheck[{i}]")
    fa = spec.get("false_alarm", baseline_test.FALSE_ALARM)
    if not (isinstance(fa, int | float) and not isinstance(fa, bool) and 0 < fa < 1):
        raise CheckError(f"{path}: [{suite}] false_alarm = {fa!r}; allowed: a number in (0, 1)")
    return spec


def _series_rows(metrics: pd.DataFrame, scheme: str, k: int, optimizer: str | None):
    sel = metrics[(metrics["scheme"] == scheme) & (metrics["block_depth"] == k)]
    return sel[sel["optimizer"] == optimizer] if optimizer is not None else sel


def _metric_row(
    metrics: pd.DataFrame, scheme: str, k: int, metric: str, optimizer: str | None
) -> tuple[Mapping[str, Any] | None, str]:
    """(the metric's row, "") or (None, why it is missing: which scheme, series or metric)."""
    if not (metrics["scheme"] == scheme).any():
        have = sorted(metrics["scheme"].unique())
        return None, f"scheme {scheme!r} has no metrics in this run (schemes with metrics: {have})"
    series = _series_rows(metrics, scheme, k, optimizer)
    if series.empty:
        return None, f"{scheme} k={k} has no metrics in this run"
    sel = series[series["metric"] == metric]
    if sel.empty:
        sel = _bracket_only_drift(series, metric)
    if len(sel) != 1:
        opt = f" ({len(sel)} optimizers: name one)" if len(sel) > 1 else ""
        return None, f"metric {metric!r} of {scheme} k={k} is not measured by this run{opt}"
    row = sel.iloc[0].to_dict()
    if math.isnan(row["value"]) and not (
        row.get("bracketed") and np.isfinite(row["lo"]) | np.isfinite(row["hi"])
    ):
        return None, f"metric {metric!r} of {scheme} k={k} is not finite"
    return row, ""


def _bracket_only_drift(series: pd.DataFrame, metric: str) -> pd.DataFrame:
    """A drift row made of its bracket range alone, for a series whose every optimum is
    censored (no point slope, but drift_<A>_min / _max bound it): value NaN, lo / hi = the
    range (|.| of it for abs_drift_<A>), so the expectation is decided on what is known."""
    base = metric.removeprefix("abs_")
    if not base.startswith("drift_") or "/" in base:
        return series.iloc[:0]
    ends = series.set_index("metric")["value"]
    if f"{base}_min" not in ends or f"{base}_max" not in ends:
        return series.iloc[:0]
    lo, hi = float(ends[f"{base}_min"]), float(ends[f"{base}_max"])
    if metric.startswith("abs_"):
        lo, hi = abs_interval(lo, hi)
    row = series.iloc[:1].copy()
    row["metric"], row["value"], row["lo"], row["hi"] = metric, math.nan, lo, hi
    row["interval"], row["bracketed"] = "bracket", True
    return row


def _lookup(
    metrics: pd.DataFrame, scheme: str, k: int, metric: str, optimizer: str | None
) -> float:
    row, _ = _metric_row(metrics, scheme, k, metric, optimizer)
    return float(row["value"]) if row is not None else math.nan


def unavailable_reasons(optima: pd.DataFrame) -> dict[tuple[str, int], str]:
    """(scheme, block depth) -> why eta* is missing: the cells where every replica diverged at
    every learning rate (eta* null), e.g. "no eta* at n=64 L=32 (every replica diverged)"."""
    null = optima[optima["log2_eta_star"].isna()]
    out = {}
    for (scheme, k), s in null.groupby(["scheme", "block_depth"]):
        cells = ", ".join(f"n={int(r.width)} L={int(r.depth)}" for r in s.itertuples())
        out[(scheme, int(k))] = f"no eta* at {cells} (every replica diverged)"
    return out


def _relative_interval(
    row: Mapping[str, Any], ref: Mapping[str, Any], samples: pd.DataFrame, ci: float
) -> tuple[float, float, float, str]:
    """(difference, lo, hi, method) of metric(row) - metric(ref): a paired Student-t interval
    over the seeds both series share (their replicas share initial draws and batches) when
    neither interval was widened by brackets; otherwise the interval of the difference of two
    intervals, [lo_a - hi_b, hi_a - lo_b], which covers whenever both do."""
    diff = float(row["value"]) - float(ref["value"])
    paired = seed_metrics.paired_samples(
        samples,
        (row["scheme"], row["optimizer"], int(row["block_depth"])),
        (ref["scheme"], ref["optimizer"], int(ref["block_depth"])),
        str(row["metric"]),
        str(ref["metric"]),
    )
    if not (row.get("bracketed") or ref.get("bracketed")) and np.isfinite(paired).sum() >= 2:
        _, lo, hi, n = seed_interval(paired, ci, centre=diff)
        # the range of 2 seeds need not contain the seed-mean estimate: it always does here
        return diff, min(float(lo), diff), max(float(hi), diff), f"paired {interval_method(int(n))}"
    lo = float(row["lo"]) - float(ref["hi"])
    hi = float(row["hi"]) - float(ref["lo"])
    return diff, lo, hi, "difference of intervals"


def _interval_text(lo: float, hi: float) -> str:
    return f"[{lo:+.2f}, {hi:+.2f}]" if np.isfinite([lo, hi]).any() else "n/a"


def check_expectations(
    metrics: pd.DataFrame,
    spec: Mapping[str, Any],
    reasons: Mapping[tuple[str, int], str] | None = None,
    samples: pd.DataFrame | None = None,
    ci: float = 0.9,
) -> pd.DataFrame:
    """One row per expectation, decided on intervals by :func:`hptransfer.stats.intervals.
    interval_outcome`: ``metrics`` carries each metric's interval
    (:func:`hptransfer.stats.seed_metrics.with_intervals`), ``samples`` the per-seed values that
    relative bounds pair. An expectation with several bounds (min / max and min_ref /
    max_ref) is judged by each and takes the worst outcome (:func:`worst_outcome`).

    Columns: check, what, value, lo, hi, allowed, outcome (holds / fails / inconclusive /
    missing), held (holds, or inconclusive where the expectation says allow_inconclusive),
    note (what is missing, or how a relative bound was decided).
    """
    samples = samples if samples is not None else pd.DataFrame(columns=seed_metrics.SAMPLE_COLUMNS)
    rows = []
    for e in spec.get("expect", []):
        opt = e.get("optimizer")
        what = f"{e['claim']} [{e['scheme']}, k={e['block_depth']}, {e['metric']}]"
        row, why = _metric_row(metrics, e["scheme"], e["block_depth"], e["metric"], opt)
        parts, notes, allowed = [], [], []
        value, lo, hi = math.nan, math.nan, math.nan
        if row is None:
            notes.append(why)
            parts.append(MISSING)
        else:
            value, lo, hi = float(row["value"]), float(row["lo"]), float(row["hi"])
        if row is not None and ("min" in e or "max" in e):
            b_lo, b_hi = float(e.get("min", -math.inf)), float(e.get("max", math.inf))
            parts.append(interval_outcome(lo, hi, b_lo, b_hi))
            allowed.append(f"[{b_lo:+.2f}, {b_hi:+.2f}]")
            if parts[-1] == MISSING:  # measured, but without an interval: undecided
                parts[-1] = INCONCLUSIVE
                notes.append(f"no interval ({row.get('interval', 'none')}): not decided on a point")
        for side in ("min_ref", "max_ref"):
            ref_spec = e.get(side)
            if ref_spec is None or row is None:
                continue
            ref_metric = ref_spec.get("metric", e["metric"])
            ref, why = _metric_row(
                metrics, ref_spec["scheme"], ref_spec["block_depth"], ref_metric, opt
            )
            offset = float(ref_spec.get("offset", 0.0))
            name = f"{ref_spec['scheme']} k={ref_spec['block_depth']}"
            if ref is None:
                notes.append(f"reference {name}: {why}")
                parts.append(MISSING)
                continue
            diff, d_lo, d_hi, method = _relative_interval(row, ref, samples, ci)
            bound = (offset, math.inf) if side == "min_ref" else (-math.inf, offset)
            parts.append(interval_outcome(d_lo, d_hi, *bound))
            if parts[-1] == MISSING:
                parts[-1] = INCONCLUSIVE
            op = ">=" if side == "min_ref" else "<="
            allowed.append(f"minus {name} {op} {offset:+.2f}")
            notes.append(
                f"minus {name} ({float(ref['value']):+.2f}): {diff:+.2f} "
                f"{_interval_text(d_lo, d_hi)} ({method})"
            )
        outcome = worst_outcome(parts)
        if outcome == MISSING and reasons:
            found = [reasons[key] for key in [(e["scheme"], e["block_depth"])] + [
                (e[s]["scheme"], e[s]["block_depth"]) for s in ("min_ref", "max_ref") if s in e
            ] if key in reasons]  # fmt: skip
            notes += found
        allow = bool(e.get("allow_inconclusive", False))
        rows.append({
            "check": "expectation",
            "what": what + (" (may be inconclusive)" if allow else ""),
            "value": value,
            "lo": lo,
            "hi": hi,
            "allowed": "; ".join(allowed),
            "outcome": outcome,
            "held": outcome == HOLDS or (allow and outcome == INCONCLUSIVE),
            "note": "; ".join(notes),
        })  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


# --------------------------------------------------------------------------------------------
# Coordinate checks in the gate: width (and depth) scaling where the sweep has one shape


COORD_KEYS = {"claim", "scheme", "axis", "values", "width", "depth", "block_depth", "log2_lr",
              "steps", "seeds", "tolerance", "optimizer", "batch_size"}  # fmt: skip


def _coord_setting(c: Mapping[str, Any], where: str):
    """(CoordSetting, tolerance) of one [[SUITE.coordcheck]] table, validated in one line."""
    from hptransfer.tools import coordcheck as cc

    if not isinstance(c, dict):
        raise CheckError(f"{where}: must be a table")
    bad = sorted(set(c) - COORD_KEYS)
    if bad:
        raise CheckError(f"{where} has unknown field(s) {bad}; allowed: {sorted(COORD_KEYS)}")
    for need in ("claim", "scheme", "axis", "values"):
        if need not in c:
            raise CheckError(f"{where} is missing {need!r}")
    tolerance = c.get("tolerance", cc.DEFAULT_TOLERANCE)
    if not (isinstance(tolerance, int | float) and tolerance > 0):
        raise CheckError(f"{where}.tolerance = {tolerance!r}; allowed: a number > 0")
    optimizer = c.get("optimizer", "sgd")
    log2_lr = c.get("log2_lr", cc.DEFAULT_LOG2_LR.get(optimizer, -3.0))
    seeds = c.get("seeds", 3)
    if not (isinstance(seeds, int) and seeds >= 2):
        raise CheckError(
            f"{where}.seeds = {seeds!r}; allowed: an integer >= 2 (an interval needs seeds)"
        )
    try:
        setting = cc.CoordSetting(
            axis=c["axis"], values=tuple(c["values"]), width=c.get("width", 64),
            depth=c.get("depth", 2), block_depth=c.get("block_depth", 1),
            optimizer=optimizer, lr=2.0 ** float(log2_lr), steps=c.get("steps", 5),
            seeds=tuple(range(seeds)), batch_size=c.get("batch_size", 128),
        )  # fmt: skip
    except (cc.CoordCheckError, TypeError, ValueError) as err:
        raise CheckError(f"{where}: {err}") from None
    return setting, float(tolerance)


def check_coordchecks(
    spec: Mapping[str, Any],
    registry: Mapping[str, Any],
    data_name: str = "mnist1d",
    ci: float = 0.9,
) -> pd.DataFrame:
    """One row per [[SUITE.coordcheck]]: the coordinate check of the scheme (looked up in
    ``registry``, so a mutated scheme can stand in for a built-in one) across the stated
    widths or depths, every role decided on its slope interval over seeds
    (:func:`hptransfer.tools.coordcheck.interval_verdict`); the row takes the worst role."""
    from hptransfer.network.data import load_dataset
    from hptransfer.network.schemes import get_scheme
    from hptransfer.tools import coordcheck as cc

    rows = []
    items = spec.get("coordcheck", [])
    data = load_dataset(data_name, num_samples=1000) if items else None
    for i, c in enumerate(items):
        setting, tolerance = _coord_setting(c, f"coordcheck[{i}]")
        scheme = get_scheme(c["scheme"], registry)
        frame = cc.measure(scheme, setting, data)
        roles = cc.interval_verdict(frame, setting.axis, tolerance, ci)
        outcome = worst_outcome(roles["outcome"].tolist())
        worst = roles[roles["outcome"] == outcome].iloc[0]
        flagged = roles[roles["outcome"] != HOLDS]
        note = "; ".join(
            f"{r.role} {r.stat} step {r.step}: {r.slope:+.2f} {_interval_text(r.lo, r.hi)} {r.outcome}"
            for r in flagged.itertuples()
        )  # fmt: skip
        rows.append({
            "check": "coordcheck",
            "what": f"{c['claim']} [{c['scheme']}, {setting.axis}s {list(setting.values)}]",
            "value": float(worst["slope"]), "lo": float(worst["lo"]), "hi": float(worst["hi"]),
            "allowed": f"every role's slope in [{-tolerance:+.2f}, {tolerance:+.2f}]",
            "outcome": outcome, "held": outcome == HOLDS, "note": note,
        })  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


# --------------------------------------------------------------------------------------------
# Which config a run is, and whether it is the suite's


def _plain(config: Mapping[str, Any]) -> dict[str, Any]:
    """A config dict as JSON sees it (tuples as lists), for comparison."""
    return json.loads(json.dumps(dict(config), default=str))


def run_config(run_dir: str | Path) -> dict[str, Any] | None:
    """The config a run was made with (from DIR/meta.json), or None without meta.json."""
    if not (Path(run_dir) / META_FILE).exists():
        return None
    config = read_meta(run_dir).get("config")
    if not isinstance(config, Mapping):
        return None
    from hptransfer.sweeps.config import SweepConfig

    # fields added since the run was made take their defaults, as rundir's legacy match does
    return _plain({**SweepConfig().to_dict(), **dict(config)})


def suite_config(suite: str, suites: Path = SUITES) -> dict[str, Any] | None:
    """The config of a built-in suite (``suites/<suite>.toml``), or None when there is none."""
    from hptransfer.sweeps.config import load_config

    path = Path(suites) / f"{suite}.toml"
    return _plain(load_config(path).to_dict()) if path.exists() else None


def config_differences(run: Mapping[str, Any], reference: Mapping[str, Any]) -> list[str]:
    """Dotted names of the fields where two configs differ (ignoring IGNORED_CONFIG_FIELDS)."""
    out = []
    for key in sorted(set(run) | set(reference)):
        if key in IGNORED_CONFIG_FIELDS:
            continue
        a, b = run.get(key), reference.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += [f"{key}.{sub}" for sub in config_differences(a, b)]
        elif a != b:
            out.append(key)
    return out


# --------------------------------------------------------------------------------------------
# The whole check


def evaluate_run(
    run_dir: str | Path,
    suite: str | None = None,
    *,
    expectations: str | Path = EXPECTATIONS,
    baselines: str | Path | None = BASELINES,
    baseline: str | Path | None = None,
    update_baseline: bool = False,
    force: bool = False,
    schemes: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """All checks of ``run_dir`` as a table (columns :data:`COLUMNS`): expectations, coordinate
    checks and the baseline comparison. ``schemes`` replaces registry entries for the
    coordinate checks (the mutation test passes a mutated scheme under its original name);
    by default the registry is the built-in schemes plus the run's scheme files.

    The suite is ``suite``, else the file's only table, else the one named like the run's
    config. The baseline file is ``baseline``, else ``baselines/<suite>.json`` (None: no
    baseline check). The run's config must be the suite's (the built-in suite's config file,
    else the config stored in the baseline) unless ``force``: otherwise a :class:`CheckError`
    says so in one line. ``update_baseline`` writes the baseline (atomically) and is refused when
    the config is unknown or differs, or when an expectation fails, unless ``force``.
    """
    expectations = Path(expectations)
    if suite is not None:
        load_expectations(suite, expectations)  # an unknown --suite is named before the run
    check_results(run_dir)  # a missing or broken run is named before any work
    config = run_config(run_dir)
    suite = choose_suite(expectations, suite, (config or {}).get("name"))
    spec = load_expectations(suite, expectations)
    if baseline is None and baselines is not None:
        baseline = Path(baselines) / f"{suite}.json"
    stored = json.loads(Path(baseline).read_text()) if baseline and Path(baseline).exists() else {}
    builtin = expectations.resolve() == EXPECTATIONS.resolve()
    reference = suite_config(suite) if builtin else None
    reference = reference or stored.get("config")
    if config is not None and reference is not None and not force:
        diff = config_differences(config, reference)
        if diff:
            raise CheckError(
                f"run {str(run_dir)!r} (config {config.get('name')!r}) is not a run of suite "
                f"{suite!r}'s config: it differs in {', '.join(diff[:5])}"
                f"{f' and {len(diff) - 5} more field(s)' if len(diff) > 5 else ''}; check it with its own "
                "--expectations FILE, choose --suite, or pass --force"
            )
    if update_baseline and not force and config is None:
        raise CheckError(
            f"--update-baseline: run {str(run_dir)!r} has no {META_FILE}, so its config is "
            "unknown; pass --force to write the baseline anyway"
        )
    a = analysis.analyze_run(run_dir)
    samples = seed_metrics.seed_samples(a)
    metrics = seed_metrics.with_intervals(suite_metrics(a), samples, a.ci)
    reasons = unavailable_reasons(a.optima)
    table = check_expectations(metrics, spec, reasons, samples, a.ci)
    if spec.get("coordcheck"):
        from hptransfer.network.schemes import load_schemes

        registry = load_schemes(tuple((config or {}).get("scheme_files", ()))) | dict(schemes or {})
        data_name = str(((config or {}).get("data") or {}).get("name", "mnist1d"))
        table = pd.concat([table, check_coordchecks(spec, registry, data_name, a.ci)])
    record = baseline_test.baseline_record(a.optima, a.seeds, metrics, samples, config, a.ci)
    if update_baseline:
        if baseline is None:
            raise CheckError("--update-baseline needs a baseline file: pass --baseline FILE")
        failed = table.loc[~table["held"], "what"].tolist()
        if failed and not force:
            raise CheckError(
                f"--update-baseline refused: {len(failed)} expectation(s) fail "
                f"({failed[0]}{', ...' if len(failed) > 1 else ''}); pass --force to write anyway"
            )
        write_json(record, baseline)
        print(f"baseline written to {baseline}")
    elif stored:
        false_alarm = float(spec.get("false_alarm", baseline_test.FALSE_ALARM))
        table = pd.concat([table, baseline_test.compare(record, stored, false_alarm)])
    elif baseline is not None:
        table = pd.concat([table, pd.DataFrame([{
            "check": "baseline", "what": f"baseline {baseline}", "value": math.nan,
            "lo": math.nan, "hi": math.nan, "allowed": "exists", "outcome": MISSING,
            "held": False, "note": "missing: create it with --update-baseline",
        }])])  # fmt: skip
    table = table.reset_index(drop=True)
    table.attrs["suite"] = suite
    return table


def format_table(table: pd.DataFrame, width: int = 100) -> str:
    """The check table as text no wider than ``width`` columns: per row its outcome (ok, FAILED,
    INCONCLUSIVE, MISSING; "ok (inconclusive)" where that is allowed), the value, its interval,
    the allowed range and what was checked; notes on their own lines."""
    lines = []
    for check, rows in table.groupby("check", sort=False):
        lines.append(f"{check}s:")
        for r in rows.itertuples():
            outcome = getattr(r, "outcome", HOLDS if r.held else "fails")
            status = (
                "ok" if outcome == HOLDS
                else "not compared" if outcome == baseline_test.UNTESTED
                else "ok (inconclusive)" if r.held
                else {"fails": "FAILED", INCONCLUSIVE: "INCONCLUSIVE"}.get(outcome, "MISSING")
            )  # fmt: skip
            value = f"{r.value:+.3f}" if np.isfinite(r.value) else "n/a"
            lo, hi = getattr(r, "lo", math.nan), getattr(r, "hi", math.nan)
            interval = _interval_text(lo, hi) if not (math.isnan(lo) and math.isnan(hi)) else ""
            lines += textwrap.wrap(f"{status}: {r.what}", width, subsequent_indent="    ")
            detail = f"value {value}" + (f" in {interval}" if interval else "")
            if r.allowed:
                detail += f"; allowed {r.allowed}"
            lines += textwrap.wrap(detail, width, initial_indent="    ", subsequent_indent="    ")
            if getattr(r, "note", ""):
                lines += textwrap.wrap(r.note, width, initial_indent="    ",
                                       subsequent_indent="    ")  # fmt: skip
    return "\n".join(lines)


def run_check(
    run_dir: str | Path,
    suite: str | None = None,
    *,
    expectations: str | Path | None = None,
    baseline: str | Path | None = None,
    update_baseline: bool = False,
    force: bool = False,
) -> int:
    """Print the check table; 0 when everything held, 1 otherwise.

    Without ``expectations`` the built-in suites and their baselines are used; with it, the
    baseline is ``baseline`` only (none when not given).
    """
    table = evaluate_run(
        run_dir, suite,
        expectations=expectations or EXPECTATIONS,
        baselines=None if expectations else BASELINES,
        baseline=baseline, update_baseline=update_baseline, force=force,
    )  # fmt: skip
    print(format_table(table))
    failed = int((~table["held"]).sum())
    counts = table["outcome"].value_counts()
    print(
        f"\n{table.attrs['suite']}: {len(table) - failed} held, {failed} failed "
        f"({int(counts.get('fails', 0))} outside, {int(counts.get(INCONCLUSIVE, 0))} inconclusive, "
        f"{int(counts.get(MISSING, 0))} missing)"
    )
    return 1 if failed else 0
