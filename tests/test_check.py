"""The transfer-quality regression check: expectations as data, baseline tolerances, and the
proof that a broken scheme table makes the check fail."""

import json
import math

import pandas as pd
import pytest

from hptransfer import analysis
from hptransfer.check import (
    EXPECTATIONS,
    CheckError,
    check_baseline,
    check_expectations,
    evaluate_run,
    load_expectations,
    suite_metrics,
)
from hptransfer.config import config_from_dict
from hptransfer.engine import run_sweep


def test_expectations_file_is_valid_for_every_suite():
    for suite in ("ci", "quick"):
        spec = load_expectations(suite)
        assert spec["expect"], suite
    with pytest.raises(CheckError, match="allowed"):
        load_expectations("nightly")


def test_relative_and_absolute_bounds():
    metrics = pd.DataFrame(
        [
            {"scheme": "a", "optimizer": "sgd", "block_depth": 2, "metric": "m", "value": -0.5},
            {"scheme": "b", "optimizer": "sgd", "block_depth": 2, "metric": "m", "value": -0.1},
        ]
    )
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


def test_baseline_tolerances():
    record = {
        "eta_star": [{"scheme": "a", "optimizer": "sgd", "block_depth": 1, "width": 64, "depth": 2,
                      "log2_eta_star": -1.0, "edge": None}],
        "metrics": [{"scheme": "a", "optimizer": "sgd", "block_depth": 1, "metric": "drift_depth", "value": 0.1}],
    }  # fmt: skip
    moved = json.loads(json.dumps(record))
    moved["eta_star"][0]["log2_eta_star"] = -2.5
    moved["metrics"][0]["value"] = 0.5
    tol = {"log2_eta_star": 1.0, "drift_depth": 0.3}
    assert check_baseline(record, record, tol)["held"].all()
    held = check_baseline(record, moved, tol)["held"].tolist()
    assert held == [False, False]


@pytest.fixture(scope="module")
def sweep_with_broken_scheme(tmp_path_factory):
    """depth_mup and a copy whose branch multiplier was dropped (beta = 1), trained side by side
    in the ci suite's setting for k = 1 (300 steps, MNIST-1D, depths 2/8/32, one seed)."""
    tmp = tmp_path_factory.mktemp("perturbed")
    (tmp / "broken.toml").write_text(
        '[depth_mup_broken]\nextends = "depth_mup"\nbranch_exponent = 0.0\n'
        'description = "depth-muP with its branch multiplier dropped"\n'
    )
    config = config_from_dict(
        {
            "name": "perturbed", "steps": 300, "eval_every": 100, "seeds": [0],
            "schemes": ["depth_mup", "depth_mup_broken"], "scheme_files": [str(tmp / "broken.toml")],
            "data": {"num_samples": 20000}, "model": {"depths": [2, 8, 32], "block_depths": [1]},
            "lr": {"start": -12.0, "stop": 1.5, "step": 1.5},
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
        metrics = suite_metrics(analysis.analyze(table.reset_index(drop=True), n_boot=20))
        results[name] = check_expectations(metrics, {"expect": flat})
    assert results["good"]["held"].all(), results["good"].to_string()
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
    table = evaluate_run(
        run, "mini", expectations=expectations, baselines=tmp_path, update_baseline=True, n_boot=20
    )
    assert not table["held"].iloc[0] and math.isfinite(table["value"].iloc[0])
    assert (tmp_path / "mini.json").exists()
    again = evaluate_run(run, "mini", expectations=expectations, baselines=tmp_path, n_boot=20)
    assert again[again.check == "baseline"]["held"].all()  # same run, same baseline
    assert EXPECTATIONS.exists()
