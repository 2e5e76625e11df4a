"""The CI gate's false-alarm rate and power, measured (results/gate/).

    python benchmarks/gate_power.py --out results/gate [--sets 3]

1. Power: ``hptransfer mutate`` on the ci suite with the baseline's own seeds (``make mutation``):
   the gate must fail on every mutant of benchmarks/mutants.toml and pass on the unmutated
   schemes. The kill table says which check caught each mutant.
2. False alarms: the unmutated ci sweep with ``--sets`` other seed sets of the same size
   (seeds after the baseline's), each judged by the whole gate (expectations, coordinate checks,
   the baseline's two-sample test) as if it were CI's run.
3. Wall time of the gate as CI runs it (sweep + check, 2 CPU cores) and of the mutation test.

Writes DIR/report.md (the tables, generated: docs/ci-gate.md links it, never retypes it),
DIR/kill_table.csv, DIR/false_alarms.csv and DIR/inputs.json (digests of the gate's inputs the
kill table was measured on: ``make test`` fails when today's differ, naming this command). The
sweeps stay in --runs (results/scratch/gate by default, not committed; resumable).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hptransfer.stats.results import write_json  # noqa: E402
from hptransfer.sweeps.config import load_config  # noqa: E402
from hptransfer.tools.mutation import INPUTS_FILE, UNMUTATED, gate_inputs, mutation_test  # noqa: E402


def _table(frame: pd.DataFrame, columns: list[str]) -> str:
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    body = "".join(
        "| " + " | ".join(str(r[c]).replace("|", "\\|") for c in columns) + " |\n"
        for _, r in frame.iterrows()
    )
    return head + body


def _meta_seconds(run_dir: Path) -> str:
    """The wall time the sweep's last run took (meta.json), or "reused" when that run computed
    nothing (every cell was already on disk)."""
    import json

    meta = json.loads((run_dir / "meta.json").read_text())
    return f"{meta['wall_seconds']:.0f} s" if meta.get("replica_steps_computed") else "reused"


def _timed_gate(config: str, runs: Path) -> tuple[float, float, int]:
    """(sweep seconds, check seconds, check exit code) of the gate as CI runs it: a fresh sweep
    of the ci suite and its check, each a process of its own, on this machine as it is."""
    import subprocess

    exe = [sys.executable, "-m", "hptransfer.cli"]
    out = runs / "timed"
    start = time.perf_counter()
    subprocess.run([*exe, "sweep", config, "--out", str(out), "--fresh", "--quiet"], check=True)
    middle = time.perf_counter()
    code = subprocess.run(
        [*exe, "check", str(out), "--suite", "ci"], capture_output=True
    ).returncode
    return middle - start, time.perf_counter() - middle, code


def _horizon(run_dir: Path) -> pd.DataFrame:
    """The k = 2 drift of eta* across depth and the worst regret of the base-tuned rate at every
    evaluation step of the gate's own run, for depth-muP and NFD (why the gate trains 1000
    steps)."""
    from hptransfer.stats.analysis import analyze_run

    h = analyze_run(run_dir).horizon
    h = h[(h["axis"] == "depth") & (h["block_depth"] == 2) & h["scheme"].isin(["depth_mup", "nfd"])]
    rows = []
    for step, g in h.groupby("step"):
        row: dict[str, object] = {"step": int(step)}
        for r in g.itertuples():
            row[f"{r.scheme} drift"] = f"{r.slope:+.2f} [{r.slope_lo:+.2f}, {r.slope_hi:+.2f}]"
            row[f"{r.scheme} regret"] = f"{100 * r.worst_regret:.1f}%"
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="results/gate", help="output directory (default results/gate)")
    p.add_argument(
        "--runs",
        default="results/scratch/gate",
        help="where the sweeps go (resumable, not committed)",
    )
    p.add_argument("--sets", type=int, default=3, help="other seed sets for false alarms (3)")
    p.add_argument("--config", default=str(ROOT / "benchmarks/ci.toml"))
    p.add_argument("--mutants", default=str(ROOT / "benchmarks/mutants.toml"))
    args = p.parse_args(argv)
    if args.sets < 1:
        p.error(f"--sets = {args.sets}; allowed: an integer >= 1")
    out = Path(args.out)
    runs = Path(args.runs)
    config = load_config(args.config)

    start = time.perf_counter()
    kills = mutation_test(args.config, args.mutants, runs / "mutate", "ci")
    mutate_seconds = time.perf_counter() - start
    mutant_sweeps = ", ".join(
        f"{p.name} {_meta_seconds(p)}" for p in sorted((runs / "mutate").glob("mutants-k*"))
    )
    timed_sweep, timed_check, timed_code = _timed_gate(args.config, runs)

    # other seed sets in blocks of 3 sets, one sweep per block (a larger --sets adds blocks and
    # reuses the sweeps of the earlier ones)
    size = len(config.seeds)
    first = max(config.seeds) + 1
    seeds = tuple(range(first, first + size * args.sets))
    sets = [seeds[i : i + size] for i in range(0, len(seeds), size)]
    frames, sweep_seconds = [], []
    start = time.perf_counter()
    for b in range(0, len(sets), 3):
        block = sets[b : b + 3]
        other = dataclasses.replace(config, seeds=tuple(s for group in block for s in group))
        where = runs / f"false_alarms-{block[0][0]}-{block[-1][-1]}"
        frames.append(mutation_test(other, None, where, "ci", seed_sets=block))
        sweep_seconds.append(_meta_seconds(where / "gate"))
    alarms = pd.concat(frames, ignore_index=True)
    alarm_seconds = time.perf_counter() - start

    horizon = _horizon(runs / "mutate" / "gate")
    out.mkdir(parents=True, exist_ok=True)
    kills.to_csv(out / "kill_table.csv", index=False)
    # what the kill table was measured on: tests/test_mutants.py fails when today's gate differs
    write_json(gate_inputs(config, args.mutants, "ci"), out / INPUTS_FILE)
    alarms.to_csv(out / "false_alarms.csv", index=False)
    clean = kills[kills["mutant"] == UNMUTATED]
    mutants = kills[kills["mutant"] != UNMUTATED]
    caught = int(mutants["failed"].sum())
    n_alarm = int(alarms["failed"].sum())
    shown = mutants.assign(
        caught=mutants["failed"].map({True: "yes", False: "**no**"}),
        caught_by=mutants["caught_by"].str.replace("; ", "<br>"),
    )
    alarm_rows = alarms.assign(
        gate=alarms["failed"].map({True: "**fails** (false alarm)", False: "passes"}),
        failed_checks=alarms["caught_by"].str.replace("; ", "<br>"),
    )
    text = f"""# The CI gate, measured: power against mutants and false alarms

