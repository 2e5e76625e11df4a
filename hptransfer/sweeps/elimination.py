"""Early elimination: stop training learning rates that can no longer change what the report
prints (``[elimination] enabled = true``; off by default, so every committed run reproduces).

Pure numpy; the engine (:func:`hptransfer.sweeps.engine._run_chunk`) calls :func:`chunk_stops` at
every segment boundary with the chunk's saved history, and the analysis reads a stopped
replica through :func:`hptransfer.stats.tables.hold_stopped`. The decision is a function of the saved histories only,
so every host (all read the same all-gathered history) and every resume decide the same.

The rule, per group (one scheme at one shape: its learning rates x seeds, rates sorted), at the
end of segment k of K (step t = (k+1) x eval_every), with L[r, s] the training loss of rate r
and seed s over that segment and W = ``window``:

1. Only when t >= ``min_fraction`` x steps, k >= W, and k < K - 1 (never at the last one).
2. A rate is *valid* when it is not stopped, no seed of it diverged and every loss is finite.
   b = the argmin over valid rates of the seed-mean of L (the current optimum); nothing is
   stopped when there is none, when b is the lowest rate (optimum censored at the low end), or
   when the rate below b is invalid and not stopped (censored by divergence on that side).
3. A rate r < b is *hopeless* when, for EVERY seed s, its loss extrapolated linearly to the
   last step at its pace over the last W segments,

       P[r, s] = L[r, s] - max(0, (L_{k-W}[r, s] - L[r, s]) / W) x (K - 1 - k),

   still exceeds that seed's loss at b by the margin: P[r, s] > (1 + ``margin``) x L[b, s]
   (paired seeds: same initial draw and batches). A stopped rate stays hopeless.
4. Stop rate r when r <= b - 2 (two grid points below the optimum), r and r + 1 are both
   hopeless, and r is not kept. Rates above the optimum are never stopped.
5. Kept (``keep``, :func:`bracketing`): the two grid points around every optimum the analysis
   reads off this shape's series' base shapes (the smallest depth at its width, the smallest
   width at its depth, a path's first shape): the seed-mean's and every seed's eta*, at every
   evaluation step (:func:`base_optima`). The engine runs the base cells first; while one is
   not finished (an unsorted depth list), nothing of the cell is stopped.

Why every verdict is kept, under the assumption the rule states (a rate's loss falls no faster
than linearly at its recent pace, i.e. curves decelerate, and the best rate's loss does not
rise): a stopped rate's final loss, and its loss at any later step, stays above (1 + margin)
x the best rate's, seed by seed. So (a) it is never the argmin of the seed-mean or of any
seed's curve; (b) its neighbour towards the optimum is hopeless too, so the optimum can never
move next to it, and the parabola through the argmin and its neighbours (eta*, its interval,
the per-seed optima) never reads it, at the last step or at any horizon step after the stop
(before the stop its curve is there, as trained); (c) only rates below the optimum stop, so
the largest stable rate and every divergence are as without elimination; (d) the transfer
regret reads this shape's curve at the base shape's eta* (seed-mean, per seed, at every step:
:func:`hptransfer.stats.tables.transfer_regret`, ``seed_shape_regret``, ``horizon_drift``) and the
fixed-rate movement at the base rate: those grid points are kept (5), so they read trained
values. (A regret read at a stopped rate would exceed the margin with the held value and with
the true one; ``margin`` >= the regret rule's threshold
:data:`hptransfer.stats.rules.TRANSFER_REGRET` is required for that case.) A slow starter, a rate
whose curve still falls fast enough to reach the best by the end, is not hopeless and keeps
training; a plateau that later drops sharply is what the assumption excludes, and
``min_fraction`` keeps the early part of every run, where such plateaus sit, whole.

With ``[axes]`` (:func:`stop_points`) a group (lr, x) is a surface, one curve per value of x,
and a point of it stops only when the rule above stops it on its curve and every point of its
3 x 3 box is hopeless against the surface's best point (the 2-D optimum is fitted on the 3 x 3
points around the joint argmin); the curve through the base shape's joint argmin keeps that
rate (the joint regret reads it); a replica a group without the learning rate reads trains to
the end.

A stopped replica is frozen like a diverged one (compaction removes it from the program), its
rows after the stop step hold NaN losses (the figures show where its curve ends) and the
results table's ``eliminated_step`` column holds its stop step; it is not a divergence: the
analysis reads its losses after the stop as its last evaluated ones (:func:`hptransfer.stats.tables.hold_stopped`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import pandas as pd

from hptransfer.stats.optimum import refine
from hptransfer.stats.tables import losses_by_step

"""Columns an eliminated replica holds at its last evaluated value after its stop step."""


@dataclasses.dataclass(frozen=True)
class EliminationConfig:
    """``[elimination]``: enabled, margin (relative), window (segments), min_fraction (of steps)."""

    enabled: bool = False
    margin: float = 0.05
    window: int = 3
    min_fraction: float = 0.25


@dataclasses.dataclass(frozen=True)
class Group:
    """One surface of a chunk: its sorted log2 rates, the chunk-local column of every
    (rate, curve, seed) replica, ``columns`` [n_lr, n_curves, n_seeds], and the points never to
    stop (``keep`` [n_lr, n_curves]). One curve: an lr curve (a scheme at one traced point);
    several: the curves of a group (lr, x) of ``[axes]`` at x's sorted values."""

    log2_lrs: np.ndarray
    columns: np.ndarray
    keep: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a chunk may stop: its complete groups and the columns never to stop (read by a
    group that is not wholly in the chunk, or by a group that elimination does not plan)."""

    groups: tuple[Group, ...]
    pinned: np.ndarray  # bool [n chunk columns]


def _standing(
    loss: np.ndarray,
    diverged: np.ndarray,
    stopped: np.ndarray,
    seg: int,
    n_seg: int,
    settings: EliminationConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rules 2 and 3 at segment ``seg`` for points [..., n_seeds] of ``loss`` [k+1, ...]:
    (valid, the seed-mean loss now (+inf where not valid), every seed's loss extrapolated
    linearly to the last step at its pace over the last ``window`` segments)."""
    cur = loss[seg]
    valid = ~stopped & ~diverged.any(-1) & np.isfinite(cur).all(-1)
    mean = np.where(valid, np.where(np.isfinite(cur), cur, 0.0).mean(-1), np.inf)
    w = settings.window
    with np.errstate(invalid="ignore"):
        pace = np.maximum(0.0, (loss[seg - w] - cur) / w)
        projected = cur - pace * (n_seg - 1 - seg)
    return valid, mean, projected


