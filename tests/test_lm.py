"""A transformer sweep end to end on a user's own text (resume, deduplication, the corpus in the
cell hash, the report and the lm page), and the transformer claims on planted tables."""

import hashlib
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from hptransfer.network.schemes import load_schemes
from hptransfer.reports import lm_report
from hptransfer.reports.report import write_report
from hptransfer.stats.lm_claims import best_loss_claim, transformer_claims
from hptransfer.stats.verdicts import HOLDS, INCONCLUSIVE
from hptransfer.sweeps import limits
from hptransfer.sweeps.config import config_from_dict
from hptransfer.sweeps.engine import cell_hash, run_sweep

CONFIG = {
    "name": "lm_e2e",
    "steps": 20,
    "eval_every": 10,
    "batch_size": 8,
    "seeds": [0],
    "schemes": ["depth_mup", "nfd"],
    "probe_size": 4,
    "data": {"name": "text", "seq_len": 8, "eval_sequences": 8},
    "model": {"family": "transformer", "widths": [16], "depths": [2, 4], "base_width": 16,
              "head_dim": 4, "mlp_ratio": 2},
    "optimizer": {"name": "adam"},
    "lr": {"start": -8.0, "stop": -4.0, "step": 2.0},
}  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One tiny transformer sweep on a corpus file of this package's own source."""
    root = tmp_path_factory.mktemp("lm")
    corpus = root / "corpus.txt"
    source = Path(lm_report.__file__).read_bytes()
    corpus.write_bytes(source * 3)
    config = config_from_dict(CONFIG | {"data": CONFIG["data"] | {"path": str(corpus)}})
    out = root / "run"
    table = run_sweep(config, out, progress=False)
    meta = json.loads((out / "meta.json").read_text())
    return SimpleNamespace(config=config, out=out, table=table, meta=meta, corpus=corpus)


def test_the_sweep_records_the_corpus_and_every_role(run):
    assert run.meta["dataset"]["sha256"] == hashlib.sha256(run.corpus.read_bytes()).hexdigest()
    assert run.meta["dataset"]["corpus"] == str(run.corpus.resolve())
    for role in ("attn_q", "attn_out", "hidden_1", "hidden_2", "input", "readout"):
        assert f"own_movement/{role}" in run.table
    losses = run.table["test_loss"].dropna()
    assert len(losses) and (losses < 8.0).all()  # bits per byte, below the uniform 8 bits
    assert set(run.table["family"]) == {"transformer"}


def test_schemes_that_are_one_network_at_the_base_depth_train_once(run):
    # At L = L0 = 2, depth-muP and NFD are the same network: deduplication trains it once.
    assert run.meta["replica_steps_saved_dedup"] > 0
    at_base = run.table[(run.table["depth"] == 2) & (run.table["step"] == 20)]
    dmup, nfd = (
        at_base[at_base["scheme"] == s].sort_values("log2_lr") for s in ("depth_mup", "nfd")
    )
    np.testing.assert_array_equal(dmup["test_loss"].to_numpy(), nfd["test_loss"].to_numpy())


def test_a_resume_computes_nothing_and_the_corpus_is_in_every_cell_hash(run, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(run.out, out)
    again = run_sweep(run.config, out, progress=False)
    assert json.loads((out / "meta.json").read_text())["replica_steps"] == 0
    pd.testing.assert_frame_equal(again, run.table)
    # The cells are filed under a hash of the corpus's sha256: other text at the same path
    # (the config unchanged) is other cells, never a resume of these.
    registry = load_schemes()
    sha = run.meta["dataset"]["sha256"]
    archs = limits.architectures(run.config)
    filed = {c["cell"] for c in run.meta["cells"]}
    assert filed == {cell_hash(run.config, a, registry, sha) for a in archs}
    assert filed.isdisjoint(cell_hash(run.config, a, registry, "0" * 64) for a in archs)


def test_the_report_and_the_lm_page_carry_the_transformer_claims(run, tmp_path):
    suite = tmp_path / "suite"
    shutil.copytree(run.out, suite / "lm_adam")
    report = write_report(suite / "lm_adam").read_text()
    assert "(l) Adam: one scheme gives the best loss at the deepest L (lowest seed mean:" in report
    page = lm_report.write_report(suite).read_text()
    assert "## Claims" in page and "(l) Adam:" in page and "(b) Adam:" in page
    assert "(g) Adam: NFD's Adam form" in page
    assert "[lm_adam](lm_adam/report.md)" in page
    assert run.meta["dataset"]["sha256"][:12] in page


def _finals(losses: dict[str, list[float]], depths=(2, 8)) -> pd.DataFrame:
    """Final losses over three rates per (scheme, seed) at each depth: a parabola in log2 lr
    whose minimum is the given loss at the deepest depth."""
    rows = []
    for scheme, per_seed in losses.items():
        for seed, best in enumerate(per_seed):
            for depth in depths:
                for lr in (-2.0, -1.0, 0.0):
                    rows.append({"family": "transformer", "scheme": scheme, "optimizer": "adam",
                                 "width": 32, "depth": depth, "block_depth": 2, "seed": seed,
                                 "log2_lr": lr, "final_train_loss": best + 0.1 * (lr + 1) ** 2})  # fmt: skip
    return pd.DataFrame(rows)


def _analysis(finals: pd.DataFrame) -> SimpleNamespace:
    meta = {"config": {"optimizer": {"name": "adam"}, "steps": 100}}
    return SimpleNamespace(finals=finals, meta=meta, ci=0.9, scorecard=pd.DataFrame())


def test_best_loss_claim_holds_only_when_the_best_scheme_is_separated():
    clear = _analysis(_finals({"nfd": [3.0, 3.1, 3.05], "depth_mup": [3.3, 3.35, 3.32]}))
    claim = best_loss_claim(clear)
    assert claim.verdict == HOLDS
    assert claim.lo > 0 and "NFD is best" in claim.note
    close = _analysis(_finals({"nfd": [3.0, 3.2, 3.1], "depth_mup": [3.1, 3.1, 3.12]}))
    claim = best_loss_claim(close)
    assert claim.verdict == INCONCLUSIVE and claim.lo < 0 < claim.hi


def test_a_resnet_run_gets_no_transformer_claims():
    finals = _finals({"nfd": [3.0, 3.1, 3.05], "depth_mup": [3.3, 3.35, 3.32]})
    assert transformer_claims(_analysis(finals.assign(family="mlp"))).empty
    assert list(transformer_claims(_analysis(finals))["claim"]) == ["l"]
