"""Early elimination (hptransfer.sweeps.elimination): the rule on planted loss curves, the plan of a
chunk, the analysis of a stopped replica, the config table, and one small sweep with it on and
off (same eta* at every step, fewer replica-steps, the stops in meta.json, resume)."""

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hptransfer.api import analyze
from hptransfer.stats.optimum import refine
from hptransfer.stats.results import read_meta
from hptransfer.stats.tables import (
    REPLICA,
    final_losses,
    hold_stopped,
    losses_by_step,
    optimal_lr,
)
from hptransfer.sweeps.config import ConfigError, config_from_dict
from hptransfer.sweeps.elimination import (
    EliminationConfig,
    chunk_stops,
    plan_chunk,
    stop_points,
    stop_rates,
)
from hptransfer.sweeps.engine import Faults, SimulatedKill, run_sweep

ON = EliminationConfig(enabled=True, margin=0.05, window=3, min_fraction=0.25)
N_SEG = 20

_AGREEMENT = Path(__file__).resolve().parents[1] / "benchmarks" / "elimination_agreement.py"
_spec = importlib.util.spec_from_file_location("elimination_agreement", _AGREEMENT)
elimination_agreement = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(elimination_agreement)


def _planted(levels, paces, n_seg=N_SEG, seeds=2, noise=0.0):
    """Loss curves [n_seg, n_lr, seeds]: rate r falls from levels[r][0] at pace paces[r] per
    segment (a linear fall, never below levels[r][1]); seeds differ by ``noise``."""
    t = np.arange(n_seg)[:, None, None]
    start = np.array([lv[0] for lv in levels])[None, :, None]
    floor = np.array([lv[1] for lv in levels])[None, :, None]
    pace = np.asarray(paces, float)[None, :, None]
    shift = noise * np.arange(seeds)[None, None, :]
    return np.maximum(start - pace * t, floor) + shift


def _run_rule(loss, settings=ON, diverged=None):
    """Apply the rule at every segment boundary as the engine does; the segment each rate
    stopped at (-1: never)."""
    n_seg, n_lr, seeds = loss.shape
    diverged = np.zeros((n_lr, seeds), bool) if diverged is None else diverged
    at = np.full(n_lr, -1)
    for seg in range(n_seg):
        stop = stop_rates(loss[: seg + 1], diverged, at >= 0, seg, n_seg, settings)
        at[stop] = seg
    return at


# A grid of 7 rates with the optimum at index 5: rates 0-3 flat far above it, 4 and 6 near.
FLAT = [(2.5, 2.4)] * 4 + [(1.3, 1.2), (1.2, 1.0), (1.4, 1.25)]
FLAT_PACE = [0.01] * 4 + [0.01, 0.02, 0.01]


def test_a_clearly_bad_rate_is_stopped_after_min_fraction():
    at = _run_rule(_planted(FLAT, FLAT_PACE))
    assert (at[:4] >= 0).all()  # the flat rates far below the optimum
    assert (at[4:] == -1).all()  # the optimum, its neighbours and everything above it
    assert at[:4].min() == 4  # the first boundary past 25% of 20 segments (seg + 1 >= 5)


def test_a_slow_starter_that_overtakes_late_is_not_stopped():
    # rate 2 starts far worse (3.0) but falls 0.12 per segment to 0.6, below the best's 1.0
    levels = [(2.5, 2.4), (2.5, 2.4), (3.0, 0.6)] + FLAT[3:]
    loss = _planted(levels, [0.01, 0.01, 0.12] + FLAT_PACE[3:])
    assert np.argmin(loss[-1].mean(-1)) == 2  # it does overtake by the end
    at = _run_rule(loss)
    assert at[2] == -1 and at[1] == -1  # not stopped, nor its neighbour below
    assert at[0] >= 0  # the flat rate two below it is (0 and 1 are both hopeless)


