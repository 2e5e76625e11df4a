"""Learning-rate schedules as data and AdamW with per-role weight decay and epsilon (issue 19,
items 1 and 3): schedule values at known steps, agreement with optax, one program for every
traced fraction, per-role ratios kept at every step, the constant schedule bit for bit, and
the schemes' AdamW factors."""

import dataclasses
import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import config_with

from hptransfer.network.data import teacher
from hptransfer.network.model import Architecture
from hptransfer.network.optim import OptimizerConfig, make_optimizer, traced_settings
from hptransfer.network.scaling import multipliers
from hptransfer.network.schedules import (
    ScheduleConfig,
    ScheduleError,
    check_schedule,
    multiplier,
    scheduled_lr,
    traced_schedule,
)
from hptransfer.network.schemes import get_scheme
from hptransfer.network.train import init_state, loss_fn, sample_batch, train_run, train_step
from hptransfer.stats.analysis import analyze
from hptransfer.sweeps.config import ConfigError, config_from_dict
from hptransfer.sweeps.engine import COMPILE_STATS, clear_program_cache, run_sweep


def _mult(kind, steps, **fractions):
    settings = traced_schedule(ScheduleConfig(kind, **fractions), steps)
    return lambda t: float(multiplier(kind, jnp.int32(t), settings))


# --------------------------------------------------------------------------------------------
# The schedule's values


def test_values_at_known_steps_equal_hand_computed_numbers():
    warm = _mult("warmup", 100, warmup_fraction=0.1)  # W = 10
    assert [warm(t) for t in (0, 5, 10, 50, 99)] == [0.0, 0.5, 1.0, 1.0, 1.0]
    cos = _mult("cosine", 100, warmup_fraction=0.1, final_fraction=0.1)  # W = 10, T - W = 90
    assert cos(0) == 0.0 and cos(5) == 0.5 and cos(10) == 1.0
    assert cos(55) == pytest.approx(0.1 + 0.9 * 0.5, abs=1e-6)  # half-way through the decay
    assert cos(100) == pytest.approx(0.1, abs=1e-6)
    lin = _mult("linear", 100, final_fraction=0.0)  # no warm-up: 1 at step 0
    assert [lin(t) for t in (0, 25, 50)] == pytest.approx([1.0, 0.75, 0.5], abs=1e-6)
    wsd = _mult("wsd", 100, warmup_fraction=0.1, decay_fraction=0.2, final_fraction=0.0)
    got = [wsd(t) for t in (0, 5, 10, 50, 80, 90, 100)]
    assert got == pytest.approx([0.0, 0.5, 1.0, 1.0, 1.0, 0.5, 0.0], abs=1e-6)
    assert _mult("constant", 100)(37) == 1.0


@pytest.mark.parametrize("warmup", [0, 8, 25])
@pytest.mark.parametrize("final", [0.0, 0.2])
def test_cosine_and_linear_equal_optax_schedules(warmup, final):
    """For integer warm-up steps W: optax's warmup_cosine_decay_schedule, and a join of optax
    linear schedules for linear and wsd (optax needs concrete boundaries, ours are traced)."""
    total = 100
    t = np.arange(total + 1)
    frac = {"warmup_fraction": warmup / total, "final_fraction": final}
    ours = _mult("cosine", total, **frac)
    ref = optax.warmup_cosine_decay_schedule(0.0, 1.0, warmup, total, final)
    np.testing.assert_allclose([ours(s) for s in t], ref(t), atol=1e-6)
    ours = _mult("linear", total, **frac)
    ref = optax.join_schedules(
        [
            optax.linear_schedule(0.0, 1.0, max(warmup, 1)),
            optax.linear_schedule(1.0, final, total - warmup),
        ],
        [warmup],
    )
    np.testing.assert_allclose([ours(s) for s in t], ref(t), atol=1e-6)
    decay = 30
    ours = _mult("wsd", total, **frac, decay_fraction=decay / total)
    ref = optax.join_schedules(
        [
            optax.linear_schedule(0.0, 1.0, max(warmup, 1)),
            optax.constant_schedule(1.0),
            optax.linear_schedule(1.0, final, decay),
        ],
        [warmup, total - decay],
    )
    np.testing.assert_allclose([ours(s) for s in t], ref(t), atol=1e-6)


