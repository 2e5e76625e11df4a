"""hptransfer.stats.hparams (and its report) on synthetic sweeps with axes beyond the learning rate,
whose optima are planted in closed form."""

from __future__ import annotations

import json
import math
import re
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hptransfer.reports import report as R
from hptransfer.stats import analysis as A
from hptransfer.stats import hparams as H
from hptransfer.stats.verdicts import suite_metrics

STEPS = (0, 100, 200)
LR_GRID = tuple(float(x) for x in range(-6, 1))
X_GRID = tuple(float(x) for x in range(-3, 4))
DEFAULT_LR = -3.0


def _design(config):
    return H.RunDesign.from_config(config)


def axes_config(groups, axes=None, path=None, name="axes") -> dict:
    """A config as meta.json stores it: the declared axes and groups (and model.path)."""
    axes = axes or {
        "init_scale": {"values": list(X_GRID), "default": 0.0, "unit": "log2", "kind": "traced"},
        "output_multiplier": {
            "values": list(X_GRID), "default": 0.0, "unit": "log2", "kind": "traced",
        },
    }  # fmt: skip
    config = {"name": name, "steps": STEPS[-1], "axes": axes, "axis_groups": groups}
    if path is not None:
        config["model"] = {"path": [list(p) for p in path]}
    return config


def points(config) -> list[dict[str, float]]:
    """The union over groups of each group's grid, every other traced axis at its default and
    the learning rate at DEFAULT_LR when it is not in the group; times every shape value."""
    axes = config["axes"]
    traced = [a for a, s in axes.items() if s["kind"] == "traced"]
    shapes = [a for a, s in axes.items() if s["kind"] == "shape"]
    out, seen = [], set()
    for group in config["axis_groups"]:
        grids = [LR_GRID if a == "lr" else axes[a]["values"] for a in group]
        for values in product(*grids):
            p = {a: axes[a]["default"] for a in traced} | {"lr": DEFAULT_LR}
            p |= dict(zip(group, values, strict=True))
            conds = [{}] + [
                {s: v} for s in shapes for v in axes[s]["values"] if v != axes[s]["default"]
            ]
            for c in conds:
                q = p | {s: axes[s]["default"] for s in shapes} | c
                key = tuple(sorted(q.items()))
                if key not in seen:
                    seen.add(key)
                    out.append(q)
    return out


def make_axes_results(config, loss_fn, *, shapes=((64, 2), (64, 4), (64, 8)), seeds=(0, 1, 2),
                      schemes=("s",), block_depths=(1,)) -> pd.DataFrame:  # fmt: skip
    """A results table in the engine's format for a sweep with axes: loss_fn(scheme, width,
    depth, k, point, seed) -> final loss (None = diverges at step 150)."""
    rows = []
    base_w, base_d = shapes[0]
    for scheme, (n, L), k, p, s in product(schemes, shapes, block_depths, points(config), seeds):
        final = loss_fn(scheme, n, L, k, p, s)
        for t in STEPS:
            dead = final is None and t >= 150
            loss = math.nan if t == 0 or dead else (0.01 if final is None else final)
            row = dict(
                family="mlp", scheme=scheme, optimizer="sgd", width=n, depth=L, block_depth=k,
                base_width=base_w, base_depth=base_d, lr=2.0 ** p["lr"], log2_lr=p["lr"],
                seed=s, step=t, train_loss=loss, test_loss=loss, test_accuracy=0.5,
                diverged=dead, diverged_step=150.0 if final is None else math.nan,
                cell=f"{scheme}-{n}-{L}-{k}",
            )  # fmt: skip
            row |= {a: float(v) for a, v in p.items() if a != "lr"}
            rows.append(row)
    return pd.DataFrame(rows)


