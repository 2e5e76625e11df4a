"""The suites of `make bench` (benchmarks/run.py): which configs a suite runs, and that every
committed suite is on the results page (benchmarks/results_doc.py)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import results_doc  # noqa: E402
import run  # noqa: E402


def test_a_family_runs_its_members_and_not_the_suites_that_extend_its_name():
    assert [p.stem for p in run.family_configs("lm")] == ["lm_adam", "lm_sgd"]
    assert [p.stem for p in run.family_configs("schedule")] == [
        "schedule_adam_constant", "schedule_adam_cosine",
        "schedule_sgd_constant", "schedule_sgd_cosine",
    ]  # fmt: skip
    for suite in run.STANDALONE_SUITES:  # each is one config of its own
        assert (ROOT / "benchmarks" / f"{suite}.toml").exists()


def test_every_committed_suite_is_on_the_results_page():
    # results/gate is the CI gate's page (docs/ci-gate.md), not a suite's answers
    committed = {p.parent.name for p in (ROOT / "results").glob("*/report.md")} - {"gate"}
    assert committed <= set(results_doc.SUITES), committed - set(results_doc.SUITES)
