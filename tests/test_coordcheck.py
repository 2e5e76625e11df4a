"""Coordinate checks and the feature-movement collapse, asserted on short real training runs.

Measured numbers behind the thresholds are in docs/guide.md's maintainer section.
"""

import numpy as np
import pytest

from hptransfer.cli import main
from hptransfer.network.data import mnist1d, teacher
from hptransfer.network.model import Architecture
from hptransfer.network.schemes import BUILTIN_SCHEMES
from hptransfer.tools.coordcheck import (
    CoordCheckError,
    CoordSetting,
    collapse_note,
    coord_check,
    loglog_slope,
    measure,
    own_movement_slopes,
    spread,
    verdict,
)
from hptransfer.tools.ladder import effective_rules, ladder

WIDTHS = (64, 128, 256, 512, 1024)
# The width checks at 4x (make test) and at 16x (slow: the five widths, compiled per width).
BY_WIDTH = [
    pytest.param(WIDTHS[:3], id="64-256"),
    pytest.param(WIDTHS, id="64-1024", marks=pytest.mark.slow),
]


def _width_archs(k=2, widths=WIDTHS):
    return [Architecture(n, 4, k, (32,), 10, base_width=64, base_depth=4) for n in widths]


@pytest.fixture(scope="module")
def coord_data():
    return teacher(num_samples=4096, in_shape=(32,), num_classes=10, seed=0)


@pytest.mark.parametrize("widths", BY_WIDTH)
def test_mup_coordinates_are_flat_in_width(coord_data, widths):
    # Averaged over 3 seeds; width 64 is the finite-width outlier (measured spread about 1.3).
    archs = _width_archs(widths=widths)
    frame = coord_check("mup", archs, coord_data, lr=2**-3, steps=5, seeds=(0, 1, 2))
    for column in ("rms", "rms_change"):
        ratios = spread(frame, column)
        assert set(ratios.index) == {"input", "hidden_1", "hidden_2", "readout"}
        assert (ratios < 1.5).all(), f"{column} not flat in width under muP:\n{ratios}"
    # hidden pre-activations at init are O(1) too; the muP readout starts at O(1/sqrt(m)) by design
    init = spread(frame, "rms_init")
    assert init[["input", "hidden_1", "hidden_2"]].max() < 1.5
    assert init["readout"] > 2.0


@pytest.mark.parametrize("widths", BY_WIDTH)
def test_sp_readout_change_grows_with_width(teacher_data, widths):
    archs = _width_archs(k=1, widths=widths)
    lo, hi = widths[0], widths[-1]
    frame = coord_check("sp", archs, teacher_data, lr=2**-8, steps=1)
    readout = frame[frame.role == "readout"].set_index("width")["rms_change"]
    # Grows like the width under SP (16x across 64-1024, 4x across 64-256); asserted: at least
    # like its square root (4.0 across 64-1024, the bound before the 4x version; 2.0 across 4x).
    assert readout[hi] / readout[lo] > (hi / lo) ** 0.5
    mup = coord_check("mup", archs, teacher_data, lr=2**-8, steps=1)
    mup_readout = mup[mup.role == "readout"].set_index("width")["rms_change"]
    assert mup_readout[hi] / mup_readout[lo] < 1.5


def test_depth_mup_output_change_is_flat_in_depth_for_one_layer_blocks(teacher_data):
    archs = [Architecture(64, L, 1, (32,), 10, base_depth=2) for L in (2, 8, 32)]
    frame = coord_check("depth_mup", archs, teacher_data, lr=2**-2, steps=5)
    readout = frame[frame.role == "readout"]["rms_change"]
    assert readout.max() / readout.min() < 1.5
    # muP without the branch multiplier: the output change is not flat in depth
    sp_frame = coord_check("mup", archs, teacher_data, lr=2**-12, steps=5)
    sp_readout = sp_frame[sp_frame.role == "readout"]["rms_change"]
    assert sp_readout.max() / sp_readout.min() > 3.0