def planted(x_slope=0.0, lr_slope=0.0, noise=0.0, x0=0.3, lr0=-2.6, axis="init_scale",
            along="depth", salt=0, om_star=0.0):  # fmt: skip
    """loss = 1 + 0.2 (x - x*)^2 + 0.2 (log2 lr - lr*)^2 with seed noise on the optimum, x* and
    lr* moving by the given slopes per doubling of depth from L = 2 (of width from n = 32).
    The noise is one fixed realization per ``salt`` (a 90% interval misses 1 in 10)."""

    def fn(scheme, n, L, k, p, s):
        r = math.log2(L / 2) if along == "depth" else math.log2(n / 32)
        jitter = noise * np.random.default_rng([s, L, n, salt]).standard_normal(2)
        xs = x0 + x_slope * r + jitter[0]
        ls = lr0 + lr_slope * r + jitter[1]
        om = 0.2 * (p.get("output_multiplier", 0.0) - om_star) ** 2
        return 1.0 + 0.2 * (p[axis] - xs) ** 2 + 0.2 * (p["lr"] - ls) ** 2 + om

    return fn


# --------------------------------------------------------------------------------------------
# Rows


def test_default_rows_leave_an_old_table_untouched_and_filter_an_axes_table():
    old = make_axes_results(axes_config([["init_scale"]]), planted()).drop(
        columns=["init_scale", "output_multiplier"]
    )
    assert H.default_rows(old, _design({"name": "old"})) is old
    config = axes_config([["lr", "init_scale"], ["output_multiplier"]])
    table = make_axes_results(config, planted())
    rows = H.default_rows(table, _design(config))
    assert set(rows["init_scale"]) == {0.0} and set(rows["output_multiplier"]) == {0.0}
    assert sorted(rows["log2_lr"].unique()) == list(LR_GRID)
    group = H.group_rows(table, _design(config), ("lr", "init_scale"))
    assert set(group["output_multiplier"]) == {0.0} and group["init_scale"].nunique() == 7
    alone = H.group_rows(table, _design(config), ("output_multiplier",))
    assert set(alone["init_scale"]) == {0.0} and alone["output_multiplier"].nunique() == 7


# --------------------------------------------------------------------------------------------
# Optima


def test_one_axis_optimum_is_recovered_and_drifts_by_the_planted_slope():
    config = axes_config([["init_scale"]])
    table = make_axes_results(config, planted(x_slope=0.5, noise=0.05, lr0=DEFAULT_LR))
    h = H.hparams_analysis(table, _design(config))
    opt = h.optima.set_index("depth")
    for L in (2, 4, 8):
        assert opt.loc[L, "optimum"] == pytest.approx(0.3 + 0.5 * math.log2(L / 2), abs=0.1)
        assert opt.loc[L, "interval"] == "t" and pd.isna(opt.loc[L, "edge"])
        assert opt.loc[L, "optimum_lo"] < opt.loc[L, "optimum"] < opt.loc[L, "optimum_hi"]
    d = h.drift[h.drift["axis"] == "depth"].iloc[0]
    assert d["hparam"] == "init_scale" and d["slope"] == pytest.approx(0.5, abs=0.1)
    assert d["slope_lo"] <= 0.5 <= d["slope_hi"]


def test_two_axis_optimum_recovers_both_coordinates_and_their_drift():
    config = axes_config([["lr", "init_scale"]])
    table = make_axes_results(config, planted(x_slope=0.5, lr_slope=-0.4, noise=0.05))
    h = H.hparams_analysis(table, _design(config))
    for L in (2, 4, 8):
        r = math.log2(L / 2)
        o = h.optima[h.optima["depth"] == L].set_index("hparam")
        assert o.loc["init_scale", "optimum"] == pytest.approx(0.3 + 0.5 * r, abs=0.1)
        assert o.loc["lr", "optimum"] == pytest.approx(-2.6 - 0.4 * r, abs=0.1)
        assert o.loc["init_scale", "best_loss"] == pytest.approx(1.0, abs=0.01)
        assert (o["group"] == "lr_x_init_scale").all() and o["edge"].isna().all()
    d = h.drift[h.drift["axis"] == "depth"].set_index("hparam")
    for hp, slope in (("init_scale", 0.5), ("lr", -0.4)):
        assert d.loc[hp, "slope"] == pytest.approx(slope, abs=0.1)
        assert d.loc[hp, "slope_lo"] <= slope <= d.loc[hp, "slope_hi"]


