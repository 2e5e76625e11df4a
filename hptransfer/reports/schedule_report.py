"""The schedule suite's report: several runs (optimizer x schedule), their horizons, one page.

``python -m hptransfer.reports.schedule_report DIR`` reads every run under DIR (a sweep
directory per config: results/schedule/schedule_sgd_constant/, ...), analyses each horizon of
each run (:func:`hptransfer.stats.horizons.horizon_analyses`: truncations of one run under the
constant rate, runs of their own under a schedule of the run's length), decides the suite's
claims (:mod:`hptransfer.stats.schedule_claims`) and writes DIR/report.md with its figures:

- the claims table, in the columns of a run's report (docs/results.md and the README copy it);
- the runs: optimizer, schedule, horizons and how each was trained, replica-steps and wall
  time, and the replica-steps the constant rate's shared horizons saved;
- transfer across depth at every horizon (the scorecard's decision at each T);
- eta* against the horizon at every depth, and the drift across depth at every evaluation step
  of the longest horizon (the early drift), constant next to the schedule;
- figures: eta* against depth at each horizon; the drift across depth against the step.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns

from hptransfer.network.schemes import scheme_label
from hptransfer.reports.figures import _figure, _log2_axis, _save, _style
from hptransfer.reports.report import claims_display, markdown_table, percent_text
from hptransfer.stats.analysis import load_run
from hptransfer.stats.horizons import (
    available_horizons,
    horizon_analyses,
    horizon_slopes,
    kind_runs,
    schedule_kind,
)
from hptransfer.stats.results import META_FILE
from hptransfer.stats.schedule_claims import (
    BLOCK_DEPTH,
    CONSTANT,
    EARLY_STEP,
    ScheduleRun,
    schedule_claims,
)
from hptransfer.stats.tables import fit_interval
from hptransfer.stats.verdicts import ci_text, claim_verdict

SCHEMES = ("depth_mup", "nfd")


def run_dirs(suite_dir: Path) -> list[Path]:
    """The sweep directories of a suite, by name."""
    return sorted(p.parent for p in Path(suite_dir).glob(f"*/{META_FILE}"))


def load_suite(suite_dir: str | Path, *, last_evals: int = 3, ci: float = 0.9) -> list[ScheduleRun]:
    """Every run of the suite with the analysis of each of its horizons. The horizons of a
    schedule of the run's length are its own (its length and its ``steps`` axis); a
    constant-rate run is read at every horizon of the suite's other runs that it holds."""
    loaded = []  # (name, results, meta) of every kind of every run (kind_runs)
    for d in run_dirs(Path(suite_dir)):
        kinds = kind_runs(*load_run(d))
        for kind, (results, meta) in kinds.items():
            name = d.name if len(kinds) == 1 else f"{d.name} ({kind})"
            loaded.append((name, results, meta))
    if not loaded:
        raise SystemExit(f"{suite_dir}: no runs (no */{META_FILE})")
    decaying = {t for _, r, m in loaded if schedule_kind(m) != CONSTANT
                for t in available_horizons(r, m)}  # fmt: skip
    runs = []
    for name, results, meta in loaded:
        kind = schedule_kind(meta)
        own = available_horizons(results, meta)
        if kind == CONSTANT:
            horizons = sorted({t for t in decaying if t in own} | {int(meta["config"]["steps"])})
        else:
            horizons = own
        analyses = horizon_analyses(results, meta, horizons, last_evals=last_evals, ci=ci)
        runs.append(ScheduleRun(name, str(meta["config"]["optimizer"]["name"]), kind, analyses))
    return runs


def _ci(v: float, lo: float, hi: float) -> str:
    """:func:`hptransfer.stats.verdicts.ci_text`, empty for an unknown value."""
    return ci_text(v, lo, hi) if np.isfinite(v) else ""


def _directory(run: ScheduleRun) -> str:
    """The run directory of a suite run ("dir" of "dir (kind)" when a schedule axis split it;
    its cost columns are the whole directory's)."""
    return run.name.split(" (", 1)[0]


