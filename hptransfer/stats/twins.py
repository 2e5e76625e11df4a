"""Schemes that are the same network in a sweep, read from its results.

Two schemes are the same network at a block depth k when they give the same initialisation,
multipliers and learning rates at every shape of the sweep: SP and muP at the base width
(muP's width factors are all 1 there), depth-muP and NFD at k = 1 (NFD's sqrt(L) acts on the
first internal layer of a block, and a one-layer block has none). The engine trains such
replicas once, so their rows are equal in every column but ``scheme``; conversely two
different networks give different losses and feature-movement statistics. Twins are therefore
found from the data, which needs neither the scheme tables nor the shapes: a report then shows
one row and one verdict for them and says why (issue: no duplicate verdicts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from hptransfer.stats.tables import scheme_order

GROUP = ("optimizer", "block_depth")
RTOL = 1e-6  # the same program on other batch positions or bucket sizes may round differently


def _rows(frame: pd.DataFrame) -> pd.DataFrame:
    """A scheme's rows without the scheme column, in a canonical order."""
    body = frame.drop(columns="scheme")
    return body.sort_values(list(body.columns)).reset_index(drop=True)


def _same(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Equal shapes and columns; numbers equal to :data:`RTOL` (NaN equals NaN), the rest exactly."""
    if a.shape != b.shape or list(a.columns) != list(b.columns):
        return False
    for col in a.columns:
        x, y = a[col].to_numpy(), b[col].to_numpy()
        if np.issubdtype(x.dtype, np.floating) and np.issubdtype(y.dtype, np.floating):
            if not np.allclose(x, y, rtol=RTOL, atol=0.0, equal_nan=True):
                return False
        elif not np.array_equal(x, y):
            return False
    return True


def twin_groups(finals: pd.DataFrame) -> list[tuple[str, int, tuple[str, ...]]]:
    """(optimizer, k, schemes) for every set of two or more schemes whose final rows (every
    shape, rate and seed, losses and movement statistics) are equal (to :data:`RTOL`) at that
    optimizer and block depth; schemes in the report's order
    (:func:`hptransfer.stats.tables.scheme_order`: SP, muP, depth-muP, NFD, then the rest)."""
    out: list[tuple[str, int, tuple[str, ...]]] = []
    keys = [c for c in GROUP if c in finals]
    if "scheme" not in finals or len(keys) < len(GROUP):
        return out
    for (optimizer, k), frame in finals.groupby(keys, sort=True):
        schemes = scheme_order(frame["scheme"].unique())
        bodies = {s: _rows(frame[frame["scheme"] == s]) for s in schemes}
        taken: set[str] = set()
        for i, s in enumerate(schemes):
            if s in taken:
                continue
            same = [t for t in schemes[i + 1 :] if t not in taken and _same(bodies[s], bodies[t])]
            if same:
                taken.update(same)
                out.append((str(optimizer), int(k), (s, *same)))
    return out


def twin_labels(
    groups: Sequence[tuple[str, int, tuple[str, ...]]], label: Mapping[str, str] | None = None
) -> dict[tuple[str, int], str]:
    """{(scheme, k): "SP = muP"} for the first scheme of each group (``label`` maps a scheme to
    its display name); the other members are not keys: they are the rows to leave out."""
    name = (lambda s: label.get(s, s)) if label else (lambda s: s)
    return {(g[0], k): " = ".join(name(s) for s in g) for _, k, g in groups}


def hidden(groups: Sequence[tuple[str, int, tuple[str, ...]]]) -> set[tuple[str, int]]:
    """(scheme, k) of every group member but the first: their rows repeat the first's."""
    return {(s, k) for _, k, g in groups for s in g[1:]}


def without_twins(
    frame: pd.DataFrame, groups: Sequence[tuple[str, int, tuple[str, ...]]]
) -> pd.DataFrame:
    """``frame`` less the rows of :func:`hidden` schemes (by its scheme and block_depth
    columns); a frame without them is returned as it is."""
    drop = hidden(groups)
    if not drop or "scheme" not in frame or "block_depth" not in frame:
        return frame
    keys = zip(frame["scheme"], frame["block_depth"].astype(int), strict=True)
    return frame[[key not in drop for key in keys]]
