"""The schedule suite's claims: transfer as it is trained, with a warm-up and a decay.

Three questions, each decided by the one rule of :mod:`hptransfer.stats.rules` on an interval
the analysis already computed (never on a point):

- (i) **the early drift**: the horizon figure of the quick and deep suites shows NFD's eta*
  drifting down across depth early in training (at step :data:`EARLY_STEP`) before it settles.
  Does a warm-up move that drift towards zero? Each seed's drift across depth at that step (the
  OLS slope of its own eta*, read from its losses up to the step, on log2 depth) under the
  warm-up minus the same seed's under the constant rate (same seeds, same batches): the
  Student-t interval of the paired change against (0, inf) when the constant rate's drift is
  negative ((-inf, 0) when positive) by :func:`hptransfer.stats.intervals.interval_outcome`:
  holds when the whole interval moves the drift towards zero, fails when it moves it away,
  inconclusive when it straddles 0 (no change measured). The note gives both drifts with the
  intervals of :func:`hptransfer.stats.tables.horizon_drift` and where each lies against the
  band.
- (j) **transfer under decay**: does eta* transfer across depth under warm-up + cosine? The
  scorecard's own decision of the depth axis (drift and regret,
  :func:`hptransfer.stats.verdicts.drift_claim`) at the longest horizon; the note adds the
  decisions at the shorter horizons and the constant rate's at the same horizon.
- (k) **the horizon**: does NFD's eta* stay within an octave across the horizons? At every
  depth the drift of eta* per doubling of the run length T
  (:func:`hptransfer.stats.horizons.horizon_slopes`), against one octave over the range of T;
  holds when it holds at every depth, fails when it fails at one
  (:func:`hptransfer.stats.rules.combine`).

A run of the suite is a :class:`ScheduleRun`: its optimizer, its schedule kind and the
analysis of each of its horizons (:func:`hptransfer.stats.horizons.horizon_analyses`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hptransfer.network.schemes import scheme_label
from hptransfer.stats.analysis import Analysis
from hptransfer.stats.horizons import horizon_slopes
from hptransfer.stats.intervals import (
    MIN_SEEDS_T,
    interval_label,
    interval_outcome,
    seed_interval,
)
from hptransfer.stats.rules import TRANSFER_SLOPE, combine, direction, drift_outcome
from hptransfer.stats.tables import first_steps, fit_interval, seed_optima, seed_slopes
from hptransfer.stats.verdicts import (
    NOT_MEASURED,
    Claim,
    card_row,
    ci_text,
    claim_verdict,
    drift_claim,
)

EARLY_STEP = 100  # where quick's and deep's horizon figures show NFD's eta* drifting down
BLOCK_DEPTH = 2  # the two-layer blocks whose first layer NFD corrects
CONSTANT = "constant"


@dataclass(frozen=True)
class ScheduleRun:
    """One run of the suite: its name, optimizer, schedule kind and the analysis of each
    horizon T (steps) it holds."""

    name: str
    optimizer: str
    schedule: str
    analyses: Mapping[int, Analysis]

    @property
    def longest(self) -> Analysis:
        """The analysis of the run's longest horizon (its own length)."""
        return self.analyses[max(self.analyses)]

    @property
    def horizons(self) -> list[int]:
        return sorted(self.analyses)


def who(optimizer: str) -> str:
    """The optimizer in front of a statement ("SGD: ", "Adam: "), so that a claim copied
    without its scale (the README's answers) still says which run it is."""
    return {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}.get(optimizer, optimizer) + ": "


def _opt(optimizer: str) -> str:
    return "" if optimizer == "sgd" else f", {optimizer}"


def early_drift(run: ScheduleRun, scheme: str = "nfd", step: int = EARLY_STEP) -> dict | None:
    """The drift across depth of ``scheme``'s eta* at evaluation ``step`` of the run's longest
    horizon (k = 2): slope, its checked interval lo / hi, the band, the outcome and the number
    of per-seed slopes; None when the run has no such row."""
    h = run.longest.horizon
    if h is None or h.empty:
        return None
    sel = h[(h["scheme"] == scheme) & (h["block_depth"] == BLOCK_DEPTH) & (h["axis"] == "depth")
            & (h["step"] == step)]  # fmt: skip
    if sel.empty:
        return None
    r = sel.iloc[0].to_dict()
    lo, hi = fit_interval(r)
    card = card_row(run.longest.scorecard, scheme, BLOCK_DEPTH)
    band = float(card["drift_depth_band"]) if card is not None else TRANSFER_SLOPE
    return dict(slope=float(r["slope"]), lo=lo, hi=hi, band=band, n=int(r["n_seed_slopes"]),
                outcome=drift_outcome(lo, hi, band), direction=direction(lo, hi, band),
                depths=card.get("depths") if card is not None else "",
                width=card.get("at_width") if card is not None else None)  # fmt: skip


