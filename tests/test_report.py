"""hptransfer.reports.report (and the figures it draws) on a small synthetic sweep directory."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from hptransfer.reports import report as R

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ROLES = ("input", "hidden_1", "hidden_2", "readout")
STATS = ("own_movement", "weight_change", "total_movement", "rms_init", "rms_change")


def centre(scheme: str, width: int, depth: int, k: int) -> float:
    """Planted log2 eta*: SP drifts down with depth and width, depth-muP drifts up for k = 2."""
    r, m = math.log2(depth / 2), math.log2(width / 32)
    if scheme == "sp":
        return -3.0 - 0.8 * r - 0.5 * m
    return -3.0 + (0.3 * r if k == 2 else 0.0)


def synthetic_results(name: str = "synthetic", seed: int = 0) -> pd.DataFrame:
    """Two schemes x widths (32, 64) x depths (2, 4, 8) x k in (1, 2) x 7 rates x 2 seeds.

    Final loss 0.3 + 0.08 (log2 lr - centre)^2 + noise; a replica diverges at step 60 when
    log2 lr > centre + 2.2; movement per role with a planted depth exponent.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for scheme in ("sp", "depth_mup"):
        for n in (32, 64):
            for L in (2, 4, 8):
                for k in (1, 2):
                    c = centre(scheme, n, L, k)
                    for x in range(-7, 0):
                        for s in (0, 1):
                            final = 0.3 + 0.08 * (x - c) ** 2 + 0.01 * rng.standard_normal()
                            dstep = 60.0 if x > c + 2.2 else math.nan
                            for t in (0, 50, 100, 150, 200):
                                dead = t >= dstep
                                loss = final + (2.3 - final) * math.exp(-t / 40)
                                row = dict(
                                    scheme=scheme, family="mlp", optimizer="sgd", width=n,
                                    depth=L, block_depth=k, base_width=32, base_depth=2,
                                    lr=2.0**x, log2_lr=float(x), seed=s, step=t,
                                    train_loss=math.nan if dead or t == 0 else loss,
                                    test_loss=math.nan if dead else loss + 0.05,
                                    test_accuracy=math.nan if dead else 1 - loss / 3,
                                    diverged=bool(dead), diverged_step=dstep, cell=f"c{n}-{L}-{k}",
                                )  # fmt: skip
                                p = -0.5 if (scheme == "depth_mup" and k == 2) else 0.0
                                for j, role in enumerate(ROLES):
                                    present = not (role == "hidden_2" and k == 1) and not dead
                                    v = (0.1 + 0.05 * j) * (L**p if role == "hidden_1" else 1)
                                    for stat in STATS:
                                        row[f"{stat}/{role}"] = v * t / 200 if present else math.nan
                                rows.append(row)
    return pd.DataFrame(rows)


def write_run(path: Path, name: str = "synthetic", seed: int = 0) -> Path:
    path.mkdir(parents=True)
    df = synthetic_results(name, seed)
    df.to_parquet(path / "results.parquet")
    meta = {
        "config": {"name": name, "steps": 200, "schemes": ["sp", "depth_mup"]},
        "versions": {"jax": "test"},
        "device": "cpu (test)",
        "cells": sorted(df["cell"].unique()),
        "wall_seconds": 3.0,
        "replica_steps_per_second": 1234.0,
    }
    (path / "meta.json").write_text(json.dumps(meta))
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return write_run(tmp_path_factory.mktemp("sweep") / "run")


@pytest.fixture(scope="module")
def written(run_dir: Path) -> Path:
    return R.write_report(run_dir)


EXPECTED_FIGURES = {
    "loss_vs_lr_depth.png",
    "eta_star_depth.png",
    "loss_vs_lr_width.png",
    "eta_star_width.png",
    "movement_depth.png",
    "training_curves.png",
    "horizon_depth.png",
    "horizon_width.png",
}