def test_refine_2d_is_exact_on_a_quadratic_and_falls_back_to_the_grid_point():
    a, b = np.arange(-3.0, 4.0), np.arange(-2.0, 3.0)
    aa, bb = np.meshgrid(a, b, indexing="ij")
    z = 1 + (aa - 0.3) ** 2 + 0.5 * (aa - 0.3) * (bb + 0.4) + (bb + 0.4) ** 2
    o = H.refine_2d(a, b, z)
    assert (o.a, o.b, o.loss) == pytest.approx((0.3, -0.4, 1.0), abs=1e-9)
    assert o.edge_a is None and o.bracket_a == (-1.0, 1.0) and o.bracket_b == (-1.0, 1.0)
    edge = H.refine_2d(a, b, 1 + (aa - 5) ** 2 + bb**2)
    assert (edge.a, edge.b) == (3.0, 0.0)
    assert edge.edge_a == "high" and edge.cause_a == "grid" and edge.bracket_a == (2.0, math.inf)
    z_div = np.where(aa > 0.5, np.inf, z)
    div = H.refine_2d(a, b, z_div)
    assert div.a == 0.0 and div.edge_a == "high" and div.cause_a == "divergence"
    assert div.bracket_a == (-1.0, 1.0)


def test_an_optimum_at_the_grid_edge_has_an_open_bracket_and_no_seed_interval():
    config = axes_config([["init_scale"], ["lr", "output_multiplier"]])

    def fn(scheme, n, L, k, p, s):
        return 1 + (p["init_scale"] + 9) ** 2 + (p["output_multiplier"] - 9) ** 2 + 0.01 * s

    h = H.hparams_analysis(make_axes_results(config, fn), _design(config))
    one = h.optima[h.optima["hparam"] == "init_scale"]
    assert (one["edge"] == "low").all() and (one["bracket_lo"] == -math.inf).all()
    assert (one["optimum"] == -3.0).all() and (one["interval"] == "none").all()
    two = h.optima[h.optima["hparam"] == "output_multiplier"]
    assert (two["edge"] == "high").all() and (two["bracket_hi"] == math.inf).all()
    assert (two["edge_cause"] == "grid").all()
    d = h.drift[(h.drift["hparam"] == "init_scale") & (h.drift["axis"] == "depth")].iloc[0]
    assert d["n_censored"] == 3 and math.isinf(d["slope_min"])


# --------------------------------------------------------------------------------------------
# Path, shape axes, joint regret


PATH = ((32, 2), (64, 4), (128, 8), (256, 16))


def test_path_drift_recovers_a_planted_slope_along_the_path():
    config = axes_config([["lr", "init_scale"]], path=PATH)

    fn = planted(x_slope=0.3, noise=0.03, along="width", salt=1)
    table = make_axes_results(config, fn, shapes=PATH, seeds=(0, 1, 2, 3, 4))
    h = H.hparams_analysis(table, _design(config))
    assert h.gamma == pytest.approx(1.0)
    p = h.path_drift.set_index("hparam")
    assert p.loc["init_scale", "slope"] == pytest.approx(0.3, abs=0.08)
    assert p.loc["init_scale", "slope_lo"] <= 0.3 <= p.loc["init_scale", "slope_hi"]
    assert p.loc["lr", "slope"] == pytest.approx(0.0, abs=0.08)
    a = A.analyze(table, {"config": config})  # one depth per width: no crash
    assert a.path_drift is not None and len(a.path_drift) == 1
    assert a.path_drift["slope"].iloc[0] == pytest.approx(0.0, abs=0.08)


