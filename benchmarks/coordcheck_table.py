"""The transformer's coordinate-check table: every scheme across depth, SP and muP across width.

``.venv/bin/python benchmarks/coordcheck_table.py [--out results/coordcheck]`` runs the check of
``hptransfer coordcheck --family transformer`` (its defaults: :data:`hptransfer.tools.
coord_defaults.TRANSFORMER`) for each (scheme, axis) and writes ``OUT/transformer.md`` and
``OUT/transformer.csv``: per role, the worst slope of log size against log width or depth and
pass or fail (the rule of docs/coordcheck.md), and the own-movement slope after the last step.
Across width only SP and muP are checked: at the base depth depth-muP, NFD and CompleteP (under
SGD) are muP.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from hptransfer.network.data import load_dataset
from hptransfer.reports.report import markdown_table
from hptransfer.tools import coord_defaults as cd
from hptransfer.tools import coordcheck as cc

CHECKS = (
    *(("depth", s) for s in ("sp", "mup", "depth_mup", "completep", "nfd")),
    ("width", "sp"),
    ("width", "mup"),
)


def run(checks=CHECKS) -> pd.DataFrame:
    """One row per (axis, scheme, role): worst slope, pass/fail, own-movement slope."""
    t = cd.TRANSFORMER
    data = load_dataset("text", seq_len=int(t["seq_len"]), eval_sequences=1)
    rows = []
    for axis, scheme in checks:
        setting = cc.CoordSetting(
            axis=axis, values=tuple(t[f"{axis}s"]), width=64, depth=2, block_depth=2,
            base_width=64, base_depth=2, optimizer="sgd", lr=2.0 ** cd.DEFAULT_LOG2_LR["sgd"],
            batch_size=int(t["batch_size"]), family="transformer", head_dim=int(t["head_dim"]),
            mlp_ratio=int(t["mlp_ratio"]),
        )  # fmt: skip
        frame = cc.measure(scheme, setting, data)
        table = cc.verdict(frame, axis)
        own = cc.own_movement_slopes(frame, axis)
        for r in table.itertuples():
            rows.append({"axis": axis, "scheme": scheme, "role": r.role, "stat": r.stat,
                         "step": r.step, "slope": r.slope, "passed": r.passed,
                         "own_slope": float(own.get(r.role, float("nan")))})  # fmt: skip
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame, seconds: float) -> str:
    t = cd.TRANSFORMER
    wide = table.assign(
        cell=[f"{s:+.2f} {'pass' if p else 'FAIL'} (own {o:+.2f})"
              for s, p, o in zip(table["slope"], table["passed"], table["own_slope"], strict=True)]
    ).pivot_table(index=["axis", "scheme"], columns="role", values="cell", aggfunc="first",
                  sort=False)  # fmt: skip
    verdict = table.groupby(["axis", "scheme"], sort=False)["passed"].all()
    wide.insert(0, "all roles", verdict.map({True: "pass", False: "FAIL"}))
    return "\n\n".join([
        "# Coordinate check of the transformer",
        "Written by `python benchmarks/coordcheck_table.py` (the check of `hptransfer coordcheck "
        "--family transformer`, docs/coordcheck.md): SGD at 2^-3, "
        f"{cd.DEFAULT_STEPS} steps on one fixed batch of {t['batch_size']} sequences of "
        f"{t['seq_len']} bytes, {cd.DEFAULT_SEEDS} seeds; depths {list(t['depths'])} at width 64, "
        f"widths {list(t['widths'])} at depth 2; heads of dimension {t['head_dim']}, MLP ratio "
        f"{t['mlp_ratio']}. Each cell: the worst slope of log RMS size against log width or "
        f"depth over the steps and the checked quantities, pass when within "
        f"+-{cd.DEFAULT_TOLERANCE}, and the own-movement slope after the last step.",
        markdown_table(wide.reset_index()),
        f"Measured in {seconds:.0f} s.",
    ]) + "\n"  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/coordcheck")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    table = run()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "transformer.csv", index=False)
    (out / "transformer.md").write_text(markdown(table, time.perf_counter() - t0))
    print(f"wrote {out / 'transformer.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