_OUTCOME_WORDS = {"holds": "inside", "fails": "beyond", "inconclusive": "across"}


def _drift_words(d: Mapping) -> str:
    band = f"+-{d['band']:.2f}"
    where = _OUTCOME_WORDS.get(d["outcome"], "without an interval against")
    return f"drift {ci_text(d['slope'], d['lo'], d['hi'])}, {where} {band}"


def early_seed_drifts(run: ScheduleRun, scheme: str = "nfd", step: int = EARLY_STEP) -> pd.Series:
    """Each seed's drift across depth at evaluation ``step`` of the run's longest horizon
    (k = 2): the OLS slope of the seed's own eta* (from its losses up to the step) on log2
    depth, over the depths where every seed's optimum is located; index: seed."""
    rows = first_steps(run.longest.results, step)
    rows = rows[(rows["scheme"] == scheme) & (rows["block_depth"] == BLOCK_DEPTH)]
    if rows.empty or rows["step"].max() < step:
        return pd.Series(dtype=float)
    seeds = seed_optima(rows, run.longest.last_evals)
    wide = seeds.pivot_table(index="seed", columns="depth", values="log2_eta_star", dropna=False)
    eta = wide.to_numpy(float)
    usable = np.isfinite(eta).all(axis=0)
    x = np.log2(wide.columns.to_numpy(float))
    return pd.Series(seed_slopes(x, usable, eta), index=wide.index)


def early_claim(warm: ScheduleRun, constant: ScheduleRun | None) -> Claim:
    """Claim (i) for one optimizer (module docstring)."""
    statement = (f"{who(warm.optimizer)}a warm-up moves NFD's early drift of eta* across "
                 f"depth towards zero "
                 f"(step {EARLY_STEP}, k = 2)")  # fmt: skip
    metric = (f"change of the drift of log2 eta* per doubling of depth at step {EARLY_STEP}, "
              "warm-up minus constant rate (paired over seeds)")  # fmt: skip
    d = early_drift(warm)
    c = early_drift(constant) if constant is not None else None
    if d is None or c is None:
        why = "no constant-rate run to compare" if c is None else "no evaluation at the step"
        return Claim("i", statement, metric, math.nan, math.nan, math.nan, "", "", "",
                     NOT_MEASURED, why)  # fmt: skip
    change = (early_seed_drifts(warm) - early_seed_drifts(constant)).dropna()
    mean, lo, hi, n = seed_interval(change.to_numpy(float)[None, :], warm.longest.ci)
    value = d["slope"] - c["slope"]  # the seed-mean drifts' change, the interval around it
    lo, hi = float(lo[0]) - float(mean[0]) + value, float(hi[0]) - float(mean[0]) + value
    toward = (0.0, math.inf) if c["slope"] < 0 else (-math.inf, 0.0)
    outcome = interval_outcome(lo, hi, *toward) if int(n[0]) >= MIN_SEEDS_T else "missing"
    effect = {"holds": "moves it towards zero", "fails": "moves it away from zero",
              "inconclusive": "no change measured (the interval includes 0)"}.get(
                  outcome, f"no interval (fewer than {MIN_SEEDS_T} paired seeds)")  # fmt: skip
    note = f"{effect}; {warm.schedule}: {_drift_words(d)}; constant rate: {_drift_words(c)}"
    label = interval_label(int(n[0]), warm.longest.ci) if np.isfinite(lo) else ""
    scale = f"n={d['width']}, L={d['depths']}, k={BLOCK_DEPTH}{_opt(warm.optimizer)}"
    return Claim("i", statement, metric, value, lo, hi, label, scale,
                 f"step {EARLY_STEP} of {max(warm.horizons)}", claim_verdict(outcome),
                 note)  # fmt: skip