def test_neighbours_of_the_optimum_and_rates_above_it_are_never_stopped():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n_lr = int(rng.integers(3, 9))
        loss = (
            np.cumsum(rng.uniform(-0.2, 0.05, (N_SEG, n_lr, 3)), 0)
            + rng.uniform(1, 4, n_lr)[None, :, None]
        )
        loss = np.maximum(loss, 0.05)
        stopped = np.zeros(n_lr, bool)
        for seg in range(N_SEG):
            stop = stop_rates(loss[: seg + 1], np.zeros((n_lr, 3), bool), stopped, seg, N_SEG, ON)
            cur = np.where(stopped, np.inf, loss[seg].mean(-1))
            b = int(np.argmin(cur))
            assert not stop[max(b - 1, 0) :].any()
            stopped |= stop


def test_a_censored_low_side_is_never_stopped():
    # optimum at the lowest rate: nothing below it to stop, nothing stopped
    levels = [(1.2, 1.0), (1.3, 1.2)] + [(2.5, 2.4)] * 4
    assert (_run_rule(_planted(levels, [0.02] + [0.01] * 5)) == -1).all()
    # optimum at index 3 with the rate below it diverged: censored by divergence, kept whole
    loss = _planted(FLAT[:2] + [(2.5, 2.4), (1.2, 1.0), (1.3, 1.2)], [0.01] * 3 + [0.02, 0.01])
    diverged = np.zeros((5, 2), bool)
    diverged[2, 1] = True
    loss[:, 2, 1] = np.nan
    assert (_run_rule(loss, diverged=diverged) == -1).all()


def test_min_fraction_window_and_last_segment():
    loss = _planted(FLAT, FLAT_PACE)
    none = np.zeros(7, bool)
    diverged = np.zeros((7, 2), bool)
    assert not stop_rates(loss[:4], diverged, none, 3, N_SEG, ON).any()  # 4/20 < 25%
    assert stop_rates(loss[:5], diverged, none, 4, N_SEG, ON).tolist() == [1, 1, 1] + [0] * 4
    assert not stop_rates(loss, diverged, none, N_SEG - 1, N_SEG, ON).any()  # last: nothing
    late = EliminationConfig(True, 0.05, 3, 0.9)
    assert not stop_rates(loss[:5], diverged, none, 4, N_SEG, late).any()
    # a margin wider than the gap (2.4 vs 1.0 x (1 + m)) stops nothing
    wide = EliminationConfig(True, 2.0, 3, 0.25)
    assert not stop_rates(loss[:5], diverged, none, 4, N_SEG, wide).any()


def test_one_curve_of_a_surface_is_decided_by_the_curve_rule_alone():
    rng = np.random.default_rng(3)
    for _ in range(50):
        n_lr = int(rng.integers(3, 9))
        loss = np.maximum(np.cumsum(rng.uniform(-0.2, 0.05, (N_SEG, n_lr, 2)), 0) + 3.0, 0.05)
        stopped = np.zeros(n_lr, bool)
        for seg in range(N_SEG):
            curve = stop_rates(loss[: seg + 1], np.zeros((n_lr, 2), bool), stopped, seg, N_SEG, ON)
            surface = stop_points(loss[: seg + 1, :, None], np.zeros((n_lr, 1, 2), bool),
                                  stopped[:, None], seg, N_SEG, ON)  # fmt: skip
            np.testing.assert_array_equal(surface[:, 0], curve)
            stopped |= curve


# A surface (lr x another axis), constant in time: rows are rates, columns the axis's values.
# The joint optimum is (2, 1); the curve at column 2 has its own optimum at rate 5, so the curve
# rule alone would stop its rates 0-3, three of them next to the joint optimum.
TILTED = np.array([
    [3.0, 3.0, 5.0],
    [2.5, 2.0, 5.0],
    [2.0, 1.0, 5.0],
    [2.2, 1.5, 5.0],
    [2.6, 2.5, 5.0],
    [3.0, 3.0, 1.2],
    [3.5, 3.5, 1.3],
])  # fmt: skip


