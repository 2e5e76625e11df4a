"""The transformer suites' claims: the NFD question where every MLP sublayer is a two-layer block.

The lm suite (depth transfer; one run per optimizer) asks, per optimizer, each decided by the
one rule of :mod:`hptransfer.stats.rules` on an interval the analysis computed:

- (b) does depth-muP's eta* drift across depth? (its transfer claim, stated as the paper's
  prediction that it fails), (d) does NFD (the MLP's first layer's rate times sqrt(L)) restore
  transfer and feature learning, (h) does CompleteP (alpha = 1) keep eta*, (e) does NFD improve
  the deepest network's loss over depth-muP, and, under Adam, (g) NFD's extrapolated Adam form:
  the run's own claims (:func:`hptransfer.stats.verdicts.claims`), each statement prefixed with
  its optimizer;
- (l) **which scheme gives the best loss at the deepest L**: each seed's tuned loss there (the
  refined minimum of its own final training loss over the rates,
  :func:`hptransfer.stats.verdicts.seed_best_losses`) per scheme; the scheme with the lowest
  seed mean against the runner-up, as the paired relative gap runner-up / best - 1 (same seeds,
  same batches) with its Student-t interval: holds when the interval lies above 0 (the best is
  measurably best), inconclusive when it includes 0.

The lm_width suite asks (w) does muP's eta* transfer across width and (x) does SP's fail to:
the scorecard's decision of the width axis (:func:`hptransfer.stats.verdicts.drift_claim`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from hptransfer.network.schemes import scheme_label
from hptransfer.stats.analysis import Analysis
from hptransfer.stats.intervals import MIN_SEEDS_T, interval_label, seed_interval
from hptransfer.stats.schedule_claims import who
from hptransfer.stats.verdicts import (
    HOLDS,
    INCONCLUSIVE,
    NOT_MEASURED,
    Claim,
    drift_claim,
    seed_best_losses,
)

BLOCK_DEPTH = 2  # the transformer's MLP: a two-layer block
RUN_CLAIMS = ("b", "c", "d", "e", "g", "h")  # the run's own claims that the lm suite asks


def optimizer_of(analysis: Analysis) -> str:
    return str(analysis.meta["config"]["optimizer"]["name"])


def best_loss_claim(analysis: Analysis) -> Claim:
    """Claim (l) of one run (module docstring)."""
    opt = optimizer_of(analysis)
    statement = f"{who(opt)}one scheme gives the best loss at the deepest L (transformer, k = 2)"

    metric = "relative loss gap runner-up vs best at the deepest L (each seed at its tuned rate)"
    finals = analysis.finals
    sel = finals[finals["block_depth"] == BLOCK_DEPTH]
    schemes = list(sel["scheme"].unique())
    if len(schemes) < 2:
        return Claim("l", statement, metric, math.nan, math.nan, math.nan, "", "", "",
                     NOT_MEASURED, "needs two schemes or more")  # fmt: skip
    depth, width = int(sel["depth"].max()), int(sel["width"].min())
    best = pd.DataFrame({s: seed_best_losses(finals, s, width, depth) for s in schemes})
    best = best[np.isfinite(best).all(axis=1)]
    ranking = best.mean().sort_values()
    first, second = ranking.index[0], ranking.index[1]
    statement = statement.replace(
        "(transformer", f"(lowest seed mean: {scheme_label(first)}; transformer"
    )
    gap = (best[second] / best[first] - 1.0).to_numpy(float)
    _, lo, hi, n = seed_interval(gap, analysis.ci)
    value = float(np.mean(gap)) if gap.size else math.nan
    if int(n) < MIN_SEEDS_T:
        verdict, why = INCONCLUSIVE, f"fewer than {MIN_SEEDS_T} seeds with a finite loss"
    elif lo > 0:
        verdict, why = HOLDS, f"{scheme_label(first)} is best: the paired gap lies above 0"
    else:
        verdict, why = (
            INCONCLUSIVE,
            (
                f"{scheme_label(first)} and {scheme_label(second)} are not separated: the paired "
                "gap's interval includes 0"
            ),
        )
    losses = ", ".join(f"{scheme_label(s)} {v:.3f}" for s, v in ranking.items())
    note = f"{why}; seed-mean tuned loss (bits per byte) at L={depth}: {losses}"
    label = interval_label(int(n), analysis.ci) if np.isfinite(lo) else ""
    scale = f"n={width}, L={depth}, k={BLOCK_DEPTH}" + ("" if opt == "sgd" else f", {opt}")
    steps = int(analysis.meta["config"]["steps"])
    return Claim("l", statement, metric, value, float(lo), float(hi), label, scale,
                 f"{steps} steps", verdict, note)  # fmt: skip


def run_claims(analysis: Analysis) -> list[Claim]:
    """The run's own claims that the lm suite asks (:data:`RUN_CLAIMS`; (g) under Adam only),
    each statement prefixed with its optimizer and marked as the transformer's."""
    opt = optimizer_of(analysis)
    rows = analysis.claims.set_index("claim")
    out = []
    for key in RUN_CLAIMS:
        if key not in rows.index or rows.loc[key, "verdict"] == NOT_MEASURED:
            continue
        fields = {
            f.name: rows.loc[key, f.name] for f in dataclasses.fields(Claim) if f.name != "claim"
        }
        fields["statement"] = f"{who(opt)}{fields['statement']} (transformer)"
        out.append(Claim(claim=key, **fields))
    return out


def lm_claims(analyses: Sequence[Analysis]) -> pd.DataFrame:
    """The lm suite's claims table: per run (SGD first), its own claims, then (l)."""
    order = sorted(analyses, key=lambda a: (optimizer_of(a) != "sgd", optimizer_of(a)))
    rows = [c for a in order for c in [*run_claims(a), best_loss_claim(a)]]
    return pd.DataFrame([dataclasses.asdict(c) for c in rows])


def width_row(card: pd.DataFrame, scheme: str) -> dict | None:
    """The scorecard row of ``scheme`` (k = 2) when it has a width axis (None otherwise)."""
    if card is None or card.empty or "drift_width" not in card:
        return None
    sel = card[(card["scheme"] == scheme) & (card["block_depth"] == BLOCK_DEPTH)]
    return None if sel.empty else sel.iloc[0].to_dict()


def width_claims(analysis: Analysis) -> pd.DataFrame:
    """The lm_width suite's claims: (w) muP's eta* transfers across width, (x) SP's does not."""
    opt = optimizer_of(analysis)
    rows = [
        drift_claim("w", width_row(analysis.scorecard, "mup"), True,
                    f"{who(opt)}muP's eta* transfers across width (transformer)", axis="width"),
        drift_claim("x", width_row(analysis.scorecard, "sp"), False,
                    f"{who(opt)}SP's eta* fails to transfer across width (transformer)",
                    axis="width"),
    ]  # fmt: skip
    return pd.DataFrame([dataclasses.asdict(c) for c in rows])


def transformer_claims(analysis: Analysis) -> pd.DataFrame:
    """The claims a transformer run adds to its own report: (l) with several depths, (w) and
    (x) with several widths (those it can measure); an empty table for any other run."""
    finals = analysis.finals
    if finals.empty or not (finals["family"] == "transformer").any():
        return pd.DataFrame()
    rows = []
    if finals["depth"].nunique() > 1:
        rows.append(dataclasses.asdict(best_loss_claim(analysis)))
    if finals["width"].nunique() > 1:
        rows += width_claims(analysis).to_dict("records")
    return pd.DataFrame([r for r in rows if r["verdict"] != NOT_MEASURED])