def test_fractions_are_traced_one_compiled_function_for_every_value():
    settings = traced_schedule(ScheduleConfig("wsd", 0.1, 0.2, 0.1), 100)
    f = jax.jit(lambda t, s: multiplier("wsd", t, s))
    compiled = f.lower(jnp.int32(0), settings).compile()
    other = {**settings, "warmup_fraction": jnp.float32(0.3), "final_fraction": jnp.float32(0.5)}
    assert float(compiled(jnp.int32(15), settings)) == 1.0
    assert float(compiled(jnp.int32(15), other)) == pytest.approx(0.5)  # inside W = 30
    assert float(compiled(jnp.int32(100), other)) == pytest.approx(0.5)  # final


def test_bad_schedules_are_refused_naming_the_field():
    """The library's checks (the config's one-line errors: tests/test_cli_errors.py)."""
    with pytest.raises(ScheduleError, match="'warmup_fraction' = 0.0.*'constant'"):
        check_schedule("warmup", 100)  # a warm-up schedule without a warm-up
    with pytest.raises(ScheduleError, match="'warmup_fraction'.*0.99"):
        check_schedule("cosine", 100, 0.995)  # leaves half a step for the decay
    check_schedule("cosine", 100, 0.99)  # one step of decay: allowed
    with pytest.raises(ScheduleError, match="'kind'"):
        ScheduleConfig("step")
    with pytest.raises(ScheduleError, match="'decay_fraction'.*cosine"):
        ScheduleConfig("cosine", decay_fraction=0.1)


def test_schedule_config_section_and_its_identity():
    base = {"name": "x", "steps": 100, "eval_every": 10}
    plain = config_from_dict(base)
    explicit = config_from_dict({**base, "schedule": {"kind": "constant"}})
    assert explicit == plain and explicit.to_dict() == plain.to_dict()
    assert "schedule" not in plain.to_dict() and "schedule" not in plain.to_dict()["optimizer"]
    cos = config_from_dict({**base, "schedule": {"kind": "cosine", "warmup_fraction": 0.1}})
    assert cos.optimizer.schedule == ScheduleConfig("cosine", warmup_fraction=0.1)
    assert cos.to_dict()["schedule"] == {"kind": "cosine", "warmup_fraction": 0.1,
                                         "final_fraction": 0.0}  # fmt: skip
    # Every run length of the steps axis is checked: a 1-step decay needs 1 / 0.1 = 10 steps.
    raw = {**base, "schedule": {"kind": "wsd", "decay_fraction": 0.1}}
    with pytest.raises(ConfigError, match="decay_fraction.*for 5 steps"):
        config_from_dict({**raw, "eval_every": 5, "axes": {"steps": {"values": [5]}}})
    # An axis of a fraction the kind does not read is refused.
    with pytest.raises(ConfigError, match="axes.decay_fraction"):
        config_from_dict({**base, "schedule": {"kind": "cosine"},
                          "axes": {"decay_fraction": {"values": [0.1]}}})  # fmt: skip


# --------------------------------------------------------------------------------------------
# Per-role rates under a schedule, and AdamW against optax on a tiny model

ARCH = Architecture(32, 4, 2, in_shape=(32,), num_classes=10, base_width=16, base_depth=2)


@pytest.fixture(scope="module")
def data():
    return teacher(num_samples=256, in_shape=(32,), num_classes=10, seed=0)


