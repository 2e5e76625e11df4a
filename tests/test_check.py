"""The transfer-quality regression check: expectations as data, baseline tolerances, and the
proof that a broken scheme table makes the check fail."""

import json
import math

import pandas as pd
import pytest

from hptransfer.cli import main
from hptransfer.stats import analysis, seed_metrics
from hptransfer.stats.baseline_test import compare
from hptransfer.sweeps.config import config_from_dict
from hptransfer.sweeps.engine import run_sweep
from hptransfer.tools.check import (
    EXPECTATIONS,
    CheckError,
    check_expectations,
    choose_suite,
    config_differences,
    evaluate_run,
    format_table,
    load_expectations,
    suite_config,
    suite_metrics,
    unavailable_reasons,
)


def test_expectations_file_is_valid_for_every_suite():
    for suite in ("ci", "quick"):
        spec = load_expectations(suite)
        assert spec["expect"], suite
    with pytest.raises(CheckError, match="allowed"):
        load_expectations("nightly")


def with_intervals(rows):
    """Metrics rows (value, and lo / hi where given) as the check reads them."""
    no_samples = pd.DataFrame(columns=seed_metrics.SAMPLE_COLUMNS)
    return seed_metrics.with_intervals(pd.DataFrame(rows), no_samples)


def test_relative_and_absolute_bounds():
    # decided on intervals: without per-seed samples, a relative bound takes the difference of
    # the two intervals ([lo_b - hi_a, hi_b - lo_a])
    metrics = with_intervals(
        [
            {"scheme": "a", "optimizer": "sgd", "block_depth": 2, "metric": "m", "value": -0.5,
             "lo": -0.55, "hi": -0.45},
            {"scheme": "b", "optimizer": "sgd", "block_depth": 2, "metric": "m", "value": -0.1,
             "lo": -0.15, "hi": -0.05},
        ]
    )  # fmt: skip
    spec = {
        "expect": [
            {"claim": "a in range", "scheme": "a", "block_depth": 2, "metric": "m", "min": -0.75, "max": -0.25},
            {"claim": "b above a", "scheme": "b", "block_depth": 2, "metric": "m",
             "min_ref": {"scheme": "a", "block_depth": 2, "offset": 0.2}},
            {"claim": "a above b", "scheme": "a", "block_depth": 2, "metric": "m",
             "min_ref": {"scheme": "b", "block_depth": 2, "offset": 0.2}},
            {"claim": "missing", "scheme": "c", "block_depth": 2, "metric": "m", "max": 1.0},
        ]
    }  # fmt: skip
    table = check_expectations(metrics, spec)
    assert table["held"].tolist() == [True, True, False, False]
    assert table["outcome"].tolist() == ["holds", "holds", "fails", "missing"]
    assert "difference of intervals" in table["note"].iloc[1]


def test_baseline_tolerance_comes_from_the_seed_spread():
    # format 2: per-seed values on both sides, a Welch two-sample test (no flat tolerance)
    record = {
        "format": 2,
        "eta_star": [{"scheme": "a", "optimizer": "sgd", "block_depth": 1, "width": 64, "depth": 2,
                      "log2_eta_star": -1.0, "edge": None, "seed_values": [-1.1, -0.9, -1.0]}],
        "metrics": [{"scheme": "a", "optimizer": "sgd", "block_depth": 1, "metric": "drift_depth",
                     "value": 0.1, "seed_values": [0.05, 0.1, 0.15]}],
    }  # fmt: skip
    moved = json.loads(json.dumps(record))
    moved["eta_star"][0]["log2_eta_star"] = -2.5
    moved["metrics"][0]["value"] = 0.5
    assert compare(record, record)["held"].all()
    table = compare(moved, record)
    assert table["held"].tolist() == [False, False]
    assert table["outcome"].tolist() == ["fails", "fails"]
    assert table["note"].str.startswith("Welch t").all()
    # within the seed-to-seed spread: holds
    near = json.loads(json.dumps(record))
    near["eta_star"][0]["log2_eta_star"] = -1.05
    assert compare(near, record)["held"].all()
    # a format-1 baseline (points only): the run's spread stands for both sides
    old = {"eta_star": [{k: v for k, v in record["eta_star"][0].items() if k != "seed_values"}],
           "metrics": [{k: v for k, v in record["metrics"][0].items() if k != "seed_values"}]}  # fmt: skip
    assert compare(moved, old)["held"].tolist() == [False, False]
    assert compare(near, old)["note"].str.contains("format-1").all()
    # format 1 wrote an infinite regret (the base-tuned rate diverges) as null, like NaN
    diverged = json.loads(json.dumps(record))
    diverged["metrics"][0]["value"] = math.inf
    old["metrics"][0]["value"] = None
    assert compare(diverged, old)["outcome"].tolist()[1] == "holds"
    assert compare(record, old)["outcome"].tolist()[1] == "missing"  # a finite value: not a match