@pytest.fixture(scope="module")
def movement_by_depth():
    """hidden_1 movement after 150 SGD steps at lr 2^-2 on MNIST-1D, depths 2, 8 and 32 (the
    slopes over a 16x range; every depth is a program of its own), k = 2."""
    data = mnist1d(4000)
    archs = [Architecture(64, L, 2, (40,), 10, base_depth=2) for L in (2, 8, 32)]
    out = {}
    for scheme in ("depth_mup", "nfd"):
        frame = coord_check(scheme, archs, data, lr=2**-2, steps=150)
        out[scheme] = frame[frame.role == "hidden_1"]
    return out


def test_first_internal_layer_stops_learning_under_depth_mup(movement_by_depth):
    h = movement_by_depth["depth_mup"]
    own = loglog_slope(h.depth, h.own_movement)
    weight = loglog_slope(h.depth, h.weight_change)
    assert -0.75 <= own <= -0.25
    assert -0.75 <= weight <= -0.25


def test_nfd_restores_first_layer_movement(movement_by_depth):
    dm, nfd = movement_by_depth["depth_mup"], movement_by_depth["nfd"]
    for stat in ("own_movement", "weight_change"):
        assert loglog_slope(nfd.depth, nfd[stat]) >= loglog_slope(dm.depth, dm[stat]) + 0.2
    # The total movement of z_1 is nearly flat for both: the block's input moves anyway.
    for h in (dm, nfd):
        assert abs(loglog_slope(h.depth, h.total_movement)) < 0.2
    assert np.all(np.isfinite(nfd.own_movement))


# --------------------------------------------------------------------------------------------
# The coordinate-check command's measurement, verdict and ladder (a few seconds each)

SMALL_WIDTHS = (64, 128, 256, 512)
SMALL_DEPTHS = (2, 4, 16)


def test_width_check_fails_sp_and_passes_mup(teacher_data):
    setting = CoordSetting(values=SMALL_WIDTHS, steps=3, seeds=(0, 1))
    mup = verdict(measure("mup", setting, teacher_data), "width")
    assert mup["passed"].all(), mup.to_string()
    assert set(mup["role"]) == {"input", "hidden_1", "readout"}
    sp = verdict(measure("sp", setting, teacher_data), "width")
    failing = sp.set_index("role")
    # SP: the readout's update grows like the width, the input layer's shrinks like 1/width
    assert not failing.loc["readout", "passed"] and failing.loc["readout", "slope"] > 0.5
    assert not failing.loc["input", "passed"] and failing.loc["input", "slope"] < -0.4


def test_depth_check_passes_depth_mup_with_one_layer_blocks(teacher_data):
    setting = CoordSetting(axis="depth", values=SMALL_DEPTHS, steps=3, seeds=(0, 1))
    table = verdict(measure("depth_mup", setting, teacher_data), "depth")
    assert table["passed"].all(), table.to_string()
    # muP has no branch multiplier: at the same rate the deeper nets blow up
    assert not verdict(measure("mup", setting, teacher_data), "depth")["passed"].all()


def test_depth_check_shows_hidden_1_collapse_under_depth_mup_not_nfd(teacher_data):
    setting = CoordSetting(axis="depth", values=SMALL_DEPTHS, block_depth=2, steps=3, seeds=(0,))
    frames = {s: measure(s, setting, teacher_data) for s in ("depth_mup", "nfd")}
    own = {s: own_movement_slopes(frame, "depth") for s, frame in frames.items()}
    assert own["depth_mup"]["hidden_1"] < -0.3  # about L^-1/2: hidden_1 stops learning
    assert abs(own["nfd"]["hidden_1"]) < 0.15  # NFD's sqrt(L) on its learning rate restores it
    for scheme in own:  # the block's last layer keeps the by-design L^-1/2 of the branch
        assert own[scheme]["hidden_2"] < -0.3
    assert "hidden_1's own movement falls" in collapse_note(frames["depth_mup"], "depth")
    assert collapse_note(frames["nfd"], "depth") is None


def test_setting_rejects_bad_input():
    with pytest.raises(CoordCheckError, match="axis"):
        CoordSetting(axis="height")
    with pytest.raises(CoordCheckError, match="at least two"):
        CoordSetting(values=(64,))


