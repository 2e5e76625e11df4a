"""Sweep axes beyond the learning rate: config validation, the points of a sweep, one program
per shape for every traced value, exact reproduction at the defaults, shape axes and paths."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
import pytest
from conftest import config_with

from hptransfer.network.data import teacher
from hptransfer.network.model import Architecture
from hptransfer.network.optim import OptimizerConfig, make_optimizer
from hptransfer.network.scaling import multipliers
from hptransfer.network.schemes import get_scheme
from hptransfer.sweeps import axes as axes_mod
from hptransfer.sweeps.config import ConfigError, SweepConfig
from hptransfer.sweeps.engine import COMPILE_STATS, clear_program_cache, replicas, run_sweep

RAW = {
    "name": "tiny-axes",
    "steps": 30,
    "eval_every": 10,
    "batch_size": 32,
    "seeds": [0],
    "schemes": ["mup", "depth_mup"],
    "data": {"name": "teacher", "num_samples": 512},
    "model": {"widths": [32], "depths": [4], "block_depths": [2], "base_width": 32},
    "lr": {"start": -3, "stop": -1, "step": 1},
    "probe_size": 64,
}


def tiny(**overrides) -> SweepConfig:
    return config_with(RAW, overrides)


@pytest.fixture(scope="module")
def data():
    return teacher(num_samples=512, seed=0)


# --------------------------------------------------------------------------------------------
# Config


# An unknown axis, a reversed axis grid, an axis of another optimizer, a group without lr and
# no lr.default, and a one-point path: test_cli_errors.CASES (the same words on the one line).
@pytest.mark.parametrize(
    "overrides, words",
    [
        ({"axes": {"init_scale": {"values": []}}}, ["axes.init_scale.values"]),
        ({"axes": {"init_scale": {"values": [0.0, 0.0]}}}, ["axes.init_scale.values", "repeats"]),
        ({"axes": {"init_scale": {"values": [0.0], "start": 0}}}, ["axes.init_scale", "not both"]),
        ({"axes": {"momentum": {"values": [0.5, 1.0]}}}, ["axes.momentum", "< 1.0"]),
        ({"axes": {"steps": {"values": [25]}}}, ["axes.steps.values", "eval_every"]),
        ({"axes": {"batch_size": {"values": [0]}}}, ["axes.batch_size.values"]),
        ({"axes": {"batch_size": {"values": [16], "default": 8}}}, ["axes.batch_size.default"]),
        (
            {"axes": {"init_scale": {"values": [0.0]}, "groups": [["lr", "nope"]]}},
            ["axes.groups[0]", "init_scale"],
        ),
        (
            {"axes": {"init_scale": {"values": [0.0]}, "groups": [["lr", "init_scale", "lr"]]}},
            ["axes.groups[0]"],
        ),
        (
            {
                "axes": {
                    "init_scale": {"values": [0.0]},
                    "output_multiplier": {"values": [0.0]},
                    "groups": [["lr", "init_scale"]],
                }
            },
            ["axes.groups", "output_multiplier"],
        ),
        (
            {"lr": {"adaptive": True}, "axes": {"init_scale": {"values": [0.0]}}},
            ["lr.adaptive"],
        ),
        ({"model": {"path": [[32, 2], [64, "4"]]}}, ["model.path"]),
        ({"model": {"path": [[32, 2], [32, 2]]}}, ["model.path", "repeats"]),
        ({"model": {"path": [[32, 2], [64, 4]]}}, ["model.widths"]),  # RAW has widths
    ],
)
def test_bad_axes_are_refused_naming_the_field(overrides, words):
    with pytest.raises(ConfigError) as err:
        tiny(**overrides)
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message, (word, message)


def test_points_are_the_union_of_crossed_groups():
    config = tiny(
        lr={"default": -2.0},
        axes={
            "init_scale": {"start": -1, "stop": 1, "step": 1},
            "output_multiplier": {"values": [-1.0, 1.0, 0.0]},
            "groups": [["lr", "init_scale"], ["output_multiplier"]],
        },
    )
    pts = config.points("mup")
    # 3 lr x 3 init scales, plus the output multiplier's 3 values at lr default (-2, its
    # default point (-2, init 0, out 0) is already in the first group).
    assert len(pts) == 9 + 2
    assert len(set(pts)) == len(pts)
    assert (-2.0, (("init_scale", 0.0), ("output_multiplier", 1.0))) in pts
    assert all(dict(p)["output_multiplier"] == 0.0 for lr, p in pts if dict(p)["init_scale"])
    assert config.replicas_per_cell() == 2 * 11
    assert len(replicas(config)) == config.replicas_per_cell()
    meta = config.to_dict()
    assert meta["axes"]["output_multiplier"]["values"] == [-1.0, 0.0, 1.0]
    assert meta["axis_groups"] == [["lr", "init_scale"], ["output_multiplier"]]
    # Default groups: every traced axis crossed with lr.
    both = tiny(axes={"init_scale": {"values": [0.0, 1.0]}, "momentum": {"values": [0.0, 0.5]}})
    assert both.groups() == (("lr", "init_scale"), ("lr", "momentum"))


def test_a_config_without_axes_keeps_its_identity():
    meta = tiny().to_dict()
    for key in ("axes", "axis_groups", "lr_default", "lr_default_by_scheme"):
        assert key not in meta
    assert "path" not in meta["model"]
    assert tiny().points("mup") == [(-3.0, ()), (-2.0, ()), (-1.0, ())]


def test_max_replicas_counts_every_point():
    with pytest.raises(ConfigError, match="max_replicas"):
        tiny(max_replicas=10, axes={"init_scale": {"start": -2, "stop": 2, "step": 1}})


# --------------------------------------------------------------------------------------------
# What a point changes


def test_apply_point_scales_the_right_multipliers():
    arch = Architecture(32, 4, 2, (32,), 10, base_width=32, base_depth=2)
    base = multipliers(get_scheme("depth_mup"), arch)
    point = {"init_scale": 1.0, "init_scale_hidden": -1.0, "init_scale_readout": 2.0,
             "output_multiplier": -1.0, "branch_constant": 1.0, "momentum": 0.9}  # fmt: skip
    got = axes_mod.apply_point(base, point)
    np.testing.assert_allclose(
        got.init_std["input"]["kernel"], 2 * base.init_std["input"]["kernel"]
    )
    np.testing.assert_allclose(
        got.init_std["blocks"]["hidden_2"]["kernel"], base.init_std["blocks"]["hidden_2"]["kernel"]
    )
    np.testing.assert_allclose(
        got.init_std["readout"]["kernel"], 8 * base.init_std["readout"]["kernel"]
    )
    np.testing.assert_allclose(
        got.forward["readout"]["kernel"], base.forward["readout"]["kernel"] / 2
    )
    np.testing.assert_array_equal(got.forward["input"]["kernel"], base.forward["input"]["kernel"])
    np.testing.assert_allclose(got.branch, 2 * base.branch)
    np.testing.assert_array_equal(got.lr["input"]["kernel"], base.lr["input"]["kernel"])
    assert float(got.optimizer["momentum"]) == pytest.approx(0.9)
    # At the defaults nothing changes, bit for bit.
    same = axes_mod.apply_point(base, {k: 0.0 for k in point if k != "momentum"})
    for a, b in zip(jax.tree.leaves(same), jax.tree.leaves(base), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "config, traced",
    [
        (OptimizerConfig("sgd", momentum=0.9), {"momentum": 0.9}),
        (OptimizerConfig("sgd", momentum=0.9, nesterov=True), {"momentum": 0.9}),
        (OptimizerConfig("adam", b2=0.95), {"b2": 0.95}),
        (OptimizerConfig("adamw", weight_decay=0.01), {"weight_decay": 0.01, "b2": 0.999}),
    ],
)
def test_traced_optimizer_settings_equal_the_static_ones(config, traced):
    """A traced momentum / b2 / weight decay runs the same arithmetic as the constant (the
    learning rate and scales are traced, as in the engine: constants would be folded)."""
    params = {"w": jnp.linspace(-1.0, 1.0, 12).reshape(3, 4)}
    scale = {"w": jnp.float32(0.5)}
    values = {k: jnp.float32(v) for k, v in traced.items()}

    @jax.jit
    def run(values, lr, scale):
        opt = make_optimizer(config, lr, scale, scale, values)
        state, p = opt.init(params), params
        for t in range(4):
            g = jax.tree.map(lambda w, t=t: jnp.sin(w * (t + 1)), p)
            updates, state = opt.update(g, state, p)
            p = optax.apply_updates(p, updates)
        return p

    lr = jnp.float32(0.1)
    static = run({}, lr, scale)["w"]
    # Same arithmetic; XLA may round a folded constant differently from a runtime value, which
    # is why the engine always traces these settings (traced_settings): then sweeps with and
    # without the axis agree bit for bit (test_defaults_reproduce_the_plain_sweep_exactly).
    np.testing.assert_allclose(run(values, lr, scale)["w"], static, rtol=1e-4)
    other = {k: v * 0.9 for k, v in values.items()}
    assert not np.allclose(run(other, lr, scale)["w"], static, rtol=1e-6)


# --------------------------------------------------------------------------------------------
# The engine


ALL_TRACED = {
    "init_scale": {"values": [-0.5, 0.0]},
    "init_scale_hidden": {"values": [0.0, 0.5]},
    "output_multiplier": {"values": [0.0, 1.0]},
    "branch_constant": {"values": [-1.0, 0.0]},
    "momentum": {"values": [0.0, 0.9]},
}


def test_one_program_serves_every_traced_value(tmp_path, data, monkeypatch):
    monkeypatch.setenv("HPTRANSFER_SAVINGS", "0")  # no compaction: program sizes stay fixed
    clear_program_cache()
    config = tiny(optimizer={"momentum": 0.9}, axes=ALL_TRACED)
    frame = run_sweep(config, tmp_path / "a", data=data, progress=False)
    # init, segment, evaluation: one each, whatever the axes' values.
    assert COMPILE_STATS["count"] == 3
    for name in ALL_TRACED:
        assert set(frame[name]) == set(ALL_TRACED[name]["values"])
    assert len(frame) == config.replicas_per_cell() * 3  # 3 evaluations


def test_defaults_reproduce_the_plain_sweep_exactly(tmp_path, data, monkeypatch):
    """Rows at every axis's default equal the sweep without axes, bit for bit (one replica per
    program in both runs, so that no vmapped reduction is rounded differently)."""
    monkeypatch.setenv("HPTRANSFER_SAVINGS", "0")
    base = dict(optimizer={"momentum": 0.9}, max_replicas_per_chunk=1)
    plain = run_sweep(tiny(**base), tmp_path / "plain", data=data, progress=False)
    swept = run_sweep(tiny(**base, axes=ALL_TRACED), tmp_path / "axes", data=data, progress=False)
    at_default = swept
    for name, axis in ALL_TRACED.items():
        default = 0.9 if name == "momentum" else 0.0
        assert default in axis["values"]
        at_default = at_default[at_default[name] == default]
    keys = ["scheme", "log2_lr", "seed", "step"]
    a = plain.sort_values(keys).reset_index(drop=True)
    b = at_default.sort_values(keys).reset_index(drop=True)
    assert len(a) == len(b) > 0
    numeric = [c for c in a.columns if c not in ("cell",) and a[c].dtype.kind in "fb"]
    for column in numeric:
        np.testing.assert_array_equal(a[column].to_numpy(), b[column].to_numpy(), err_msg=column)


def test_shape_axes_are_cells_of_their_own(tmp_path, data, monkeypatch):
    monkeypatch.setenv("HPTRANSFER_SAVINGS", "0")
    clear_program_cache()
    config = tiny(
        schemes=["depth_mup"],
        axes={"batch_size": {"values": [16, 32]}, "steps": {"values": [20]}},
    )
    frame = run_sweep(config, tmp_path, data=data, progress=False)
    # (batch 32, 30 steps), (16, 30), (32, 20): three sets of cells.
    got = frame.groupby(["batch_size", "steps"]).step.max().to_dict()
    assert got == {(16.0, 30.0): 30, (32.0, 20.0): 20, (32.0, 30.0): 30}
    # A new batch size compiles a new segment program; a new length reuses all of them.
    assert COMPILE_STATS["count"] == 4
    # Under the constant rate the 20-step cells are the 30-step cells' first 20 steps, read off
    # them without training (meta.json says so) ...
    short = frame[(frame.steps == 20) & (frame.batch_size == 32)].set_index(["log2_lr", "step"])
    long = frame[(frame.steps == 30) & (frame.batch_size == 32)].set_index(["log2_lr", "step"])
    pd.testing.assert_series_equal(short.train_loss, long.train_loss.loc[short.index])
    meta = json.loads((tmp_path / "meta.json").read_text())
    (shared,) = [c for c in meta["cells"] if c.get("replica_steps_saved_prefix")]
    assert shared["steps"] == 20 and shared["replica_steps_computed"] == 0
    assert meta["replica_steps_saved_prefix"] == shared["replica_steps_saved_prefix"] > 0
    # ... which is what training 20 steps gives: same batches, same rate at every step
    alone = run_sweep(tiny(schemes=["depth_mup"], steps=20), tmp_path / "alone", data=data,
                      progress=False).set_index(["log2_lr", "step"])  # fmt: skip
    pd.testing.assert_series_equal(
        alone.train_loss, long.train_loss.loc[alone.index], check_exact=False, rtol=1e-5
    )


def test_a_path_runs_its_shapes_only(tmp_path, data):
    raw = {**RAW, "model": {"block_depths": [2], "path": [[16, 2], [32, 4]]}}
    config = config_with(raw, {"schemes": ["depth_mup"], "lr": {"start": -2, "stop": -2}})
    assert (config.model.base_width, config.model.base_depth) == (16, 2)
    frame = run_sweep(config, tmp_path, data=data, progress=False)
    assert sorted(set(zip(frame.width, frame.depth, strict=True))) == [(16, 2), (32, 4)]
