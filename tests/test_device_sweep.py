"""benchmarks/device_sweep.py: a sweep split over several machines by a time budget resumes from
the finished cells the previous call packed, and ends with the same results as one run."""

import importlib.util
import os
import tarfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("device_sweep", ROOT / "benchmarks/device_sweep.py")
device_sweep = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(device_sweep)

CONFIG = """name = "split"
steps = 20
eval_every = 10
batch_size = 16
seeds = [0]
schemes = ["mup", "depth_mup"]
probe_size = 32
[data]
name = "teacher"
num_samples = 256
[model]
widths = [16]
depths = [4, 8]
block_depths = [2]
base_width = 16
[lr]
start = -3
stop = -2
step = 1
"""


def _sorted(table: Path | pd.DataFrame) -> pd.DataFrame:
    frame = pd.read_parquet(table) if isinstance(table, Path) else table
    keys = ["depth", "scheme", "log2_lr", "seed", "step"]
    return frame.sort_values(keys).reset_index(drop=True)


def test_a_sweep_split_over_two_machines_equals_one_run(tmp_path, monkeypatch, uninterrupted):
    config = tmp_path / "split.toml"
    config.write_text(CONFIG)
    state = tmp_path / "state.tar.gz"
    # First "machine": the sweep dies in the second cell (fault injection after 3 of 4 segments).
    monkeypatch.setenv("HPTRANSFER_KILL_AFTER_SEGMENTS", "3")
    first = device_sweep.main([str(config), "--out", str(tmp_path / "m1"), "--state", str(state),
                               "--budget-seconds", "600"])  # fmt: skip
    assert first not in (0, device_sweep.INCOMPLETE)  # the sweep failed, its first cell was kept
    with tarfile.open(state) as tar:
        assert [
            n for n in tar.getnames() if n.startswith("cells/")
        ] and "meta.json" not in tar.getnames()
    # Second "machine": a fresh directory, only the state carried over.
    monkeypatch.delenv("HPTRANSFER_KILL_AFTER_SEGMENTS")
    second = device_sweep.main([str(config), "--out", str(tmp_path / "m2"), "--state", str(state),
                                "--budget-seconds", "600"])  # fmt: skip
    assert second == 0
    meta = pd.read_json(tmp_path / "m2" / "meta.json", typ="series")
    assert meta["replica_steps"] == 4 * 20  # only the lost cell was trained again
    with tarfile.open(state) as tar:
        assert {"results.parquet", "meta.json", "report.md"} <= set(tar.getnames())
    whole = uninterrupted(CONFIG)  # one run, in this process (conftest)
    pd.testing.assert_frame_equal(
        _sorted(tmp_path / "m2" / "results.parquet").drop(columns="cell"),
        _sorted(whole).drop(columns="cell"),
        check_exact=True,
    )


def test_the_budget_stops_the_sweep_cleanly(tmp_path):
    config = tmp_path / "split.toml"
    config.write_text(CONFIG)
    env_before = dict(os.environ)
    status = device_sweep.sweep_within(config, tmp_path / "out", budget=1.5)
    assert status == 130  # SIGINT before the first cell finished: the CLI's clean stop
    assert dict(os.environ) == env_before
