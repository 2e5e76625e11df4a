"""Deduplication and compaction: the same replicas with the same inputs, so the same results.

Which replicas diverge and when is identical with and without the savings. Values agree to
float32 rounding, not bit for bit: XLA:CPU rounds some vmapped reductions differently for
different numbers of replicas per program (the unsaved engine's results also move in the last
bits with ``max_replicas_per_chunk``), and near-divergent replicas amplify that; at batch 128
and width 64 only the input layer's own movement differs (~1e-7). A killed and
resumed compacted run runs the same programs, so it reproduces the uninterrupted one exactly."""

import numpy as np
import pandas as pd
import pytest

from hptransfer.network.model import Architecture
from hptransfer.network.scaling import multipliers
from hptransfer.network.schemes import load_schemes
from hptransfer.stats.results import read_meta
from hptransfer.sweeps.config import ConfigError, config_from_dict
from hptransfer.sweeps.engine import (
    Faults,
    SimulatedKill,
    adaptive_lrs,
    bucket_size,
    deduplicate,
    replicas,
    run_sweep,
    worth_compacting,
)

# Width = base width (sp and mup are one network) and one-layer blocks (nfd is depth_mup):
# 80 requested replicas, 40 distinct; learning rates up to 2^7 diverge in the first segment.
RAW = {
    "steps": 30,
    "eval_every": 10,
    "batch_size": 16,
    "seeds": [0, 1],
    "schemes": ["sp", "mup", "depth_mup", "nfd"],
    "data": {"name": "teacher", "num_samples": 512},
    "model": {"widths": [16], "depths": [4], "block_depths": [1], "base_width": 16},
    "lr": {"start": -2, "stop": 7, "step": 1},
    "probe_size": 32,
}


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["scheme", "log2_lr", "seed", "step"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, teacher_data):
    """The same sweep without savings, with them, and with them killed after 2 segments."""
    out = tmp_path_factory.mktemp("savings")
    config = config_from_dict(RAW)
    frames = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HPTRANSFER_SAVINGS", "0")
        frames["off"] = run_sweep(config, out / "off", data=teacher_data, progress=False)
        mp.setenv("HPTRANSFER_SAVINGS", "always")  # compact even where compiling costs more
        frames["on"] = run_sweep(config, out / "on", data=teacher_data, progress=False)
        with pytest.raises(SimulatedKill):
            run_sweep(config, out / "killed", data=teacher_data, progress=False,
                      checkpoint_seconds=0, faults=Faults(kill_after_segments=2))  # fmt: skip
        frames["resumed"] = run_sweep(config, out / "killed", data=teacher_data, progress=False)
    return out, {k: _sorted(v) for k, v in frames.items()}


def test_savings_reproduce_the_unsaved_table(runs):
    out, frames = runs
    on, off = frames["on"], frames["off"]
    exact = ["scheme", "log2_lr", "seed", "step", "diverged", "diverged_step"]
    pd.testing.assert_frame_equal(on[exact], off[exact], check_exact=True)
    pd.testing.assert_frame_equal(on, off, check_exact=False, rtol=1e-3, atol=0)
    died = frames["off"].groupby(["scheme", "log2_lr", "seed"]).diverged_step.last()
    assert died.notna().sum() > 40 and died.isna().any()  # enough die for a smaller bucket
    off, on = read_meta(out / "off"), read_meta(out / "on")
    requested = 80 * 30
    assert off["replica_steps_requested"] == on["replica_steps_requested"] == requested
    assert off["replica_steps_computed"] == requested
    assert off["replica_steps_saved_dedup"] == off["replica_steps_saved_compaction"] == 0
    assert on["cells"][0]["replicas_trained"] == 40
    assert on["replica_steps_saved_dedup"] == 40 * 30
    saved = on["replica_steps_saved_compaction"]
    assert saved > 0 and on["replica_steps_computed"] == 40 * 30 - saved
    assert on["cells"][0]["compactions"] >= 1
    # The roofline facts: measured roofs, achieved rates of the cell's computed replica-steps.
    assert on["device_peaks"]["flops_per_second"] > 0 < on["device_peaks"]["bytes_per_second"]
    cell = on["cells"][0]
    assert 0 < cell["flops_fraction"] and 0 < cell["bytes_fraction"]
    assert cell["flops_per_second"] / cell["flops_per_replica_step"] == pytest.approx(
        cell["replica_steps_computed"] / (cell["run_seconds"] - cell["compile_seconds"])
    )


def test_a_killed_compacted_chunk_resumes_exactly(runs):
    _, frames = runs
    pd.testing.assert_frame_equal(frames["resumed"], frames["on"], check_exact=True)


def test_identity_is_decided_by_the_multipliers():
    registry = load_schemes()

    def distinct(width, block_depth, schemes):
        config = config_from_dict({**RAW, "schemes": schemes, "seeds": [0]})
        arch = Architecture(width, 4, block_depth, (32,), 10, base_width=16)
        mults = {(s, ()): multipliers(registry[s], arch, "sgd") for s in schemes}
        return len(deduplicate(replicas(config), mults)[0])

    assert distinct(16, 1, ["sp", "mup"]) == 10  # base width: one network
    assert distinct(32, 1, ["sp", "mup"]) == 20  # twice the base width: two
    assert distinct(32, 1, ["depth_mup", "nfd"]) == 10  # one-layer blocks: one
    assert distinct(32, 2, ["depth_mup", "nfd"]) == 20