def test_shape_axis_gives_eta_star_and_its_drift_at_every_value():
    axes = axes_config([])["axes"] | {
        "batch_size": {"values": [16.0, 64.0], "default": 16.0, "unit": "count", "kind": "shape"}
    }
    config = axes_config([["lr", "init_scale"]], axes=axes)

    def fn(scheme, n, L, k, p, s):
        slope = 0.0 if p["batch_size"] == 16 else -0.5
        return planted(lr_slope=slope, noise=0.03)(scheme, n, L, k, p, s)

    table = make_axes_results(config, fn)
    h = H.hparams_analysis(table, _design(config))
    d = h.shape_drift[h.shape_drift["axis"] == "depth"].set_index("shape_value")
    assert d.loc[16.0, "slope"] == pytest.approx(0.0, abs=0.1)
    assert d.loc[64.0, "slope"] == pytest.approx(-0.5, abs=0.1)
    assert set(h.optima["batch_size"]) == {16.0, 64.0}
    a = A.analyze(table, {"config": config})
    assert set(a.results["batch_size"]) == {16.0}


def test_joint_regret_is_zero_when_nothing_moves_and_positive_when_it_does():
    config = axes_config([["lr", "init_scale"]])
    still = H.joint_regret(
        H.axis_finals(make_axes_results(config, planted()), _design(config)), _design(config)
    )
    assert still["regret"].abs().max() == pytest.approx(0.0, abs=1e-12)
    moving = make_axes_results(config, planted(x_slope=1.0))
    reg = H.joint_regret(H.axis_finals(moving, _design(config)), _design(config))
    assert reg.set_index("depth").loc[2, "regret"] == 0.0
    worst = H.worst_joint_regret(reg).iloc[0]
    assert worst["regret"] > 0.1 and worst["at_depth"] == 8


def test_joint_regret_is_infinite_where_the_base_point_diverges():
    config = axes_config([["lr", "init_scale"]])

    def fn(scheme, n, L, k, p, s):
        if L == 8 and p["lr"] >= -3:
            return None
        return planted()(scheme, n, L, k, p, s)

    reg = H.joint_regret(
        H.axis_finals(make_axes_results(config, fn), _design(config)), _design(config)
    )
    assert reg.set_index("depth").loc[8, "regret"] == math.inf


# --------------------------------------------------------------------------------------------
# analyze, metrics, report


def test_analyze_without_axes_has_no_hparams():
    table = make_axes_results(axes_config([["lr", "init_scale"]]), planted())
    table = table[table["init_scale"] == 0].drop(columns=["init_scale", "output_multiplier"])
    a = A.analyze(table, {"config": {"name": "old"}})
    assert a.hparams is None and a.path_drift is None


def test_suite_metrics_name_the_axes():
    config = axes_config([["lr", "init_scale"], ["output_multiplier"]])
    table = make_axes_results(config, planted(x_slope=0.5, noise=0.03, om_star=0.4))
    m = suite_metrics(A.analyze(table, {"config": config}))
    names = set(m["metric"])
    for metric in (
        "drift_depth/init_scale",
        "abs_drift_depth/init_scale",
        "drift_depth/output_multiplier",
        "regret_joint/lr_x_init_scale",
        "regret_joint/output_multiplier",
        "drift_depth",
    ):
        assert metric in names
    v = m.set_index("metric").loc["drift_depth/init_scale", "value"]
    assert v == pytest.approx(0.5, abs=0.1)
    assert m.groupby(["scheme", "optimizer", "block_depth", "metric"]).size().max() == 1


def write_axes_run(path: Path, config, table) -> Path:
    from hptransfer.stats.results import write_json, write_table

    path.mkdir(parents=True)
    write_table(table, path / "results.parquet")
    write_json({"config": config, "cells": sorted(table["cell"].unique())}, path / "meta.json")
    return path


