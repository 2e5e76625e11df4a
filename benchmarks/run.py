"""`make bench [SUITE=name]`: run a benchmark suite's sweep, then write its report.

A suite is benchmarks/<name>.toml (a sweep config) or a family of them,
benchmarks/<name>_*.toml, each run into results/<name>/<config>/ (a family in
:data:`SUITE_REPORTS` also gets its report over all its runs, results/<name>/report.md).
``throughput`` runs the throughput benchmark instead (benchmarks/throughput.py).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# A family of configs whose questions span its runs has a report of its own over them
# (results/<suite>/report.md), written after every run's own report.
SUITE_REPORTS = {
    "schedule": "hptransfer.reports.schedule_report",
    "lm": "hptransfer.reports.lm_report",
}
# Suites whose name extends another suite's (lm_width and lm_cosine next to the lm family).
STANDALONE_SUITES = ("lm_width", "lm_cosine")


def family_configs(suite: str) -> list[Path]:
    """benchmarks/<suite>_*.toml, without a config that is a suite of its own: lm_width.toml is
    the lm_width suite, not a member of the lm family."""
    return sorted(
        p for p in HERE.glob(f"{suite}_*.toml")
        if not any(p.stem == s or p.stem.startswith(f"{s}_") for s in STANDALONE_SUITES)
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "suite", help="quick, width, paper, ... (benchmarks/<suite>.toml) or throughput"
    )
    parser.add_argument("--out", help="result directory (default results/<suite>)")
    parser.add_argument("--fresh", action="store_true", help="discard earlier work in --out")
    args = parser.parse_args(argv)
    if args.suite == "throughput":
        return subprocess.call([sys.executable, str(HERE / "throughput.py")])
    # A suite is one config (quick.toml) or a family of them (paper_sgd.toml, paper_adam.toml).
    single = HERE / f"{args.suite}.toml"
    configs = [single] if single.exists() else family_configs(args.suite)
    if not configs:
        names = {p.stem.split("_")[0] for p in HERE.glob("*.toml") if p.stem != "expectations"}
        print(
            f"unknown suite {args.suite!r}; allowed: {sorted(names) + ['throughput']}",
            file=sys.stderr,
        )
        return 2
    base = args.out or f"results/{args.suite}"
    cli = [sys.executable, "-m", "hptransfer.cli"]
    status = 0
    for config in configs:
        out = base if len(configs) == 1 else f"{base}/{config.stem}"
        sweep = [*cli, "sweep", str(config), "--out", out] + (["--fresh"] if args.fresh else [])
        status = subprocess.call(sweep) or subprocess.call([*cli, "report", out])
        if status:
            return status
    if len(configs) > 1 and args.suite in SUITE_REPORTS:  # the family's own page over its runs
        status = subprocess.call([sys.executable, "-m", SUITE_REPORTS[args.suite], base])
        if status:
            return status
    committed = HERE.parent / "results" / args.suite
    if Path(base).resolve() == committed.resolve():  # keep docs/results.md in step with it
        status = subprocess.call([sys.executable, str(HERE / "results_doc.py")])
    return status


if __name__ == "__main__":
    sys.exit(main())