def stop_rates(
    loss: np.ndarray,
    diverged: np.ndarray,
    stopped: np.ndarray,
    seg: int,
    n_seg: int,
    settings: EliminationConfig,
    keep: np.ndarray | None = None,
) -> np.ndarray:
    """The rates of one group to stop now (bool [n_lr]); the rule of the module docstring.

    ``loss`` [k+1, n_lr, n_seeds]: training loss per segment up to segment k = ``seg``, rates
    sorted ascending; ``diverged`` [n_lr, n_seeds]: seed diverged by now; ``stopped`` [n_lr]:
    stopped earlier; ``keep`` [n_lr]: never stop these (None: none).
    """
    n_lr = loss.shape[1]
    none = np.zeros(n_lr, bool)
    w = settings.window
    if seg < w or seg >= n_seg - 1 or (seg + 1) < settings.min_fraction * n_seg:
        return none
    valid, mean, projected = _standing(loss, diverged, stopped, seg, n_seg, settings)
    b = int(np.argmin(mean))
    if not np.isfinite(mean[b]) or b == 0 or not (valid[b - 1] or stopped[b - 1]):
        return none
    with np.errstate(invalid="ignore"):
        beaten = (projected > (1.0 + settings.margin) * loss[seg][b]).all(-1)
    hopeless = stopped | (valid & beaten)
    hopeless[b:] = False
    below = np.arange(n_lr) <= b - 2
    nearer = np.append(hopeless[1:], False)
    out = below & valid & hopeless & nearer
    return out & ~keep if keep is not None else out


