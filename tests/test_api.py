"""The Python API (hptransfer.api): docs/api.md's worked example runs as written, the package
imports without jax, and bad arguments are refused in one line."""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

import hptransfer as hp
from hptransfer.sweeps.config import ConfigError

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def doc_code(path: Path = DOC) -> str:
    """The ```python blocks of a markdown file, joined in order."""
    blocks = re.findall(r"^```python\n(.*?)^```", path.read_text(encoding="utf-8"), re.M | re.S)
    assert blocks, f"{path} has no python block"
    return "\n".join(blocks)


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> dict:
    """The namespace left by docs/api.md's example, its temporary folders under pytest's."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tempfile, "tempdir", str(tmp_path_factory.mktemp("api_doc")))
        namespace: dict = {"__name__": "api_doc"}
        exec(compile(doc_code(), str(DOC), "exec"), namespace)
    return namespace


def test_doc_example_runs_and_gives_tables(example):
    eta, slopes, verdicts = example["eta"], example["slopes"], example["verdicts"]
    cells = set(zip(eta["scheme"], eta["depth"], strict=True))
    assert cells == {(s, d) for s in ("depth_mup", "nfd") for d in (2, 4)}
    assert len(eta) == 4 and list(eta.columns) == list(hp.api.OPTIMA_COLUMNS)
    assert set(slopes["scheme"]) == {"depth_mup", "nfd"} and (slopes["axis"] == "depth").all()
    assert np.isfinite(slopes["slope"]).all()
    assert {"claim", "verdict", "statement"} <= set(verdicts.columns)
    assert list(verdicts["claim"]) == ["a", "b", "c", "d", "e", "f"]
    assert (example["run"] / "results.parquet").is_file()
    assert example["png"].is_file() and example["png"].suffix == ".png"
    assert isinstance(example["fig"], Figure) and example["fig"].get_figwidth() > 1


def test_tables_are_copies_and_full_gives_every_column(example):
    a = example["a"]
    table = hp.optima(a, full=True)
    assert list(table.columns) == list(a.optima.columns)
    table.loc[:, "log2_eta_star"] = 99.0
    assert (a.optima["log2_eta_star"] != 99.0).all()
    assert "verdict" in hp.scorecard(a).columns and len(hp.regret(a))


def test_bad_arguments_are_one_line(example, tmp_path):
    a = example["a"]
    with pytest.raises(hp.ArgumentError) as err:
        hp.figure(a, "eta_star", tmp_path / "x.png")
    line = str(err.value)
    assert "\n" not in line and line.startswith("argument kind = 'eta_star' is not allowed")
    assert "'eta_star_depth'" in line
    with pytest.raises(hp.ArgumentError, match=r"needs 2 or more widths"):
        hp.figure(a, "eta_star_width", tmp_path / "x.png")
    with pytest.raises(hp.ArgumentError, match=r"argument axis = 'time' .* allowed: one of"):
        hp.drift(a, "time")
    with pytest.raises(hp.ArgumentError, match=r"^argument config = dict object is not allowed"):
        hp.sweep({"name": "x"}, tmp_path)
    assert not any(tmp_path.iterdir())  # refused before anything is written
    with pytest.raises(ConfigError, match=r"^make_config: field 'steps' = 0 is not allowed"):
        hp.make_config({"name": "x"}, steps=0)


def test_import_does_not_import_jax():
    code = (
        "import sys, hptransfer\n"
        "assert 'jax' not in sys.modules and 'hptransfer.api' not in sys.modules\n"
        "assert set(hptransfer.__all__) <= set(dir(hptransfer))\n"
        "from hptransfer import analyze\n"
        "assert 'jax' in sys.modules and analyze is hptransfer.api.analyze\n"
        "from hptransfer.stats import results\n"  # the layers import as packages
        "assert results.__name__ == 'hptransfer.stats.results'\n"
        "try:\n    hptransfer.nothing\nexcept AttributeError as e:\n    print(e)\n"
    )
    root = str(Path(__file__).resolve().parents[1])
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=False,
        env={**os.environ, "PYTHONPATH": root},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "module 'hptransfer' has no attribute 'nothing'"