@pytest.fixture(scope="module")
def sweep_with_broken_scheme(tmp_path_factory):
    """depth_mup and a copy whose branch multiplier was dropped (beta = 1), trained side by side
    in the ci suite's setting for k = 1 but at depths 2 and 8 only (300 steps, MNIST-1D, two
    seeds: the check decides on intervals, and one seed gives none). The full-size version of
    this test is the gate's mutation test (`make mutation`: depth_mup_branch_lost)."""
    tmp = tmp_path_factory.mktemp("perturbed")
    (tmp / "broken.toml").write_text(
        '[depth_mup_broken]\nextends = "depth_mup"\nbranch_exponent = 0.0\n'
        'description = "depth-muP with its branch multiplier dropped"\n'
    )
    config = config_from_dict(
        {
            "name": "perturbed", "steps": 300, "eval_every": 100, "seeds": [0, 1],
            "schemes": ["depth_mup", "depth_mup_broken"], "scheme_files": [str(tmp / "broken.toml")],
            "data": {"num_samples": 20000}, "model": {"depths": [2, 8], "block_depths": [1]},
            "lr": {"start": -6.0, "stop": 1.5, "step": 1.5},  # both optima, the broken edge
        }
    )  # fmt: skip
    frame = run_sweep(config, tmp / "run", progress=False)
    return tmp, frame


def test_a_broken_scheme_table_fails_the_check(sweep_with_broken_scheme):
    tmp, frame = sweep_with_broken_scheme
    spec = load_expectations("ci")
    flat = [e for e in spec["expect"] if e["scheme"] == "depth_mup" and e["block_depth"] == 1]
    assert flat, "the ci suite must state depth_mup's k = 1 flatness"
    good = frame[frame.scheme == "depth_mup"]
    broken = frame[frame.scheme == "depth_mup_broken"].assign(scheme="depth_mup")
    results = {}
    for name, table in (("good", good), ("broken", broken)):
        a = analysis.analyze(table.reset_index(drop=True))
        samples = seed_metrics.seed_samples(a)
        metrics = seed_metrics.with_intervals(suite_metrics(a), samples, a.ci)
        results[name] = check_expectations(metrics, {"expect": flat}, None, samples, a.ci)
    # two seeds on a 1.5-octave grid: depth-muP's range of per-seed slopes may straddle the
    # bound, so it is not refuted; the broken table (eta* moves by octaves a doubling) never holds
    good = results["good"]["outcome"]
    assert good.isin(["holds", "inconclusive"]).all(), results["good"].to_string()
    assert not results["broken"]["held"].any(), results["broken"].to_string()


def test_check_command_fails_on_the_broken_run(sweep_with_broken_scheme, tmp_path):
    tmp, frame = sweep_with_broken_scheme
    run = tmp_path / "broken_run"
    run.mkdir()
    frame[frame.scheme == "depth_mup_broken"].assign(scheme="depth_mup").to_parquet(
        run / "results.parquet"
    )
    expectations = tmp_path / "expectations.toml"
    expectations.write_text(
        '[mini]\n[[mini.expect]]\nclaim = "depth-muP k=1 flat"\nscheme = "depth_mup"\n'
        'block_depth = 1\nmetric = "abs_drift_depth"\nmax = 0.5\n'
    )
    with pytest.raises(CheckError, match="no meta.json"):  # a run of unknown config
        evaluate_run(
            run, "mini", expectations=expectations, baselines=tmp_path, update_baseline=True
        )
    table = evaluate_run(
        run, "mini", expectations=expectations, baselines=tmp_path, update_baseline=True,
        force=True,
    )  # fmt: skip
    assert not table["held"].iloc[0] and math.isfinite(table["value"].iloc[0])
    assert (tmp_path / "mini.json").exists()
    again = evaluate_run(run, "mini", expectations=expectations, baselines=tmp_path)
    assert again[again.check == "baseline"]["held"].all()  # same run, same baseline
    assert EXPECTATIONS.exists()


# --------------------------------------------------------------------------------------------
# Baselines only on purpose, unavailable metrics, the printed table (fast)


def test_null_eta_star_is_reported_unavailable_not_a_crash():
    optima = pd.DataFrame([
        {"scheme": "a", "block_depth": 1, "width": 64, "depth": 2, "log2_eta_star": -1.0},
        {"scheme": "a", "block_depth": 1, "width": 64, "depth": 32, "log2_eta_star": math.nan},
    ])  # fmt: skip
    reasons = unavailable_reasons(optima)
    assert reasons == {("a", 1): "no eta* at n=64 L=32 (every replica diverged)"}
    metrics = pd.DataFrame(columns=["scheme", "optimizer", "block_depth", "metric", "value"])
    spec = {
        "expect": [
            {
                "claim": "flat",
                "scheme": "a",
                "block_depth": 1,
                "metric": "abs_drift_depth",
                "max": 0.3,
            }
        ]
    }
    row = check_expectations(metrics, spec, reasons).iloc[0]
    assert not row["held"] and "every replica diverged" in row["note"] and "L=32" in row["note"]
    assert row["outcome"] == "missing"
    cell = {
        "scheme": "a",
        "optimizer": "sgd",
        "block_depth": 1,
        "width": 64,
        "depth": 32,
        "edge": None,
    }
    record = {"eta_star": [{**cell, "log2_eta_star": None}], "metrics": []}
    baseline = {"eta_star": [{**cell, "log2_eta_star": -2.0}], "metrics": []}
    for now, then in ((record, baseline), (baseline, record)):
        table = compare(now, then)
        assert not table["held"].any() and table["note"].str.contains("diverged").all()
        assert (table["outcome"] == "missing").all()