def _grads(data, mult, seed=0):
    params = init_state(jnp.int32(seed), mult, ARCH, OptimizerConfig()).params
    x, y = sample_batch(jnp.int32(seed), jnp.int32(0), data.x_train, data.y_train, 32)
    return params, jax.grad(loss_fn)(params, x, y, mult, ARCH)


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_per_role_learning_rate_ratios_are_the_same_at_every_step(data, name):
    """Under a warm-up + cosine schedule every leaf's update is mult(t) times the update of the
    constant schedule from the same state: the scheme's per-role factors, and so their
    ratios, are untouched (NFD at 2x width and 2x depth: factors differ per role)."""
    schedule = ScheduleConfig("cosine", warmup_fraction=0.2, final_fraction=0.1)
    total = 20
    opt = OptimizerConfig(name, weight_decay=0.1 if name == "adamw" else 0.0)
    mult = multipliers(get_scheme("nfd"), ARCH, opt.family)
    settings = {**traced_settings(opt), **traced_schedule(schedule, total)}
    params, grads = _grads(data, mult)
    lr = jnp.float32(0.01)
    const = make_optimizer(opt, lr, mult.lr, mult.eps, settings, mult.wd)
    state = const.init(params)
    for t in range(total):
        m_t = float(multiplier("cosine", jnp.int32(t), settings))
        sched = make_optimizer(opt, scheduled_lr(lr, "cosine", jnp.int32(t), settings),
                               mult.lr, mult.eps, settings, mult.wd)  # fmt: skip
        u_const, _ = const.update(grads, state, params)
        u_sched, state = sched.update(grads, state, params)
        for a, b in zip(jax.tree.leaves(u_sched), jax.tree.leaves(u_const), strict=True):
            np.testing.assert_allclose(a, m_t * b, rtol=2e-6, atol=1e-12)
    if name == "sgd":  # the rates themselves: update / gradient = -lr * mult(t) * s_role
        u, _ = sched.update(grads, state, params)
        rate = jax.tree.map(
            lambda u, g: float(jnp.nanmedian(jnp.where(g != 0, -u / g, jnp.nan))), u, grads
        )
        for got, s in zip(jax.tree.leaves(rate), jax.tree.leaves(mult.lr), strict=True):
            assert got == pytest.approx(0.01 * m_t * float(s), rel=1e-5)
        assert len(set(np.round(jax.tree.leaves(mult.lr), 6))) > 1  # roles differ


def test_adamw_with_per_role_factors_and_schedule_equals_optax_step_by_step(data):
    """CompleteP at 2x width and 2x depth (hidden: Adam rate / m, epsilon / (m r), weight decay
    x m; readout: rate / m, decay x m) under warm-up + cosine: our train_step equals optax.adamw
    with each leaf's own rate, epsilon and decay, to float32 tolerance at every step."""
    steps, lr, eps, wd = 8, 0.02, 1e-3, 0.3
    schedule = ScheduleConfig("cosine", warmup_fraction=0.25, final_fraction=0.1)  # W = 2
    opt = OptimizerConfig("adamw", b1=0.8, b2=0.95, eps=eps, weight_decay=wd, schedule=schedule)
    mult = multipliers(get_scheme("completep"), ARCH, "adam")
    mult = mult.replace(optimizer=traced_settings(opt, steps))
    factors = jax.tree.map(lambda s, e, w: (float(s), float(e), float(w)), mult.lr, mult.eps,
                           mult.wd)  # fmt: skip
    assert {f[2] for f in jax.tree.leaves(factors, is_leaf=lambda x: isinstance(x, tuple))} == {
        1.0, 2.0}  # fmt: skip
    seed = jnp.int32(0)
    state = init_state(seed, mult, ARCH, opt)
    leaves, treedef = jax.tree.flatten(factors, is_leaf=lambda x: isinstance(x, tuple))
    labels = jax.tree.unflatten(treedef, [str(i) for i in range(len(leaves))])
    sched = optax.warmup_cosine_decay_schedule(0.0, 1.0, 2, steps, 0.1)
    reference = optax.multi_transform(
        {
            str(i): optax.adamw(
                lambda c, s=s: lr * s * sched(c), b1=0.8, b2=0.95, eps=eps * e, weight_decay=wd * w
            )  # fmt: skip
            for i, (s, e, w) in enumerate(leaves)
        },
        labels,
    )
    params, ref_state = state.params, reference.init(state.params)
    step = jax.jit(train_step, static_argnames=("arch", "opt"))
    for t in range(steps):
        batch = sample_batch(seed, jnp.int32(t), data.x_train, data.y_train, 32)
        state, _ = step(state, batch, mult, jnp.float32(lr), arch=ARCH, opt=opt)
        grads = jax.grad(loss_fn)(params, *batch, mult, ARCH)
        updates, ref_state = reference.update(grads, ref_state, params)
        params = optax.apply_updates(params, updates)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6),
                     state.params, params)  # fmt: skip
    moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), state.params, state.params0)
    assert min(jax.tree.leaves(moved)) > 1e-3  # the comparison is not between unmoved trees


