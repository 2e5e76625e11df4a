"""Resident memory of a sweep, cell by cell: ``python benchmarks/memory_profile.py CONFIG``.

Runs the sweep in this process (host devices split as the CLI does) and prints, after each
cell, the resident set size (VmRSS), its peak so far (VmHWM), the compiled programs the engine
holds and the compilations so far; a thread samples VmRSS every 0.5 s for the overall peak.
``--json PATH`` also writes these rows (tests/test_memory.py reads them).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import threading
import time

from hptransfer.cli import configure_host_devices


def status_kib(field: str) -> int:
    """A field of /proc/self/status in KiB (VmRSS, VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="a sweep config (TOML)")
    parser.add_argument("--out", help="result directory (default: a temporary one)")
    parser.add_argument("--json", help="also write the per-cell rows to this file")
    args = parser.parse_args(argv)
    configure_host_devices()
    from hptransfer.sweeps import engine
    from hptransfer.sweeps.config import load_config

    samples: list[int] = []
    rows: list[dict] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            samples.append(status_kib("VmRSS"))

    run_cell = engine.run_cell
    t0 = time.perf_counter()
    print(f"{'cell':>4} {'n':>4} {'L':>3} {'k':>2} {'rss MiB':>8} {'peak MiB':>8} "
          f"{'programs':>8} {'compiles':>8} {'seconds':>8}")  # fmt: skip

    def profiled(config, arch, *a, **kw):
        out = run_cell(config, arch, *a, **kw)
        gc.collect()
        row = dict(
            cell=len(rows) + 1, width=arch.width, depth=arch.depth, block_depth=arch.block_depth,
            rss_mib=status_kib("VmRSS") / 1024, peak_mib=status_kib("VmHWM") / 1024,
            programs=len(engine._PROGRAMS), compiles=engine.COMPILE_STATS["count"],
            seconds=time.perf_counter() - t0,
        )  # fmt: skip
        rows.append(row)
        print(
            "{cell:>4} {width:>4} {depth:>3} {block_depth:>2} {rss_mib:>8.0f} {peak_mib:>8.0f} "
            "{programs:>8} {compiles:>8} {seconds:>8.0f}".format(**row),
            flush=True,
        )
        return out

    engine.run_cell = profiled
    threading.Thread(target=sample, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:
        engine.run_sweep(load_config(args.config), args.out or tmp, fresh=True, progress=False)
    done.set()
    summary = dict(
        sampled_peak_mib=max(samples, default=0) / 1024, peak_mib=status_kib("VmHWM") / 1024,
        compile_stats=dict(engine.COMPILE_STATS),
    )  # fmt: skip
    print(f"peak VmRSS sampled {summary['sampled_peak_mib']:.0f} MiB, "
          f"VmHWM {summary['peak_mib']:.0f} MiB; {summary['compile_stats']}")  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cells": rows, **summary}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
