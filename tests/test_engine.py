"""The sweep engine: equality with the single run, compile counts, divergence isolation,
kill-and-resume, corrupt checkpoints, multiple devices, config validation."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest
from conftest import config_with, xla_flags

from hptransfer.network.data import teacher
from hptransfer.network.model import Architecture
from hptransfer.network.optim import OptimizerConfig
from hptransfer.network.train import train_run
from hptransfer.stats.results import read_meta
from hptransfer.sweeps.config import ConfigError, config_from_dict, load_config
from hptransfer.sweeps.engine import (
    COMPILE_STATS,
    Faults,
    SimulatedKill,
    clear_program_cache,
    run_sweep,
)

ROOT = Path(__file__).resolve().parents[1]


def tiny(**overrides):
    raw = {
        "name": "tiny",
        "steps": 40,
        "eval_every": 10,
        "batch_size": 32,
        "seeds": [0],
        "schemes": ["mup", "depth_mup"],
        "data": {"name": "teacher", "num_samples": 512},
        "model": {"widths": [32], "depths": [4], "block_depths": [2], "base_width": 32},
        "lr": {"start": -3, "stop": -1, "step": 1},
        "probe_size": 64,
    }
    return config_with(raw, overrides)


@pytest.fixture(scope="module")
def data():
    return teacher(num_samples=512, seed=0)


def _sorted(frame):
    return frame.sort_values(["scheme", "log2_lr", "seed", "step"]).reset_index(drop=True)


def test_replica_equals_the_single_run(tmp_path, data):
    config = tiny(seeds=[0, 1])
    frame = run_sweep(config, tmp_path, data=data, progress=False)
    arch = Architecture(32, 4, 2, data.in_shape, 10, base_width=32, base_depth=2)
    for scheme, log2_lr, seed in (("depth_mup", -1.0, 1), ("mup", -3.0, 0)):
        single = train_run(scheme, arch, OptimizerConfig(), 2.0**log2_lr, seed, data, 40, 32, 64)
        rows = frame[(frame.scheme == scheme) & (frame.log2_lr == log2_lr) & (frame.seed == seed)]
        rows = rows.sort_values("step")
        np.testing.assert_allclose(rows.train_loss, single.losses.reshape(4, 10).mean(1), rtol=1e-5)
        last = rows.iloc[-1]
        assert last.test_loss == pytest.approx(single.test_loss, rel=1e-5)
        for key, value in single.movement.items():
            assert last[key] == pytest.approx(value, rel=1e-4, abs=1e-7), key


def test_results_table_and_meta(tmp_path, data):
    clear_program_cache()
    frame = run_sweep(tiny(), tmp_path, data=data, progress=False)
    # Sizing the chunk from XLA's memory analysis reuses the programs it compiled to ask.
    assert COMPILE_STATS["count"] == 3
    on_disk = pd.read_parquet(tmp_path / "results.parquet")
    assert len(on_disk) == len(frame) == 2 * 3 * 4  # schemes x lrs x evaluations
    for column in (
        "scheme",
        "width",
        "depth",
        "block_depth",
        "optimizer",
        "lr",
        "seed",
        "step",
        "train_loss",
        "test_loss",
        "test_accuracy",
        "diverged",
        "diverged_step",
        "own_movement/hidden_1",
        "weight_change/hidden_2",
        "total_movement/input",
    ):
        assert column in on_disk.columns, column
    meta = read_meta(tmp_path)
    assert meta["config"]["name"] == "tiny" and "jax" in meta["versions"]
    assert meta["cells"][0]["compile_seconds"] > 0 and meta["wall_seconds"] > 0
    measured = meta["cells"][0]["bytes_per_replica_measured"]
    params = 4 * (32 * 32 + 4 * 2 * 32 * 32 + 32 * 10)  # float32 weights of one replica
    assert 2 * params < measured < meta["cells"][0]["bytes_per_replica_estimated"] * 4
    assert not (tmp_path / "checkpoints").exists()


def test_adding_learning_rates_and_schemes_adds_no_compilation(tmp_path, data):
    clear_program_cache()
    run_sweep(tiny(schemes=["mup"], lr={"start": -2, "stop": -1, "step": 1},
                   max_replicas_per_chunk=2), tmp_path / "a", data=data, progress=False)  # fmt: skip
    small = COMPILE_STATS["count"]
    assert small == 3  # init, segment, evaluation: one program each for the one cell
    clear_program_cache()
    big = tiny(schemes=["sp", "mup", "depth_mup", "nfd"], lr={"start": -4, "stop": 0, "step": 1},
               max_replicas_per_chunk=2)  # fmt: skip
    run_sweep(big, tmp_path / "b", data=data, progress=False)
    assert COMPILE_STATS["count"] == small  # 20 replicas, 10 chunks, still 3 programs
    # Other learning-rate values and schemes for the same shape reuse the same executables.
    other = dataclasses.replace(big, schemes=("completep", "sp"), seeds=(5,))
    run_sweep(other, tmp_path / "c", data=data, progress=False)
    assert COMPILE_STATS["count"] == small


def test_divergence_is_isolated(tmp_path, data):
    sane = tiny(schemes=["depth_mup"], lr={"start": -3, "stop": -2, "step": 1})
    alone = _sorted(run_sweep(sane, tmp_path / "alone", data=data, progress=False))
    mixed_cfg = tiny(schemes=["depth_mup"], lr={"start": -3, "stop": 9, "step": 1})
    mixed = _sorted(run_sweep(mixed_cfg, tmp_path / "mixed", data=data, progress=False))
    exploded = mixed[mixed.log2_lr == 9.0]
    assert exploded.diverged.iloc[-1] and exploded.diverged_step.iloc[-1] < 40
    assert exploded.train_loss.isna().iloc[-1]
    kept = mixed[mixed.log2_lr <= -2].reset_index(drop=True)
    assert not kept.diverged.any() and kept.diverged_step.isna().all()
    cols = ["train_loss", "test_loss", "own_movement/hidden_1"]
    np.testing.assert_allclose(kept[cols], alone[cols], rtol=1e-6)


def test_kill_and_resume_equals_an_uninterrupted_run(tmp_path, data):
    config = tiny(model={"depths": [2, 4]})
    whole = _sorted(run_sweep(config, tmp_path / "whole", data=data, progress=False))
    out = tmp_path / "killed"
    with pytest.raises(SimulatedKill):  # dies in the second cell, after its 2nd segment
        run_sweep(
            config,
            out,
            data=data,
            progress=False,
            checkpoint_seconds=0,
            faults=Faults(kill_after_segments=6),
        )
    assert len(list((out / "cells").glob("*.parquet"))) == 1
    assert any((out / "checkpoints").rglob("*"))
    assert not (out / "results.parquet").exists()
    resumed = _sorted(run_sweep(config, out, data=data, progress=False))
    pd.testing.assert_frame_equal(resumed, whole, check_exact=False, rtol=1e-6)


def test_corrupt_checkpoint_is_detected_and_recomputed(tmp_path, data):
    config = tiny()
    whole = _sorted(run_sweep(config, tmp_path / "whole", data=data, progress=False))
    out = tmp_path / "corrupt"
    with pytest.raises(SimulatedKill):
        run_sweep(
            config,
            out,
            data=data,
            progress=False,
            checkpoint_seconds=0,
            faults=Faults(kill_after_segments=2),
        )
    files = [p for p in (out / "checkpoints").rglob("*") if p.is_file() and p.stat().st_size > 0]
    assert files
    for path in files:
        path.write_bytes(b"\x00garbage")
    with pytest.warns(UserWarning, match="unusable"):
        resumed = _sorted(run_sweep(config, out, data=data, progress=False))
    pd.testing.assert_frame_equal(resumed, whole, check_exact=False, rtol=1e-6)


def test_hard_kill_of_the_cli_then_resume(tmp_path, uninterrupted):
    """A real death (os._exit mid-sweep, no cleanup) of `hptransfer sweep`, then a resume."""
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(
        'name = "hard"\nsteps = 40\neval_every = 10\nbatch_size = 32\nseeds = [0]\n'
        'schemes = ["depth_mup"]\nprobe_size = 64\n[data]\nname = "teacher"\nnum_samples = 512\n'
        "[model]\nwidths = [32]\ndepths = [2, 4]\nbase_width = 32\n[lr]\nstart = -2\nstop = -1\nstep = 1\n"
    )
    env = {**os.environ, "HPTRANSFER_HARD_KILL": "1", "HPTRANSFER_KILL_AFTER_SEGMENTS": "6"}
    cmd = [
        sys.executable,
        "-m",
        "hptransfer.cli",
        "sweep",
        str(cfg),
        "--out",
        str(tmp_path / "o"),
        "--quiet",
    ]
    died = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert died.returncode == 137, died.stderr[-2000:]
    assert not (tmp_path / "o" / "results.parquet").exists()
    env.pop("HPTRANSFER_HARD_KILL")
    env.pop("HPTRANSFER_KILL_AFTER_SEGMENTS")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    a = _sorted(pd.read_parquet(tmp_path / "o" / "results.parquet"))
    b = _sorted(uninterrupted(cfg.read_text()))  # in this process, same devices (conftest)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-6)


def test_four_devices_give_the_same_results_as_one(tmp_path):
    script = (
        "import sys; from hptransfer.sweeps.config import config_from_dict; "
        "from hptransfer.sweeps.engine import run_sweep; import jax; "
        "cfg = config_from_dict({'steps': 20, 'eval_every': 10, 'batch_size': 32, 'seeds': [0, 1],"
        " 'schemes': ['mup', 'nfd'], 'probe_size': 64, 'data': {'name': 'teacher', 'num_samples': 512},"
        " 'model': {'widths': [32], 'depths': [4], 'block_depths': [2], 'base_width': 32},"
        " 'lr': {'start': -3, 'stop': -1, 'step': 1}}); "
        "assert len(jax.devices()) == int(sys.argv[2]); "
        "run_sweep(cfg, sys.argv[1], progress=False)"
    )
    frames = []
    for devices in (1, 4):
        env = {**os.environ, "XLA_FLAGS": xla_flags(devices)}
        out = tmp_path / f"d{devices}"
        proc = subprocess.run([sys.executable, "-c", script, str(out), str(devices)], env=env,
                              capture_output=True, text=True, timeout=600)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert read_meta(out)["devices"] == devices
        frames.append(_sorted(pd.read_parquet(out / "results.parquet")))
    pd.testing.assert_frame_equal(frames[0], frames[1], check_exact=False, rtol=1e-5)


def _toml(value) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


# The config errors the CLI table (test_cli_errors.CASES) has no row for: those rows assert the
# same words (file, field, value, allowed) on the command's one error line.
@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({"model": {"depths": [2, -4]}}, ["model.depths[1]", "-4", "integer >= 1"]),
        ({"lr": {"adaptive": "yes"}}, ["lr.adaptive", "true or false"]),
        ({"lr": {"max_extra_octaves": -1}}, ["lr.max_extra_octaves", ">= 0"]),
        ({"lr": {"refine": True}}, ["lr.refine", "unless lr.adaptive = true"]),
        ({"lr_adaptive": True}, ["unknown field 'lr_adaptive'"]),
        ({"precision": "fp16"}, ["precision", "fp16", "bf16_state"]),
    ],
)
def test_bad_configs_name_file_field_value_and_allowed(tmp_path, raw, words):
    path = tmp_path / "bad.toml"
    path.write_text("".join(f"{key} = {_toml(value)}\n" for key, value in raw.items()))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert "bad.toml" in message
    for word in words:
        assert word in message, (word, message)


def test_benchmark_configs_are_valid():
    from hptransfer.network.schemes import BUILTIN_SCHEMES
    from hptransfer.tools.check import load_expectations, suite_names
    from hptransfer.tools.mutants import load_mutants

    for path in sorted((ROOT / "benchmarks").glob("*.toml")):
        if path.name == "expectations.toml":
            assert all(load_expectations(s, path) for s in suite_names(path))
            continue
        if path.name == "mutants.toml":  # the gate's mutants, not a sweep
            assert load_mutants(path, sorted(BUILTIN_SCHEMES))
            continue
        config = load_config(path)
        assert config.steps % config.eval_every == 0, path
    assert jax.devices()  # sanity: the suite runs on whatever devices exist


def test_precision_f32_is_the_default_and_bf16_state_moves_only_the_last_bits(tmp_path, data):
    assert config_from_dict({"name": "defaults"}).precision == "f32"
    momentum = {"optimizer": {"name": "sgd", "momentum": 0.9}, "schemes": ["depth_mup"],
                "lr": {"start": -4, "stop": -3, "step": 1}, "steps": 20}  # fmt: skip
    runs = {
        p: _sorted(
            run_sweep(tiny(**momentum, precision=p), tmp_path / p, data=data, progress=False)
        )
        for p in ("f32", "tf32", "bf16_state")
    }
    assert read_meta(tmp_path / "bf16_state")["config"]["precision"] == "bf16_state"
    # A CPU has no TensorFloat-32 matmuls: the tf32 programs compute exactly what f32 ones do.
    pd.testing.assert_frame_equal(runs["tf32"].drop(columns="cell"),
                                  runs["f32"].drop(columns="cell"), check_exact=True)  # fmt: skip
    f32, bf16 = runs["f32"].train_loss.to_numpy(), runs["bf16_state"].train_loss.to_numpy()
    assert not np.array_equal(f32, bf16)  # the momentum trace is rounded to bfloat16
    np.testing.assert_allclose(bf16, f32, rtol=2e-2)
