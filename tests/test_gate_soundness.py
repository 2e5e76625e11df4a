"""Is the regression gate sound? Planted results tables whose truth is known (issue 16).

Every test here failed on the check before intervals (a748301): the baseline compared points
with flat tolerances (1 octave on eta*, 0.35 on drift, nothing on spread or regret), relative
bounds took max(-inf, nan) for a missing reference, and a drift with an open-bracket optimum
was judged on the located optima alone.

Planted run: per (scheme, depth, seed) an optimum eta*_{s,L} = -3 + drift log2(L / 2) + noise
(sd SEED_SD octave per seed, as measured on the quick suite), the final loss an exact bowl
1 + c (log2 lr - eta*)^2 on the grid, so the analysis recovers every seed's optimum exactly.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest

from hptransfer.stats import analysis, baseline_test, seed_metrics
from hptransfer.stats.intervals import FAILS, HOLDS, INCONCLUSIVE, MISSING
from hptransfer.stats.verdicts import suite_metrics
from hptransfer.tools import coordcheck
from hptransfer.tools.check import (
    CheckError,
    check_expectations,
    choose_suite,
    format_table,
    load_expectations,
)

DEPTHS = (2, 4, 8, 16)  # 3 doublings: a swap moves eta* by <= 0.9 octave (old tolerance 1.0)
X = np.log2(np.array(DEPTHS) / DEPTHS[0])
GRID = np.arange(-6.0, 0.01, 0.5)
STEPS = (0, 100, 150, 200)
SEEDS = 5
SEED_SD = 0.08
CURVATURE = 0.1
TRUTH = {"nfd": 0.0, "depth_mup": 0.3}  # drift in octaves per doubling of depth, k = 2


def draw(rng: np.random.Generator, drifts=TRUTH, sd: float = SEED_SD) -> dict[str, np.ndarray]:
    """{scheme: per-seed eta* [seed, depth]} of the planted truth."""
    return {
        s: -3.0 + d * X[None, :] + sd * rng.standard_normal((SEEDS, len(DEPTHS)))
        for s, d in drifts.items()
    }


def results_table(etas: dict[str, np.ndarray], curvature=None, k: int = 2) -> pd.DataFrame:
    """A results table in the engine's format with the bowls of the module docstring."""
    rows = []
    for scheme, eta in etas.items():
        c = (curvature or {}).get(scheme, CURVATURE)
        for j, depth in enumerate(DEPTHS):
            for seed in range(eta.shape[0]):
                for x in GRID:
                    final = 1.0 + c * (x - eta[seed, j]) ** 2
                    for t in STEPS:
                        rows.append(dict(
                            scheme=scheme, family="mlp", optimizer="sgd", width=64, depth=depth,
                            block_depth=k, base_width=64, base_depth=DEPTHS[0], lr=2.0**x,
                            log2_lr=float(x), seed=seed, step=t,
                            train_loss=math.nan if t == 0 else final, test_loss=final + 0.1,
                            test_accuracy=0.9, diverged=False, diverged_step=math.nan,
                            cell=f"{scheme}-64-{depth}-{k}",
                        ))  # fmt: skip
    return pd.DataFrame(rows)


class Run:
    """The check's view of a planted run: analysis, per-seed samples, metrics with intervals."""

    def __init__(self, etas, curvature=None):
        self.a = analysis.analyze(results_table(etas, curvature))
        self.samples = seed_metrics.seed_samples(self.a)
        self.metrics = seed_metrics.with_intervals(suite_metrics(self.a), self.samples, self.a.ci)

    def record(self):
        a = self.a
        return baseline_test.baseline_record(
            a.optima, a.seeds, self.metrics, self.samples, None, a.ci
        )

    def check(self, *expect):
        return check_expectations(self.metrics, {"expect": list(expect)}, None, self.samples)


def swapped(record, a="nfd", b="depth_mup"):
    """``record`` with the two schemes' eta* cells and metrics exchanged."""
    out = copy.deepcopy(record)
    for part in ("eta_star", "metrics"):
        for row in out[part]:
            row["scheme"] = {a: b, b: a}.get(row["scheme"], row["scheme"])
    return out


