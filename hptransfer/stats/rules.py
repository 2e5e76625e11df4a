"""The rule set: every verdict hptransfer prints is decided here, on intervals, never on points.

One rule (:func:`hptransfer.stats.intervals.interval_outcome`) judges an interval [lo, hi] against an
allowed range: "holds" when the interval lies inside, "fails" when it lies wholly outside,
"inconclusive" when it straddles an end, "missing" without an interval (fewer than 3 seeds).
The statements are ranges, stated so that they mean the same thing over any range of shapes:

- **transfer along an axis** (:func:`transfer_outcome`) is two statements, both needed:

  * the drift: the fitted line moves log2 eta* by less than TRANSFER_OCTAVES (one octave, a
    factor 2) across the measured range, |slope| * log2(A_max / A_min) < TRANSFER_OCTAVES,
    i.e. the slope's interval (octaves per doubling, widened over censored optima by
    :func:`hptransfer.stats.intervals.checked_interval`) inside (-band, band) with
    band = TRANSFER_OCTAVES / log2(A_max / A_min) (:func:`drift_band`: 0.25 over 16x, 1/6
    over 64x);
  * the cost: the worst transfer regret over the shapes below TRANSFER_REGRET, its interval
    (:func:`hptransfer.stats.intervals.worst_interval`: paired over seeds, the choice of the worst
    shape accounted for) inside [0, TRANSFER_REGRET].

  Transfers when both hold, does not when either fails, inconclusive otherwise.
- **an exponent** (:func:`exponent_outcome`): a log-log slope predicted to be p holds when
  its interval lies within p +- EXPONENT_BAND; otherwise the measured exponent is stated.
- **a direction** (:func:`direction`): an interval below -band "falls", above band "rises",
  inside "flat", else "unclear" (local slopes, movement with depth).

The scorecard, the claims, the horizon statements, the local drift and the regression check
(whose expectations are ranges of metrics, judged by the same interval_outcome) all read these.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hptransfer.stats.intervals import FAILS, HOLDS, INCONCLUSIVE, MISSING, interval_outcome

TRANSFER_OCTAVES = 1.0  # eta* may move by less than one octave across the measured range
TRANSFER_SLOPE = 0.25  # the band over the reference range of 16x (4 doublings): 1 / 4
TRANSFER_REGRET = 0.02  # worst relative excess loss of the base-tuned rate that still transfers
EXPONENT_BAND = 0.1  # an exponent claim holds within +-0.1 of the predicted exponent
MOVEMENT_SLOPE = 0.2  # |log-log slope| of hidden_1's own movement called fading / growing

__all__ = [
    "EXPONENT_BAND", "FAILS", "HOLDS", "INCONCLUSIVE", "MISSING", "MOVEMENT_SLOPE",
    "TRANSFER_OCTAVES", "TRANSFER_REGRET", "TRANSFER_SLOPE", "Transfer", "combine", "cost_outcome",
    "direction", "drift_band", "drift_outcome", "exponent_outcome", "interval_outcome",
    "transfer_outcome",
]  # fmt: skip


def drift_band(lo_value: float, hi_value: float) -> float:
    """TRANSFER_OCTAVES / log2(hi_value / lo_value): the |slope| (octaves per doubling) at
    which the fitted line moves eta* by TRANSFER_OCTAVES from one end of the range of shapes
    [lo_value, hi_value] to the other; TRANSFER_SLOPE when the range is unknown or empty."""
    try:
        doublings = math.log2(float(hi_value) / float(lo_value))
    except (TypeError, ValueError, ZeroDivisionError):
        return TRANSFER_SLOPE
    return TRANSFER_OCTAVES / doublings if doublings > 0 else TRANSFER_SLOPE


def combine(outcomes: Sequence[str]) -> str:
    """Several parts of one statement that all must hold: fails when any part fails, holds
    when all hold, inconclusive otherwise (a missing part leaves it undecided)."""
    if FAILS in outcomes:
        return FAILS
    if outcomes and all(o == HOLDS for o in outcomes):
        return HOLDS
    return INCONCLUSIVE


@dataclass(frozen=True)
class Transfer:
    """The transfer decision of one axis of one series and its parts."""

    outcome: str  # combine(drift, cost)
    drift: str  # drift_outcome of the drift interval
    cost: str  # cost_outcome of the regret interval


def drift_outcome(lo: float, hi: float, band: float) -> str:
    """The drift part of transfer: the drift's decision interval against the open band
    (-band, band) (an interval touching an end is not inside)."""
    outcome = interval_outcome(lo, hi, -band, band)
    return INCONCLUSIVE if outcome == HOLDS and (lo <= -band or hi >= band) else outcome


def cost_outcome(lo: float, hi: float) -> str:
    """The cost part of transfer: the worst regret's interval against [0, TRANSFER_REGRET)."""
    outcome = interval_outcome(lo, hi, -math.inf, TRANSFER_REGRET)
    return INCONCLUSIVE if outcome == HOLDS and hi >= TRANSFER_REGRET else outcome


def transfer_outcome(
    drift_lo: float,
    drift_hi: float,
    regret_lo: float,
    regret_hi: float,
    band: float,
) -> Transfer:
    """Transfer along an axis (module docstring) from the drift's decision interval (already
    widened over censored optima) and the worst regret's interval."""
    drift, cost = drift_outcome(drift_lo, drift_hi, band), cost_outcome(regret_lo, regret_hi)
    return Transfer(combine([drift, cost]), drift, cost)


def exponent_outcome(lo: float, hi: float, predicted: float, band: float = EXPONENT_BAND) -> str:
    """An exponent claim: the interval [lo, hi] of a measured log-log slope against
    [predicted - band, predicted + band]."""
    return interval_outcome(lo, hi, predicted - band, predicted + band)


def direction(lo: float, hi: float, band: float) -> str:
    """Where an interval lies against (-band, band): "flat" inside, "falls" below -band,
    "rises" above band, "unclear" across an end or without an interval."""
    if np.isnan(lo) or np.isnan(hi):  # an infinite end (an open bracket) still decides
        return "unclear"
    if -band < lo and hi < band:
        return "flat"
    if hi < -band:
        return "falls"
    if lo > band:
        return "rises"
    return "unclear"