def test_a_surface_never_stops_a_point_next_to_its_joint_optimum():
    loss = np.repeat(np.tile(TILTED[None, :, :, None], (N_SEG, 1, 1, 1)), 2, -1)  # 2 seeds
    none, diverged = np.zeros((7, 3), bool), np.zeros((7, 3, 2), bool)
    per_curve = np.stack([stop_rates(loss[:7, :, j], diverged[:, j], none[:, j], 6, N_SEG, ON)
                          for j in range(3)], axis=1)  # fmt: skip
    assert per_curve[:4, 2].all()  # the curve rule alone reaches (1..3, 2)
    stop = stop_points(loss[:7], diverged, none, 6, N_SEG, ON)
    assert np.argwhere(stop).tolist() == [[0, 0], [0, 1], [0, 2]]
    # what the 2-D fit reads, the 3 x 3 points around the joint argmin, all train on
    assert not stop[1:4, 0:3].any()
    # through the plan: three curves of one group, columns laid out rate-major
    keys = [("s", j) for r in range(7) for j in range(3) for _ in range(2)]
    lrs = [float(r) for r in range(7) for j in range(3) for _ in range(2)]
    seeds = [sd for r in range(7) for j in range(3) for sd in range(2)]
    surfaces = {("s", j): [("g", float(j))] for j in range(3)}
    plan = plan_chunk(keys, lrs, seeds, list(range(42)), 0, 42, None, surfaces)
    assert len(plan.groups) == 1 and plan.groups[0].columns.shape == (7, 3, 2)
    hist = loss.reshape(N_SEG, 42)
    cols = np.full(42, -1)
    stopped = chunk_stops(hist, cols, cols, plan, 6, N_SEG, ON).reshape(7, 3, 2)
    np.testing.assert_array_equal(stopped.all(-1), stop)
    # a replica a group without the learning rate reads (fixed) is never stopped
    fixed = [k == ("s", 0) and lr == 0.0 for k, lr in zip(keys, lrs, strict=True)]
    plan = plan_chunk(keys, lrs, seeds, list(range(42)), 0, 42, None, surfaces, fixed)
    held = chunk_stops(hist, cols, cols, plan, 6, N_SEG, ON).reshape(7, 3, 2)
    assert not held[0, 0].any() and held[0, 1].all() and held[0, 2].all()


def test_decisions_are_deterministic_and_keyed_by_replica_not_position():
    loss = _planted(FLAT, FLAT_PACE, noise=0.01)  # [seg, 7 rates, 2 seeds]
    n_seg, n_lr, seeds = loss.shape
    keys = ["mup"] * (n_lr * seeds)
    lrs = [float(r) for r in range(n_lr) for _ in range(seeds)]
    sds = [s for _ in range(n_lr) for s in range(seeds)]
    flat = loss.reshape(n_seg, n_lr * seeds)

    def decide(order):
        cols = np.argsort(order)  # replica i sits at column cols[i]
        plan = plan_chunk(keys, lrs, sds, cols, 0, len(cols))
        hist = np.empty_like(flat)
        hist[:, cols] = flat
        none = np.full(len(cols), -1)
        return chunk_stops(hist, none, none, plan, 6, n_seg, ON)[cols]

    base = decide(np.arange(n_lr * seeds))
    assert base.reshape(n_lr, seeds)[:3].all() and not base.reshape(n_lr, seeds)[3:].any()
    perm = np.random.default_rng(1).permutation(n_lr * seeds)
    np.testing.assert_array_equal(decide(perm), base)
    np.testing.assert_array_equal(decide(perm), decide(perm))


def test_plan_pins_columns_of_groups_outside_the_chunk_and_shared_columns_need_every_reader():
    # sp: 4 rates x 1 seed in columns 0-3; mup reads sp's columns 0-2 (deduplicated: the same
    # network) and trains its rate 3 itself, in column 4
    keys, lrs, seeds = ["sp"] * 4 + ["mup"] * 4, [0.0, 1.0, 2.0, 3.0] * 2, [0] * 8
    cols = [0, 1, 2, 3, 0, 1, 2, 4]
    whole = plan_chunk(keys, lrs, seeds, cols, 0, 5)
    assert len(whole.groups) == 2 and not whole.pinned.any()
    part = plan_chunk(keys, lrs, seeds, cols, 0, 4)  # column 4 lies in the next chunk
    assert len(part.groups) == 1 and part.pinned[:3].all() and not part.pinned[3]
    sp_only = plan_chunk(keys[:4], lrs[:4], seeds[:4], cols[:4], 0, 5)
    # sp's optimum is its rate 3 (column 3): its rates 0 and 1 are hopeless; mup's curve
    # (columns 0, 1, 2, 4) has its optimum at rate 0, so mup keeps the shared columns
    loss = np.tile(np.array([2.5, 2.5, 2.5, 1.0, 3.0]), (N_SEG, 1))
    none = np.full(5, -1)
    assert chunk_stops(loss, none, none, sp_only, 6, N_SEG, ON).tolist() == [1, 1, 0, 0, 0]
    assert not chunk_stops(loss, none, none, whole, 6, N_SEG, ON).any()
    assert not chunk_stops(loss[:, :4], none[:4], none[:4], part, 6, N_SEG, ON).any()


