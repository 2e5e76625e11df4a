"""The intervals mean what they say: coverage of the nominal 90% intervals on planted sweeps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hptransfer import analysis as A
from hptransfer import calibration as C
from hptransfer.intervals import interval_label


@pytest.mark.parametrize("n_seeds", [3, 5])
@pytest.mark.parametrize(("noise", "seed_sd"), C.SETTINGS)
@pytest.mark.parametrize("offset", C.OFFSETS)
def test_t_intervals_cover_the_planted_truth_at_their_nominal_rate(n_seeds, noise, seed_sd, offset):
    cov = C.coverage(n_seeds, noise, seed_sd, offset, n_draws=300, seed=n_seeds)
    assert 0.80 <= cov.eta_t <= 0.97, cov
    assert 0.80 <= cov.drift_t <= 0.97, cov


def test_two_seeds_are_a_range_and_cover_only_about_half_the_time():
    cov = C.coverage(2, 0.01, 0.1, 0.0, n_draws=400)
    assert 0.4 <= cov.eta_t <= 0.6 and 0.4 <= cov.drift_t <= 0.6  # the range of 2: P = 1/2
    assert interval_label(2) == "range of 2 seeds" and "90%" not in interval_label(2)
    assert interval_label(3) == "90% t-interval over 3 seeds"


def test_percentile_bootstrap_over_few_seeds_undercovers():
    cov = C.coverage(3, 0.01, 0.1, 0.0, n_draws=300)
    assert cov.eta_boot < 0.8 and cov.drift_boot < 0.8
    assert cov.eta_t > cov.eta_boot + 0.1


def test_calibration_runs_the_same_estimators_as_the_analysis_tables():
    """One planted draw through the full table chain gives the interval calibration computes."""
    rng = np.random.default_rng(7)
    loss, _ = C.plant(rng, 1, 3, noise=0.01, seed_sd=0.1, offset=0.2)
    rows = [
        dict(family="mlp", scheme="s", optimizer="sgd", width=64, depth=int(L), block_depth=2,
             log2_lr=float(x), lr=2.0**x, seed=s, step=t, train_loss=float(loss[0, s, j, i]),
             test_loss=float(loss[0, s, j, i]), diverged=False)
        for s in range(3) for j, L in enumerate(C.DEPTHS) for i, x in enumerate(C.GRID)
        for t in (100, 200, 300)
    ]  # fmt: skip
    a = A.analyze(pd.DataFrame(rows))
    x = np.log2(C.DEPTHS / C.DEPTHS[0])
    mean_curve = A.refine(C.GRID, loss[0].mean(0))
    per_seed = A.refine(C.GRID, loss[0]).log2_eta
    fit = C.drift_fit(x, mean_curve.log2_eta, mean_curve.edge != 0, mean_curve.bracket_lo,
                      mean_curve.bracket_hi, per_seed)  # fmt: skip
    (row,) = a.drift.to_dict("records")
    assert row["interval"] == "t"
    for col in ("slope", "slope_lo", "slope_hi"):
        assert row[col] == pytest.approx(fit[col], abs=1e-9)
    _, lo, hi, _ = A.seed_interval(per_seed.T, centre=mean_curve.log2_eta)
    assert a.optima.sort_values("depth")["log2_eta_lo"].to_numpy() == pytest.approx(lo)
    assert a.optima.sort_values("depth")["log2_eta_hi"].to_numpy() == pytest.approx(hi)