# --------------------------------------------------------------------------------------------
# The constant schedule: bit for bit what the code did before schedules


def _step_before_schedules(state, batch, mult, lr, arch, opt):
    """train_step as it was before schedules existed (the unchanged code path)."""
    x, y = batch
    loss, grads = jax.value_and_grad(loss_fn)(state.params, x, y, mult, arch)
    optimizer = make_optimizer(opt, lr, mult.lr, mult.eps, mult.optimizer)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return dataclasses.replace(state, params=params, opt_state=opt_state, step=state.step + 1), loss


@pytest.mark.parametrize("opt", [OptimizerConfig("sgd", momentum=0.9), OptimizerConfig("adam")])
def test_constant_schedule_compiles_the_same_program_as_before(data, opt):
    """The jaxpr of a step under the constant schedule equals the pre-schedule step's: the same
    floating-point operations, so every constant-rate result is unchanged bit for bit."""
    mult = multipliers(get_scheme("nfd"), ARCH, opt.family).replace(optimizer=traced_settings(opt))
    state = init_state(jnp.int32(0), mult, ARCH, opt)
    batch = sample_batch(jnp.int32(0), jnp.int32(0), data.x_train, data.y_train, 32)
    args = (state, batch, mult, jnp.float32(0.05))
    now = jax.make_jaxpr(lambda *a: train_step(*a, ARCH, opt))(*args)
    before = jax.make_jaxpr(lambda *a: _step_before_schedules(*a, ARCH, opt))(*args)
    assert str(now) == str(before)
    scheduled = dataclasses.replace(opt, schedule=ScheduleConfig("warmup", warmup_fraction=0.5))
    smult = mult.replace(optimizer=traced_settings(scheduled, 10))
    other = jax.make_jaxpr(lambda *a: train_step(*a, ARCH, scheduled))(state, batch, smult,
                                                                       jnp.float32(0.05))  # fmt: skip
    assert str(other) != str(before)  # the comparison can tell programs apart


def test_explicit_constant_section_trains_exactly_as_no_section(data):
    base = {"name": "x", "steps": 20, "eval_every": 10, "optimizer": {"name": "adam"}}
    plain = config_from_dict(base).optimizer
    explicit = config_from_dict({**base, "schedule": {"kind": "constant"}}).optimizer
    runs = [train_run("mup", ARCH, o, 0.01, 0, data, steps=20, batch_size=32, probe_size=32)
            for o in (plain, explicit)]  # fmt: skip
    np.testing.assert_array_equal(runs[0].losses, runs[1].losses)
    assert runs[0].test_loss == runs[1].test_loss and runs[0].movement == runs[1].movement
    warm = dataclasses.replace(plain, schedule=ScheduleConfig("warmup", warmup_fraction=0.5))
    other = train_run("mup", ARCH, warm, 0.01, 0, data, steps=20, batch_size=32, probe_size=32)
    assert other.losses[0] == runs[0].losses[0] and other.losses[-1] != runs[0].losses[-1]


# --------------------------------------------------------------------------------------------
# The sweep: fractions and weight decay traced, the kind a program of its own