def test_report_of_an_axes_run_has_the_section_and_its_figures(tmp_path: Path):
    config = axes_config([["lr", "init_scale"], ["output_multiplier"]])
    table = make_axes_results(config, planted(x_slope=0.5, noise=0.03, om_star=0.4))
    run = write_axes_run(tmp_path / "run", config, table)
    md = R.write_report(run).read_text()
    assert "## Hyperparameters beyond the learning rate" in md
    for name in (
        "axis_loss_lr_x_init_scale_init_scale.png",
        "axis_loss_output_multiplier_output_multiplier.png",
        "axis_heatmap_lr_x_init_scale.png",
    ):
        assert (run / "figures" / name).exists()
        assert f"figures/{name}" in md
    assert "drifts" in md and "transfers" in md
    card = R.compare([run, run])
    assert len(card) == 2


def test_meta_json_round_trip_keeps_the_axes(tmp_path: Path):
    config = axes_config([["init_scale"]])
    run = write_axes_run(tmp_path / "r", config, make_axes_results(config, planted()))
    meta = json.loads((run / "meta.json").read_text())
    assert _design(meta["config"]).groups == (("init_scale",),)


def test_refine_2d_refines_each_coordinate_along_its_line_next_to_divergence():
    """A diverged corner of the 3 x 3 neighbourhood: no joint fit, but a coordinate with two
    finite neighbours on its own line is refined by that line's parabola (the other is
    censored next to the divergence)."""
    a, b = np.array([-1.0, 0.0, 1.0]), np.array([-1.0, 0.0, 1.0])
    z = (a[:, None] - 0.3) ** 2 + (b[None, :] - 0.0) ** 2
    z[2, 2] = np.inf  # diverged corner: the 3 x 3 fit is out
    z[1, 2] = np.inf  # b's upper neighbour diverged: b censored high
    o = H.refine_2d(a, b, z)
    assert o.a == pytest.approx(0.3)
    assert o.b == 0.0 and o.edge_b == "high" and o.cause_b == "divergence"
    assert o.edge_a is None


def test_a_group_without_lr_reads_only_the_default_learning_rate():
    config = {
        "lr_default": -1.0,
        "lr_default_by_scheme": {"mup": -3.0},
        "axes": {
            "output_multiplier": {
                "values": [-1.0, 0.0, 1.0],
                "default": 0.0,
                "unit": "log2",
                "kind": "traced",
            }
        },  # fmt: skip
        "axis_groups": [["lr"], ["output_multiplier"]],
    }
    rows = pd.DataFrame(
        [
            {"scheme": s, "log2_lr": lr, "output_multiplier": om}
            for s in ("mup", "nfd")
            for lr in (-3.0, -2.0, -1.0)
            for om in ((-1.0, 0.0, 1.0) if lr == (-3.0 if s == "mup" else -1.0) else (0.0,))
        ]
    )
    got = H.group_rows(rows, _design(config), ("output_multiplier",))
    assert set(zip(got.scheme, got.log2_lr, strict=True)) == {("mup", -3.0), ("nfd", -1.0)}
    assert len(got) == 6
    assert len(H.group_rows(rows, _design(config), ("lr",))) == 6  # the lr line at output 0


# --------------------------------------------------------------------------------------------
# Transfer along a model path (no axes beyond the learning rate)


def path_config(name="path") -> dict:
    """A plain sweep over the learning rate whose shapes are the points of PATH."""
    return {"name": name, "steps": STEPS[-1], "axes": {}, "axis_groups": [["lr"]],
            "model": {"path": [list(p) for p in PATH]}}  # fmt: skip


def planted_lr(slope: float, noise: float = 0.03, lr0: float = -2.6, salt: int = 0):
    """loss = 1 + 0.2 (log2 lr - lr*)^2, lr* = lr0 + slope log2(n / 32) + seed noise: eta*
    moves by ``slope`` octaves per doubling of the width along PATH."""

    def fn(scheme, n, L, k, p, s):
        jitter = noise * np.random.default_rng([s, n, salt]).standard_normal()
        return 1.0 + 0.2 * (p["lr"] - (lr0 + slope * math.log2(n / 32) + jitter)) ** 2

    return fn


