"""Local drift across depth (hptransfer.stats.local_drift) on planted per-seed eta*: consecutive-depth
and deepest-half slopes with intervals, the largest shift, the curvature test, its verdict
sentence and claim (f)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hptransfer.stats.local_drift import (
    CURVED,
    STRAIGHT,
    deep_half,
    largest_shift,
    local_columns,
    local_drift,
    max_shift,
    quadratic_coefficient,
    series_local_drift,
)
from hptransfer.stats.rules import drift_band
from hptransfer.stats.verdicts import FAILS, HOLDS, claims, local_verdict

DEPTHS = np.array([2, 4, 8, 16, 32, 64])
X = np.log2(DEPTHS.astype(float))
SEEDS = 5
NOISE = 0.05


def flat_then_falling(knee: int = 32, fall: float = -1.0) -> np.ndarray:
    """Planted log2 eta*: -3 up to L = knee, then ``fall`` octaves per doubling beyond."""
    return -3.0 + fall * np.clip(X - math.log2(knee), 0.0, None)


def straight(slope: float = -0.3) -> np.ndarray:
    return -3.0 + slope * (X - X[0])


def per_seed(eta: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return eta[None, :] + NOISE * rng.standard_normal((SEEDS, len(eta)))


def rows_of(eta: np.ndarray, seed_eta: np.ndarray, censored=None, lo=None, hi=None):
    """series_local_drift of one planted series; the seed-mean eta* is the mean of the seeds'."""
    located = np.isfinite(seed_eta)
    total = np.where(located, seed_eta, 0.0).sum(0)
    mean = np.where(located.any(0), total / np.maximum(located.sum(0), 1), eta)
    censored = np.zeros(len(eta), bool) if censored is None else censored
    lo = mean if lo is None else lo
    hi = mean if hi is None else hi
    return pd.DataFrame(series_local_drift(DEPTHS, mean, censored, lo, hi, seed_eta))


def card_row(rows: pd.DataFrame) -> dict:
    """The scorecard columns local_columns would give this series (planted, one series)."""
    s = rows[rows["kind"] == "series"].iloc[0]
    d = rows[rows["kind"] == "deep_half"].iloc[0]
    return dict(
        depth_min=int(DEPTHS[0]), max_shift_depth=s["shift"], max_shift_depth_lo=s["shift_lo"],
        max_shift_depth_hi=s["shift_hi"], max_shift_depth_at=s["shift_depth"],
        curvature_depth=s["curv"], curvature_depth_lo=s["curv_lo"],
        curvature_depth_hi=s["curv_hi"], curvature_depth_test=s["curv_test"],
        deep_drift_depth=d["slope"],
    )  # fmt: skip


def test_flat_then_falling_is_said_so_and_is_curved():
    eta = flat_then_falling()
    rows = rows_of(eta, per_seed(eta))
    text = local_verdict(rows[rows["kind"] == "pair"], card_row(rows))
    assert text.startswith("Local drift: flat to L = 32, falls beyond")
    series = rows[rows["kind"] == "series"].iloc[0]
    assert series["curv_test"] == CURVED and series["curv_hi"] < 0.0


def test_a_knee_elsewhere_moves_the_depth_in_the_sentence():
    eta = flat_then_falling(knee=8)
    rows = rows_of(eta, per_seed(eta))
    text = local_verdict(rows[rows["kind"] == "pair"], card_row(rows))
    assert "flat to L = 8, falls beyond" in text


def test_a_straight_line_fits():
    eta = straight()
    rows = rows_of(eta, per_seed(eta))
    series = rows[rows["kind"] == "series"].iloc[0]
    assert series["curv_lo"] <= 0.0 <= series["curv_hi"] and series["curv_test"] == STRAIGHT
    text = local_verdict(rows[rows["kind"] == "pair"], card_row(rows))
    assert "the straight line fits" in text and "flat to" not in text


DRAWS = 200
NOMINAL = 0.9  # the intervals' level (series_local_drift's default ci)
SLACK = 0.1  # 200 draws: a binomial sd of ~0.02 around 0.9, so 0.8 is far out


@pytest.mark.parametrize("planted", [flat_then_falling(), straight()])
def test_intervals_contain_the_planted_local_slopes(planted):
    """Over many planted draws, the 90% intervals contain the planted consecutive-depth slopes,
    the deepest-half OLS slope and the largest shift about as often as they say."""
    truth = np.diff(planted) / np.diff(X)
    idx = deep_half(X)
    true_deep = np.polyfit(X[idx], planted[idx], 1)[0]
    true_shift = float(max_shift(planted))
    hits = {"pair": [], "deep_half": [], "shift": []}
    for draw in range(DRAWS):
        rows = rows_of(planted, per_seed(planted, seed=draw))
        pairs = rows[rows["kind"] == "pair"].reset_index(drop=True)
        assert len(pairs) == len(truth) and (pairs["n_seed_slopes"] == SEEDS).all()
        hits["pair"] += list((pairs["slope_lo"] <= truth) & (truth <= pairs["slope_hi"]))
        deep = rows[rows["kind"] == "deep_half"].iloc[0]
        assert deep["depth_from"] == DEPTHS[idx[0]] and deep["depth_to"] == DEPTHS[-1]
        hits["deep_half"].append(deep["slope_lo"] <= true_deep <= deep["slope_hi"])
        series = rows[rows["kind"] == "series"].iloc[0]
        hits["shift"].append(series["shift_lo"] <= true_shift <= series["shift_hi"])
        assert series["shift_depth"] == DEPTHS[1 + np.argmax(np.abs(planted[1:] - planted[0]))]
    for name, h in hits.items():
        assert np.mean(h) >= NOMINAL - SLACK, (name, np.mean(h))