@pytest.fixture(scope="module")
def draws():
    base = draw(np.random.default_rng(1))
    other = draw(np.random.default_rng(2))
    mutated = {**other, "nfd": other["nfd"] + 0.33 * X[None, :]}
    return base, other, mutated


@pytest.fixture(scope="module")
def base_run(draws):
    return Run(draws[0])


def _failed(table):
    return set(table.loc[~table["held"], "what"])


# --------------------------------------------------------------------------------------------
# 1. The baseline comparison catches a swap and a drift, and not a new seed draw


def test_planted_optima_are_recovered_exactly(base_run, draws):
    seeds = base_run.a.seeds.sort_values(["scheme", "depth", "seed"])
    for scheme, eta in draws[0].items():
        got = seeds[seeds["scheme"] == scheme].pivot_table(
            index="seed", columns="depth", values="log2_eta_star"
        )
        np.testing.assert_allclose(got.to_numpy(), eta, atol=1e-9)


def test_swapping_nfd_and_depth_mup_in_the_baseline_fails(base_run):
    record = base_run.record()
    assert baseline_test.compare(record, record)["held"].all()
    table = baseline_test.compare(record, swapped(record))
    failed = _failed(table)
    for scheme in TRUTH:
        assert f"drift_depth {scheme} k=2" in failed, table.to_string()
        assert f"spread_depth {scheme} k=2" in failed
        assert f"log2 eta* {scheme} k=2 n=64 L=16" in failed
    # at the base depth every scheme is the same network: those rows still hold
    assert not any("L=2" in w for w in failed), table.to_string()
    assert set(table.loc[~table["held"], "outcome"]) == {FAILS}


def test_nfd_drifting_in_the_run_not_the_baseline_fails(base_run, draws):
    table = baseline_test.compare(Run(draws[2]).record(), base_run.record())
    failed = _failed(table)
    assert "drift_depth nfd k=2" in failed, table.to_string()
    assert "log2 eta* nfd k=2 n=64 L=16" in failed
    assert not any("depth_mup" in w for w in failed), table.to_string()


def test_another_seed_draw_of_the_same_truth_passes(base_run, draws):
    table = baseline_test.compare(Run(draws[1]).record(), base_run.record())
    assert len(table) == 2 * len(DEPTHS) + 2 * 3  # eta* cells; drift, spread, regret
    assert table["held"].all(), table[~table["held"]].to_string()


def synthetic_record(etas: dict[str, np.ndarray]) -> dict:
    """The record :func:`baseline_test.baseline_record` makes of a planted run, computed in
    closed form (exact bowls: eta* of the seed-mean curve is the mean of the seeds' optima)."""
    cells, metrics = [], []
    for scheme, eta in etas.items():
        mean = eta.mean(0)
        for j, depth in enumerate(DEPTHS):
            cells.append(dict(
                scheme=scheme, optimizer="sgd", block_depth=2, width=64, depth=depth,
                log2_eta_star=float(mean[j]), edge=None, bracket_lo=float(mean[j] - 0.5),
                bracket_hi=float(mean[j] + 0.5), grid_step=0.5, seeds=list(range(SEEDS)),
                seed_values=eta[:, j].tolist(),
            ))  # fmt: skip
        var = eta.var(0)
        regret = CURVATURE * (mean[0] - mean) ** 2 / (1.0 + CURVATURE * var)
        per_seed = {
            "drift_depth": (np.polyfit(X, mean, 1)[0], np.polyfit(X, eta.T, 1)[0]),
            "spread_depth": (np.ptp(mean), np.ptp(eta, axis=1)),
            "regret_depth": (regret.max(), (CURVATURE * (eta[:, :1] - eta) ** 2).max(axis=1)),
        }
        for metric, (value, values) in per_seed.items():
            metrics.append(dict(
                scheme=scheme, optimizer="sgd", block_depth=2, metric=metric,
                value=float(value), lo=None, hi=None, bracketed=False,
                seeds=list(range(SEEDS)), seed_values=[float(v) for v in values],
            ))  # fmt: skip
    return {"format": 2, "ci": 0.9, "eta_star": cells, "metrics": metrics}