def test_write_report_renders_markdown_with_every_figure(run_dir: Path, written: Path):
    assert written == run_dir / "report.md"
    md = written.read_text()
    assert md.startswith("# hptransfer report: synthetic")
    for section in ("## Sweep", "## Verdicts", "## Scorecard", "## Figures", "## Method"):
        assert section in md
    assert "Hyperparameters beyond the learning rate" not in md  # a run without axes
    assert "along the model path" not in md
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert {Path(link).name for link in links} == EXPECTED_FIGURES
    for link in links:
        assert not Path(link).is_absolute()
        png = run_dir / link
        assert png.read_bytes()[:8] == PNG_SIGNATURE
        image = imread(png)  # decodes: a valid PNG, not just a header
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300
        assert image[..., :3].std() > 0.05  # something was drawn


def test_report_states_the_planted_results(written: Path):
    md = written.read_text()
    # scorecard rows: SP drifts down by 0.8 octave per doubling of depth, depth-muP k=1 is flat
    table = [line for line in md.splitlines() if line.startswith("| SP | sgd | 1 |")]
    assert len(table) == 1 and "-0.8" in table[0]
    # 2 seeds: the numbers are stated, but no t-interval decides a verdict
    assert "**depth-muP, sgd, k=1**: Depth: undecided across depth" in md
    assert "**SP, sgd, k=1**: Depth: undecided across depth: drift -0.8" in md
    assert "Own movement of hidden_1 scales like L^-0.50" in md  # depth-muP, k = 2
    assert "learning-rate grid: log2 lr from -7 to -1 in steps of 1 (7 rates)" in md
    assert "replica-steps per second" in md