def decay_claim(run: ScheduleRun, scheme: str, constant: ScheduleRun | None) -> Claim:
    """Claim (j) for one scheme under one decaying schedule (module docstring)."""
    statement = (f"{who(run.optimizer)}{scheme_label(scheme)}'s eta* transfers across depth "
                 f"under warm-up + "
                 f"{run.schedule} (k = 2)")  # fmt: skip
    claim = drift_claim("j", card_row(run.longest.scorecard, scheme, BLOCK_DEPTH), True,
                        statement)  # fmt: skip
    if claim.verdict == NOT_MEASURED:
        return claim
    others = []
    for t in run.horizons[:-1]:
        row = card_row(run.analyses[t].scorecard, scheme, BLOCK_DEPTH)
        if row is not None:
            others.append(f"T={t}: {_transfer_words(row)}")
    if constant is not None and max(run.horizons) in constant.analyses:
        row = card_row(constant.analyses[max(run.horizons)].scorecard, scheme, BLOCK_DEPTH)
        if row is not None:
            others.append(f"constant rate at T={max(run.horizons)}: {_transfer_words(row)}")
    note = claim.note + ("; " + "; ".join(others) if others else "")
    return dataclasses.replace(claim, note=note)


def _transfer_words(row: Mapping) -> str:
    lo, hi = float(row["drift_depth_check_lo"]), float(row["drift_depth_check_hi"])
    verdict = claim_verdict(row["transfer_depth"])
    return f"drift {ci_text(float(row['drift_depth']), lo, hi)}, {verdict}"


def horizon_claim(run: ScheduleRun, scheme: str = "nfd") -> Claim:
    """Claim (k) for one run (module docstring)."""
    t0, t1 = min(run.horizons), max(run.horizons)
    statement = (f"{who(run.optimizer)}{scheme_label(scheme)}'s eta* stays within an octave "
                 f"across horizons "
                 f"{t0}-{t1} steps ({run.schedule}, k = 2)")  # fmt: skip
    metric = "drift of log2 eta* per doubling of the run length, at the depth where it is largest"
    slopes = horizon_slopes(run.analyses, run.longest.ci)
    sel = (slopes[(slopes["scheme"] == scheme) & (slopes["block_depth"] == BLOCK_DEPTH)]
           if len(slopes) else slopes)  # fmt: skip
    if len(run.horizons) < 2 or sel.empty:
        return Claim("k", statement, metric, math.nan, math.nan, math.nan, "", "", "",
                     NOT_MEASURED, "needs two horizons or more")  # fmt: skip
    sel = sel.sort_values("depth")
    outcomes = sel["outcome"].tolist()
    outcome = combine(outcomes)  # a depth without an interval leaves it inconclusive
    worst = sel.loc[sel["slope"].abs().idxmax()]
    n = int(worst["n_seed_slopes"])
    label = interval_label(n, run.longest.ci) if np.isfinite(worst["check_lo"]) else ""
    per_depth = "; ".join(
        f"L={int(r.depth)}: {ci_text(r.slope, r.check_lo, r.check_hi)} {r.outcome}"
        for r in sel.itertuples()
    )
    note = (
        f"band +-{float(worst['band']):.2f} per doubling of T (one octave over {t0}-{t1}); "
        f"per depth: {per_depth}"
    )
    depths = f"{int(sel['depth'].min())}-{int(sel['depth'].max())}"
    scale = (f"n={int(worst['width'])}, L={depths} (largest at L={int(worst['depth'])}), "
             f"k={BLOCK_DEPTH}{_opt(run.optimizer)}")  # fmt: skip
    return Claim("k", statement, metric, float(worst["slope"]), float(worst["check_lo"]),
                 float(worst["check_hi"]), label, scale, f"{t0}, ..., {t1} steps",
                 claim_verdict(outcome), note)  # fmt: skip


def schedule_claims(runs: Sequence[ScheduleRun]) -> pd.DataFrame:
    """The suite's claims table, per optimizer (SGD first): (i) for each schedule with a
    warm-up, (j) for depth-muP and NFD under each decaying schedule, (k) for every run."""
    rows: list[Claim] = []
    order = sorted({r.optimizer for r in runs}, key=lambda o: (o != "sgd", o))
    for opt in order:
        mine = [r for r in runs if r.optimizer == opt]
        constant = next((r for r in mine if r.schedule == CONSTANT), None)
        decaying = [r for r in mine if r.schedule != CONSTANT]
        rows += [early_claim(r, constant) for r in decaying]
        rows += [decay_claim(r, s, constant) for r in decaying for s in ("depth_mup", "nfd")]
        rows += [horizon_claim(r) for r in [*([constant] if constant else []), *decaying]]
    return pd.DataFrame([dataclasses.asdict(c) for c in rows])