def path_analysis(slope: float) -> A.Analysis:
    config = path_config()
    table = make_axes_results(config, planted_lr(slope), shapes=PATH, seeds=(0, 1, 2, 3, 4))
    return A.analyze(table, {"config": config})


def test_a_planted_drift_along_the_path_is_recovered_per_point_and_drifts():
    a = path_analysis(-0.5)
    opt = a.path_optima.set_index("point")
    assert list(opt.index) == ["n=32, L=2", "n=64, L=4", "n=128, L=8", "n=256, L=16"]
    want = -2.6 - 0.5 * np.arange(4)
    assert opt["log2_eta_star"].to_numpy() == pytest.approx(want, abs=0.1)
    assert (opt["log2_eta_lo"] <= opt["log2_eta_star"]).all()
    table = R._pivot(a.path_optima, "path_index", R._eta_cell, lambda r: r["point"])
    assert list(table.columns) == ["scheme, k", *opt.index]
    card = a.scorecard.iloc[0]
    assert card["drift_path"] == pytest.approx(-0.5, abs=0.08)
    assert card["regret_path"] > 0.02 and card["regret_path_at"] == "n=256, L=16"
    assert card["verdict"].startswith("Does not transfer along the path: drift -0.5")
    assert "per doubling of width along the path" in card["verdict"]
    assert "A single shape" not in card["verdict"]
    reg = a.path_regret.set_index("point")["regret"]
    assert reg.loc["n=32, L=2"] == 0.0 and reg.is_monotonic_increasing
    m = suite_metrics(a).set_index("metric")["value"]
    assert m["abs_drift_path"] == pytest.approx(0.5, abs=0.08)
    assert m["regret_path"] == pytest.approx(reg.max())
    assert m["drift_path"] == pytest.approx(card["drift_path"])


def test_a_flat_optimum_along_the_path_transfers_with_no_regret():
    a = path_analysis(0.0)
    card = a.scorecard.iloc[0]
    assert abs(card["drift_path"]) < 0.08
    assert card["regret_path"] == pytest.approx(0.0, abs=2e-3)
    assert card["verdict"].startswith("Transfers along the path")
    m = suite_metrics(a)
    assert {"drift_path", "abs_drift_path", "regret_path"} <= set(m["metric"])
    assert m.groupby(["scheme", "optimizer", "block_depth", "metric"]).size().max() == 1


def test_report_of_a_path_run_has_the_tables_and_figures(tmp_path: Path):
    config = path_config()
    table = make_axes_results(config, planted_lr(-0.5), shapes=PATH)
    run = write_axes_run(tmp_path / "run", config, table)
    md = R.write_report(run).read_text()
    section = md.split("## Optimal learning rate along the model path")[1].split("\n## ")[0]
    assert "| scheme, k | n=32, L=2 | n=64, L=4 | n=128, L=8 | n=256, L=16 |" in section
    assert "Transfer regret along the path" in section and "| worst |" in section
    assert "Stable range" in section
    for name in ("loss_vs_lr_path.png", "eta_star_path.png"):
        assert (run / "figures" / name).exists()
        assert f"figures/{name}" in md
    assert "A single shape" not in md and "Does not transfer along the path" in md


def test_a_run_without_a_path_keeps_its_report_sections(tmp_path: Path):
    config = {"name": "plain", "steps": STEPS[-1], "axes": {}, "axis_groups": [["lr"]]}
    table = make_axes_results(config, planted_lr(0.0))  # depths 2, 4, 8 at width 64
    run = write_axes_run(tmp_path / "run", config, table)
    md = R.write_report(run).read_text()
    assert re.findall(r"^## (.+)$", md, re.M) == [
        "Claims",
        "Sweep",
        "Verdicts",
        "Scorecard",
        "Optimal learning rate across depth (n = 64)",
        "Local drift across depth (n = 64)",
        "Figures",
        "Method",
        "Configuration",
    ]
    assert "model path" not in md and "path" not in A.analyze_run(run).scorecard.columns
    assert not (run / "figures" / "eta_star_path.png").exists()