def test_ladder_changes_one_rule_per_rung():
    sp, mup = BUILTIN_SCHEMES["sp"], BUILTIN_SCHEMES["mup"]
    rungs = ladder(sp, mup, block_depth=2, optimizer="sgd")
    assert effective_rules(rungs[0].scheme, 2) == effective_rules(sp, 2)

    def used(scheme):  # what SGD reads: everything but Adam's rate and epsilon
        rules = effective_rules(scheme, 2)
        return {role: (r.init_std, r.forward, r.lr_sgd) for role, r in rules.items()}

    assert used(rungs[-1].scheme) == used(mup)
    assert [r.change.split(":")[0] for r in rungs[1:]] == [
        "input.lr_sgd", "readout.init_std", "readout.lr_sgd", "vector.lr_sgd",
    ]  # fmt: skip
    for before, after in zip(rungs, rungs[1:], strict=False):
        a, b = effective_rules(before.scheme, 2), effective_rules(after.scheme, 2)
        assert sum(a[role] != b[role] for role in a) == 1
    no_bias = ladder(sp, mup, block_depth=2, optimizer="sgd", bias=False)
    assert [r.change for r in no_bias] == [r.change for r in rungs[:-1]]
    depth = ladder(mup, BUILTIN_SCHEMES["depth_mup"], block_depth=1, optimizer="adam")
    assert [r.change.split(":")[0] for r in depth[1:]] == ["hidden_1.lr_adam", "branch_exponent"]


def test_coordcheck_command_localises_a_broken_rule(tmp_path, capsys):
    broken = tmp_path / "broken.toml"
    broken.write_text(
        '[mup_broken]\nextends = "mup"\ndescription = "muP with the readout lr left at SP\'s"\n'
        "readout = { lr_sgd = [0, 0], lr_adam = [0, 0] }\n"
    )
    small = [
        "--data",
        "teacher",
        "--widths",
        "64",
        "128",
        "256",
        "512",
        "--steps",
        "3",
        "--seeds",
        "2",
    ]
    figure = tmp_path / "fig.png"
    rc = main(
        [
            "coordcheck",
            "--scheme-file",
            str(broken),
            "--scheme",
            "mup_broken",
            "--out",
            str(figure),
            *small,
        ]
    )
    out = capsys.readouterr().out
    assert rc == 1 and figure.exists()
    # the readout's update grows with width (and through it hidden_1's); the input layer is right
    verdict_line = out.splitlines()[-1]
    assert verdict_line.startswith("mup_broken: FAILED across width:") and "readout" in verdict_line
    assert "input" not in verdict_line
    rc = main(
        [
            "coordcheck",
            "--scheme-file",
            str(broken),
            "--scheme",
            "mup_broken",
            "--ladder",
            "--ladder-from",
            "mup",
            *small,
        ]
    )
    last = capsys.readouterr().out.splitlines()[-1]
    assert rc == 1
    assert last.startswith("rung 1 (readout.lr_sgd: m^-1 r^0 -> m^0 r^0) first breaks the check"), (
        last
    )


def test_the_transformer_check_measures_every_role_and_shows_the_mlp_collapse():
    """Across depth (2, 8) at width 32: every transformer role is measured, and depth-muP's MLP
    first layer's own movement falls with depth while NFD's does not (its sqrt(L))."""
    from hptransfer.network.data import text

    data = text(seq_len=8, eval_sequences=1)
    setting = CoordSetting(
        axis="depth", values=(2, 8), width=32, depth=2, block_depth=2, base_width=32,
        optimizer="sgd", lr=2.0**-3, steps=3, seeds=(0, 1), batch_size=8,
        family="transformer", head_dim=8, mlp_ratio=2,
    )  # fmt: skip
    own = {s: own_movement_slopes(measure(s, setting, data), "depth") for s in ("depth_mup", "nfd")}
    assert set(own["nfd"].index) == {
        "input", "attn_q", "attn_k", "attn_v", "attn_out", "hidden_1", "hidden_2", "readout"
    }  # fmt: skip
    assert own["depth_mup"]["hidden_1"] < -0.25
    assert own["nfd"]["hidden_1"] - own["depth_mup"]["hidden_1"] > 0.3
    with pytest.raises(CoordCheckError, match="block_depth = 1 for the transformer"):
        CoordSetting(family="transformer", block_depth=1, values=(2, 4), axis="depth")


def test_the_transformer_ladder_is_refused_with_one_line(capsys):
    assert main(["coordcheck", "--family", "transformer", "--ladder"]) == 2
    assert "--ladder with --family transformer; allowed: --family mlp" in capsys.readouterr().err
