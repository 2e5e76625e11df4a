"""The horizon axis under a schedule (hptransfer.stats.horizons), the schedule suite's claims
(hptransfer.stats.schedule_claims) and its report, on planted results tables: the T-step run
of each schedule, eta*'s drift against T, and claims (i)-(k) deciding what was planted.

That the constant rate's T-step run is the first T steps of a longer run (the premise of
reading shorter horizons by truncation) is tested on a real sweep in
tests/test_axes.py::test_shape_axes_are_cells_of_their_own."""

import math

import numpy as np
import pandas as pd
import pytest
from test_analysis import make_results, quadratic

from hptransfer.stats.horizons import (
    available_horizons,
    horizon_analyses,
    horizon_runs,
    horizon_slopes,
)
from hptransfer.stats.schedule_claims import ScheduleRun, schedule_claims
from hptransfer.stats.tables import AnalysisError, final_losses

DEPTHS = (2, 4, 8, 16, 32)
SEEDS = (0, 1, 2, 3)
LRS = tuple(np.arange(-8.0, 2.0, 0.5))


def _meta(steps: int, kind: str = "constant", axis: list[int] | None = None) -> dict:
    cfg = {"steps": steps, "optimizer": {"name": "sgd"}}
    if kind != "constant":
        cfg["schedule"] = {"kind": kind, "warmup_fraction": 0.1, "final_fraction": 0.0}
    if axis:
        cfg["axes"] = {"steps": {"default": steps, "kind": "shape", "unit": "count",
                                 "values": axis}}  # fmt: skip
        cfg["axis_groups"] = [["lr"]]
    return {"config": cfg}


def _planted(depth_slope: dict[str, float], shift: float = 0.0, noise: float = 0.1, seed=0):
    """nfd and depth_mup, k = 2: eta*_seed(L) = -3 + shift + slope[scheme] log2(L / 2) + noise."""
    rng = np.random.default_rng(seed)
    jitter = {(s, L, i): rng.normal(0, noise) for s in depth_slope for L in DEPTHS for i in SEEDS}
    return make_results(
        quadratic(
            lambda sch, n, L, k, i: (
                -3.0 + shift + depth_slope[sch] * math.log2(L / 2) + jitter[sch, L, i]
            )
        ),  # fmt: skip
        schemes=tuple(depth_slope),
        depths=DEPTHS,
        block_depths=(2,),
        log2_lrs=LRS,
        seeds=SEEDS,
    )


def test_constant_rate_horizons_are_truncations_of_one_run():
    results = _planted({"nfd": 0.0})
    meta = _meta(200)
    assert available_horizons(results, meta) == [0, 50, 100, 150, 200]
    runs = horizon_runs(results, meta, [100, 200])
    short, short_meta = runs[100]
    assert short["step"].max() == 100 and short_meta["config"]["steps"] == 100
    assert len(runs[200][0]) == len(results) and meta["config"]["steps"] == 200  # not mutated
    with pytest.raises(AnalysisError, match=r"horizon 120 steps is not in this run"):
        horizon_runs(results, meta, [120])


def test_a_divergence_after_the_horizon_is_not_one_at_it():
    # rates above -1 diverge at step 120 (make_results): at T = 100 they had not, at 200 they had
    results = make_results(
        lambda s, n, L, k, x, i: None if x > -1 else (x + 2.0) ** 2 + 1.0, log2_lrs=LRS
    )
    runs = horizon_runs(results, _meta(200), [100, 200])
    finals = {t: final_losses(r) for t, (r, _) in runs.items()}
    late = finals[100]["log2_lr"] > -1
    assert not finals[100].loc[late, "diverged"].any() and finals[200].loc[late, "diverged"].all()
    assert finals[100].loc[late, "diverged_step"].isna().all()


def test_a_schedule_of_the_run_length_reads_only_its_own_runs():
    long = _planted({"nfd": 0.0}).assign(steps=200)
    short = _planted({"nfd": 0.0}, shift=1.0)
    short = short[short["step"] <= 100].assign(steps=100)
    results = pd.concat([long, short], ignore_index=True)
    meta = _meta(200, "cosine", axis=[100])
    assert available_horizons(results, meta) == [100, 200]
    runs = horizon_runs(results, meta)
    assert sorted(runs) == [100, 200]
    assert (runs[100][0]["step"].max(), runs[200][0]["step"].max()) == (100, 200)
    assert "steps" not in runs[100][0].columns and runs[100][1]["config"]["axes"] is None
    # a truncation of the 200-step run is not the 150-step run under a decay: refused
    with pytest.raises(
        AnalysisError,
        match=r"horizon 150 steps is not in this run \(schedule 'cosine'\); allowed: \[100, 200\]",
    ):
        horizon_runs(results, meta, [150])


@pytest.mark.parametrize(("per_doubling", "outcome"), [(0.0, "holds"), (1.0, "fails")])
def test_horizon_slopes_recover_the_planted_drift_against_t(per_doubling, outcome):
    # eta* moves by per_doubling octaves each time the run length doubles: T = 100, 200, 400
    frames = []
    for i, t in enumerate((100, 200, 400)):
        frames.append(_planted({"nfd": 0.0}, shift=per_doubling * i, seed=i).assign(steps=t))
    results = pd.concat(frames, ignore_index=True)
    slopes = horizon_slopes(horizon_analyses(results, _meta(400, "cosine", axis=[100, 200])))
    assert list(slopes["depth"]) == list(DEPTHS)
    assert slopes["slope"].to_numpy() == pytest.approx(per_doubling, abs=0.15)
    assert (slopes["check_lo"] < slopes["slope"]).all() and (
        slopes["slope"] < slopes["check_hi"]
    ).all()
    assert slopes["band"].to_numpy() == pytest.approx(0.5)  # one octave over 100-400
    assert set(slopes["outcome"]) == {outcome}


