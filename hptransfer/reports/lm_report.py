"""The lm suite's page over its runs (one per optimizer): results/lm/report.md.

``python -m hptransfer.reports.lm_report results/lm`` (run by ``make bench SUITE=lm`` after every
run's own report) reads each run directory, analyses it (:func:`hptransfer.stats.analysis.
analyze_run`) and writes the claims of :func:`hptransfer.stats.lm_claims.lm_claims`, the
runs and their cost, eta* at every depth with its interval, and the transfer decision, worst
regret and tuned loss at the deepest L of every scheme. Each run's own report (figures, movement,
the full scorecard) is linked from its name.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hptransfer.network.schemes import scheme_label
from hptransfer.reports.report import claims_display, markdown_table, percent_text
from hptransfer.stats.analysis import Analysis, analyze_run
from hptransfer.stats.lm_claims import BLOCK_DEPTH, lm_claims, optimizer_of
from hptransfer.stats.results import META_FILE
from hptransfer.stats.verdicts import ci_text, claim_verdict, seed_best_losses


def load_runs(suite_dir: str | Path) -> dict[str, Analysis]:
    """The analysis of every run directory of the suite, by directory name."""
    dirs = sorted(p.parent for p in Path(suite_dir).glob(f"*/{META_FILE}"))
    if not dirs:
        raise SystemExit(f"{suite_dir}: no runs (no */{META_FILE})")
    return {d.name: analyze_run(d) for d in dirs}


def runs_table(runs: Mapping[str, Analysis]) -> tuple[pd.DataFrame, str]:
    """(one row per run directory: what it trained and what it cost, linked to its own report;
    the total wall time sentence)."""
    rows = []
    for name, a in runs.items():
        cfg, meta = a.meta["config"], a.meta
        data = meta.get("dataset", {})
        rows.append({
            "run": f"[{name}]({name}/report.md)",
            "optimizer": optimizer_of(a),
            "depths": ", ".join(str(d) for d in cfg["model"]["depths"]),
            "width": ", ".join(str(w) for w in cfg["model"]["widths"]),
            "steps": cfg["steps"],
            "seeds": len(cfg["seeds"]),
            "replica-steps of the grid": f"{float(meta.get('replica_steps_total', math.nan)):,.0f}",
            "computed": f"{float(meta.get('replica_steps_computed', math.nan)):,.0f}",
            "wall (s)": f"{float(meta.get('wall_seconds', math.nan)):.0f}",
            "corpus sha256": str(data.get("sha256", ""))[:12],
        })  # fmt: skip
    wall = sum(float(a.meta.get("wall_seconds", 0.0)) for a in runs.values())
    return pd.DataFrame(rows), f"Total wall time: {wall:.0f} s ({wall / 60:.1f} min)."


def optima_table(runs: Sequence[Analysis]) -> pd.DataFrame:
    """log2 eta* at every depth, per optimizer and scheme, with its interval over seeds (or the
    bracket of a censored optimum)."""
    rows = []
    for a in runs:
        o = a.optima[a.optima["block_depth"] == BLOCK_DEPTH]
        for scheme, s in o.groupby("scheme", sort=False):
            row = {"optimizer": optimizer_of(a), "scheme": scheme_label(scheme)}
            for r in s.sort_values("depth").itertuples():
                if isinstance(r.edge, str) and r.edge:
                    text = f"{r.edge} [{r.bracket_lo:+.1f}, {r.bracket_hi:+.1f}]"
                else:
                    text = ci_text(
                        float(r.log2_eta_star), float(r.log2_eta_lo), float(r.log2_eta_hi)
                    )
                row[f"L={int(r.depth)}"] = text
            rows.append(row)
    return pd.DataFrame(rows)


def transfer_table(runs: Sequence[Analysis]) -> pd.DataFrame:
    """Per optimizer and scheme: the drift across depth, the worst regret of the rate tuned at
    the shallowest depth, the decision, and each seed-mean tuned loss at the deepest L."""
    rows = []
    for a in runs:
        card = a.scorecard[a.scorecard["block_depth"] == BLOCK_DEPTH]
        for c in card.itertuples():
            deepest = int(c.depth_max)
            tuned = seed_best_losses(a.finals, c.scheme, int(c.at_width), deepest)
            tuned = tuned[np.isfinite(tuned)]
            rows.append({
                "optimizer": optimizer_of(a),
                "scheme": scheme_label(c.scheme),
                "drift vs depth (oct/doubling)": ci_text(
                    float(c.drift_depth), float(c.drift_depth_check_lo),
                    float(c.drift_depth_check_hi)),
                "worst regret": percent_text(float(c.regret_depth), float(c.regret_depth_lo),
                                     float(c.regret_depth_hi)),
                "transfers across depth": claim_verdict(c.transfer_depth),
                f"tuned loss at L={deepest} (bits/byte)": (
                    f"{tuned.mean():.3f} (seeds {tuned.min():.3f}-{tuned.max():.3f})"
                    if len(tuned) else "every rate diverged"),
            })  # fmt: skip
    return pd.DataFrame(rows)


def report_markdown(runs: Mapping[str, Analysis]) -> str:
    """The suite's report.md text (``runs``: each run directory's name and analysis)."""
    table, total = runs_table(runs)
    analyses = list(runs.values())
    out = [
        "# lm: does eta* transfer across depth in a pre-LN transformer?",
        "Written by `python -m hptransfer.reports.lm_report` from the runs below "
        "(`make bench SUITE=lm`); each run's own report is linked from its name. Every MLP "
        "sublayer of the transformer is a two-layer residual block (k = 2), the setting where "
        "depth-muP's first internal layer stops learning features and NFD multiplies its rate "
        "by sqrt(L). Losses are bits per byte on held-out text.",
        "## Claims",
        markdown_table(claims_display(lm_claims(analyses))),
        "## Sweep",
        markdown_table(table),
        f"- {total}",
        "## eta* at every depth",
        "log2 eta* with its interval over seeds (a censored optimum: its side and bracket).",
        markdown_table(optima_table(analyses)),
        "## Transfer across depth and the loss at the deepest L",
        "The scorecard's decision (drift interval widened over censored optima; worst regret of "
        "the rate tuned at the shallowest depth, paired over seeds); the tuned loss is each "
        "seed's refined minimum over the rates.",
        markdown_table(transfer_table(analyses)),
    ]
    return "\n\n".join(out) + "\n"


def write_report(suite_dir: str | Path) -> Path:
    """DIR/report.md of an lm suite."""
    path = Path(suite_dir) / "report.md"
    path.write_text(report_markdown(load_runs(suite_dir)))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite_dir", help="a directory of runs, e.g. results/lm")
    args = parser.parse_args(argv)
    print(f"wrote {write_report(args.suite_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