def _table(eliminated_at=None):
    """A results table of one group: 3 rates x 1 seed x 5 evaluations; rate -3 stopped at
    step 20 when ``eliminated_at``."""
    rows = []
    for lr, losses in ((-3.0, [3, 2.8, 2.7, np.nan, np.nan]), (-2.0, [2, 1.5, 1.2, 1.1, 1.0]),
                       (-1.0, [2, 1.6, 1.3, 1.2, 1.15])):  # fmt: skip
        for i, loss in enumerate(losses):
            rows.append(dict(family="mlp", scheme="mup", optimizer="sgd", width=8, depth=2,
                             block_depth=1, log2_lr=lr, seed=0, lr=2.0**lr, step=10 * (i + 1),
                             train_loss=loss, test_loss=loss, diverged=False,
                             diverged_step=np.nan))  # fmt: skip
    df = pd.DataFrame(rows)
    if eliminated_at is not None:
        df["eliminated_step"] = np.where(df.log2_lr == -3.0, eliminated_at, np.nan)
    return df


def test_a_stopped_replica_is_held_at_its_stop_not_diverged():
    finals = final_losses(_table(30), last_evals=2).set_index("log2_lr")
    assert not finals.loc[-3.0, "diverged"]
    assert finals.loc[-3.0, "final_train_loss"] == pytest.approx(2.7)  # held at step 30
    by_step = losses_by_step(_table(30), last_evals=1)
    assert by_step.iloc[0].tolist() == pytest.approx([3, 2.8, 2.7, 2.7, 2.7])
    # the same NaN tail without the column is a divergence, as before elimination existed
    assert final_losses(_table(), last_evals=2).set_index("log2_lr").loc[-3.0, "diverged"]
    table = _table()
    assert hold_stopped(table, REPLICA) is table  # elimination off: untouched
    opt = optimal_lr(_table(30), last_evals=2)
    assert opt.loc[0, "frac_diverged"] == 0 and opt.loc[0, "max_stable_log2_lr"] == -1.0


def test_config_table_is_validated_and_off_by_default():
    base = {"name": "x", "steps": 100, "eval_every": 10}
    assert not config_from_dict(base).elimination.enabled
    assert "elimination" not in config_from_dict(base).to_dict()  # hash as before
    on = config_from_dict(base | {"elimination": {"enabled": True}})
    assert on.to_dict()["elimination"]["margin"] == 0.05
    for bad, field in (({"enabled": "yes"}, "elimination.enabled"),
                       ({"margin": 0.001}, "elimination.margin"),
                       ({"window": 0}, "elimination.window"),
                       ({"enabled": True, "window": 10}, "elimination.window"),
                       ({"min_fraction": 1.5}, "elimination.min_fraction"),
                       ({"patience": 3}, "elimination.patience")):  # fmt: skip
        with pytest.raises(ConfigError, match=field) as err:
            config_from_dict(base | {"elimination": bad})
        assert "\n" not in str(err.value)


# --------------------------------------------------------------------------------------------
# One small sweep, end to end


def _sweep_config(enabled: bool):
    return config_from_dict(
        {
            "name": "elim",
            "steps": 80,
            "eval_every": 10,
            "batch_size": 16,
            "seeds": [0, 1],
            "schemes": ["sp", "mup"],  # the same network at the base shape: trained once
            "data": {"name": "teacher", "num_samples": 2048},
            "model": {"widths": [8], "depths": [2], "base_width": 8, "base_depth": 2},
            "lr": {"start": -10, "stop": 1, "step": 1},
            "probe_size": 16,
            "elimination": {"enabled": enabled, "window": 2},
        }
    )


