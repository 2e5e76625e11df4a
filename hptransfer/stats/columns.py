"""The results table's schema, in one place: the key columns every row carries, the keys of a
series (one scheme's study: the scorecard's rows), and the per-layer statistic columns.

A row of ``results.parquet`` is one replica at one evaluation step: the :data:`REPLICA` keys,
then :data:`REQUIRED`'s measurements, then one ``"<stat>/<role>"`` column per feature
statistic and layer role, built and split only by :func:`stat_column` and
:func:`split_stat_column` (defined with the statistics in :mod:`hptransfer.network.movement`).
"""

from hptransfer.network.movement import split_stat_column, stat_column

SERIES = ("family", "scheme", "optimizer", "block_depth")
"""One line of study: a scheme with its optimizer and block depth, across shapes."""
METRIC_KEYS = SERIES[1:]
"""The keys of a check metric's row (the family is grouped apart)."""
GROUP = ("family", "scheme", "optimizer", "width", "depth", "block_depth")
"""One shape of a series: the replicas that share a loss-versus-rate curve."""
REPLICA = (*GROUP, "log2_lr", "seed")
"""One trained network."""
REQUIRED = (*REPLICA, "lr", "step", "train_loss", "test_loss", "diverged")
"""The columns every results table has."""

__all__ = [
    "GROUP",
    "METRIC_KEYS",
    "REPLICA",
    "REQUIRED",
    "SERIES",
    "split_stat_column",
    "stat_column",
]