def stop_points(
    loss: np.ndarray,
    diverged: np.ndarray,
    stopped: np.ndarray,
    seg: int,
    n_seg: int,
    settings: EliminationConfig,
    keep: np.ndarray | None = None,
) -> np.ndarray:
    """The points of one surface to stop now (bool [n_lr, n_curves]); ``loss`` [k+1, n_lr,
    n_curves, n_seeds], ``diverged`` [n_lr, n_curves, n_seeds], ``stopped`` and ``keep``
    [n_lr, n_curves].

    Each curve by :func:`stop_rates` (one curve: exactly that rule). With several curves (a
    group (lr, x) of ``[axes]``, whose 2-D optimum is fitted on the 3 x 3 points around the
    joint argmin, :func:`hptransfer.stats.hparams.refine_2d`) a point stops only when, besides,
    every point of its own 3 x 3 box is hopeless against the surface's best point B (the
    argmin of the seed-mean over valid points): for every seed s, the point's loss
    extrapolated as in rule 3 exceeds (1 + margin) x that seed's loss at B, or the point was
    stopped before. A hopeless point is never the final joint argmin, of the seed-mean or of
    any seed (the argument of rule 3, against B), so the final argmin is never next to a
    stopped point, and the fit around it (the optimum, its bracket, every seed's optimum)
    reads trained values only.
    """
    n_lr, n_curves = loss.shape[1:3]
    out = np.zeros((n_lr, n_curves), bool)
    for j in range(n_curves):
        out[:, j] = stop_rates(
            loss[:, :, j], diverged[:, j], stopped[:, j], seg, n_seg, settings,
            None if keep is None else keep[:, j],
        )  # fmt: skip
    if n_curves == 1 or not out.any():
        return out
    valid, mean, projected = _standing(loss, diverged, stopped, seg, n_seg, settings)
    best = np.unravel_index(int(np.argmin(mean)), mean.shape)
    with np.errstate(invalid="ignore"):
        beaten = (projected > (1.0 + settings.margin) * loss[seg][best]).all(-1)
    hopeless = np.pad(stopped | (valid & beaten), 1, constant_values=True)  # outside: no point
    box = np.ones_like(out)
    for di in (0, 1, 2):
        for dj in (0, 1, 2):
            box &= hopeless[di : di + n_lr, dj : dj + n_curves]
    return out & box


def plan_chunk(
    keys: Sequence[Hashable],
    log2_lrs: Sequence[float],
    seeds: Sequence[int],
    columns: Sequence[int],
    lo: int,
    hi: int,
    protect: Mapping[Hashable, np.ndarray] | None = None,
    surfaces: Mapping[Hashable, Sequence[tuple[Hashable, float]]] | None = None,
    fixed: Sequence[bool] | None = None,
) -> Plan:
    """The :class:`Plan` of the chunk holding trained columns [lo, hi), from every requested
    replica i of its cell (lr curve ``keys[i]``, e.g. (scheme, traced point), its rate, seed
    and trained column). A group is planned when all its columns lie in the chunk and it is a
    full rates x curves x seeds box; a column read by any other group is pinned, so a replica
    trained once for several schemes (deduplication) stops only when every reader agrees.
    ``protect`` (None: nothing): per curve key, log2 rates whose bracketing grid points train
    to the end (:func:`bracketing`; the base shape's optima, where the transfer regret reads
    this curve); a curve without an entry is not planned (its columns are pinned).
    ``surfaces`` (None: every curve is a group of its own): per curve key, the groups that read
    it, each (group key, the curve's coordinate in it); a curve no group reads is pinned.
    ``fixed`` (None: none): per replica, whether a reader that elimination does not plan reads
    it (a group of ``[axes]`` without the learning rate): its column is pinned."""
    by_curve: dict[Hashable, list[int]] = {}
    for i, k in enumerate(keys):
        by_curve.setdefault(k, []).append(i)
    if surfaces is None:
        surfaces = {k: [(k, 0.0)] for k in by_curve}
    by_group: dict[Hashable, list[tuple[float, Hashable]]] = {}
    pinned = np.zeros(hi - lo, bool)
    for i, c in enumerate(columns):
        if fixed is not None and fixed[i] and lo <= c < hi:
            pinned[c - lo] = True
    for curve, members in by_curve.items():
        readers = surfaces.get(curve, ())
        if not readers or (protect is not None and curve not in protect):
            cols = np.asarray([columns[i] for i in members])
            pinned[cols[(cols >= lo) & (cols < hi)] - lo] = True
        for group, coordinate in readers:
            by_group.setdefault(group, []).append((coordinate, curve))
    groups = []
    for curves in by_group.values():
        curves = sorted(curves, key=lambda c: c[0])
        members = [i for _, c in curves for i in by_curve[c]]
        cols = np.asarray([columns[i] for i in members])
        inside = (cols >= lo) & (cols < hi)
        lrs = np.unique([log2_lrs[i] for i in members])
        sds = np.unique([seeds[i] for i in members])
        table = np.full((len(lrs), len(curves), len(sds)), -1, np.int64)
        for j, (_, c) in enumerate(curves):
            for i in by_curve[c]:
                table[np.searchsorted(lrs, log2_lrs[i]), j, np.searchsorted(sds, seeds[i])] = (
                    columns[i] - lo
                )
        known = protect is None or all(c in protect for _, c in curves)
        if known and inside.all() and (table >= 0).all() and len(members) == table.size:
            keep = None
            if protect is not None:
                keep = np.stack([bracketing(lrs, protect[c]) for _, c in curves], axis=1)
            groups.append(Group(lrs, table, keep))
        else:
            pinned[cols[inside] - lo] = True
    return Plan(tuple(groups), pinned)


