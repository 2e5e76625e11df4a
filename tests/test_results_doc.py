"""docs/results.md is generated from the committed reports (benchmarks/results_doc.py)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import results_doc  # noqa: E402


def test_the_committed_page_is_what_the_reports_give_now():
    """Regenerate with `python benchmarks/results_doc.py` after any report changes."""
    assert (ROOT / "docs" / "results.md").read_text() == results_doc.results_doc(ROOT)


def test_a_verdict_is_copied_from_its_report_word_for_word(tmp_path: Path):
    report = tmp_path / "results" / "quick" / "report.md"
    report.parent.mkdir(parents=True)
    report.write_text(
        "# hptransfer report: quick\n\n## Claims\n\n| claim | verdict |\n|---|---|\n"
        "| (a) x | does not hold |\n\n## Sweep\n\n- seeds: 5\n\n## Verdicts\n\n"
        "- **SP = muP, sgd, k=1**: Drifts down.\n\n## Scorecard\n\n| a |\n|---|\n| 1 |\n\n"
        "## Figures\n\n![x](figures/eta.png)\n"
    )
    page = results_doc.results_doc(tmp_path)
    assert "| (a) x | does not hold |" in page and "- **SP = muP, sgd, k=1**: Drifts down." in page
    assert "### Sweep" in page and "### Claims" in page and "### Verdicts" in page
    assert "Scorecard" not in page and "figures/eta.png" not in page  # only the listed sections
    assert page.index("### Sweep") < page.index("### Claims") < page.index("### Verdicts")
