"""DataFrame reshapes the statistics share.

:func:`wide_mean` is ``pandas.DataFrame.pivot_table(..., aggfunc="mean")`` with its default
``dropna=True``, built from the same pieces pivot_table uses (a sorted groupby mean, the groups
whose mean is NaN left out, unstacked, columns sorted, all-NaN columns dropped) without its
generic machinery: the analysis reshapes a small table per (scheme, shape) group several
hundred times per run, and pivot_table spends about 6 ms on each where this takes 1 ms
(tests/test_frames.py checks that both give the same frame).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


def wide_mean(
    frame: pd.DataFrame,
    index: str | Sequence[str],
    columns: str | Sequence[str],
    values: str,
) -> pd.DataFrame:
    """The mean of ``values`` per (``index``, ``columns``) as a wide frame: rows the sorted
    ``index`` keys, columns the sorted ``columns`` keys, NaN where a combination has no row (or
    only NaN values); equal to ``frame.pivot_table(index=index, columns=columns,
    values=values, aggfunc="mean")``."""
    rows = [index] if isinstance(index, str) else list(index)
    cols = [columns] if isinstance(columns, str) else list(columns)
    means = frame.groupby(rows + cols, sort=True)[values].mean().dropna()
    wide = means.unstack(cols[0] if len(cols) == 1 else cols)
    return wide.sort_index(axis=1).dropna(how="all", axis=1)