def chunk_stops(
    train_loss: np.ndarray,
    diverged_step: np.ndarray,
    stopped_step: np.ndarray,
    plan: Plan,
    seg: int,
    n_seg: int,
    settings: EliminationConfig,
) -> np.ndarray:
    """The chunk columns to stop at the end of segment ``seg`` (bool [n]), from the chunk's
    history: ``train_loss`` [n_seg, n], ``diverged_step`` / ``stopped_step`` [n] (-1: no).
    A column stops when every group that reads it stops its point (:func:`stop_points`) and it
    is not pinned."""
    n = train_loss.shape[1]
    votes = np.zeros(n, np.int64)
    readers = np.zeros(n, np.int64)
    for g in plan.groups:
        cols = g.columns  # [n_lr, n_curves, S]
        stopped = (stopped_step[cols] >= 0).all(-1)
        stop = stop_points(
            train_loss[: seg + 1][:, cols], diverged_step[cols] >= 0, stopped, seg, n_seg,
            settings, g.keep,
        )  # fmt: skip
        np.add.at(readers, cols.ravel(), 1)
        np.add.at(votes, cols[stop].ravel(), 1)
    return (readers > 0) & (votes == readers) & ~plan.pinned & (stopped_step < 0)


def bracketing(grid: np.ndarray, values: np.ndarray) -> np.ndarray:
    """bool [n]: the points of the increasing ``grid`` that bracket any of ``values`` (the
    largest point <= v and the smallest >= v; NaN values ignored, +-inf: the end point)."""
    keep = np.zeros(len(grid), bool)
    v = np.asarray(values, float).ravel()
    v = v[~np.isnan(v)]
    if not len(grid) or not len(v):
        return keep
    v = np.clip(v, grid[0], grid[-1])
    keep[np.searchsorted(grid, v, side="right") - 1] = True
    keep[np.searchsorted(grid, v, side="left")] = True
    return keep


def base_optima(table: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per scheme, every eta* the analysis can read off a base shape's results table: the
    seed-mean's and every seed's optimum (log2) at every evaluation step (the horizon axis; the
    last step is the report's), from :func:`hptransfer.stats.tables.losses_by_step` by
    :func:`hptransfer.stats.optimum.refine`. A cell of a series with this base keeps the grid points
    around them (the transfer regret and the fixed-rate movement read its curve there)."""
    by_step = losses_by_step(table)
    out = {}
    for scheme, g in by_step.groupby(level="scheme", sort=True):
        g = g.groupby(level=["log2_lr", "seed"]).mean()
        grid = np.sort(g.index.get_level_values("log2_lr").unique().to_numpy(float))
        seeds = np.sort(g.index.get_level_values("seed").unique())
        full = pd.MultiIndex.from_product([grid, seeds], names=["log2_lr", "seed"])
        v = g.reindex(full).to_numpy(float).reshape(len(grid), len(seeds), -1).transpose(2, 1, 0)
        with np.errstate(invalid="ignore"):
            mean = np.where(np.isinf(v).any(1), np.inf, np.nanmean(v, 1))  # [T, n_lr]
        etas = (refine(grid, mean).log2_eta, refine(grid, v).log2_eta)
        out[str(scheme)] = np.concatenate([e.ravel() for e in etas])
    return out


def stops(results: pd.DataFrame, axes: Sequence[str] = ()) -> list[dict]:
    """meta.json's record of what was stopped and when: one entry per eliminated replica
    (scheme, width, depth, block_depth, log2_lr, seed, the value of each of ``axes`` (the sweep
    axes' columns), step), from the results table."""
    if "eliminated_step" not in results.columns:
        return []
    named = [a for a in axes if a in results.columns]
    cols = ["scheme", "width", "depth", "block_depth", "log2_lr", "seed", *named]
    rows = results[results["eliminated_step"].notna()]
    rows = rows.drop_duplicates([*cols, "cell"] if "cell" in rows else cols)

    def value(k, v):
        if k in named:  # an axis: its value as the column holds it (a number, or a name)
            return v.item() if hasattr(v, "item") else v
        return v if k == "scheme" else float(v) if k == "log2_lr" else int(v)

    return [
        {k: value(k, r[k]) for k in cols} | {"step": int(r["eliminated_step"])}
        for _, r in rows.iterrows()
    ]
