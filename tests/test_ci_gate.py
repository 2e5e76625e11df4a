"""The CI gate of another project (docs/ci-gate.md), run as its CI script would: from a folder
outside this repository, with its own scheme file, sweep config and expectations."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SCHEMES = """
[my_depth_mup]
extends = "mup"
description = "muP with a 1/sqrt(L) branch multiplier"
branch_exponent = 0.5
"""

CONFIG = """
name = "gate"
steps = 40
eval_every = 20
batch_size = 64
seeds = [0, 1, 2]
schemes = ["mup", "my_depth_mup"]
scheme_files = ["schemes.toml"]

[data]
name = "teacher"
num_samples = 1024

[model]
widths = [32]
depths = [2, 8]
base_width = 32
base_depth = 2

[lr]
start = -4.0
stop = 2.0
step = 1.0
"""

EXPECTATIONS = """
[gate]
description = "My scheme keeps eta* across depth; muP does not."

[[gate.expect]]
claim = "my_depth_mup: eta* flat in depth"
scheme = "my_depth_mup"
block_depth = 1
metric = "abs_drift_depth"
max = 0.5

[[gate.expect]]
claim = "my_depth_mup drifts less than muP"
scheme = "my_depth_mup"
block_depth = 1
metric = "abs_drift_depth"
max_ref = { scheme = "mup", block_depth = 1, offset = -0.3 }
"""

VIOLATED = """
[[gate.expect]]
claim = "muP: eta* flat in depth (false: muP has no branch multiplier)"
scheme = "mup"
block_depth = 1
metric = "abs_drift_depth"
max = 0.3
"""


def _hptransfer(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HPTRANSFER_HOST_DEVICES"] = "2"
    return subprocess.run(
        [sys.executable, "-m", "hptransfer.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Another project's folder: scheme file, sweep config, expectations, and its sweep."""
    root = tmp_path_factory.mktemp("project")
    assert REPO not in root.parents
    (root / "schemes.toml").write_text(SCHEMES)
    (root / "gate.toml").write_text(CONFIG)
    (root / "expectations.toml").write_text(EXPECTATIONS)
    sweep = _hptransfer(root, "sweep", "gate.toml", "--out", "run", "--quiet")
    assert sweep.returncode == 0, sweep.stderr
    return root


def test_gate_passes_on_its_own_expectations(project):
    check = _hptransfer(project, "check", "run", "--expectations", "expectations.toml")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "gate: 2 held, 0 failed" in check.stdout
    assert all(len(line) <= 100 for line in check.stdout.splitlines())


def test_gate_fails_on_a_violated_expectation(project):
    (project / "strict.toml").write_text(EXPECTATIONS + VIOLATED)
    check = _hptransfer(project, "check", "run", "--expectations", "strict.toml")
    assert check.returncode == 1
    assert "gate: 2 held, 1 failed" in check.stdout
    assert "FAILED" in check.stdout and "muP: eta* flat in depth" in check.stdout


MUTANTS = """
[branch_lost]
description = "my_depth_mup's 1/sqrt(L) branch multiplier lost: it is muP"
edit.my_depth_mup = { branch_exponent = 0.0 }
"""


def test_the_recipes_gate_catches_a_mutant_of_its_scheme(project):
    """docs/ci-gate.md section 5: the mutant trains once next to the gate's own run, which is
    reused, and the same check fails on it while it passes on the scheme as written."""
    (project / "mutants.toml").write_text(MUTANTS)
    args = ["--mutants", "mutants.toml", "--expectations", "expectations.toml", "--quiet"]
    mutate = _hptransfer(project, "mutate", "gate.toml", "--out", "mut", *args)
    assert mutate.returncode == 0, mutate.stdout + mutate.stderr
    assert "(none) (seeds 0,1,2): gate passes" in mutate.stdout
    assert "branch_lost (seeds 0,1,2): gate FAILS" in mutate.stdout
    assert "my_depth_mup drifts less than muP" in mutate.stdout
    assert "1 of 1 mutants caught" in mutate.stdout
    # a mutant the gate cannot see (it changes nothing at these shapes) survives: exit 1
    (project / "blind.toml").write_text(
        '[readout_width]\ndescription = "a width exponent at one width"\n'
        "edit.my_depth_mup.readout = { lr_sgd = [0, 0] }\n"
    )
    args[1] = "blind.toml"
    blind = _hptransfer(project, "mutate", "gate.toml", "--out", "mut", *args)
    assert blind.returncode == 1, blind.stdout + blind.stderr
    assert "survived: readout_width" in blind.stdout


def test_gate_with_a_baseline(project):
    args = ["check", "run", "--expectations", "expectations.toml", "--baseline", "base.json"]
    assert _hptransfer(project, *args).returncode == 1  # no baseline yet: said, and failing
    written = _hptransfer(project, *args, "--update-baseline")
    assert written.returncode == 0, written.stdout + written.stderr
    assert json.loads((project / "base.json").read_text())["config"]["name"] == "gate"
    again = _hptransfer(project, *args)
    assert again.returncode == 0 and "log2 eta* my_depth_mup k=1 n=32 L=8" in again.stdout
