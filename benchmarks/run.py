"""`make bench [SUITE=name]`: run a benchmark suite's sweep, then write its report.

A suite is benchmarks/<name>.toml (a sweep config). ``throughput`` runs the throughput
benchmark instead (benchmarks/throughput.py).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


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
    config = HERE / f"{args.suite}.toml"
    if not config.exists():
        suites = sorted(p.stem for p in HERE.glob("*.toml") if p.stem != "expectations")
        print(f"unknown suite {args.suite!r}; allowed: {suites + ['throughput']}", file=sys.stderr)
        return 2
    out = args.out or f"results/{args.suite}"
    cli = [sys.executable, "-m", "hptransfer.cli"]
    sweep = [*cli, "sweep", str(config), "--out", out] + (["--fresh"] if args.fresh else [])
    status = subprocess.call(sweep)
    if status == 0:
        status = subprocess.call([*cli, "report", out])
    return status


if __name__ == "__main__":
    sys.exit(main())