def runs_table(runs: Sequence[ScheduleRun], suite_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    """(one row per run, sentences): what each run trained and what it cost; the sentences
    state the replica-steps that the constant rate's shared horizons saved. The grid's
    replica-steps (``replica_steps_total``) are the run's whatever it resumed; the computed
    replica-steps and the wall time are those of the run that wrote meta.json (a resumed run
    shows the resume's)."""
    rows, notes = [], []
    for r in runs:
        meta = r.longest.meta
        grid = float(meta.get("replica_steps_total", math.nan))
        shared = r.schedule == CONSTANT
        rows.append({
            "run": f"[{r.name}]({_directory(r)}/report.md)",
            "optimizer": r.optimizer,
            "schedule": r.schedule,
            "horizons (steps)": ", ".join(str(t) for t in r.horizons),
            "how": "one run, read at each horizon" if shared else "a run per horizon",
            "replica-steps of the grid": f"{grid:,.0f}",
            "computed": f"{float(meta.get('replica_steps_computed', math.nan)):,.0f}",
            "wall (s)": f"{float(meta.get('wall_seconds', math.nan)):.0f}",
        })  # fmt: skip
        if shared and len(r.horizons) > 1 and np.isfinite(grid) and grid > 0:
            separate = grid * sum(r.horizons) / max(r.horizons)
            notes.append(
                f"{r.name}: the horizons {', '.join(map(str, r.horizons))} share one run of "
                f"{max(r.horizons)} steps; a run per horizon would request {separate:,.0f} "
                f"replica-steps instead of {grid:,.0f}, so sharing saves {1 - grid / separate:.0%}."
            )
    walls = {_directory(r): float(r.longest.meta.get("wall_seconds", 0.0)) for r in runs}
    wall = sum(walls.values())  # a run of several kinds (a schedule axis) counted once
    notes.append(f"Total wall time: {wall:.0f} s ({wall / 60:.1f} min).")
    return pd.DataFrame(rows), notes


def transfer_table(runs: Sequence[ScheduleRun]) -> pd.DataFrame:
    """Transfer across depth at every horizon: the scorecard's drift, worst regret and
    decision of each scheme (k = 2) at each T."""
    rows = []
    for r in runs:
        for t in r.horizons:
            card = r.analyses[t].scorecard
            for s in SCHEMES:
                sel = card[(card["scheme"] == s) & (card["block_depth"] == BLOCK_DEPTH)]
                if sel.empty:
                    continue
                c = sel.iloc[0]
                opt = r.analyses[t].optima
                o = opt[(opt["scheme"] == s) & (opt["block_depth"] == BLOCK_DEPTH)]
                o = o.sort_values("depth")
                rows.append({
                    "optimizer": r.optimizer, "schedule": r.schedule, "T": t,
                    "scheme": scheme_label(s),
                    "log2 eta* (shallowest, deepest)": ", ".join(
                        f"{v:+.2f}" for v in o["log2_eta_star"].iloc[[0, -1]]),
                    "drift vs depth (oct/doubling)": _ci(
                        float(c["drift_depth"]), float(c["drift_depth_check_lo"]),
                        float(c["drift_depth_check_hi"])),
                    "worst regret": percent_text(float(c.get("regret_depth", math.nan)),
                                         float(c.get("regret_depth_lo", math.nan)),
                                         float(c.get("regret_depth_hi", math.nan))),
                    "transfers across depth": claim_verdict(c["transfer_depth"]),
                })  # fmt: skip
    return pd.DataFrame(rows)


_MOVES = {"holds": "stays", "fails": "moves", "inconclusive": "undecided", "missing": "no interval"}


def horizon_table(runs: Sequence[ScheduleRun]) -> pd.DataFrame:
    """eta* against the horizon: per run and scheme, at each depth, the drift of log2 eta* per
    doubling of T with its interval and whether it stays within the band."""
    rows = []
    for r in runs:
        slopes = horizon_slopes(r.analyses, r.longest.ci)
        if slopes.empty:
            continue
        for s in SCHEMES:
            sel = slopes[(slopes["scheme"] == s) & (slopes["block_depth"] == BLOCK_DEPTH)]
            if sel.empty:
                continue
            row = {"optimizer": r.optimizer, "schedule": r.schedule, "scheme": scheme_label(s),
                   "band": f"+-{float(sel['band'].iloc[0]):.2f}"}  # fmt: skip
            for x in sel.sort_values("depth").itertuples():
                row[f"L={int(x.depth)}"] = (f"{_ci(x.slope, x.check_lo, x.check_hi)} "
                                            f"{_MOVES.get(x.outcome, x.outcome)}")  # fmt: skip
            rows.append(row)
    return pd.DataFrame(rows)


def early_table(runs: Sequence[ScheduleRun], last: int = 2 * EARLY_STEP) -> pd.DataFrame:
    """The drift across depth at every evaluation step up to ``last`` of each run's longest
    horizon (k = 2), with its interval: the early drift under each schedule."""
    rows = []
    for r in runs:
        h = r.longest.horizon
        if h is None or h.empty:
            continue
        for s in SCHEMES:
            sel = h[(h["scheme"] == s) & (h["block_depth"] == BLOCK_DEPTH) & (h["axis"] == "depth")
                    & (h["step"] <= last)].sort_values("step")  # fmt: skip
            if sel.empty:
                continue
            row = {"optimizer": r.optimizer, "schedule": r.schedule, "scheme": scheme_label(s),
                   "T": max(r.horizons)}  # fmt: skip
            for x in sel.to_dict("records"):  # the interval the claims decide on
                row[f"step {int(x['step'])}"] = _ci(x["slope"], *fit_interval(x))
            rows.append(row)
    return pd.DataFrame(rows)


def _panels(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The (optimizer, scheme) panels of a figure's rows (SGD first) and its schedule kinds
    (the constant rate first)."""
    panels = (
        df[["run_optimizer", "scheme"]]
        .drop_duplicates()
        .sort_values(["run_optimizer", "scheme"], key=lambda c: c.map(lambda v: (v != "sgd", v)))
    )
    return panels, sorted(df["schedule"].unique(), key=lambda k: (k != CONSTANT, k))


def plot_eta_by_horizon(runs: Sequence[ScheduleRun], path: Path) -> Path | None:
    """log2 eta* against depth, one line per horizon, a panel per (optimizer, scheme) and
    schedule (censored optima hollow)."""
    frames = []
    for r in runs:
        for t, a in r.analyses.items():
            o = a.optima[(a.optima["block_depth"] == BLOCK_DEPTH)
                         & a.optima["scheme"].isin(SCHEMES)]  # fmt: skip
            frames.append(o.assign(schedule=r.schedule, horizon=t, run_optimizer=r.optimizer))
    if not frames:
        return None
    df = pd.concat(frames, ignore_index=True)
    panels, kinds = _panels(df)
    horizons = sorted(df["horizon"].unique())
    colors = dict(zip(horizons, sns.color_palette("viridis", len(horizons)), strict=True))
    axes_style, context = _style()
    with axes_style, context:
        fig, axes = _figure(len(panels), len(kinds))
        for i, (opt, s) in enumerate(panels.itertuples(index=False)):
            for j, kind in enumerate(kinds):
                ax = axes[i][j]
                part = df[(df["run_optimizer"] == opt) & (df["scheme"] == s)
                          & (df["schedule"] == kind)]  # fmt: skip
                for t, g in part.groupby("horizon"):
                    g = g.sort_values("depth")
                    ax.plot(g["depth"], g["log2_eta_star"], "-", color=colors[t], label=f"T={t}")
                    cens = g["edge"].notna().to_numpy()
                    ax.scatter(g["depth"][~cens], g["log2_eta_star"][~cens], color=colors[t], s=18)
                    ax.scatter(g["depth"][cens], g["log2_eta_star"][cens], facecolors="none",
                               edgecolors=colors[t], s=18)  # fmt: skip
                _log2_axis(ax, sorted(df["depth"].unique()))
                ax.set_title(f"{opt}, {scheme_label(s)}, {kind}")
                ax.set_xlabel("depth L")
                ax.set_ylabel("log2 eta*")
                ax.legend(fontsize=7)
            lims = [a.get_ylim() for a in axes[i]]  # one scale per row: schedules side by side
            for a in axes[i]:
                a.set_ylim(min(lo for lo, _ in lims), max(hi for _, hi in lims))
        fig.suptitle(f"eta* against depth at each horizon T (k = {BLOCK_DEPTH})")
        return _save(fig, path)


def plot_early_drift(runs: Sequence[ScheduleRun], path: Path) -> Path | None:
    """The drift of eta* across depth against the evaluation step of the longest horizon, a
    panel per (optimizer, scheme), one line (and band of its seed interval) per schedule."""
    frames = []
    for r in runs:
        h = r.longest.horizon
        if h is None or h.empty:
            continue
        sel = h[(h["block_depth"] == BLOCK_DEPTH) & (h["axis"] == "depth")
                & h["scheme"].isin(SCHEMES)]  # fmt: skip
        frames.append(sel.assign(schedule=r.schedule, run_optimizer=r.optimizer))
    if not frames:
        return None
    df = pd.concat(frames, ignore_index=True)
    panels, kinds = _panels(df)
    colors = dict(zip(kinds, sns.color_palette("colorblind", len(kinds)), strict=True))
    axes_style, context = _style()
    with axes_style, context:
        fig, axes = _figure(1, len(panels))
        for i, (opt, s) in enumerate(panels.itertuples(index=False)):
            ax = axes[0][i]
            for kind in kinds:
                g = df[(df["run_optimizer"] == opt) & (df["scheme"] == s)
                       & (df["schedule"] == kind)].sort_values("step")  # fmt: skip
                if g.empty:
                    continue
                ax.plot(g["step"], g["slope"], color=colors[kind], label=kind)
                ax.fill_between(g["step"], g["slope_lo"], g["slope_hi"], color=colors[kind],
                                alpha=0.2)  # fmt: skip
            band = 0.25
            card = next((r.longest.scorecard for r in runs if r.optimizer == opt), None)
            if card is not None and "drift_depth_band" in card:
                band = float(card["drift_depth_band"].iloc[0])
            for y in (-band, band):
                ax.axhline(y, color="grey", lw=0.8, ls="--")
            ax.axvline(EARLY_STEP, color="grey", lw=0.8, ls=":")
            ax.set_title(f"{opt}, {scheme_label(s)}")
            ax.set_xlabel("step")
            ax.set_ylabel("drift of log2 eta* per doubling of depth")
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
        fig.suptitle(f"Drift across depth during the longest run (k = {BLOCK_DEPTH}); dashed: "
                     f"the band; dotted: step {EARLY_STEP}")  # fmt: skip
        return _save(fig, path)


def report_markdown(runs: Sequence[ScheduleRun], suite_dir: Path,
                    figures: Mapping[str, Path]) -> str:  # fmt: skip
    """The suite's report.md text."""
    claims = schedule_claims(runs)
    table, notes = runs_table(runs, suite_dir)
    out: list[str] = [
        "# schedule: does eta* transfer under a warm-up and a decay?",
        "Written by `python -m hptransfer.reports.schedule_report` from the runs below "
        "(`make bench SUITE=schedule`); each run's own report is linked from its name.",
        "## Claims",
        markdown_table(claims_display(claims)),
        "## Sweep",
        markdown_table(table),
        "\n".join(f"- {n}" for n in notes),
        "## Transfer across depth at each horizon",
        "The scorecard's decision at each run length T (drift interval widened over censored "
        "optima; worst regret of the rate tuned at the shallowest depth, paired over seeds and "
        "simultaneous over the depths). Under the constant rate each T is the first T steps of "
        "the longest run; under a schedule each T is its own run.",
        markdown_table(transfer_table(runs)),
        "## eta* against the horizon",
        "At each depth: the drift of log2 eta* per doubling of the run length (OLS over the "
        "horizons, interval over seeds, widened over censored optima), against one octave over "
        "the range of horizons: stays (inside), moves (outside), undecided (across).",
        markdown_table(horizon_table(runs)),
        "## Drift across depth early in training",
        f"The drift of eta* across depth at each evaluation step up to {2 * EARLY_STEP} of the "
        "longest run (interval over seeds, widened over censored optima, as claim (i) reads "
        "it): under the constant rate NFD's eta* drifts down "
        "early in training before it settles; does a warm-up remove that?",
        markdown_table(early_table(runs)),
    ]
    for title, path in figures.items():
        out.append(f"### {title}\n\n![{title}]({path.relative_to(suite_dir).as_posix()})")
    return "\n\n".join(out) + "\n"


def write_report(suite_dir: str | Path, **kwargs: Any) -> Path:
    """DIR/report.md and DIR/figures/*.png of a schedule suite."""
    suite_dir = Path(suite_dir)
    runs = load_suite(suite_dir, **kwargs)
    figs = suite_dir / "figures"
    made = {
        "eta* against depth at each horizon": plot_eta_by_horizon(
            runs, figs / "eta_by_horizon.png"
        ),
        "Drift across depth during training": plot_early_drift(runs, figs / "early_drift.png"),
    }
    figures = {k: v for k, v in made.items() if v is not None}
    path = suite_dir / "report.md"
    path.write_text(report_markdown(runs, suite_dir, figures))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite_dir", help="a directory of runs, e.g. results/schedule")
    args = parser.parse_args(argv)
    print(f"wrote {write_report(args.suite_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