def test_synthetic_record_is_what_the_analysis_records(base_run, draws):
    real = base_run.record()
    synth = synthetic_record(draws[0])
    cells = {(c["scheme"], c["depth"]): c for c in real["eta_star"]}
    assert len(cells) == len(synth["eta_star"])
    for s in synth["eta_star"]:
        r = cells[(s["scheme"], s["depth"])]
        assert r["log2_eta_star"] == pytest.approx(s["log2_eta_star"], abs=1e-9)
        np.testing.assert_allclose(r["seed_values"], s["seed_values"], atol=1e-9)
    real_m = {(m["scheme"], m["metric"]): m for m in real["metrics"]}
    for m in synth["metrics"]:
        r = real_m[(m["scheme"], m["metric"])]
        tol = 1e-9 if m["metric"] != "regret_depth" else 0.02  # regret: read off the grid
        assert r["value"] == pytest.approx(m["value"], abs=tol), m["metric"]
        np.testing.assert_allclose(r["seed_values"], m["seed_values"], atol=tol)


def test_false_alarm_rate_and_power_over_planted_reruns():
    """40 (baseline, rerun) pairs of seed draws of the unchanged truth: the family-wise
    false-alarm rate stays near the stated 0.05 (0.15 allows for 40 draws); NFD drifting +0.33
    per doubling in the rerun is caught nearly always."""
    rng = np.random.default_rng(16)
    n = 40
    alarms = caught = 0
    for _ in range(n):
        baseline, rerun = synthetic_record(draw(rng)), draw(rng)
        alarms += not baseline_test.compare(synthetic_record(rerun), baseline)["held"].all()
        mutated = {**rerun, "nfd": rerun["nfd"] + 0.33 * X[None, :]}
        caught += not baseline_test.compare(synthetic_record(mutated), baseline)["held"].all()
    assert alarms / n <= 0.15, alarms
    assert caught / n >= 0.9, caught


# --------------------------------------------------------------------------------------------
# 2-4. Expectations on intervals


def _metric_rows(*rows):
    cols = ["scheme", "optimizer", "block_depth", "metric", "value", "lo", "hi"]
    frame = pd.DataFrame([dict(zip(cols, r, strict=True)) for r in rows], columns=cols)
    return seed_metrics.with_intervals(frame, pd.DataFrame(columns=seed_metrics.SAMPLE_COLUMNS))


def test_relative_bound_with_a_missing_reference_fails_naming_it():
    metrics = _metric_rows(("nfd", "sgd", 2, "abs_drift_depth", 0.02, 0.0, 0.05))
    spec = {"expect": [
        {"claim": "NFD drifts less than depth-muP", "scheme": "nfd", "block_depth": 2,
         "metric": "abs_drift_depth", "max_ref": {"scheme": "depth_mup", "block_depth": 2}},
        {"claim": "NFD below its own k=1", "scheme": "nfd", "block_depth": 2,
         "metric": "abs_drift_depth", "min_ref": {"scheme": "nfd", "block_depth": 1}},
        {"claim": "against a metric not measured", "scheme": "nfd", "block_depth": 2,
         "metric": "abs_drift_depth",
         "max_ref": {"scheme": "nfd", "block_depth": 2, "metric": "drift_width"}},
    ]}  # fmt: skip
    table = check_expectations(metrics, spec)
    assert table["outcome"].tolist() == [MISSING] * 3
    assert not table["held"].any()
    assert "reference depth_mup k=2" in table["note"].iloc[0]
    assert "nfd k=1" in table["note"].iloc[1]
    assert "drift_width" in table["note"].iloc[2]


NFD_BELOW = {
    "claim": "NFD drifts less than depth-muP",
    "scheme": "nfd",
    "block_depth": 2,
    "metric": "abs_drift_depth",
    "max_ref": {"scheme": "depth_mup", "block_depth": 2, "offset": -0.1},
}


def test_nfd_drifts_less_holds_when_nfd_is_flat(base_run):
    row = base_run.check(NFD_BELOW).iloc[0]
    assert row["outcome"] == HOLDS and row["held"], row.to_dict()
    assert "paired t" in row["note"]