RAW = {
    "name": "tiny-schedules",
    "steps": 20,
    "eval_every": 10,
    "batch_size": 16,
    "seeds": [0],
    "schemes": ["mup"],
    "data": {"name": "teacher", "num_samples": 256},
    "model": {"widths": [8], "depths": [2], "base_width": 8},
    "lr": {"start": -3, "stop": -2, "step": 1},
    "probe_size": 16,
    "optimizer": {"name": "adamw", "weight_decay": 0.1},
}


def test_one_program_for_every_traced_fraction_and_one_more_per_kind(tmp_path, monkeypatch):
    monkeypatch.setenv("HPTRANSFER_SAVINGS", "0")
    data = teacher(num_samples=256, in_shape=(32,), num_classes=10, seed=0)
    clear_program_cache()
    axes = {
        "warmup_fraction": {"values": [0.0, 0.2]},
        "final_fraction": {"values": [0.0, 0.5]},
        "weight_decay": {"values": [0.0, 0.1]},
        "eps": {"values": [0.0, 4.0]},
    }
    config = config_with(RAW, {"schedule": {"kind": "cosine", "warmup_fraction": 0.1},
                               "axes": axes})  # fmt: skip
    frame = run_sweep(config, tmp_path / "cos", data=data, progress=False)
    assert COMPILE_STATS["count"] == 3  # init, segment, evaluation: for every traced value
    for name, axis in axes.items():
        assert set(axis["values"]) <= set(frame[name])  # (others at their defaults)
    last = frame[frame.step == 20].groupby("warmup_fraction").train_loss.mean()
    assert last[0.0] != last[0.2]  # the traced value changed the training
    linear = config_with(RAW, {"schedule": {"kind": "linear", "warmup_fraction": 0.1}})
    run_sweep(linear, tmp_path / "lin", data=data, progress=False)
    assert COMPILE_STATS["count"] == 6  # another kind: its own init, segment and evaluation


# --------------------------------------------------------------------------------------------
# The schemes' AdamW factors


@pytest.mark.parametrize("scheme", ["mup", "depth_mup", "nfd", "completep"])
def test_adamw_decay_per_step_is_width_independent_where_the_source_says(scheme):
    """lr_role * wd_role is width-independent for every role (microsoft/mup MuAdamW: decay x m
    where the Adam rate is / m); no depth factor on the decay (CompleteP's reference code)."""
    rules = get_scheme(scheme)
    for role in ("input", "hidden_1", "hidden_2", "readout", "vector"):
        rule = rules.rule(role, 2) if role.startswith("hidden") else rules.roles[role]
        assert rule.lr_adam.m + rule.wd_adam.m == 0, role
        assert rule.wd_adam.r == 0, role
    assert get_scheme("sp").roles["hidden"].wd_adam.m == 0
    wide = Architecture(64, 2, 2, in_shape=(32,), base_width=16, base_depth=2)
    mult = multipliers(get_scheme(scheme), wide, "adam")
    assert float(mult.wd["blocks"]["hidden_1"]["kernel"]) == 4.0
    assert float(mult.wd["input"]["kernel"]) == 1.0


def test_the_sweep_under_a_schedule_equals_the_single_run(tmp_path, monkeypatch):
    """The engine trains in segments of eval_every steps; the schedule reads the step counter
    carried across them, so the sweep's losses equal train_run's single scan (wsd, AdamW,
    muP at 2x width: every per-role factor and the decay factor in play)."""
    monkeypatch.setenv("HPTRANSFER_SAVINGS", "0")
    data = teacher(num_samples=256, in_shape=(32,), num_classes=10, seed=0)
    schedule = {"kind": "wsd", "warmup_fraction": 0.2, "decay_fraction": 0.3, "final_fraction": 0.1}
    config = config_with(RAW, {"model": {"widths": [16], "base_width": 8}, "schedule": schedule})
    frame = run_sweep(config, tmp_path, data=data, progress=False)
    arch = Architecture(16, 2, 1, data.in_shape, 10, base_width=8, base_depth=2)
    assert config.optimizer.schedule.kind == "wsd" and config.optimizer.name == "adamw"
    for log2_lr in (-3.0, -2.0):
        single = train_run("mup", arch, config.optimizer, 2.0**log2_lr, 0, data, 20, 16, 16)
        rows = frame[frame.log2_lr == log2_lr].sort_values("step")
        np.testing.assert_allclose(rows.train_loss, single.losses.reshape(2, 10).mean(1), rtol=1e-5)
        assert rows.iloc[-1].test_loss == pytest.approx(single.test_loss, rel=1e-5)


