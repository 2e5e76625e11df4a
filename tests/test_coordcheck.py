"""Coordinate checks and the feature-movement collapse, asserted on short real training runs.

Measured numbers behind the thresholds are in the README's coordinate-check section.
"""

import numpy as np
import pytest

from hptransfer.coordcheck import coord_check, loglog_slope, spread
from hptransfer.data import mnist1d, teacher
from hptransfer.model import Architecture

WIDTHS = (64, 128, 256, 512, 1024)


def _width_archs(k=2):
    return [Architecture(n, 4, k, (32,), 10, base_width=64, base_depth=4) for n in WIDTHS]


@pytest.fixture(scope="module")
def coord_data():
    return teacher(num_samples=4096, in_shape=(32,), num_classes=10, seed=0)


def test_mup_coordinates_are_flat_in_width(coord_data):
    # Averaged over 3 seeds; width 64 is the finite-width outlier (measured spread about 1.3).
    frame = coord_check("mup", _width_archs(), coord_data, lr=2**-3, steps=5, seeds=(0, 1, 2))
    for column in ("rms", "rms_change"):
        ratios = spread(frame, column)
        assert set(ratios.index) == {"input", "hidden_1", "hidden_2", "readout"}
        assert (ratios < 1.5).all(), f"{column} not flat in width under muP:\n{ratios}"
    # hidden pre-activations at init are O(1) too; the muP readout starts at O(1/sqrt(m)) by design
    init = spread(frame, "rms_init")
    assert init[["input", "hidden_1", "hidden_2"]].max() < 1.5
    assert init["readout"] > 2.0


def test_sp_readout_change_grows_with_width(teacher_data):
    frame = coord_check("sp", _width_archs(k=1), teacher_data, lr=2**-8, steps=1)
    readout = frame[frame.role == "readout"].set_index("width")["rms_change"]
    assert readout[1024] / readout[64] > 4.0  # grows like the width (16x here) under SP
    mup = coord_check("mup", _width_archs(k=1), teacher_data, lr=2**-8, steps=1)
    mup_readout = mup[mup.role == "readout"].set_index("width")["rms_change"]
    assert mup_readout[1024] / mup_readout[64] < 1.5


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
    """hidden_1 movement after 150 SGD steps at lr 2^-2 on MNIST-1D, depths 2 to 32, k = 2."""
    data = mnist1d(4000)
    archs = [Architecture(64, L, 2, (40,), 10, base_depth=2) for L in (2, 4, 8, 16, 32)]
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
