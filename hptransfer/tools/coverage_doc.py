"""``python -m hptransfer.tools.coverage_doc --out PATH [--draws N] [--markdown docs/coverage.md]``.

Computes the coverage table of :mod:`hptransfer.stats.calibration` (the planted cases through the
analysis's own estimators), writes it as CSV (the committed ``hptransfer/data/coverage.csv``
that reports read), the regret rule's false-alarm rates on planted zero-drift sweeps next to it
(``false_alarm.csv`` in the same folder) and, with ``--markdown``, renders both as the report does
(:func:`hptransfer.reports.report.coverage_markdown`). It sits above both modules, so neither imports
the other back.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from hptransfer.reports.report import coverage_markdown
from hptransfer.stats.calibration import coverage_table, false_alarm_table


def main(argv: list[str] | None = None) -> None:
    """Write the coverage table (and its Markdown page), as the module docstring says."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="CSV file to write")
    p.add_argument("--draws", type=int, default=5000, help="planted sweeps per case and seeds")
    p.add_argument("--regret-draws", type=int, default=1000, help="of them, for the regret")
    p.add_argument("--markdown", type=Path, help="also write the table as Markdown here")
    args = p.parse_args(argv)
    start = time.perf_counter()
    table = coverage_table(n_draws=args.draws, regret_draws=args.regret_draws)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False, float_format="%.4f")
    alarms_out = args.out.with_name("false_alarm.csv")
    alarms = false_alarm_table(n_draws=args.regret_draws)
    alarms.to_csv(alarms_out, index=False, float_format="%.4f")
    if args.markdown is not None:  # rendered from the CSVs as written, as reports read them
        args.markdown.write_text(coverage_markdown(pd.read_csv(args.out), pd.read_csv(alarms_out)))
    print(alarms.to_string(index=False))
    print(table.to_string(index=False))
    print(f"wrote {args.out} ({len(table)} rows) in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
