"""Memory that stays bounded: a sweep of many small cells holds the programs of the cell it
runs, not of every cell so far (engine.evict_programs).

The sweep runs in a subprocess (benchmarks/memory_profile.py) so that its resident memory is
its own. The assertions are on the program cache, which is deterministic; resident memory is
only a backstop, with a generous bound: before the eviction each cell's programs stayed, about
6 MB each, and this sweep grew by ~50 MB a cell (~1-5 MB a cell after)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import xla_flags

ROOT = Path(__file__).resolve().parents[1]

# Five shapes; every learning rate above 2^2 diverges, and compaction is forced, so each cell
# compiles several sizes of program (chunk, buckets, the adaptive round's chunk). The cheap
# version (make test): three shapes, two rates that do not diverge, no adaptive round, so three
# programs a cell.
CONFIG = """
name = "many_cells"
steps = 20
eval_every = 10
batch_size = 16
seeds = [0]
schemes = ["mup", "depth_mup"]
probe_size = 16
[data]
name = "teacher"
num_samples = 256
[model]
widths = [16]
depths = [1, 2, 3, 4, 5]
block_depths = [1]
base_width = 16
base_depth = 2
[lr]
start = -2
stop = 7
step = 1
adaptive = true
"""


CHEAP = (
    CONFIG.replace("depths = [1, 2, 3, 4, 5]", "depths = [1, 2, 3]")
    .replace("stop = 7", "stop = -1")
    .replace("adaptive = true", "adaptive = false")
)


@pytest.mark.parametrize(
    ("config", "cells_run"),
    [
        pytest.param(CHEAP, 3, id="3-cells"),
        # ~40 programs compiled: about 1.5 min on an idle core, 8 on a busy one
        pytest.param(CONFIG, 5, id="5-cells", marks=pytest.mark.slow),
    ],
)
def test_a_sweep_of_many_cells_holds_one_cells_programs(tmp_path, config, cells_run):
    (tmp_path / "many.toml").write_text(config)
    env = os.environ | {"HPTRANSFER_SAVINGS": "always", "XLA_FLAGS": xla_flags(2)}
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "memory_profile.py"), "many.toml",
         "--out", "out", "--json", "memory.json"],
        cwd=tmp_path, env=env, check=True, capture_output=True, timeout=900,
    )  # fmt: skip
    profile = json.loads((tmp_path / "memory.json").read_text())
    cells = profile["cells"]
    assert len(cells) == cells_run
    compiles = [c["compiles"] for c in cells]
    per_cell = [b - a for a, b in zip([0, *compiles], compiles, strict=False)]
    assert min(per_cell) >= 3  # init, segment, evaluation at least: every shape compiles anew
    # After each cell only its own programs are left; the earlier cells' were dropped.
    for cell, own in zip(cells, per_cell, strict=True):
        assert cell["programs"] == own, cell
    stats = profile["compile_stats"]
    assert stats["live_peak"] <= max(per_cell)  # never more than one cell's programs at once
    assert stats["evicted"] == stats["count"] - per_cell[-1]
    assert stats["count"] >= 3 * stats["live_peak"]  # the old cache would have held them all
    # Backstop, generous (resident memory is noisy: one cell of eight once added 80 MB): from
    # the first cell to the last, less than the programs of the old cache (~50 MB a cell).
    assert cells[-1]["rss_mib"] - cells[0]["rss_mib"] < 200, cells