def test_nfd_drifts_less_fails_when_nfd_is_depth_mup(draws):
    eta = draws[0]["depth_mup"]
    run = Run({"depth_mup": eta, "nfd": eta.copy()})
    row = run.check(NFD_BELOW).iloc[0]
    assert row["outcome"] == FAILS and not row["held"], row.to_dict()
    # identical rows: every seed's difference is 0, so the paired interval is [0, 0]
    assert "+0.00 [+0.00, +0.00] (paired t)" in row["note"], row["note"]


def test_flat_in_depth_never_holds_when_the_deepest_optimum_left_the_grid():
    rng = np.random.default_rng(4)
    eta = -3.0 + 0.07 * X[None, :] + 0.05 * rng.standard_normal((SEEDS, len(DEPTHS)))
    eta[:, -1] = 2.0  # above the grid's top (0.0): the loss falls all the way to the edge
    run = Run({"nfd": eta})
    deepest = run.a.optima[run.a.optima["depth"] == DEPTHS[-1]].iloc[0]
    assert deepest["edge"] == "high" and deepest["bracket_hi"] == math.inf
    row = run.check(
        {"claim": "NFD flat in depth", "scheme": "nfd", "block_depth": 2,
         "metric": "abs_drift_depth", "max": 0.35}
    ).iloc[0]  # fmt: skip
    assert row["value"] < 0.35  # the located optima alone look flat (what the old check read)
    assert row["outcome"] in (FAILS, INCONCLUSIVE) and not row["held"], row.to_dict()
    assert row["hi"] == math.inf


# --------------------------------------------------------------------------------------------
# 5. Spread and regret are compared with the baseline


def test_a_regret_change_fails_the_baseline_comparison():
    """The same optima, bowls 16x steeper: eta*, drift and spread unchanged, the regret of the
    base-tuned rate grows from about 0.5% to about 8%."""
    rng = np.random.default_rng(5)
    eta = {"nfd": -3.0 + 0.1 * X[None, :] + 0.03 * rng.standard_normal((SEEDS, len(DEPTHS)))}
    before = Run(eta, {"nfd": 0.055}).record()
    after = Run(eta, {"nfd": 0.88}).record()
    regret = {r["metric"]: r["value"] for r in before["metrics"]}["regret_depth"]
    regret_after = {r["metric"]: r["value"] for r in after["metrics"]}["regret_depth"]
    assert 0.002 < regret < 0.01 and 0.05 < regret_after < 0.12, (regret, regret_after)
    table = baseline_test.compare(after, before)
    assert {"spread_depth nfd k=2", "regret_depth nfd k=2"} <= set(table["what"])
    assert _failed(table) == {"regret_depth nfd k=2"}, table.to_string()
    assert baseline_test.compare(before, before)["held"].all()


# --------------------------------------------------------------------------------------------
# 6-7. allow_inconclusive, and a malformed expectations file


def test_allow_inconclusive_passes_inconclusive_never_fails():
    metrics = _metric_rows(
        ("a", "sgd", 2, "abs_drift_depth", 0.3, 0.2, 0.5),  # straddles 0.4
        ("b", "sgd", 2, "abs_drift_depth", 0.6, 0.5, 0.7),  # wholly above 0.4
    )
    expect = [
        {"claim": f"{s} flat", "scheme": s, "block_depth": 2, "metric": "abs_drift_depth",
         "max": 0.4, "allow_inconclusive": allow}
        for allow in (True, False) for s in ("a", "b")
    ]  # fmt: skip
    table = check_expectations(metrics, {"expect": expect})
    assert table["outcome"].tolist() == [INCONCLUSIVE, FAILS, INCONCLUSIVE, FAILS]
    assert table["held"].tolist() == [True, False, False, False]
    status = [line.split(":")[0] for line in format_table(table).splitlines()[1:]
              if not line.startswith(" ")]  # fmt: skip
    assert status == ["ok (inconclusive)", "FAILED", "INCONCLUSIVE", "FAILED"]