def _eta_by_step(frame: pd.DataFrame) -> np.ndarray:
    """eta* of each scheme's seed-mean curve at every evaluation step (the horizon axis)."""
    etas = []
    for _, g in losses_by_step(frame).groupby(level="scheme"):
        by_step = g.groupby(level="log2_lr").mean()  # [n_lr, steps]
        etas.append(refine(by_step.index.to_numpy(float), by_step.to_numpy(float).T).log2_eta)
    return np.stack(etas)


ORDER = ["scheme", "log2_lr", "seed", "step"]


def _sorted(frame):
    cols = [c for c in frame.columns if c not in ("eliminated_step", "cell")]
    return frame.sort_values(ORDER)[cols].reset_index(drop=True)


def test_sweep_with_elimination_keeps_eta_star_and_computes_less(
    tmp_path, teacher_data, monkeypatch
):
    monkeypatch.setenv("HPTRANSFER_SAVINGS", "always")  # compact as soon as a bucket fits
    off = run_sweep(_sweep_config(False), tmp_path / "off", data=teacher_data, progress=False)
    on = run_sweep(_sweep_config(True), tmp_path / "on", data=teacher_data, progress=False)
    meta_off, meta_on = read_meta(tmp_path / "off"), read_meta(tmp_path / "on")
    assert "eliminated" not in meta_off and "eliminated_step" not in off.columns

    # eta* (and its bracket) at the last step and at every earlier step of the horizon
    opt_off, opt_on = optimal_lr(off), optimal_lr(on)
    assert (opt_on.log2_eta_star - opt_off.log2_eta_star).abs().max() <= 0.05
    for col in ("edge", "bracket_lo", "bracket_hi", "max_stable_log2_lr", "frac_diverged"):
        pd.testing.assert_series_equal(opt_on[col], opt_off[col])
    np.testing.assert_allclose(_eta_by_step(on), _eta_by_step(off), atol=0.05)

    # fewer replica-steps computed; the stops recorded per replica, in meta.json and the table
    stops = meta_on["eliminated"]
    assert stops and {s["seed"] for s in stops} == {0, 1}
    by_scheme = {
        k: [dict(s, scheme=None) for s in stops if s["scheme"] == k] for k in ("sp", "mup")
    }
    assert by_scheme["sp"] == by_scheme["mup"]  # one trained replica, stopped under both names
    assert meta_on["replica_steps_eliminated"] == sum(80 - s["step"] for s in stops) / 2
    assert meta_on["replica_steps_computed"] < meta_off["replica_steps_computed"]
    stopped = on[on.eliminated_step.notna()]
    assert stopped.log2_lr.max() <= opt_on.log2_eta_star.min() - 2
    assert stopped[stopped.step > stopped.eliminated_step].train_loss.isna().all()
    assert not stopped.diverged.any()
    # before its stop a replica's curve is the one it has without elimination
    kept = on.eliminated_step.isna() | (on.step <= on.eliminated_step)
    pd.testing.assert_frame_equal(_sorted(on[kept]), _sorted(off[kept]), check_exact=False,
                                  rtol=1e-4, atol=1e-6)  # fmt: skip

    # the agreement benchmark (benchmarks/elimination_agreement.py) reads the same from the
    # two runs' analyses: every verdict kept, fewer replica-steps
    row = elimination_agreement.agreement(*(analyze(tmp_path / k) for k in ("off", "on")))
    assert elimination_agreement.holds(row), row
    assert row["replicas_stopped"] == len(stops) and row["max_abs_delta_eta_star"] <= 0.05
    assert row["replica_steps_computed_on"] < row["replica_steps_computed_off"]
    worse = dict(row, claim_verdicts_changed=1)
    assert not elimination_agreement.holds(worse)

    # killed and resumed: the same stops and the same table
    out = tmp_path / "killed"
    with pytest.raises(SimulatedKill):
        run_sweep(_sweep_config(True), out, data=teacher_data, progress=False,
                  checkpoint_seconds=0, faults=Faults(kill_after_segments=4))  # fmt: skip
    resumed = run_sweep(_sweep_config(True), out, data=teacher_data, progress=False)
    assert read_meta(out)["eliminated"] == stops
    pd.testing.assert_frame_equal(
        resumed.sort_values(ORDER).reset_index(drop=True),
        on.sort_values(ORDER).reset_index(drop=True),
        check_exact=True,
    )


