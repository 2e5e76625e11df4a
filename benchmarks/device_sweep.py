"""Run a sweep within a time budget, carrying its finished cells from one machine to the next.

For sweeps larger than one lease of a borrowed accelerator (the `paper_sgd` depth sweep on one
GPU): every call starts from the finished cells packed by the call before, trains until the
budget is spent, stops the sweep cleanly (SIGINT: finished cells are kept), and packs the
finished cells again. A cell interrupted mid-way is recomputed by the next call (its Orbax
checkpoint stays behind: it is many files, deeply nested). When the sweep is complete, the report
is written and the results are packed with it.

    python benchmarks/device_sweep.py CONFIG --out DIR --state STATE.tar.gz --budget-seconds 480

Exit status: 0 complete (DIR holds results.parquet, meta.json, report.md, figures/, and STATE
them too); 3 budget spent, call again with the same STATE to continue; anything else: the sweep
failed (its output says why).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

CELLS = "cells"
RESULT_FILES = ("results.parquet", "meta.json", "report.md")
INCOMPLETE = 3


def unpack(state: Path, out: Path) -> int:
    """Extract the finished cells (and results) of an earlier call into ``out``; their count."""
    if not state.exists():
        return 0
    with tarfile.open(state) as tar:
        tar.extractall(out, filter="data")
    return len(list((out / CELLS).glob("*.parquet")))


def pack(out: Path, state: Path) -> int:
    """Write the finished cells (and, once complete, the results and report) of ``out`` to
    ``state`` atomically; returns the number of cells packed."""
    cells = sorted((out / CELLS).glob("*.parquet"))
    tmp = state.with_name(state.name + ".tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        for path in cells:
            tar.add(path, arcname=f"{CELLS}/{path.name}")
        for name in RESULT_FILES:
            if (out / name).exists():
                tar.add(out / name, arcname=name)
        if (out / "figures").is_dir():
            tar.add(out / "figures", arcname="figures")
    tmp.replace(state)
    return len(cells)


def sweep_within(config: Path, out: Path, budget: float) -> int:
    """Run ``hptransfer sweep CONFIG --out OUT`` for at most ``budget`` seconds; on the budget,
    SIGINT (the command keeps finished cells and exits 130). Returns its exit status."""
    cli = [sys.executable, "-m", "hptransfer.cli"]
    proc = subprocess.Popen([*cli, "sweep", str(config), "--out", str(out), "--quiet"])
    try:
        return proc.wait(timeout=budget)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        return proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path, help="sweep TOML, e.g. benchmarks/paper_sgd.toml")
    parser.add_argument("--out", type=Path, required=True, help="working results directory")
    parser.add_argument("--state", type=Path, required=True, help="tar.gz carried between calls")
    parser.add_argument("--budget-seconds", type=float, required=True,
                        help="stop the sweep after this long (compile and data included)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.budget_seconds <= 0:
        parser.error(f"--budget-seconds = {args.budget_seconds:g}; allowed: a number > 0")
    t0 = time.perf_counter()
    had = unpack(args.state, args.out)
    status = sweep_within(args.config, args.out, args.budget_seconds)
    complete = status == 0
    if complete:
        status = subprocess.call([sys.executable, "-m", "hptransfer.cli", "report", str(args.out)])
    cells = pack(args.out, args.state)
    print(
        f"device_sweep: {had} -> {cells} finished cells in {time.perf_counter() - t0:.0f} s; "
        + ("complete" if complete and status == 0 else f"sweep exit {status}"),
        flush=True,
    )
    if complete:
        return status
    return INCOMPLETE if status == 130 else status


if __name__ == "__main__":
    sys.exit(main())