@pytest.mark.parametrize(
    ("live", "devices", "current", "want"),
    [
        (0, 2, 40, 0),
        (9, 2, 40, 16),
        (17, 2, 40, 32),
        (30, 2, 40, 32),
        (35, 2, 40, 40),
        (3, 1, 64, 8),
        (3, 4, 8, 8),
    ],
)
def test_buckets_are_powers_of_two_of_at_least_eight_lanes(live, devices, current, want):
    assert bucket_size(live, devices, current) == want
    assert want == 0 or want >= min(live, current)
    assert np.log2(max(want, 1)).is_integer() or want == current


@pytest.mark.parametrize(
    ("live", "devices", "current", "want"),
    [(0, 2, 40, 0), (9, 2, 40, 16), (17, 2, 40, 32), (30, 2, 40, 32), (33, 2, 64, 48),
     (35, 2, 40, 40), (3, 1, 64, 8), (100, 2, 128, 112)],
)  # fmt: skip
def test_fine_buckets_under_elimination_are_multiples_of_eight_lanes(live, devices, current, want):
    assert bucket_size(live, devices, current, fine=True) == want
    assert want == 0 or (
        want >= min(live, current) and (want % (8 * devices) == 0 or want == current)
    )


def test_an_adaptive_grid_walks_to_an_optimum_outside_the_initial_grid(tmp_path, teacher_data):
    raw = {**RAW, "seeds": [0], "schemes": ["depth_mup"], "steps": 20}
    grid = {"start": -8, "stop": -7, "step": 1}
    adaptive = config_from_dict({**raw, "lr": {**grid, "adaptive": True, "max_extra_octaves": 4}})
    frame = run_sweep(adaptive, tmp_path / "adaptive", data=teacher_data, progress=False)
    cell = read_meta(tmp_path / "adaptive")["cells"][0]
    # The loss still falls at the top of the grid: one octave more per round, up to 4 more.
    assert cell["lr_added"] == {"depth_mup": [-6.0, -5.0, -4.0, -3.0]}
    assert cell["lr_rounds"] == 5
    assert sorted(frame.log2_lr.unique()) == [-8.0, -7.0, -6.0, -5.0, -4.0, -3.0]
    # The walked-to replicas are the ones a plain sweep over the wider grid trains (in programs
    # of 2 replicas, as each round's: the same programs, so the same numbers).
    wide = {**raw, "lr": {"start": -8, "stop": -3, "step": 1}, "max_replicas_per_chunk": 2}
    plain = run_sweep(config_from_dict(wide), tmp_path / "plain", data=teacher_data, progress=False)
    pd.testing.assert_frame_equal(
        _sorted(frame).drop(columns="cell"), _sorted(plain).drop(columns="cell"), check_exact=True
    )


def test_compaction_pays_only_when_the_saved_time_beats_the_compile():
    # Half the program for 4 more segments of 1 s saves 2 s.
    assert worth_compacting(32, 16, 1.0, 4, compile_seconds=1.5)
    assert not worth_compacting(32, 16, 1.0, 4, compile_seconds=2.5)
    assert not worth_compacting(32, 16, 1.0, 0, compile_seconds=0.1)  # nothing left to save
    assert worth_compacting(32, 0, 1.0, 0, compile_seconds=9.0)  # nothing alive: stop


def _final(losses: dict[float, float]) -> pd.DataFrame:
    """A cell's last evaluation: one replica per log2 lr; inf marks a diverged one."""
    rows = [
        {"scheme": "mup", "log2_lr": lr, "seed": 0, "step": 30,
         "train_loss": np.nan if np.isinf(v) else v, "diverged": bool(np.isinf(v))}
        for lr, v in losses.items()
    ]  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("losses", "refine", "want"),
    [
        ({-3: 2.0, -2: 1.0}, False, {"mup": [-1.0]}),  # best at the top edge
        ({-3: 1.0, -2: 1.5, -1: 2.0}, False, {"mup": [-4.0]}),  # at the bottom edge
        ({-3: np.inf, -2: np.inf, -1: np.inf}, False, {"mup": [-4.0]}),  # all diverged
        ({-3: 2.0, -2: 1.0, -1: np.inf}, False, {"mup": [-1.5]}),  # next to divergence
        ({-3: 2.0, -2: 1.0, -1.5: np.inf}, False, {"mup": [-1.75]}),
        ({-3: 2.0, -2: 1.0, -1.75: np.inf}, False, {}),  # gap a quarter step: settled
        ({-3: 2.0, -2: 1.0, -1: 1.5}, False, {}),  # interior optimum: settled
        ({-3: 2.0, -2: 1.0, -1: 1.5}, True, {"mup": [-2.5, -1.5]}),  # refined once
        ({-3: 2.0, -2.5: 1.2, -2: 1.0, -1.5: 1.1, -1: 1.5}, True, {}),
        ({-4: 2.0, -3: 1.5, -2: 1.4, -1: 1.0}, False, {}),  # top edge at the octave bound
    ],
)
def test_adaptive_rounds_extend_edges_and_refine(losses, refine, want):
    lr = {"start": -3, "stop": -2, "step": 1, "adaptive": True, "max_extra_octaves": 1}
    config = config_from_dict({**RAW, "schemes": ["mup"], "lr": {**lr, "refine": refine}})
    assert adaptive_lrs(_final(losses), config) == want


def test_an_unknown_savings_switch_is_a_config_error(monkeypatch, tmp_path, teacher_data):
    monkeypatch.setenv("HPTRANSFER_SAVINGS", "maybe")
    with pytest.raises(ConfigError, match="HPTRANSFER_SAVINGS.*allowed: 0, 1, always"):
        run_sweep(config_from_dict(RAW), tmp_path, data=teacher_data, progress=False)
    assert not (tmp_path / "results.parquet").exists()