def _axes_config(enabled: bool, **axes):
    """_sweep_config's sweep at two depths with the init scale crossed with the learning rate
    and the output multiplier swept at lr.default (mup only); ``axes``: more [axes] tables."""
    return config_from_dict({
        "name": "elim-axes", "steps": 80, "eval_every": 10, "batch_size": 16, "seeds": [0, 1],
        "schemes": ["mup"], "probe_size": 16,
        "data": {"name": "teacher", "num_samples": 2048},
        "model": {"widths": [8], "depths": [2, 4], "base_width": 8, "base_depth": 2},
        "lr": {"start": -10, "stop": 1, "step": 1, "default": -10},
        "axes": {"groups": [["lr", "init_scale"], ["output_multiplier"]],
                 "init_scale": {"values": [-1.0, 0.0, 1.0]},
                 "output_multiplier": {"values": [-1.0, 0.0, 1.0]}, **axes},
        "elimination": {"enabled": enabled, "window": 2},
    })  # fmt: skip


def test_a_sweep_with_axes_stops_along_the_learning_rate_and_keeps_every_axis_optimum(
    tmp_path, teacher_data, monkeypatch
):
    monkeypatch.setenv("HPTRANSFER_SAVINGS", "always")
    run_sweep(_axes_config(False), tmp_path / "off", data=teacher_data, progress=False)
    on = run_sweep(_axes_config(True), tmp_path / "on", data=teacher_data, progress=False)
    stops = read_meta(tmp_path / "on")["eliminated"]
    assert {s["init_scale"] for s in stops} >= {-1.0, 1.0} and {s["depth"] for s in stops} == {2, 4}
    # the output multiplier's group trains at lr.default (-10, the worst rate of the grid):
    # every replica it reads trains to the end, also on the init-scale surface
    assert not [s for s in stops if s["log2_lr"] == -10.0 and s["init_scale"] == 0.0]
    assert on[on.output_multiplier != 0].eliminated_step.isna().all()
    off_a, on_a = (analyze(tmp_path / k) for k in ("off", "on"))
    # the joint regret reads the deeper cell at the base cell's joint optimum: trained there
    for r in on_a.hparams.regret.query("group == 'lr_x_init_scale'").itertuples():
        at = on[(on.depth == r.depth) & np.isclose(on.log2_lr, r.point_lr)
                & np.isclose(on.init_scale, r.point_init_scale)]  # fmt: skip
        assert len(at) and at.eliminated_step.isna().all()
    row = elimination_agreement.agreement(off_a, on_a)
    assert row["axis_optima"] >= 4 and elimination_agreement.holds(row), row
    # a deeper cell of another value of a shape axis reads its own base cell's optima (the
    # lr chain is the traced axes at their defaults, whatever the shape axis's value)
    from hptransfer.sweeps.engine import _protected, architectures, cell_configs, cell_key

    wide = cell_configs(_axes_config(True, batch_size={"values": [16, 32]}))[1]
    base = on[on.depth == 2].assign(batch_size=32)
    deep = next(a for a in architectures(wide, _FakeData) if a.depth == 4)
    protect = _protected(wide, deep, {cell_key(wide, 8, 2, 1): base})
    assert protect[("mup", (("init_scale", 0.0), ("output_multiplier", 0.0)))].size
    assert row["max_abs_delta_axis_optimum"] <= 0.05 and row["max_abs_delta_joint_regret"] < 1e-4
    assert row["replica_steps_computed_on"] < row["replica_steps_computed_off"]


def test_a_deeper_cell_stops_rates_once_its_base_cell_is_finished(tmp_path, teacher_data):
    # the deeper cell reads its base cell's optima from the finished cells (engine.cell_key):
    # were the two sides keyed differently, it would never find them and stop nothing
    config = _sweep_config(True)
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, depths=(2, 4)))
    run_sweep(config, tmp_path, data=teacher_data, progress=False)
    stops = read_meta(tmp_path)["eliminated"]
    assert {s["depth"] for s in stops} == {2, 4}