def test_quadratic_coefficient_recovers_a_planted_parabola():
    c = -0.2
    y = 1.0 + 0.5 * X + c * X**2
    assert quadratic_coefficient(X, y)[0] == pytest.approx(2 * c)
    assert np.isnan(quadratic_coefficient(X[:2], y[:2])[0])  # a line through 2 depths


def test_a_censored_optimum_makes_the_local_slope_a_bracket_range():
    eta = flat_then_falling()
    seed_eta = per_seed(eta)
    seed_eta[:, -1] = np.nan  # every seed's optimum at L = 64 at the grid's low edge
    censored = np.zeros(len(eta), bool)
    censored[-1] = True
    top = eta[-1] + 0.5  # open below: eta* somewhere in (-inf, top]
    mean = seed_eta.mean(0)
    lo, hi = mean.copy(), mean.copy()
    lo[-1], hi[-1] = -math.inf, top
    rows = rows_of(eta, seed_eta, censored, lo, hi)
    last = rows[(rows["kind"] == "pair") & (rows["depth_to"] == DEPTHS[-1])].iloc[0]
    assert np.isnan(last["slope"]) and last["n_censored"] == 1
    assert last["slope_min"] == -math.inf
    assert last["slope_max"] == pytest.approx((top - mean[-2]) / (X[-1] - X[-2]))
    assert (last["check_lo"], last["check_hi"]) == (last["slope_min"], last["slope_max"])
    # the bracket range lies below -band: the sentence still says where eta* falls
    text = local_verdict(rows[rows["kind"] == "pair"], card_row(rows))
    assert "flat to L = 32, falls beyond" in text
    series = rows[rows["kind"] == "series"].iloc[0]
    assert np.isnan(series["shift"]) and series["shift_max"] == math.inf


def test_largest_shift_brackets_when_the_base_is_censored():
    eta = np.array([-3.0, -3.5, -4.0])
    censored = np.array([True, False, False])
    lo, hi = np.array([-3.5, -3.5, -4.0]), np.array([-2.5, -3.5, -4.0])
    out = largest_shift(eta, censored, lo, hi, np.full((0, 3), np.nan))
    assert out["shift_min"] == pytest.approx(0.5) and out["shift_max"] == pytest.approx(1.5)


def planted_sweep(eta: np.ndarray, scheme: str = "nfd") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(optima, seed optima) tables of one planted series at width 64, k = 2."""
    seed_eta = per_seed(eta)
    mean = seed_eta.mean(0)
    base = dict(family="mlp", scheme=scheme, optimizer="sgd", width=64, block_depth=2)
    optima = pd.DataFrame(
        [base | dict(depth=int(L), log2_eta_star=m, edge=None, edge_cause=None,
                     bracket_lo=m - 1.0, bracket_hi=m + 1.0)
         for L, m in zip(DEPTHS, mean, strict=True)]
    )  # fmt: skip
    seeds = pd.DataFrame(
        [base | dict(depth=int(L), seed=s, log2_eta_star=seed_eta[s, j])
         for s in range(SEEDS) for j, L in enumerate(DEPTHS)]
    )  # fmt: skip
    return optima, seeds


@pytest.mark.parametrize(
    ("planted", "expected"),
    [(straight(slope=0.0), HOLDS), (flat_then_falling(fall=-2.0), FAILS)],
)
def test_claim_f_reads_nfds_deepest_half_slope(planted, expected):
    optima, seeds = planted_sweep(planted)
    local = local_drift(optima, seeds)
    card = pd.DataFrame(
        [dict(family="mlp", scheme="nfd", optimizer="sgd", block_depth=2, at_width=64,
              depth_min=2, depth_max=64, ci=0.9)]
    )  # fmt: skip
    card = local_columns(card, local, optima)
    table = claims(card)
    assert list(table["claim"]) == ["a", "b", "c", "d", "e", "f"]
    f = table.iloc[-1]
    assert f["verdict"] == expected
    # the band is one octave over the deepest half's range (rules.drift_band)
    band = drift_band(card["deep_depth_from"].iloc[0], 64)
    inside = max(abs(f["lo"]), abs(f["hi"])) < band
    assert inside == (expected == HOLDS)
    assert f["scale"] == "n=64, L=16-64, k=2"


def test_the_largest_shift_interval_stays_at_or_above_zero():
    flat = straight(slope=0.0)
    out = largest_shift(flat, np.zeros(len(flat), bool), flat, flat, per_seed(flat))
    assert out["shift_interval"] == "t" and 0.0 <= out["shift_lo"] <= out["shift"]
