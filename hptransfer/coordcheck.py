"""Coordinate checks (DESIGN.md section 5): per-coordinate sizes of every layer across shapes.

For each shape, train a few steps from the same seed and report, per layer role, RMS(a_0),
RMS(a_t) and RMS(a_t - a_0) of the pre-activations on the probe batch, plus the movement
ratios. Under a scheme that is right for a given axis (width for muP; depth too for depth-muP),
these are flat along that axis; under SP the readout's change grows with width.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hptransfer.analysis import ols_slope
from hptransfer.data import Dataset
from hptransfer.model import Architecture
from hptransfer.optim import OptimizerConfig
from hptransfer.schemes import Scheme
from hptransfer.train import train_run


def coord_check(
    scheme: Scheme | str,
    archs: list[Architecture],
    data: Dataset,
    lr: float,
    steps: int = 5,
    seeds: tuple[int, ...] = (0,),
    opt: OptimizerConfig | None = None,
    batch_size: int = 128,
) -> pd.DataFrame:
    """One row per (shape, role): width, depth, role and the movement statistics.

    Statistics are averaged over ``seeds`` (each seed: its own init draws and batches).
    """
    opt = opt or OptimizerConfig("sgd")
    rows = []
    for arch in archs:
        per_role: dict[str, dict[str, float]] = {}
        for seed in seeds:
            result = train_run(scheme, arch, opt, lr, seed, data, steps, batch_size)
            for key, value in result.movement.items():
                stat, role = key.split("/")
                stats = per_role.setdefault(role, {})
                stats[stat] = stats.get(stat, 0.0) + value / len(seeds)
        for role, stats in per_role.items():
            rows.append({"width": arch.width, "depth": arch.depth, "role": role, **stats})
    return pd.DataFrame(rows)


def spread(frame: pd.DataFrame, column: str, by: str = "role") -> pd.Series:
    """max / min of ``column`` over shapes, per ``by`` group (1.0 = perfectly flat)."""
    return frame.groupby(by)[column].agg(lambda v: float(np.max(v) / np.min(v)))


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x."""
    return ols_slope(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)))