def test_html_report_is_standalone(run_dir: Path, written: Path):
    page = (run_dir / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    images = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert len(images) == len(EXPECTED_FIGURES)
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert "figures/" not in page  # nothing linked from outside the file
    assert page.count("<table>") >= 3 and "Depth: undecided across depth" in page


def test_compare_stacks_scorecards_with_a_run_column(run_dir: Path, tmp_path: Path):
    other = write_run(tmp_path / "other", name="other", seed=1)
    card = R.compare([run_dir, other])
    assert list(card.columns[:2]) == ["run", "family"]
    assert card.groupby("run").size().to_dict() == {"synthetic": 4, "other": 4}
    assert card["verdict"].str.len().min() > 20
    md = R.compare_markdown([run_dir, other])
    assert md.startswith("| run | scheme |")
    assert "**other: SP, sgd, k=2**" in md and "**synthetic: depth-muP, sgd, k=1**" in md


def test_format_table_aligns_columns_and_lists_verdicts(run_dir: Path):
    df = pd.DataFrame({"name": ["a", "bb"], "value": [1.5, math.inf], "n": [3, 10]})
    lines = R.format_table(df).splitlines()
    assert lines[0].split() == ["name", "value", "n"]
    assert lines[2].split() == ["a", "1.500", "3"] and lines[3].split() == ["bb", "inf", "10"]
    assert len({len(line) for line in lines[1:]}) == 1  # numbers right-aligned to one width
    card = R.compare([run_dir])
    text = R.format_table(card)
    assert "drift vs depth" in text and "synthetic: SP, sgd, k=1: Depth: undecided" in text


def test_report_opens_with_the_claims_and_says_what_its_intervals_are(written: Path):
    md = written.read_text()
    assert md.index("## Claims") < md.index("## Sweep") < md.index("## Verdicts")
    claims = md[md.index("## Claims") : md.index("## Sweep")]
    rows = [line for line in claims.splitlines() if line.startswith("| (")]
    assert [r[3] for r in rows] == ["a", "b", "c", "d", "e", "f"]
    # depth-muP with k = 1 is flat: measured, but 2 seeds decide nothing
    measured = float(rows[0].split("|")[2])
    assert abs(measured) < 0.05 and "range of 2 seeds" in rows[0] and "inconclusive" in rows[0]
    # the synthetic sweep has no NFD: (d) and (e) are not measured
    assert "not measured in this run" in rows[3] and "not measured in this run" in rows[4]
    assert "not measured in this run" in rows[5]  # (f): NFD's deepest-half slope
    assert (
        "[90%]" not in md
        and "(90% interval" not in md
        and "bootstrap over seeds (resampled" not in md
    )


def test_report_has_the_local_drift_section_and_sentences(written: Path):
    md = written.read_text()
    section = md[md.index("## Local drift across depth") :]
    section = section[: section.index("\n## ", 1)]
    header = next(line for line in section.splitlines() if line.startswith("| scheme"))
    for column in ("L 2→4", "L 4→8", "deepest-half slope", "largest shift", "curvature"):
        assert column in header
    assert section.count("| SP |") == 2 and section.count("| depth-muP |") == 2
    verdicts = md[md.index("## Verdicts") : md.index("## Scorecard")]
    # appended to each verdict, after the existing sentences
    assert "**depth-muP, sgd, k=1**: Depth: undecided across depth" in verdicts
    assert verdicts.count("Local drift: ") == 4
    assert "largest shift of eta* from base depth" in md


def test_method_coverage_is_the_committed_table_per_case(written: Path):
    from hptransfer.stats.calibration import CALIBRATED, CASES, committed_coverage

    md = written.read_text()
    method = md[md.index("## Method") :]
    table = committed_coverage()
    expected = R.markdown_table(R.coverage_display(table))
    assert expected in method
    assert "3 seeds" in expected and "5 seeds" in expected
    for case in CASES:
        assert f"| {case.name} " in expected
    # every interval outside the band, and only those, is marked not calibrated
    shown = table[table["method"].isin(R.COVERAGE_METHODS) & table["coverage"].notna()]
    outside = ~shown["coverage"].between(*CALIBRATED)
    assert expected.count("not calibrated") == int(outside.sum()) > 0


def test_a_censored_drift_is_printed_with_its_brackets():
    row = dict(slope=0.1, slope_lo=0.05, slope_hi=0.15, slope_min=0.0, slope_max=0.3,
               interval="t", n_censored=1)  # fmt: skip
    cell = R._drift_cells(row)["drift / doubling"]
    assert cell == "+0.10 [-0.05, +0.35] (t, with brackets)"
    plain = dict(row, slope_min=0.1, slope_max=0.1, n_censored=0)
    assert R._drift_cells(plain)["drift / doubling"] == "+0.10 [+0.05, +0.15]"


def test_a_shape_where_every_rate_diverged_is_reported_not_a_crash(tmp_path: Path):
    df = synthetic_results()
    dead = (df["scheme"] == "sp") & (df["depth"] == 8) & (df["block_depth"] == 1)
    late = dead & (df["step"] >= 100)
    df.loc[dead, "diverged_step"] = 100.0
    df.loc[late, ["train_loss", "test_loss", "test_accuracy"]] = math.nan
    df.loc[late, "diverged"] = True
    from hptransfer.reports.figures import plot_eta_star, plot_loss_vs_lr
    from hptransfer.stats.analysis import analyze

    a = analyze(df)
    dead_row = a.optima[(a.optima["scheme"] == "sp") & (a.optima["depth"] == 8)]
    assert (dead_row[dead_row["block_depth"] == 1]["edge_cause"] == "all_diverged").all()
    md = R._render_md(R._report_blocks(a, {}, tmp_path), tmp_path)
    assert "unknown (all diverged)" in md
    assert "every learning rate diverged at n=32 L=8" in md
    assert plot_eta_star(a, tmp_path / "eta.png").exists()
    assert plot_loss_vs_lr(a, tmp_path / "loss.png").exists()


def test_report_gives_the_stable_range_per_shape(written: Path):
    """The largest grid rate where no seed diverged: planted divergence above centre + 2.2."""
    md = written.read_text()
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Stable range"))
    table = lines[start + 2 : lines.index("", start + 2)]  # header, rule, rows (depth, n = 64)
    rows = table[2:]
    assert rows, "no stable-range table"
    for line in rows:
        label, *cells = [c.strip() for c in line.strip("|").split("|")]
        scheme = "sp" if label.startswith("SP") else "depth_mup"
        k = int(label.split("k=")[1])
        for L, cell in zip((2, 4, 8), cells, strict=True):
            top = max(x for x in range(-7, 0) if not x > centre(scheme, 64, L, k) + 2.2)
            assert cell == (f"≥{top:+.2f}" if top == -1 else f"{top:+.2f}"), (label, L, cell)
