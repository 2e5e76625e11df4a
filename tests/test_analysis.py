"""hptransfer.stats.analysis on synthetic result tables whose answers are known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hptransfer.stats import analysis as A

STEPS = (0, 50, 100, 150, 200)


def make_results(loss_fn, *, schemes=("s",), widths=(64,), depths=(4,), block_depths=(1,),
                 log2_lrs=tuple(range(-6, 1)), seeds=(0, 1), movement=None):  # fmt: skip
    """A results table in the engine's format.

    loss_fn(scheme, width, depth, k, x, seed) -> final training loss, or None for a replica
    that diverges at step 120 (its earlier losses are finite and tiny, 0.01, so a table that
    ignored divergence would pick it). The training curve decays to the final loss; the last
    three evaluations (steps 100-200) all equal it. movement(scheme, width, depth, k, x, seed)
    -> {"own_movement/hidden_1": v, ...} at the final step.
    """
    rows = []
    for scheme in schemes:
        for n in widths:
            for L in depths:
                for k in block_depths:
                    for x in log2_lrs:
                        for s in seeds:
                            final = loss_fn(scheme, n, L, k, x, s)
                            dies = final is None
                            for t in STEPS:
                                dead = dies and t >= 120
                                if t == 0:
                                    loss = math.nan
                                elif dies:
                                    loss = math.nan if dead else 0.01
                                else:
                                    loss = final + (3.0 if t == 50 else 0.0)
                                row = dict(
                                    scheme=scheme, family="mlp", optimizer="sgd", width=n,
                                    depth=L, block_depth=k, base_width=widths[0],
                                    base_depth=depths[0], lr=2.0**x, log2_lr=float(x), seed=s,
                                    step=t, train_loss=loss,
                                    test_loss=math.nan if dead else (0.01 if dies else final + 0.1),
                                    test_accuracy=math.nan if dead else 0.9,
                                    diverged=dead, diverged_step=120.0 if dies else math.nan,
                                    cell=f"{scheme}-{n}-{L}-{k}",
                                )  # fmt: skip
                                if movement is not None and t == STEPS[-1] and not dead:
                                    row |= movement(scheme, n, L, k, x, s)
                                rows.append(row)
    return pd.DataFrame(rows)


def quadratic(centre):
    """loss = (log2 lr - centre)^2 + 1, with centre(scheme, width, depth, k, seed)."""
    return lambda scheme, n, L, k, x, s: (x - centre(scheme, n, L, k, s)) ** 2 + 1.0


# ---------------------------------------------------------------------------------------------
# eta* and its refinement


def test_parabola_recovers_an_optimum_between_grid_points():
    grid = np.arange(-6.0, 1.0)
    opt = A.refine_optimum(grid, (grid + 2.3) ** 2 + 0.5)
    assert opt.edge is None and opt.edge_cause is None
    assert opt.log2_eta == pytest.approx(-2.3, abs=1e-12)
    assert opt.loss == pytest.approx(0.5, abs=1e-12)
    # a non-uniform grid, given unsorted
    grid = np.array([0.0, -1.0, -1.5, -4.0, -2.5])
    assert A.refine_optimum(grid, (grid + 1.9) ** 2).log2_eta == pytest.approx(-1.9, abs=1e-12)


def test_optimal_lr_table_recovers_the_planted_optimum_from_seed_average():
    # seeds sit +-0.2 octave around -2.3: each seed's argmin differs, the seed mean is exact
    df = make_results(quadratic(lambda scheme, n, L, k, s: -2.3 + (0.2 if s == 0 else -0.2)))
    (row,) = A.optimal_lr(df).to_dict("records")
    assert row["log2_eta_star"] == pytest.approx(-2.3, abs=1e-9)
    assert row["eta_star"] == pytest.approx(2**-2.3)
    assert row["best_loss"] == pytest.approx(1.04, abs=1e-9)  # 1 + 0.2^2: mean of the two seeds
    assert pd.isna(row["edge"])
    assert row["log2_lr_nearest"] == -2.0
    assert row["log2_eta_star_test"] == pytest.approx(-2.3, abs=1e-9)
    assert row["max_stable_log2_lr"] == 0.0 and row["max_stable_at_top"]
    assert row["n_seeds"] == 2


@pytest.mark.parametrize(
    ("loss", "edge", "cause", "at"),
    [
        ([1.0, 2, 3, 4, 5], "low", "grid", -4.0),
        ([5.0, 4, 3, 2, 1], "high", "grid", 0.0),
        ([5.0, 4, 2, np.inf, np.inf], "high", "divergence", -2.0),
        ([np.nan, 2.0, 3, 4, 5], "low", "divergence", -3.0),
        ([np.inf] * 5, "low", "all_diverged", math.nan),
    ],
)
def test_edge_optimum_is_flagged_and_not_extrapolated(loss, edge, cause, at):
    opt = A.refine_optimum(np.arange(-4.0, 1.0), loss)
    assert (opt.edge, opt.edge_cause) == (edge, cause)
    if math.isnan(at):
        assert math.isnan(opt.log2_eta) and opt.loss == math.inf
        assert math.isnan(opt.bracket_lo) and math.isnan(opt.bracket_hi)
    else:
        assert opt.log2_eta == at  # the grid point itself, not a parabola vertex
        # the bracket: one grid step either side, open past the grid's ends
        assert opt.bracket_lo == (at - 1.0 if at > -4.0 else -math.inf)
        assert opt.bracket_hi == (at + 1.0 if at < 0.0 else math.inf)


def test_edge_optimum_is_flagged_in_the_table_and_the_verdict():
    # optimum planted at -8, below the grid [-6, 0] at every depth
    df = make_results(quadratic(lambda *_: -8.0), depths=(2, 4, 8))
    a = A.analyze(df)
    assert (a.optima["edge"] == "low").all() and (a.optima["edge_cause"] == "grid").all()
    assert (a.optima["log2_eta_star"] == -6.0).all()
    row = a.scorecard.iloc[0]
    assert row["edges_grid_depth"] == "2, 4, 8 (low)"
    assert (a.optima["bracket_lo"] == -np.inf).all() and (a.optima["bracket_hi"] == -5.0).all()
    assert row["verdict"].startswith("Undecided") and "widen the grid" in row["verdict"]
    assert "transfers" not in row["verdict"].lower()


def test_diverged_replica_never_wins():
    # at log2 lr = -3 seed 1 diverges after logging losses of 0.01, far below anything else
    def loss(scheme, n, L, k, x, s):
        if x == -3 and s == 1:
            return None
        return (x + 2.0) ** 2 + 1.0

    df = make_results(loss)
    finals = A.final_losses(df)
    dead = finals[(finals["log2_lr"] == -3) & (finals["seed"] == 1)].iloc[0]
    assert dead["diverged"] and dead["final_train_loss"] == math.inf
    curves = A.lr_curves(finals)
    at = curves.set_index("log2_lr")
    assert at.loc[-3.0, "loss_mean"] == math.inf and at.loc[-3.0, "frac_diverged"] == 0.5
    assert at.loc[-2.0, "loss_mean"] == pytest.approx(1.0)  # evaluation at step 50 is not used
    (row,) = A.optimal_lr(finals).to_dict("records")
    # the argmin -2 has a diverged lower neighbour: a flagged bound at -2, never -3
    assert row["log2_eta_star"] == -2.0
    assert (row["edge"], row["edge_cause"]) == ("low", "divergence")
    assert row["frac_diverged"] == pytest.approx(1 / 14)


def test_largest_stable_rate_excludes_rates_where_any_seed_diverged():
    df = make_results(lambda scheme, n, L, k, x, s: None if x >= -1 + s else (x + 4) ** 2 + 1)
    (row,) = A.optimal_lr(df).to_dict("records")
    assert row["max_stable_log2_lr"] == -2.0  # seed 0 dies from -1 on, seed 1 from 0 on
    assert not row["max_stable_at_top"]
    assert row["log2_eta_star"] == pytest.approx(-4.0)


def test_curve_value_is_the_refined_curve():
    grid = np.arange(-4.0, 1.0)
    loss = (grid + 1.5) ** 2
    assert A.curve_value(grid, loss, -1.5) == pytest.approx(0.0, abs=1e-12)  # parabola
    assert A.curve_value(grid, loss, -3.5) == pytest.approx((loss[0] + loss[1]) / 2)  # linear
    assert math.isnan(A.curve_value(grid, loss, 0.5))  # outside the grid
    assert A.curve_value(grid, [1.0, 2, 3, np.inf, np.inf], -0.5) == math.inf


# ---------------------------------------------------------------------------------------------
# Drift and its bootstrap interval


def planted_drift(slope: float, noise: float, seeds=tuple(range(5))) -> pd.DataFrame:
    """eta*_seed(L) = -3 + slope log2(L/2) + N(0, noise), loss quadratic in log2 lr per seed."""
    rng = np.random.default_rng(1)
    depths = (2, 4, 8, 16, 32)
    jitter = {(L, s): rng.normal(0.0, noise) for L in depths for s in seeds}
    return make_results(
        quadratic(lambda scheme, n, L, k, s: -3.0 + slope * math.log2(L / 2) + jitter[L, s]),
        depths=depths,
        seeds=seeds,
        log2_lrs=tuple(np.arange(-9.0, 1.0, 0.5)),
    )


def test_seed_interval_contains_the_planted_slope():
    df = planted_drift(slope=-0.4, noise=0.15)
    optima = A.optimal_lr(df)
    seeds = A.seed_optima(df)
    (row,) = A.drift(optima, seeds, axes=("depth",)).to_dict("records")
    assert row["interval"] == "t" and row["n_seed_slopes"] == 5
    assert row["slope_lo"] < -0.4 < row["slope_hi"]
    assert row["slope_lo"] < row["slope"] < row["slope_hi"]
    assert 0.01 < row["slope_hi"] - row["slope_lo"] < 0.5  # a real interval, not a blanket
    assert row["n_points"] == 5 and row["n_edge"] == 0 and row["n_censored"] == 0
    assert row["spread"] == pytest.approx(np.ptp(optima["log2_eta_star"].to_numpy()))
    # every per-group interval is a t-interval over 5 per-seed optima around the estimate
    assert (optima["interval"] == "t").all() and (optima["n_seed_optima"] == 5).all()
    assert (optima["log2_eta_lo"] < optima["log2_eta_hi"]).all()


def test_seed_interval_collapses_without_seed_noise():
    df = planted_drift(slope=0.3, noise=0.0)
    a = A.analyze(df)
    (row,) = a.drift.to_dict("records")
    assert row["slope"] == pytest.approx(0.3, abs=1e-9)
    assert row["slope_lo"] == pytest.approx(0.3, abs=1e-9)
    assert row["slope_hi"] == pytest.approx(0.3, abs=1e-9)


def test_two_seeds_give_their_range_not_an_interval():
    df = planted_drift(slope=0.3, noise=0.1, seeds=(0, 1))
    a = A.analyze(df)
    (row,) = a.drift.to_dict("records")
    assert row["interval"] == "range" and row["n_seed_slopes"] == 2
    per_seed = [
        A.ols_slope(np.log2(g["depth"].to_numpy(float)), g["log2_eta_star"])
        for _, g in a.seeds.sort_values("depth").groupby("seed")
    ]
    assert row["slope_lo"] == pytest.approx(min(per_seed))
    assert row["slope_hi"] == pytest.approx(max(per_seed))
    assert "range of 2 seeds" in a.scorecard["verdict"].iloc[0]
    assert "90%" not in a.scorecard["verdict"].iloc[0]


def test_one_seed_gives_no_interval():
    df = planted_drift(slope=0.3, noise=0.1, seeds=(0,))
    a = A.analyze(df)
    (row,) = a.drift.to_dict("records")
    assert row["slope"] == pytest.approx(0.3, abs=0.15)
    assert math.isnan(row["slope_lo"]) and math.isnan(row["slope_hi"])


# ---------------------------------------------------------------------------------------------
# Transfer regret, movement, scorecard


def test_regret_is_zero_at_base_and_positive_where_the_optimum_moved():
    centre = {2: -3.0, 4: -3.0, 8: -1.0}
    df = make_results(quadratic(lambda scheme, n, L, k, s: centre[L]), depths=(2, 4, 8))
    optima = A.optimal_lr(df)
    regret = A.transfer_regret(A.lr_curves(df), optima).set_index("depth")
    assert regret.loc[2, "regret"] == 0.0
    assert regret.loc[4, "regret"] == pytest.approx(0.0, abs=1e-12)  # same optimum
    # the rate tuned at L = 2 (-3) at L = 8: loss (-3 + 1)^2 + 1 = 5 against a best of 1
    assert regret.loc[8, "regret"] == pytest.approx(4.0)
    assert regret.loc[8, "loss_at_base_eta"] == pytest.approx(5.0)
    assert (regret["base"] == 2).all()


def test_regret_is_infinite_where_the_base_rate_diverges():
    def loss(scheme, n, L, k, x, s):
        c = -2.0 if L == 2 else -5.0
        return None if (L == 4 and x >= -3) else (x - c) ** 2 + 1

    df = make_results(loss, depths=(2, 4))
    a = A.analyze(df)
    assert a.regret.set_index("depth").loc[4, "regret"] == math.inf
    row = a.scorecard.iloc[0]
    assert "diverges at L=4" in row["verdict"]
    assert "diverges at L=4" in row["divergence_flags"]


def test_movement_slope_recovers_a_planted_power_law():
    def movement(scheme, n, L, k, x, s):
        return {
            "own_movement/hidden_1": 0.3 * L**-0.5 * 2.0 ** (0.1 * x),
            "weight_change/hidden_1": 0.1 * L**-0.5,
            "total_movement/hidden_1": 0.2,
            "own_movement/readout": 0.05 * L**0.25,
        }

    df = make_results(quadratic(lambda *_: -2.0), depths=(2, 4, 8, 16), movement=movement)
    optima = A.optimal_lr(df)
    mv = A.movement_at_optimum(A.final_losses(df), optima)
    assert set(mv["log2_lr"]) == {-2.0}  # read at eta*'s grid point
    slopes = A.movement_slopes(mv, axes=("depth",)).set_index(["role", "stat"])["slope"]
    assert slopes["hidden_1", "own_movement"] == pytest.approx(-0.5)
    assert slopes["hidden_1", "weight_change"] == pytest.approx(-0.5)
    assert slopes["hidden_1", "total_movement"] == pytest.approx(0.0, abs=1e-12)
    assert slopes["readout", "own_movement"] == pytest.approx(0.25)


def test_scorecard_verdicts_follow_the_numbers():
    def centre(scheme, n, L, k, s):
        drift = {"flat": 0.0, "down": -0.8}[scheme]
        return -3.0 + drift * math.log2(L / 2) + 0.02 * (s - 1)

    def movement(scheme, n, L, k, x, s):
        return {"own_movement/hidden_1": 0.2 * L ** (-0.5 if scheme == "down" else 0.0)}

    df = make_results(
        quadratic(centre),
        schemes=("flat", "down"),
        depths=(2, 4, 8, 16),
        log2_lrs=tuple(np.arange(-8.0, 0.5, 0.5)),
        seeds=(0, 1, 2),
        movement=movement,
    )
    card = A.analyze(df).scorecard.set_index("scheme")
    flat, down = card.loc["flat"], card.loc["down"]
    assert flat["drift_depth"] == pytest.approx(0.0, abs=0.05)
    assert flat["regret_depth"] < A.TRANSFER_REGRET
    assert flat["verdict"].startswith("Transfers across depth")
    assert down["drift_depth"] == pytest.approx(-0.8, abs=0.05)
    assert down["drift_depth_lo"] <= down["drift_depth"] <= down["drift_depth_hi"]
    assert down["verdict"].startswith("Does not transfer across depth: drift -0.80")
    assert (flat["transfer_depth"], down["transfer_depth"]) == ("holds", "fails")
    # the same planted data with 2 seeds: no t-interval, nothing decided
    two = A.analyze(df[df["seed"] < 2]).scorecard.set_index("scheme")
    assert set(two["transfer_depth"]) == {"inconclusive"}
    assert two.loc["down", "verdict"].startswith("Undecided across depth")
    assert "L^-0.50" in down["verdict"]  # k = 1 here: reported, not called a collapse
    assert down["h1_own_slope_at_eta"] == pytest.approx(-0.5)
    # seed offsets -0.02, 0, +0.02 around the planted optimum: mean excess (0.0004 * 2) / 3
    assert down["best_loss_deepest"] == pytest.approx(1.0 + 0.0008 / 3, abs=1e-6)
    assert down["at_width"] == 64 and down["depths"] == "2-16"


def test_missing_columns_are_reported():
    with pytest.raises(A.AnalysisError, match="diverged"):
        A.final_losses(pd.DataFrame({"scheme": ["s"], "step": [1]}))


def test_optima_next_to_divergence_everywhere_make_the_verdict_inconclusive():
    df = make_results(
        lambda scheme, n, L, k, x, s: None if x >= -1 else (x + 1.5) ** 2 + 1, depths=(2, 4)
    )
    a = A.analyze(df)
    assert (a.optima["edge"] == "high").all()
    assert (a.optima["edge_cause"] == "divergence").all()
    assert (a.optima["log2_eta_star"] == -2.0).all()
    verdict = a.scorecard["verdict"].iloc[0]
    # eta* lies in [-3, -1] at both depths: the slope can be anything in [-2, 2]
    assert (a.optima["bracket_lo"] == -3.0).all() and (a.optima["bracket_hi"] == -1.0).all()
    assert a.drift["slope_min"].iloc[0] == pytest.approx(-2.0)
    assert a.drift["slope_max"].iloc[0] == pytest.approx(2.0)
    assert verdict.startswith("Undecided") and "[-2.00, +2.00]" in verdict
    assert "transfers" not in verdict.lower()


def test_the_check_passes_a_censored_eta_whose_bracket_contains_the_baseline():
    from hptransfer.stats.baseline_test import compare

    def record(value, edge=None, lo=None, hi=None):
        return {
            "format": 2,
            "eta_star": [{"scheme": "a", "optimizer": "sgd", "block_depth": 1, "width": 64,
                          "depth": 2, "log2_eta_star": value, "edge": edge, "bracket_lo": lo,
                          "bracket_hi": hi, "seed_values": [value, value, value]}],
            "metrics": [],
        }  # fmt: skip

    base = record(-4.0)
    # censored at -1.5 (next to divergence): eta* in [-4.5, -1.5] contains -4.0
    assert compare(record(-1.5, "high", -4.5, -1.5), base)["held"].all()
    # at the low grid edge: (-inf, -2.0] contains it too
    assert compare(record(-3.0, "low", None, -2.0), base)["held"].all()
    # a bracket that misses the baseline fails, and so does an unknown eta* (all diverged)
    assert not compare(record(-1.5, "high", -3.0, 0.0), base)["held"].any()
    assert not compare(record(None, "low", None, None), base)["held"].any()


def horizon_results(drift_at, steps=(50, 100, 150, 200), depths=(2, 4, 8), seeds=(0, 1, 2)):
    """Replicas whose loss at step t is (log2 lr - c)^2 + 1 + 0.01 seed, with
    c = -3 + drift_at(t) log2(L / 2): the optimum moves with the training horizon."""
    rows = []
    for L in depths:
        for x in np.arange(-7.0, 0.5, 0.5):
            for s in seeds:
                for t in steps:
                    c = -3.0 + drift_at(t) * math.log2(L / 2) + 0.05 * (s - 1)
                    loss = (x - c) ** 2 + 1.0
                    rows.append(dict(family="mlp", scheme="s", optimizer="sgd", width=64,
                                     depth=L, block_depth=2, log2_lr=x, lr=2.0**x, seed=s,
                                     step=t, train_loss=loss, test_loss=loss, diverged=False))  # fmt: skip
    return pd.DataFrame(rows)


def test_drift_at_every_step_and_the_step_from_which_transfer_holds():
    df = horizon_results(lambda t: -0.8 if t <= 100 else 0.0)
    a = A.analyze(df, last_evals=1)
    h = a.horizon[a.horizon["axis"] == "depth"].set_index("step")
    assert h.loc[50, "slope"] == pytest.approx(-0.8, abs=1e-6)
    assert h.loc[100, "slope"] == pytest.approx(-0.8, abs=1e-6)
    assert h.loc[150, "slope"] == pytest.approx(0.0, abs=1e-6)
    assert h.loc[50, "worst_regret"] > 0.5 and h.loc[200, "worst_regret"] < 1e-9
    # the last step is the final analysis
    assert h.loc[200, "slope"] == pytest.approx(a.drift["slope"].iloc[0], abs=1e-12)
    row = a.scorecard.iloc[0]
    assert row["transfer_from_step_depth"] == 150 and row["last_step"] == 200
    # depths 2-8: the band is one octave over two doublings
    assert "the drift interval lies inside +-0.50 from step 150 on (of 200)" in row["verdict"]
    # the other way round: transfer at short horizons is lost by the end
    late = A.analyze(horizon_results(lambda t: 0.0 if t <= 100 else -0.8), last_evals=1)
    assert pd.isna(late.scorecard.iloc[0]["transfer_from_step_depth"])
    assert late.scorecard.iloc[0]["drift_from_step_depth"] == 150
    verdict = late.scorecard.iloc[0]["verdict"]
    assert "the drift interval lies beyond +-0.50 from step 150 on (of 200)" in verdict


def test_losses_by_step_average_the_evaluations_up_to_each_step_and_mark_divergence():
    df = make_results(lambda scheme, n, L, k, x, s: None if x == -3 else 2.0 + x / 10)
    by_step = A.losses_by_step(df, last_evals=2)
    assert list(by_step.columns) == [50, 100, 150, 200]
    alive = by_step.xs(-2.0, level="log2_lr").iloc[0]
    # step 50 adds 3.0 to the loss (make_results): window of 2 at step 100 = mean of 50 and 100
    assert alive[50] == pytest.approx(4.8) and alive[100] == pytest.approx(3.3)
    assert alive[200] == pytest.approx(1.8)
    dead = by_step.xs(-3.0, level="log2_lr").iloc[0]  # diverges at step 120
    assert np.isfinite(dead[100]) and dead[150] == math.inf and dead[200] == math.inf


def test_claims_are_decided_from_planted_numbers():
    def centre(scheme, n, L, k, s):
        drift = 0.6 if (scheme == "depth_mup" and k == 2) else 0.0
        return -3.0 + drift * math.log2(L / 2) + 0.03 * (s - 1)

    def movement(scheme, n, L, k, x, s):
        p = -0.5 if (scheme == "depth_mup" and k == 2) else 0.0
        return {"own_movement/hidden_1": 0.2 * L**p * (1 + 0.01 * s)}

    df = make_results(
        quadratic(centre),
        schemes=("depth_mup", "nfd"),
        depths=(2, 4, 8, 16),
        block_depths=(1, 2),
        seeds=(0, 1, 2),
        log2_lrs=tuple(np.arange(-8.0, 1.0, 0.5)),
        movement=movement,
    )
    a = A.analyze(df)
    claims = a.claims.set_index("claim")
    assert claims.loc["a", "verdict"] == "holds"  # flat, t-interval inside +-0.25
    assert claims.loc["a", "interval"] == "90% t-interval over 3 seeds"
    assert claims.loc["b", "verdict"] == "holds"  # +0.6 per doubling: no transfer
    assert claims.loc["b", "value"] == pytest.approx(0.6, abs=0.05)
    assert claims.loc["c", "verdict"] == "holds"  # L^-1/2 at one fixed rate
    assert claims.loc["c", "value"] == pytest.approx(-0.5, abs=1e-6)
    assert claims.loc["d", "verdict"] == "holds"
    assert claims.loc["e", "verdict"] == "inconclusive"  # same best loss: interval spans 0
    assert claims.loc["b", "scale"] == "n=64, L=2-16, k=2"
    card = a.scorecard.set_index(["scheme", "block_depth"])
    # the regret's interval (paired, simultaneous over the depths) lies above 2%: no transfer
    assert card.loc[("depth_mup", 2), "regret_depth_lo"] > 0.02
    assert card.loc[("depth_mup", 2), "transfer_depth"] == "fails"
    assert card.loc[("nfd", 2), "transfer_depth"] == "holds"
    # two seeds: nothing is decided
    two = A.analyze(df[df["seed"] < 2]).claims
    assert set(two["verdict"]) == {"inconclusive"}
