"""The layer rule of pyproject.toml ([tool.importlinter], run by `make lint`): it holds on the
package, and it fails on a planted upward import and on a planted circle inside a layer."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(package_parent: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run(
        [str(LINT), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=package_parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "hptransfer", tmp_path / "hptransfer")
    return tmp_path


def _plant(package: Path, module: str, line: str) -> None:
    path = package / "hptransfer" / Path(*module.split(".")).with_suffix(".py")
    path.write_text(path.read_text() + f"\n{line}  # planted\n")


@pytest.mark.skipif(
    not LINT.exists(), reason="import-linter is not installed (pip install -e .[dev])"
)
def test_layer_rule_holds_and_catches_plants(package_copy: Path) -> None:
    clean = _lint(package_copy)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "2 kept, 0 broken" in clean.stdout

    # an upward import: the network layer reading the statistics
    _plant(package_copy, "network.model", "from hptransfer.stats import tables")
    upward = _lint(package_copy)
    assert upward.returncode != 0
    assert "hptransfer.network.model -> hptransfer.stats.tables" in upward.stdout

    # a circle inside one layer (intervals <- rules already; rules <- intervals planted)
    shutil.copy(ROOT / "hptransfer/network/model.py", package_copy / "hptransfer/network/model.py")
    _plant(package_copy, "stats.intervals", "from hptransfer.stats import rules")
    circle = _lint(package_copy)
    assert circle.returncode != 0
    assert "Layers: network < stats < sweeps" in circle.stdout and "KEPT" in circle.stdout
    assert "No import circles" in circle.stdout and "BROKEN" in circle.stdout