Generated by `python benchmarks/gate_power.py --out {args.out} --sets {args.sets}` on
{os.cpu_count()} CPU cores: the ci suite (`benchmarks/ci.toml`, seeds {list(config.seeds)})
checked by `hptransfer check --suite ci` (expectations, coordinate checks and the baseline's
two-sample test, `benchmarks/expectations.toml` and `results/baselines/ci.json`).

## Power: the mutants of benchmarks/mutants.toml

`hptransfer mutate benchmarks/ci.toml --mutants benchmarks/mutants.toml --suite ci` (`make
mutation`); its pass over the sweeps took {mutate_seconds:.0f} s with {len(kills)} checks (the mutants'
sweeps' last runs: {mutant_sweeps}).

The gate as CI runs it, timed here on a fresh directory: `hptransfer sweep benchmarks/ci.toml`
{timed_sweep:.0f} s, `hptransfer check --suite ci` {timed_check:.0f} s (exit {timed_code}), together
{timed_sweep + timed_check:.0f} s on {os.cpu_count()} CPU cores (with whatever else ran on the machine).
The unmutated schemes: the gate {"passes" if not clean["failed"].any() else "FAILS"}.
Caught: **{caught} of {len(mutants)}** mutants.

{_table(shown, ["mutant", "description", "caught", "n_failed", "caught_by"])}
## False alarms: the unmutated code with other seed sets

{len(sets)} seed sets other than the baseline's ({", ".join("[" + ", ".join(map(str, s)) + "]" for s in sets)}),
sweeps of 9 seeds (their last runs: {", ".join(sweep_seconds)}) judged one set at a time, each
as if it were CI's run ({alarm_seconds:.0f} s in all): **{n_alarm} of {len(sets)}** gates failed.

{_table(alarm_rows, ["seeds", "gate", "n_failed", "failed_checks"])}
## Why 1000 steps: the k = 2 horizon of the gate's own run

Drift of log2 eta* per doubling of depth (L = 2, 8, 32; 90% t-interval over the seeds) and the
worst regret of the base-tuned rate, read as if training had stopped at each step:

{_table(horizon, list(horizon.columns))}"""
    (out / "report.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
