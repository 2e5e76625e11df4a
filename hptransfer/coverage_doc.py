"""``python -m hptransfer.coverage_doc --out PATH [--draws N] [--markdown docs/coverage.md]``.

Computes the coverage table of :mod:`hptransfer.calibration` (the planted cases through the
analysis's own estimators), writes it as CSV (the committed ``hptransfer/data/coverage.csv``
that reports read) and, with ``--markdown``, renders it as the report does
(:func:`hptransfer.report.coverage_markdown`). It sits above both modules, so neither imports
the other back.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from hptransfer.calibration import coverage_table
from hptransfer.report import coverage_markdown


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
    if args.markdown is not None:  # rendered from the CSV as written, as reports read it
        args.markdown.write_text(coverage_markdown(pd.read_csv(args.out)))
    print(table.to_string(index=False))
    print(f"wrote {args.out} ({len(table)} rows) in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
