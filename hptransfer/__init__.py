"""hptransfer: does the optimal learning rate transfer across width and depth? Measured.

Layers, each a subpackage that imports only those below it (enforced by `make lint`):
:mod:`hptransfer.network` (the model, schemes, optimizers, data, one replica's training) <
:mod:`hptransfer.stats` (the results format, optima, intervals, the verdict rule, verdicts) <
:mod:`hptransfer.sweeps` (config, engine, early elimination, run directory) <
:mod:`hptransfer.reports` (report,
figures) < :mod:`hptransfer.tools` (check, mutation, coordcheck, ladder) < the command line
:mod:`hptransfer.cli` and the Python API :mod:`hptransfer.api` (docs/api.md), whose names are
reachable here (``from hptransfer import sweep, analyze``). They load on first use, so
``import hptransfer`` does not import jax.
"""

from importlib.metadata import version as _version

__version__ = _version("hptransfer")  # one source: pyproject.toml

__all__ = [
    "Analysis", "ArgumentError", "SweepConfig", "analyze", "as_figure", "claims", "drift",
    "figure", "load_config", "make_config", "optima", "regret", "scorecard", "sweep",
    "write_report",
]  # fmt: skip


def __getattr__(name: str):
    """The names of :data:`__all__`, from :mod:`hptransfer.api` (imported on first use)."""
    if name in __all__:
        from hptransfer import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