def test_allow_inconclusive_must_be_a_boolean(tmp_path):
    path = tmp_path / "e.toml"
    entry = 'claim="x"\nscheme="a"\nblock_depth=2\nmetric="m"\nmax=1\n'
    path.write_text(f"[s]\n[[s.expect]]\n{entry}allow_inconclusive = true\n")
    assert load_expectations("s", path)["expect"][0]["allow_inconclusive"] is True
    path.write_text(f'[s]\n[[s.expect]]\n{entry}allow_inconclusive = "yes"\n')
    with pytest.raises(CheckError, match="allow_inconclusive"):
        load_expectations("s", path)


def test_a_top_level_expect_is_refused_in_one_line(tmp_path):
    path = tmp_path / "expectations.toml"
    path.write_text(
        '[[expect]]\nclaim = "NFD flat"\nscheme = "nfd"\nblock_depth = 2\n'
        'metric = "abs_drift_depth"\nmax = 0.35\n\n'
        '[ci]\ndescription = "ci"\n[quick]\ndescription = "quick"\n'
    )
    for call in (
        lambda: choose_suite(path, None, "quick"),
        lambda: choose_suite(path, "quick", None),
        lambda: load_expectations("quick", path),
    ):
        with pytest.raises(CheckError) as err:
            call()
        message = str(err.value)
        assert "\n" not in message
        assert "['expect']" in message and "['ci', 'quick']" in message, message
        assert "needs [quick]" in message, message


# --------------------------------------------------------------------------------------------
# 9. Coordinate checks decided on slope intervals over seeds


def test_coordcheck_interval_verdict_fails_growth_and_holds_flat():
    rng = np.random.default_rng(9)
    rows = []
    for width in (64, 128, 256, 512):
        for seed in range(3):
            for step in (1, 2, 3):
                for role, power in (("input", 0.0), ("hidden_1", 1.0), ("readout", 0.0)):
                    for stat in ("rms", "rms_change"):
                        size = (width / 64) ** power * math.exp(0.05 * rng.standard_normal())
                        rows.append(dict(width=width, depth=4, seed=seed, step=step, role=role,
                                         stat=stat, value=size))  # fmt: skip
    frame = pd.DataFrame(rows)
    table = coordcheck.interval_verdict(frame, "width").set_index("role")
    assert table.loc["hidden_1", "outcome"] == FAILS
    assert table.loc["hidden_1", "lo"] > coordcheck.DEFAULT_TOLERANCE
    assert table.loc["hidden_1", "slope"] == pytest.approx(1.0, abs=0.1)
    for role in ("input", "readout"):
        assert table.loc[role, "outcome"] == HOLDS, table.to_string()
        assert -0.4 < table.loc[role, "lo"] <= table.loc[role, "hi"] < 0.4
    # a role that blows up at one width (a non-finite size) fails, it is not skipped
    frame.loc[(frame["role"] == "input") & (frame["width"] == 512), "value"] = math.inf
    assert (
        coordcheck.interval_verdict(frame, "width").set_index("role").loc["input", "outcome"]
        == FAILS
    )


def test_the_check_reads_the_same_drift_interval_as_the_report(base_run):
    """The report's scorecard and the check decide on the same numbers: for an uncensored
    series the check's drift interval is the scorecard's drift_depth_lo / _hi, and its
    abs_drift interval is |.| of it."""
    card = base_run.a.scorecard.set_index(["scheme", "block_depth"])
    m = base_run.metrics.set_index(["scheme", "block_depth", "metric"])
    for (scheme, k), row in card.iterrows():
        drift = m.loc[(scheme, k, "drift_depth")]
        assert drift["value"] == pytest.approx(row["drift_depth"])
        assert drift["lo"] == pytest.approx(row["drift_depth_lo"])
        assert drift["hi"] == pytest.approx(row["drift_depth_hi"])
        absolute = m.loc[(scheme, k, "abs_drift_depth")]
        lo, hi = row["drift_depth_lo"], row["drift_depth_hi"]
        expect = (0.0, max(-lo, hi)) if lo <= 0 <= hi else tuple(sorted((abs(lo), abs(hi))))
        assert (absolute["lo"], absolute["hi"]) == pytest.approx(expect)