def test_printed_table_fits_100_columns():
    spec = load_expectations("quick")
    metrics = with_intervals(
        [{"scheme": e["scheme"], "optimizer": "sgd", "block_depth": e["block_depth"],
          "metric": e["metric"], "value": -0.5, "lo": -0.6, "hi": -0.4} for e in spec["expect"]]
    )  # fmt: skip
    table = check_expectations(
        metrics, spec, {("nfd", 2): "no eta* at n=64 L=128 (every replica diverged)"}
    )
    text = format_table(table)
    assert max(len(line) for line in text.splitlines()) <= 100
    assert len(text.splitlines()) > len(table)  # long claims wrap instead of widening
    for claim in (e["claim"].split()[0] for e in spec["expect"]):
        assert claim in text


def test_suite_choice_and_config_comparison(tmp_path):
    two = tmp_path / "two.toml"
    two.write_text(
        '[a]\n[[a.expect]]\nclaim="x"\nscheme="s"\nblock_depth=1\nmetric="m"\nmax=1\n[b]\n'
    )
    assert choose_suite(two, None, "b") == "b"
    assert choose_suite(two, "a", "b") == "a"
    with pytest.raises(CheckError, match="--suite"):
        choose_suite(two, None, "c")
    ci = suite_config("ci")
    assert ci["name"] == "ci" and config_differences(ci, ci) == []
    other = {**ci, "name": "mine", "steps": 10, "model": {**ci["model"], "depths": [2]}}
    assert config_differences(other, ci) == ["model.depths", "steps"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A few-second sweep of its own config (teacher data, width 32, depths 2 and 8, two seeds:
    the baseline's two-sample test needs a seed spread)."""
    tmp = tmp_path_factory.mktemp("tiny")
    config = config_from_dict(
        {
            "name": "tiny", "steps": 40, "eval_every": 20, "batch_size": 64, "seeds": [0, 1],
            "schemes": ["mup", "depth_mup"], "data": {"name": "teacher", "num_samples": 1024},
            "model": {"widths": [32], "depths": [2, 8], "base_width": 32},
            "lr": {"start": -4.0, "stop": 2.0, "step": 1.0},
        }
    )  # fmt: skip
    run_sweep(config, tmp / "run", progress=False)
    return tmp


def test_baselines_change_only_on_purpose(tiny_run, tmp_path, capsys):
    run = tiny_run / "run"
    # a built-in suite's check of a run of another config: one line, exit 2
    assert main(["check", str(run), "--suite", "ci"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a run of suite 'ci'" in err[0] and "batch_size" in err[0]
    expect = tmp_path / "tiny.toml"
    expect.write_text(
        '[tiny]\n[[tiny.expect]]\nclaim = "muP flat in depth"\n'
        'scheme = "mup"\nblock_depth = 1\nmetric = "abs_drift_depth"\nmax = 0.3\n'
    )
    base = tmp_path / "base.json"
    args = ["check", str(run), "--expectations", str(expect), "--baseline", str(base)]
    assert main([*args, "--update-baseline"]) == 2  # muP's eta* drifts: the expectation fails
    assert "refused" in capsys.readouterr().err and not base.exists()
    assert main([*args, "--update-baseline", "--force"]) == 1  # written; still reports the failure
    assert json.loads(base.read_text())["config"]["name"] == "tiny"
    capsys.readouterr()
    assert main(args) == 1  # the expectation still does not hold
    assert "tiny: " in capsys.readouterr().out
    # the same run against its own baseline: every row holds; muP's fixed-rate slopes have one
    # finite seed (the other diverged), so there is nothing to test: shown as not compared
    table = evaluate_run(run, expectations=expect, baseline=base)
    assert not table[table["check"] == "expectation"]["held"].any()
    rows = table[table["check"] == "baseline"]
    assert rows["held"].all(), rows[~rows["held"]]
    untested = rows[rows["outcome"] == "untested"]
    assert (untested["note"] == "not compared: no seed spread on either side").all(), untested
    assert len(untested) < len(rows)
    # an old tolerance table is refused in one line instead of being silently ignored
    old = tmp_path / "old.toml"
    old.write_text(
        expect.read_text().replace("[tiny]\n", "[tiny]\ntolerance = { log2_eta_star = 1.0 }\n")
    )
    assert main(["check", str(run), "--expectations", str(old)]) == 2
    assert "tolerance is no longer read" in capsys.readouterr().err
    # the stored config guards the baseline: a run of another config is refused in one line
    stored = json.loads(base.read_text())
    stored["config"]["steps"] = 1000
    base.write_text(json.dumps(stored))
    assert main(args) == 2
    assert "differs in steps" in capsys.readouterr().err
