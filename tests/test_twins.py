"""Schemes that are the same network in a run get one row and one verdict (hptransfer.stats.twins)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from test_report import synthetic_results

from hptransfer.reports import report as R
from hptransfer.stats.twins import twin_groups, twin_labels, without_twins


def finals(schemes=("a", "b", "c"), ks=(1, 2), seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    base = pd.DataFrame(
        [dict(optimizer="sgd", block_depth=k, depth=L, log2_lr=x, seed=s)
         for k in ks for L in (2, 4) for x in (-2.0, -1.0) for s in (0, 1)]
    )  # fmt: skip
    base["final_train_loss"] = rng.uniform(0.2, 1.0, len(base))
    base["own_movement/hidden_1"] = rng.uniform(0.1, 2.0, len(base))
    return pd.concat([base.assign(scheme=s) for s in schemes], ignore_index=True)


def test_equal_rows_are_twins_per_block_depth_and_different_rows_are_not():
    f = finals()
    b2 = (f["scheme"] == "b") & (f["block_depth"] == 2)
    f.loc[b2, "final_train_loss"] += 1e-3  # b differs from a at k = 2 only
    f.loc[f["scheme"] == "c", "own_movement/hidden_1"] *= 1.01  # c differs everywhere
    assert twin_groups(f) == [("sgd", 1, ("a", "b"))]
    assert twin_labels(twin_groups(f), {"a": "A", "b": "B"}) == {("a", 1): "A = B"}


def test_rounding_differences_still_make_twins_and_row_order_does_not_matter():
    f = finals(schemes=("a", "b"))
    b = f["scheme"] == "b"
    f.loc[b, "final_train_loss"] *= 1 + 1e-9  # another bucket size may round differently
    f = pd.concat([f[~b], f[b].iloc[::-1]], ignore_index=True)
    assert [g for _, _, g in twin_groups(f)] == [("a", "b"), ("a", "b")]
    kept = without_twins(f, twin_groups(f))
    assert set(kept["scheme"]) == {"a"} and len(kept) == len(f) // 2


def test_a_nan_in_the_same_place_is_equal_and_in_another_place_is_not():
    f = finals(schemes=("a", "b"), ks=(1,))
    f.loc[f.index[0], "final_train_loss"] = np.nan  # a's first row diverged
    assert twin_groups(f) == []
    f.loc[f.index[len(f) // 2], "final_train_loss"] = np.nan  # so did b's
    assert twin_groups(f) == [("sgd", 1, ("a", "b"))]


def test_the_report_shows_twins_once_and_says_why(tmp_path: Path):
    df = synthetic_results()
    nfd = df[df["scheme"] == "depth_mup"].assign(scheme="nfd")
    k2 = nfd["block_depth"] == 2
    nfd.loc[k2, "train_loss"] *= 0.97  # NFD differs from depth-muP at k = 2 only
    run = tmp_path / "run"
    run.mkdir()
    pd.concat([df, nfd], ignore_index=True).to_parquet(run / "results.parquet")
    meta = {"config": {"name": "twins", "steps": 200, "schemes": ["sp", "depth_mup", "nfd"]}}
    (run / "meta.json").write_text(json.dumps(meta))
    text = R.write_report(run).read_text()
    verdicts = text.split("## Verdicts")[1].split("## Scorecard")[0]
    assert "depth-muP = NFD: the same network in this run at k = 1 " in verdicts
    items = [line for line in verdicts.splitlines() if line.startswith("- **")]
    labels = [line.split("**")[1] for line in items]
    assert labels.count("depth-muP = NFD, sgd, k=1") == 1
    assert "NFD, sgd, k=1" not in labels and "depth-muP, sgd, k=1" not in labels
    assert "NFD, sgd, k=2" in labels and "depth-muP, sgd, k=2" in labels
    card = text.split("## Scorecard")[1].split("##")[0]
    assert card.count("| depth-muP = NFD | sgd | 1 |") == 1
    assert "| NFD | sgd | 1 |" not in card
    eta = text.split("## Optimal learning rate across depth")[1].split("##")[0]
    tables = [t for t in eta.split("\n\n") if t.startswith("| scheme, k |")]  # eta*, stable, regret
    assert tables and all(t.count("| depth-muP = NFD, k=1 |") == 1 for t in tables)
    assert "| NFD, k=1 |" not in eta and "| depth-muP, k=1 |" not in eta