def _run(name: str, kind: str, depth_slope: dict[str, float], noise_seed: int = 0) -> ScheduleRun:
    # seed noise small enough for a regret < 2%
    results = _planted(depth_slope, noise=0.03, seed=noise_seed)
    return ScheduleRun(name, "sgd", kind, horizon_analyses(results, _meta(200, kind)))


def test_schedule_claims_decide_what_was_planted():
    constant = _run("c", "constant", {"nfd": -0.6, "depth_mup": 0.6})
    warm = _run("w", "cosine", {"nfd": 0.0, "depth_mup": 0.6})
    claims = schedule_claims([warm, constant]).set_index(["claim", "statement"])
    (early,) = claims.xs("i").to_dict("records")  # the warm-up moved the drift from -0.6 to 0
    assert early["verdict"] == "holds" and early["value"] == pytest.approx(0.6, abs=0.1)
    assert early["lo"] > 0 and early["note"].startswith("moves it towards zero; cosine: drift")
    assert "constant rate: drift -0.6" in early["note"] and "beyond +-0.25" in early["note"]
    j = claims.xs("j")
    assert list(j["verdict"]) == ["does not hold", "holds"]  # depth-muP, NFD
    assert "constant rate at T=200" in j["note"].iloc[1]
    # one horizon per run: (k) cannot be measured, and says so
    assert set(claims.xs("k")["verdict"]) == {"not measured"}


@pytest.mark.parametrize(("warm_drift", "verdict", "effect"), [
    (-1.0, "does not hold", "moves it away from zero"),
    (-0.6, "inconclusive", "no change measured"),
])  # fmt: skip
def test_the_early_claim_fails_or_stays_open_when_the_warm_up_does_not_help(
    warm_drift, verdict, effect
):
    constant = _run("c", "constant", {"nfd": -0.6, "depth_mup": 0.0})
    warm = _run("w", "cosine", {"nfd": warm_drift, "depth_mup": 0.0}, noise_seed=1)
    claims = schedule_claims([constant, warm])
    (early,) = claims[claims["claim"] == "i"].to_dict("records")
    assert early["verdict"] == verdict and early["note"].startswith(effect)
    assert early["value"] == pytest.approx(warm_drift + 0.6, abs=0.1)


def test_the_suite_report_states_the_claims_in_a_runs_columns(tmp_path):
    # two runs on disk as `hptransfer sweep` leaves them: the page over them has the Claims
    # table that docs/results.md and the README copy, a row per run, and both figures
    import json
    import sys
    from pathlib import Path

    from hptransfer.reports.schedule_report import write_report

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import results_doc

    for name, kind, slopes in (("a_constant", "constant", {"nfd": -0.6, "depth_mup": 0.6}),
                               ("a_cosine", "cosine", {"nfd": 0.0, "depth_mup": 0.6})):  # fmt: skip
        run = tmp_path / name
        run.mkdir()
        _planted(slopes, noise=0.03).to_parquet(run / "results.parquet")
        meta = _meta(200, kind) | {"wall_seconds": 12.0, "replica_steps_computed": 1000}
        (run / "meta.json").write_text(json.dumps(meta))
    text = write_report(tmp_path).read_text()
    rows = results_doc.claim_rows(text)
    assert [r["verdict"] for r in rows[:3]] == ["holds", "does not hold", "holds"]
    assert rows[0]["claim"].startswith("(i) SGD: a warm-up moves NFD's early drift")
    assert "[a_constant](a_constant/report.md)" in text and "Total wall time: 24 s" in text
    assert (tmp_path / "figures" / "eta_by_horizon.png").stat().st_size > 0
    assert (tmp_path / "figures" / "early_drift.png").stat().st_size > 0


def test_a_run_with_a_schedule_axis_is_read_as_the_runs_of_its_kinds(tmp_path):
    # one directory holding both kinds (axes.schedule) gives the claims of two directories
    import json

    from hptransfer.reports.schedule_report import load_suite
    from hptransfer.stats.horizons import kind_runs

    constant = _planted({"nfd": -0.6, "depth_mup": 0.6}, noise=0.03).assign(schedule="constant")
    cosine = _planted({"nfd": 0.0, "depth_mup": 0.6}, noise=0.03).assign(schedule="cosine")
    meta = _meta(200, "cosine")
    meta["config"]["axes"] = {"schedule": {"values": ["constant", "cosine"], "default": "cosine",
                                           "unit": "kind", "kind": "shape"}}  # fmt: skip
    meta["config"]["axis_groups"] = [["lr"]]
    split = kind_runs(pd.concat([cosine, constant], ignore_index=True), meta)
    assert list(split) == ["constant", "cosine"]
    assert "schedule" not in split["constant"][1]["config"]  # the constant rate: no [schedule]
    assert split["cosine"][1]["config"]["schedule"]["kind"] == "cosine"
    assert split["cosine"][1]["config"]["axes"] is None and "schedule" not in split["cosine"][0]
    run = tmp_path / "both"
    run.mkdir()
    pd.concat([cosine, constant], ignore_index=True).to_parquet(run / "results.parquet")
    (run / "meta.json").write_text(json.dumps(meta))
    runs = load_suite(tmp_path)
    assert [(r.name, r.schedule) for r in runs] == [("both (constant)", "constant"),
                                                    ("both (cosine)", "cosine")]  # fmt: skip
    verdicts = schedule_claims(runs).set_index("claim")["verdict"]
    assert verdicts["i"] == "holds" and list(verdicts["j"]) == ["does not hold", "holds"]
