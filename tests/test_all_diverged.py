"""No crash on the way to a verdict (issue 16, item 5): analysis, report and check of runs where a
scheme diverges at every learning rate of some shape give verdicts (an inconclusive claim, a
missing expectation naming the cell, a scorecard flag), never a traceback."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hptransfer.cli import main
from hptransfer.stats.analysis import analyze, analyze_run
from hptransfer.stats.results import write_json, write_table
from hptransfer.tools.check import evaluate_run, format_table

ROLES = ("input", "hidden_1", "hidden_2", "readout")
STATS = ("own_movement", "weight_change", "total_movement", "rms_init", "rms_change")
SCHEMES = ("sp", "depth_mup", "nfd")
DEPTHS = (2, 4, 8)
VERDICTS = {"holds", "does not hold", "inconclusive", "not measured"}

Dead = Callable[[str, int, int, int], bool]  # (scheme, depth, block depth, seed) -> diverges


def planted(dead: Dead, seeds: tuple[int, ...] = (0, 1, 2)) -> pd.DataFrame:
    """SP, depth-muP and NFD at width 32, depths 2/4/8, k = 1 and 2, 7 rates, with the engine's
    columns. Final loss 0.3 + 0.08 (log2 lr - centre)^2 + noise (SP's centre falls with depth);
    a replica diverges at step 60 above centre + 2.2, and at EVERY rate where ``dead`` says so."""
    rng = np.random.default_rng(0)
    rows = []
    for scheme in SCHEMES:
        for L in DEPTHS:
            for k in (1, 2):
                c = -3.0 - (0.8 * math.log2(L / 2) if scheme == "sp" else 0.0)
                for x in range(-7, 0):
                    for s in seeds:
                        final = 0.3 + 0.08 * (x - c) ** 2 + 0.01 * rng.standard_normal()
                        dstep = 60.0 if dead(scheme, L, k, s) or x > c + 2.2 else math.nan
                        for t in (0, 50, 100, 150, 200):
                            gone = t >= dstep
                            loss = final + (2.3 - final) * math.exp(-t / 40)
                            row = dict(
                                scheme=scheme, family="mlp", optimizer="sgd", width=32, depth=L,
                                block_depth=k, base_width=32, base_depth=2, lr=2.0**x,
                                log2_lr=float(x), seed=s, step=t,
                                train_loss=math.nan if gone or t == 0 else loss,
                                test_loss=math.nan if gone else loss + 0.05,
                                test_accuracy=math.nan if gone else 1 - loss / 3,
                                diverged=bool(gone), diverged_step=dstep, cell=f"c{L}-{k}",
                            )  # fmt: skip
                            for j, role in enumerate(ROLES):
                                present = not (role == "hidden_2" and k == 1) and not gone
                                v = (0.1 + 0.05 * j) * (L**-0.5 if role == "hidden_1" else 1)
                                for stat in STATS:
                                    row[f"{stat}/{role}"] = v * t / 200 if present else math.nan
                            rows.append(row)
    return pd.DataFrame(rows)


# name -> (which replicas diverge at every rate, seeds, the dead series, its dead depths)
SCENARIOS: dict[str, tuple[Dead, tuple[int, ...], tuple[str, int], str]] = {
    # (1) NFD k = 2 at the deepest L, every seed: claim (e) has no per-seed best loss
    "nfd_deepest": (lambda sc, L, k, s: sc == "nfd" and k == 2 and L == 8, (0, 1, 2),
                    ("nfd", 2), "L=8"),
    # (2) depth-muP at a middle depth, both block depths
    "depth_mup_middle": (lambda sc, L, k, s: sc == "depth_mup" and L == 4, (0, 1, 2),
                         ("depth_mup", 2), "L=4"),
    # (3) NFD at every shape
    "nfd_every_shape": (lambda sc, L, k, s: sc == "nfd", (0, 1, 2), ("nfd", 2), "L=2, L=4, L=8"),
    # (4) one seed of NFD's deepest k = 2 cell; the other seeds train
    "one_seed": (lambda sc, L, k, s: sc == "nfd" and k == 2 and L == 8 and s == 0, (0, 1, 2),
                 ("nfd", 2), "L=8"),
    # (4') two seeds, NFD's seed 0 and depth-muP's seed 1 dead at the deepest k = 2 cell: no
    # seed has a finite best loss for both schemes
    "one_seed_each": (
        lambda sc, L, k, s: k == 2 and L == 8 and (sc, s) in (("nfd", 0), ("depth_mup", 1)),
        (0, 1), ("nfd", 2), "L=8",
    ),
}  # fmt: skip

EXPECTATIONS = """
[mini]
[[mini.expect]]
claim = "{scheme} flat in depth"
scheme = "{scheme}"
block_depth = {k}
metric = "abs_drift_depth"
max = 0.5
[[mini.expect]]
claim = "{scheme} drifts less than SP"
scheme = "{scheme}"
block_depth = {k}
metric = "abs_drift_depth"
max_ref = {{ scheme = "sp", block_depth = {k}, offset = -0.2 }}
[[mini.expect]]
claim = "SP drifts more than {scheme}"
scheme = "sp"
block_depth = {k}
metric = "abs_drift_depth"
min_ref = {{ scheme = "{scheme}", block_depth = {k}, offset = 0.2 }}
[[mini.expect]]
claim = "{scheme} hidden_1 movement"
scheme = "{scheme}"
block_depth = {k}
metric = "h1_own_slope_fixed_lr"
min = -0.75
max = -0.25
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Each scenario as a sweep directory: results.parquet and meta.json."""
    root = tmp_path_factory.mktemp("all_diverged")
    out = {}
    for name, (dead, seeds, _, _) in SCENARIOS.items():
        frame = planted(dead, seeds)
        run = root / name
        write_table(frame, run / "results.parquet")
        meta = {
            "config": {"name": "mini", "steps": 200, "schemes": list(SCHEMES)},
            "cells": sorted(frame["cell"].unique()),
        }
        write_json(meta, run / "meta.json")
        out[name] = run
    return out


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_analysis_gives_claims_and_flags(runs, name):
    _, seeds, (scheme, k), dead = SCENARIOS[name]
    a = analyze_run(runs[name])
    claims = a.claims.set_index("claim")
    assert list(claims.index) == ["a", "b", "c", "d", "e", "f"]
    assert set(claims["verdict"]) <= VERDICTS
    row = a.scorecard[(a.scorecard["scheme"] == scheme) & (a.scorecard["block_depth"] == k)]
    assert row["all_diverged_at"].iloc[0] == dead == row["all_diverged_depth"].iloc[0]
    verdict = row["verdict"].iloc[0]
    assert f"eta* unknown at {dead}" in verdict and "nan" not in verdict
    assert "censored" not in verdict  # a shape without a bracket is not a censored optimum
    # every claim that reads the dead series is undecided, and says why
    reads = {"nfd": "def", "depth_mup": "abcde"}[scheme]
    for c in reads:
        if c == "e" and name == "depth_mup_middle":
            continue  # (e) reads the deepest L only, which trained
        assert claims.loc[c, "verdict"] == "inconclusive", (c, claims.loc[c, "note"])
        assert "diverged" in claims.loc[c, "note"], (c, claims.loc[c, "note"])
        assert "nan" not in claims.loc[c, "note"], (c, claims.loc[c, "note"])
    e = claims.loc["e"]
    if name == "depth_mup_middle":
        return
    assert "L=8" in e["note"] and "every rate diverged" in e["note"], e["note"]
    assert "rerun with >= 3 seeds" not in e["note"]  # the seeds were run; they diverged
    if name == "one_seed":
        assert "NFD: every rate diverged in seed 0:" in e["note"], e["note"]
    if name == "one_seed_each":
        assert "seed 0" in e["note"] and "seed 1" in e["note"] and "0 seed(s)" in e["note"]


def test_an_every_shape_scheme_is_not_called_not_measured(runs):
    a = analyze_run(runs["nfd_every_shape"])
    d = a.claims.set_index("claim").loc["d"]
    assert d["verdict"] == "inconclusive" and "L=2, L=4, L=8" in d["note"], d["note"]


def test_one_seed_dead_with_more_seeds_is_decided_on_the_others():
    """Four seeds, one dead everywhere at NFD's deepest cell: (e) is decided on the other three
    and says which seed was left out (the seed-mean curve is +inf wherever a seed diverged)."""
    frame = planted(lambda sc, L, k, s: sc == "nfd" and k == 2 and L == 8 and s == 0, (0, 1, 2, 3))
    e = analyze(frame).claims.set_index("claim").loc["e"]
    assert e["interval"].endswith("over 3 seeds"), e.to_dict()
    assert "NFD: every rate diverged in seed 0: those seeds left out" in e["note"], e["note"]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_report_command_writes_a_report(runs, name, capsys):
    assert main(["report", str(runs[name])]) == 0
    md = (runs[name] / "report.md").read_text()
    _, _, _, dead = SCENARIOS[name]
    assert f"every learning rate diverged at {dead}" in md  # the scorecard's flag
    assert f"eta* unknown at {dead} (every learning rate diverged)" in md  # axis undecided
    assert "## Verdicts" in md and "## Scorecard" in md


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_check_gives_verdicts_without_and_with_a_baseline(runs, name, tmp_path):
    _, _, (scheme, k), dead = SCENARIOS[name]
    expect = tmp_path / "expect.toml"
    expect.write_text(EXPECTATIONS.format(scheme=scheme, k=k))
    table = evaluate_run(runs[name], "mini", expectations=expect, baselines=None)
    assert len(table) == 4 and (table["check"] == "expectation").all()
    # every expectation reads the dead series (directly or as a reference): missing, naming it
    assert (table["outcome"] == "missing").all(), table.to_string()
    assert not table["held"].any()
    for note in table["note"]:
        assert dead.split(", ")[-1] in note and "diverged" in note, note
    assert "Traceback" not in format_table(table)
    base = tmp_path / "base.json"
    evaluate_run(runs[name], "mini", expectations=expect, baseline=base, update_baseline=True,
                 force=True)  # fmt: skip
    again = evaluate_run(runs[name], "mini", expectations=expect, baseline=base)
    rows = again[again["check"] == "baseline"]
    assert len(rows) and set(rows["outcome"]) <= {"holds", "missing"}, rows.to_string()
    held = rows[rows["what"].str.startswith("log2 eta* sp")]
    assert held["held"].all()  # the series that trained match their own baseline
    assert main(["check", str(runs[name]), "--expectations", str(expect), "--baseline",
                 str(base)]) == 1  # fmt: skip
