"""Regression check of transfer quality: a run against a suite's expectations and baseline.

Two kinds of checks, both data (an expectations TOML file and a baseline JSON file):

- *Expectations* state what the science says at this scale, per (scheme, block depth): a metric
  of the run (:func:`suite_metrics`) must lie above ``min`` / below ``max``, or relative to the
  same metric of another series (``min_ref`` / ``max_ref`` = {scheme, block_depth, offset}:
  bound = that series' value + offset). A file holds one table per suite.
- *Baseline*: eta* of every cell and the suite metrics must stay within the suite's stated
  tolerances of the baseline (``--update-baseline`` rewrites it deliberately: refused when the
  run's config is not the suite's or an expectation fails, unless ``--force``). An eta* that is
  a bound gets at least one grid step of tolerance.

The built-in suites (benchmarks/*.toml: sweep configs and expectations.toml) and their baselines
(results/baselines/*.json) ship as package data (``hptransfer.suites``,
``hptransfer.baselines``), so the check runs from any directory; a project of its own passes
``--expectations FILE`` (and optionally ``--baseline FILE``): see docs/ci-gate.md.

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
With a model path ([model] path: one depth per width), along the path:
  drift_path           slope of log2 eta* against log2(n / n0) (octaves per doubling of n)
  abs_drift_path       |drift_path|
  regret_path          worst relative regret of the eta* tuned at the path's first point
The metrics are computed by :func:`hptransfer.verdicts.suite_metrics`.
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

from hptransfer import analysis
from hptransfer.results import META_FILE, check_results, read_meta, write_json
from hptransfer.verdicts import suite_metrics

ROOT = Path(__file__).resolve().parents[1]


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
    return sorted(_read_toml(Path(path)))


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


def unavailable_reasons(optima: pd.DataFrame) -> dict[tuple[str, int], str]:
    """(scheme, block depth) -> why eta* is missing: the cells where every replica diverged at
    every learning rate (eta* null), e.g. "no eta* at n=64 L=32 (every replica diverged)"."""
    null = optima[optima["log2_eta_star"].isna()]
    out = {}
    for (scheme, k), s in null.groupby(["scheme", "block_depth"]):
        cells = ", ".join(f"n={int(r.width)} L={int(r.depth)}" for r in s.itertuples())
        out[(scheme, int(k))] = f"no eta* at {cells} (every replica diverged)"
    return out


def _reason(e: Mapping[str, Any], reasons: Mapping[tuple[str, int], str]) -> str:
    refs = [e] + [e[k] for k in ("min_ref", "max_ref") if k in e]
    found = [reasons[(r["scheme"], r["block_depth"])] for r in refs
             if (r["scheme"], r["block_depth"]) in reasons]  # fmt: skip
    return "unavailable: " + ("; ".join(found) if found else "metric not measured by this run")


def check_expectations(
    metrics: pd.DataFrame,
    spec: Mapping[str, Any],
    reasons: Mapping[tuple[str, int], str] | None = None,
) -> pd.DataFrame:
    """One row per expectation: claim, measured value, bound text, held (bool) and a note
    (why a value is unavailable: :func:`unavailable_reasons`); an unavailable value fails."""
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
        available = np.isfinite(value) and not (math.isnan(lo) or math.isnan(hi))
        rows.append({
            "check": "expectation",
            "what": f"{e['claim']} [{e['scheme']}, k={e['block_depth']}, {e['metric']}]",
            "value": value,
            "allowed": f"[{lo:+.2f}, {hi:+.2f}]" + (f" ({'; '.join(parts)})" if parts else ""),
            "held": bool(available and lo <= value <= hi),
            "note": "" if available else _reason(e, reasons or {}),
        })  # fmt: skip
    return pd.DataFrame(rows, columns=["check", "what", "value", "allowed", "held", "note"])


def baseline_record(
    a: analysis.Analysis, metrics: pd.DataFrame, config: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """What the baseline keeps: eta* per cell (with its edge flag), the suite metrics and the
    config of the run it was made from (compared with later runs' configs)."""
    cols = [*SERIES, "width", "depth", "log2_eta_star", "edge", "bracket_lo", "bracket_hi"]
    eta = a.optima[cols].copy()
    eta["grid_step"] = (a.optima["grid_max"] - a.optima["grid_min"]) / (a.optima["n_lr"] - 1)
    eta["edge"] = eta["edge"].where(eta["edge"].notna(), None)
    record = {
        "eta_star": json.loads(eta.to_json(orient="records")),
        "metrics": json.loads(metrics.to_json(orient="records")),
    }
    if config is not None:
        record["config"] = dict(config)
    return record


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


def check_baseline(
    record: dict[str, Any],
    baseline: dict[str, Any],
    tolerance: Mapping[str, float],
    reasons: Mapping[tuple[str, int], str] | None = None,
) -> pd.DataFrame:
    """Compare eta* per cell and the toleranced metrics with the baseline. A null eta* (every
    replica diverged) on either side fails with the reason in ``note`` (``reasons``:
    :func:`unavailable_reasons` of this run, for the metrics)."""
    rows = []
    tol_eta = float(tolerance.get("log2_eta_star", 1.0))
    now = {
        (r["scheme"], r["optimizer"], r["block_depth"], r["width"], r["depth"]): r
        for r in record["eta_star"]
    }
    for b in baseline["eta_star"]:
        key = (b["scheme"], b["optimizer"], b["block_depth"], b["width"], b["depth"])
        r = now.get(key)
        value = _num(r["log2_eta_star"]) if r else math.nan
        ref = _num(b["log2_eta_star"])
        # A bound (optimum at the grid edge or next to a diverging rate) is a grid point: where
        # divergence sets in may move by one grid step between runs, so allow at least that.
        tol = max(tol_eta, b.get("grid_step") or 0.0) if b.get("edge") else tol_eta
        note = (
            "unavailable: cell not in this run" if r is None
            else "unavailable: no eta* in this run (every replica diverged)" if math.isnan(value)
            else "unavailable: no eta* in the baseline (every replica diverged)" if math.isnan(ref)
            else ""
        )  # fmt: skip
        within = not note and abs(value - ref) <= tol
        # a censored eta* passes when its bracket (null = open end) contains the baseline
        if not note and r.get("edge"):
            lo, hi = _num(r.get("bracket_lo")), _num(r.get("bracket_hi"))
            within = within or ((math.isnan(lo) or lo <= ref) and (math.isnan(hi) or ref <= hi))
        rows.append({
            "check": "baseline",
            "what": f"log2 eta* {b['scheme']} k={b['block_depth']} n={b['width']} L={b['depth']}"
                    + (f" (bound: {b['edge']})" if b.get("edge") else ""),
            "value": value,
            "allowed": f"{ref:+.2f} +- {tol:g}" if not math.isnan(ref) else "n/a",
            "held": bool(within),
            "note": note,
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
        ref = _num(m["value"])
        ok = bool(np.isfinite(value) and np.isfinite(ref) and abs(value - ref) <= tol)
        rows.append({
            "check": "baseline",
            "what": f"{m['metric']} {m['scheme']} k={m['block_depth']}",
            "value": value,
            "allowed": f"{ref:+.2f} +- {tol:g}",
            "held": ok,
            "note": "" if np.isfinite(value) else _reason(m, reasons or {}),
        })  # fmt: skip
    return pd.DataFrame(rows, columns=["check", "what", "value", "allowed", "held", "note"])


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
    return _plain(config) if isinstance(config, Mapping) else None


def suite_config(suite: str, suites: Path = SUITES) -> dict[str, Any] | None:
    """The config of a built-in suite (``suites/<suite>.toml``), or None when there is none."""
    from hptransfer.config import load_config

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
) -> pd.DataFrame:
    """All checks of ``run_dir`` as a table (check, what, value, allowed, held, note).

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
    metrics = suite_metrics(a)
    reasons = unavailable_reasons(a.optima)
    table = check_expectations(metrics, spec, reasons)
    record = baseline_record(a, metrics, config)
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
        tolerance = spec.get("tolerance", {})
        table = pd.concat([table, check_baseline(record, stored, tolerance, reasons)])
    elif baseline is not None:
        table = pd.concat([table, pd.DataFrame([{
            "check": "baseline", "what": f"baseline {baseline}", "value": math.nan,
            "allowed": "exists", "held": False,
            "note": "missing: create it with --update-baseline",
        }])])  # fmt: skip
    table = table.reset_index(drop=True)
    table.attrs["suite"] = suite
    return table


def format_table(table: pd.DataFrame, width: int = 100) -> str:
    """The check table as text no wider than ``width`` columns: status, value, allowed range,
    then what was checked (wrapped); a long allowed range or a note goes on its own line."""
    lines = []
    for check, rows in table.groupby("check", sort=False):
        lines.append(f"{check}s:")
        for r in rows.itertuples():
            status = "ok" if r.held else "FAILED"
            value = f"{r.value:+.3f}" if np.isfinite(r.value) else "n/a"
            allowed = r.allowed if len(r.allowed) <= 16 else ""
            head = f"  {status:<6} {value:>7}  {allowed:<16}  "
            pad = " " * len(head)
            body = textwrap.wrap(r.what, width - len(head)) or [""]
            lines.append(head + body[0])
            lines += [pad + part for part in body[1:]]
            extra = ([f"allowed {r.allowed}"] if not allowed else []) + (
                [r.note] if getattr(r, "note", "") else []
            )
            for text in extra:
                lines += textwrap.wrap(text, width, initial_indent=pad, subsequent_indent=pad)
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
    print(f"\n{table.attrs['suite']}: {len(table) - failed} held, {failed} failed")
    return 1 if failed else 0
