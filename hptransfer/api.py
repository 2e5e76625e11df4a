"""The Python API for notebooks: config -> sweep -> analysis -> tables and figures (docs/api.md).

Thin, stateless wrappers over the modules the command line uses, so a notebook gets the same
results as ``hptransfer sweep`` and ``hptransfer report``:

    load_config(path) / make_config(mapping, **fields)   -> SweepConfig   (hptransfer.sweeps.config)
    sweep(config, out)                                   -> Path          (hptransfer.sweeps.engine)
    analyze(run_dir)                                     -> Analysis      (hptransfer.stats.analysis)
    optima(a), drift(a), regret(a), scorecard(a), claims(a) -> pandas DataFrames
    figure(a, kind, path)                                -> Path of a PNG (hptransfer.reports.figures)
    as_figure(png)                                       -> matplotlib Figure showing it
    write_report(run_dir)                                -> Path of report.md (hptransfer.reports.report)

Every table accessor returns a copy (changing it changes nothing else); ``full=False`` keeps
the columns named in ``*_COLUMNS`` below, ``full=True`` every column. A bad argument raises
:class:`ArgumentError` (a ValueError) in one line naming the argument and what is allowed;
config fields are checked by :func:`hptransfer.sweeps.config.config_from_dict` (ConfigError).
Importing this module imports jax; ``import hptransfer`` alone does not (it loads this module
on first use of one of its names).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from hptransfer.reports import figures as figures_mod
from hptransfer.stats.analysis import AXES, Analysis, analyze_run
from hptransfer.stats.columns import SERIES
from hptransfer.sweeps import config as config_mod
from hptransfer.sweeps.config import SweepConfig

__all__ = [
    "CLAIMS_COLUMNS", "DRIFT_COLUMNS", "FIGURE_KINDS", "OPTIMA_COLUMNS", "SCORECARD_COLUMNS",
    "Analysis", "ArgumentError", "SweepConfig", "analyze", "as_figure", "claims", "drift",
    "figure", "load_config", "make_config", "optima", "regret", "scorecard", "sweep",
    "write_report",
]  # fmt: skip


class ArgumentError(ValueError):
    """An argument of the Python API is not allowed; the message names it and what is."""


OPTIMA_COLUMNS = (
    "family", "scheme", "optimizer", "width", "depth", "block_depth", "log2_eta_star",
    "log2_eta_lo", "log2_eta_hi", "edge", "best_loss", "n_seeds",
)  # fmt: skip
"""Columns of :func:`optima` without ``full``: eta* (log2) of each cell, its seed interval,
``edge`` (set when the optimum is censored at the grid's edge) and the loss there."""

DRIFT_COLUMNS = (
    "family", "scheme", "optimizer", "width", "block_depth", "axis", "axis_min", "axis_max",
    "slope", "slope_lo", "slope_hi", "n_points", "n_censored",
)  # fmt: skip
"""Columns of :func:`drift` without ``full``: the slope of log2 eta* per doubling of ``axis``
and its seed interval."""

SCORECARD_COLUMNS = (
    *SERIES, "at_width", "at_depth",
    "drift_depth", "drift_depth_lo", "drift_depth_hi", "regret_depth", "transfer_depth",
    "drift_width", "drift_width_lo", "drift_width_hi", "regret_width", "transfer_width",
    "verdict",
)  # fmt: skip
"""Columns of :func:`scorecard` without ``full`` (those the sweep has)."""

CLAIMS_COLUMNS = ("claim", "statement", "value", "lo", "hi", "verdict", "note")
"""Columns of :func:`claims` without ``full``."""


FIGURE_KINDS = tuple(figures_mod.FIGURES)
"""The ``kind`` names of :func:`figure` (:data:`hptransfer.reports.figures.FIGURES` describes each)."""


# --------------------------------------------------------------------------------------------
# Checks of arguments


def _path_arg(name: str, value: Any, allowed: str) -> Path:
    if not isinstance(value, str | os.PathLike) or not str(value):
        raise ArgumentError(f"argument {name} = {value!r} is not allowed; allowed: {allowed}")
    return Path(value)


def _analysis_arg(a: Any) -> Analysis:
    if not isinstance(a, Analysis):
        raise ArgumentError(
            f"argument a = {type(a).__name__} object is not allowed; allowed: an Analysis "
            "returned by hptransfer.analyze(run_dir)"
        )
    return a


def _pick(table: pd.DataFrame, columns: Sequence[str], full: bool) -> pd.DataFrame:
    """A copy of ``table``: every column if ``full``, else those of ``columns`` it has."""
    if full:
        return table.copy()
    return table[[c for c in columns if c in table.columns]].copy()


# --------------------------------------------------------------------------------------------
# Config


def load_config(path: str | os.PathLike, scheme_sources: Sequence[str] = ()) -> SweepConfig:
    """Read and validate a sweep TOML file (the format of benchmarks/*.toml).

    ``scheme_sources``: extra schemes, .toml files or ``module:attribute`` Python schemes
    (imported, so code runs). Returns the validated :class:`SweepConfig`; an invalid file
    raises :class:`hptransfer.sweeps.config.ConfigError` naming the file, field and what is allowed.
    """
    path = _path_arg("path", path, "a path to a sweep TOML file")
    return config_mod.load_config(path, tuple(scheme_sources))


def make_config(
    mapping: Mapping[str, Any] | None = None,
    /,
    *,
    scheme_sources: Sequence[str] = (),
    **fields: Any,
) -> SweepConfig:
    """Build and validate a :class:`SweepConfig` from the TOML layout as Python data.

    ``mapping`` and keyword ``fields`` are the config's top-level keys (``name``, ``steps``,
    ``seeds``, ``schemes``, and tables ``data``, ``model``, ``lr``, ... as dicts); a field
    given both ways takes the keyword's value. Returns the validated config; an invalid field
    raises :class:`hptransfer.sweeps.config.ConfigError` naming it and what is allowed.
    """
    if mapping is not None and not isinstance(mapping, Mapping):
        raise ArgumentError(
            f"argument mapping = {type(mapping).__name__} object is not allowed; allowed: a "
            "dict of config fields (the TOML layout of benchmarks/*.toml) or None"
        )
    raw = {**(mapping or {}), **fields}
    return config_mod.config_from_dict(raw, "make_config", scheme_sources=tuple(scheme_sources))


# --------------------------------------------------------------------------------------------
# Sweep and analysis


def sweep(
    config: SweepConfig, out: str | os.PathLike, *, fresh: bool = False, quiet: bool = True
) -> Path:
    """Run (or resume) every cell of ``config`` into directory ``out``, as ``hptransfer sweep``
    does: the machine's memory and disk are checked first, finished cells are kept and skipped
    on a rerun, ``fresh=True`` discards earlier work in ``out``; ``quiet=False`` shows a
    progress bar. Returns ``out`` as a Path, holding results.parquet and meta.json.
    """
    if not isinstance(config, SweepConfig):
        raise ArgumentError(
            f"argument config = {type(config).__name__} object is not allowed; allowed: a "
            "SweepConfig from hptransfer.load_config or hptransfer.make_config"
        )
    out = _path_arg("out", out, "a directory path (created if missing)")
    from hptransfer.sweeps import engine

    engine.check_resources(config, out, source="config")
    engine.run_sweep(config, out, fresh=fresh, progress=not quiet)
    return out


def analyze(run_dir: str | os.PathLike, *, last_evals: int = 3, ci: float = 0.9) -> Analysis:
    """Analyse a sweep directory (written by :func:`sweep` or ``hptransfer sweep``).

    ``last_evals``: evaluations averaged into each final loss; ``ci``: the confidence of the
    seed intervals. Returns the :class:`hptransfer.stats.analysis.Analysis` holding every table
    (read them with :func:`optima`, :func:`drift`, :func:`claims`, ...). A directory without
    results raises :class:`hptransfer.stats.results.ResultsError` naming it.
    """
    run_dir = _path_arg("run_dir", run_dir, "a sweep directory (holding results.parquet)")
    if isinstance(last_evals, bool) or not isinstance(last_evals, int) or last_evals < 1:
        raise ArgumentError(
            f"argument last_evals = {last_evals!r} is not allowed; allowed: an integer >= 1"
        )
    if isinstance(ci, bool) or not isinstance(ci, int | float) or not 0 < ci < 1:
        raise ArgumentError(f"argument ci = {ci!r} is not allowed; allowed: a number in (0, 1)")
    return analyze_run(run_dir, last_evals=last_evals, ci=float(ci))


def write_report(run_dir: str | os.PathLike) -> Path:
    """Write run_dir/report.md, report.html and run_dir/figures/*.png, as ``hptransfer
    report`` does. Returns the path of report.md."""
    from hptransfer.reports.report import write_report as write

    return write(_path_arg("run_dir", run_dir, "a sweep directory (holding results.parquet)"))


# --------------------------------------------------------------------------------------------
# Tables


def optima(a: Analysis, *, full: bool = False) -> pd.DataFrame:
    """eta* of every cell: one row per (family, scheme, optimizer, width, depth, block depth),
    log2 eta* with its seed interval (:data:`OPTIMA_COLUMNS`; ``full``: every column)."""
    return _pick(_analysis_arg(a).optima, OPTIMA_COLUMNS, full)


def drift(a: Analysis, axis: str | None = None, *, full: bool = False) -> pd.DataFrame:
    """Drift of eta*: slope of log2 eta* per doubling of depth (width), one row per scheme,
    optimizer, block depth and held shape (:data:`DRIFT_COLUMNS`). ``axis``: "depth" or
    "width" keeps that axis's rows; None keeps both."""
    table = _analysis_arg(a).drift
    if axis is not None:
        if axis not in AXES:
            raise ArgumentError(
                f"argument axis = {axis!r} is not allowed; allowed: one of {list(AXES)} or None"
            )
        table = table[table["axis"] == axis] if len(table) else table
    return _pick(table, DRIFT_COLUMNS, full).reset_index(drop=True)


def regret(a: Analysis) -> pd.DataFrame:
    """Transfer regret: the loss paid at each cell for using the base shape's eta* instead of
    its own (every column of Analysis.regret)."""
    return _analysis_arg(a).regret.copy()


def scorecard(a: Analysis, *, full: bool = False) -> pd.DataFrame:
    """One row per scheme (optimizer, block depth): drift and regret across depth and width
    with their intervals, and the transfer verdict (:data:`SCORECARD_COLUMNS`)."""
    return _pick(_analysis_arg(a).scorecard, SCORECARD_COLUMNS, full)


def claims(a: Analysis, *, full: bool = False) -> pd.DataFrame:
    """The report's claims (a)-(f), one row each: the statement, the measured value with its
    interval and the verdict, or a note saying what the sweep lacks (:data:`CLAIMS_COLUMNS`)."""
    return _pick(_analysis_arg(a).claims, CLAIMS_COLUMNS, full)


# --------------------------------------------------------------------------------------------
# Figures


def figure(a: Analysis, kind: str, path: str | os.PathLike) -> Path:
    """Draw one figure of the analysis into the PNG file ``path`` (folders are created), as
    ``hptransfer report`` draws it. ``kind``: one of :data:`FIGURE_KINDS`. Returns ``path``;
    :func:`as_figure` turns it into a matplotlib Figure. A kind this sweep cannot draw (e.g.
    eta_star_width with one width) raises :class:`ArgumentError` saying what it needs."""
    a = _analysis_arg(a)
    if kind not in figures_mod.FIGURES:
        raise ArgumentError(
            f"argument kind = {kind!r} is not allowed; allowed: one of {list(FIGURE_KINDS)}"
        )
    path = _path_arg("path", path, "a file path for the PNG")
    draw, needs = figures_mod.FIGURES[kind].draw, figures_mod.FIGURES[kind].needs
    drawn = draw(a, path)
    if drawn is None:
        raise ArgumentError(
            f"argument kind = {kind!r} is not allowed for this sweep (it needs {needs}); "
            f"allowed: one of {list(FIGURE_KINDS)} that this sweep's shapes allow"
        )
    return Path(drawn)


def as_figure(png: str | os.PathLike) -> Figure:
    """A matplotlib Figure showing the PNG ``png`` (e.g. from :func:`figure`) at its own size,
    without axes; a notebook displays it inline. Returns the Figure (no pyplot state)."""
    import matplotlib.image

    path = _path_arg("png", png, "a path to a PNG file")
    if not path.is_file():
        raise ArgumentError(f"argument png = {str(png)!r} is not a file; allowed: a PNG file")
    image = matplotlib.image.imread(path)
    dpi = figures_mod.DPI
    fig = Figure(figsize=(image.shape[1] / dpi, image.shape[0] / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(image)
    ax.set_axis_off()
    return fig