def test_the_base_shapes_optima_are_kept_where_the_regret_reads_them():
    from hptransfer.sweeps.elimination import base_optima, bracketing
    from hptransfer.sweeps.engine import _protected, architectures, cell_key

    grid = np.arange(-6.0, 1.0)
    assert bracketing(grid, np.array([-3.4])).tolist() == [0, 0, 1, 1, 0, 0, 0]
    assert bracketing(grid, np.array([-3.0, np.nan, -np.inf])).tolist() == [1, 0, 0, 1, 0, 0, 0]
    # a base table whose optimum (rate -2 of {-3, -2, -1}) moves nowhere over its steps
    base = _table(None).assign(train_loss=lambda d: d.train_loss.fillna(2.6))
    etas = base_optima(base)["mup"]
    assert np.nanmin(etas) > -3.0 and np.nanmax(etas) < -1.0
    config = _sweep_config(True)
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, depths=(2, 4)))
    deep = next(a for a in architectures(config, _FakeData) if a.depth == 4)
    assert _protected(config, deep, {}) == {}  # base cell not finished: nothing may stop
    done = {cell_key(config, 8, 2, 1): base}  # the key the sweep files its finished cells by
    protect = _protected(config, deep, done)
    assert np.allclose(protect[("mup", ())], etas, equal_nan=True)
    assert protect[("sp", ())].size == 0  # not in that base table: nothing kept
    # the plan keeps the grid points around them even where the rule would stop them
    lrs = np.arange(-6.0, 1.0)
    keys, rates = ["g"] * 7, list(lrs)
    loss = np.tile(np.array([2.5, 2.5, 2.5, 2.5, 1.3, 1.0, 1.4]), (N_SEG, 1))
    none = np.full(7, -1)
    free = plan_chunk(keys, rates, [0] * 7, list(range(7)), 0, 7, {"g": np.array([])})
    kept = plan_chunk(keys, rates, [0] * 7, list(range(7)), 0, 7, {"g": np.array([-4.5])})
    assert chunk_stops(loss, none, none, free, 6, N_SEG, ON).tolist() == [1] * 4 + [0] * 3
    assert chunk_stops(loss, none, none, kept, 6, N_SEG, ON).tolist() == [1, 0, 0, 1, 0, 0, 0]


class _FakeData:
    in_shape = (32,)
    num_classes = 10


ELIM_TOML = """name = "elim-hosts"
steps = 80
eval_every = 10
batch_size = 16
seeds = [0, 1]
schemes = ["mup"]
probe_size = 16
[data]
name = "teacher"
num_samples = 2048
[model]
widths = [8]
depths = [2]
base_width = 8
base_depth = 2
[lr]
start = -10
stop = 1
step = 1
[elimination]
enabled = true
window = 2
"""


@pytest.mark.slow  # two processes and one more sweep, each compiling: ~1-2 min on 2 busy cores
def test_two_processes_stop_what_one_process_stops(tmp_path, monkeypatch):
    import json
    import time

    from test_distributed import TIMEOUT, _launch, _wait

    from hptransfer.sweeps.config import load_config

    monkeypatch.setenv("HPTRANSFER_SAVINGS", "always")
    cfg = tmp_path / "elim.toml"
    cfg.write_text(ELIM_TOML)
    out = tmp_path / "shared"
    start = time.monotonic()
    always = {"HPTRANSFER_SAVINGS": "always", "HPTRANSFER_CHECKPOINT_SECONDS": "0"}
    procs = _launch(cfg, [out, out], {0: always, 1: always})
    single = run_sweep(load_config(cfg), tmp_path / "single", progress=False)
    for rc, err in _wait(procs, start + 3 * TIMEOUT):
        assert rc == 0, err[-3000:]
    both = pd.read_parquet(out / "results.parquet")
    pd.testing.assert_frame_equal(
        both.sort_values(ORDER).reset_index(drop=True),
        single.sort_values(ORDER).reset_index(drop=True),
        check_exact=False,
        rtol=1e-6,
    )
    stops = json.loads((out / "meta.json").read_text())["eliminated"]
    assert stops and stops == read_meta(tmp_path / "single")["eliminated"]