def test_a_config_built_in_code_is_checked_before_compute(tmp_path):
    config = config_from_dict(RAW)
    bad = dataclasses.replace(
        config,
        optimizer=dataclasses.replace(config.optimizer, schedule=ScheduleConfig("cosine", 0.999)),
    )
    with pytest.raises(ConfigError, match="warmup_fraction"):
        run_sweep(bad, tmp_path, progress=False)
    assert not (tmp_path / "results.parquet").exists()


# --------------------------------------------------------------------------------------------
# The kind as a shape axis: a set of cells per kind, each the sweep of that kind alone


def test_the_schedule_kind_axis_trains_each_kind_as_its_own_sweep(tmp_path, monkeypatch):
    monkeypatch.setenv("HPTRANSFER_SAVINGS", "0")
    data = teacher(num_samples=256, in_shape=(32,), num_classes=10, seed=0)
    cosine = {"kind": "cosine", "warmup_fraction": 0.1, "final_fraction": 0.2}
    both = config_with(RAW, {"schedule": cosine,
                             "axes": {"schedule": {"values": ["constant", "cosine"]}}})  # fmt: skip
    assert both.shape_points() == [(16, 20, "cosine"), (16, 20, "constant")]
    frame = run_sweep(both, tmp_path / "both", data=data, progress=False)
    assert sorted(frame["schedule"].unique()) == ["constant", "cosine"]
    keys = ["log2_lr", "seed", "step"]
    for kind, alone in (("cosine", config_with(RAW, {"schedule": cosine})),
                        ("constant", config_from_dict(RAW))):  # fmt: skip
        ref = run_sweep(alone, tmp_path / kind, data=data, progress=False)
        mine = frame[frame["schedule"] == kind].sort_values(keys).reset_index(drop=True)
        ref = ref.sort_values(keys).reset_index(drop=True)
        np.testing.assert_array_equal(mine.train_loss.to_numpy(), ref.train_loss.to_numpy())
    # the analysis reads the default kind (cosine) as the sweep, the other as a condition
    meta = json.loads((tmp_path / "both" / "meta.json").read_text())
    assert meta["config"]["axes"]["schedule"] == {
        "values": ["constant", "cosine"],
        "default": "cosine",
        "unit": "kind",
        "kind": "shape",
    }
    a = analyze(frame, meta)
    assert set(a.results["schedule"]) == {"cosine"}
    shapes = a.hparams.shape_optima
    assert set(shapes["shape_value"]) == {"constant", "cosine"}


@pytest.mark.parametrize(
    ("schedule", "axes", "field"),
    [
        ({"kind": "cosine", "warmup_fraction": 0.1}, {"schedule": {"values": ["cosine", "sgdr"]}},
         "axes.schedule.values[1]"),
        ({"kind": "cosine", "warmup_fraction": 0.1}, {"schedule": {"values": []}},
         "axes.schedule.values"),
        ({"kind": "cosine", "warmup_fraction": 0.1},
         {"schedule": {"values": ["constant"]}, "warmup_fraction": {"values": [0.1, 0.2]}},
         "axes.warmup_fraction"),
        # wsd needs a decay_fraction, which a cosine [schedule] cannot hold
        ({"kind": "cosine", "warmup_fraction": 0.1}, {"schedule": {"values": ["wsd"]}},
         "decay_fraction"),
    ],
)  # fmt: skip
def test_bad_schedule_axes_are_refused_before_compute(schedule, axes, field):
    with pytest.raises(ConfigError, match=re.escape(field)):
        config_with(RAW, {"schedule": schedule, "axes": axes})
