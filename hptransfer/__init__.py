"""hptransfer: does the optimal learning rate transfer across width and depth? Measured.

Data flow (one module per stage): schemes -> scaling -> model -> optim -> train -> engine ->
results -> analysis -> report, with the command line in :mod:`hptransfer.cli` and the Python
API for notebooks in :mod:`hptransfer.api` (docs/api.md), whose names are reachable here
(``from hptransfer import sweep, analyze``). They load on first use, so ``import hptransfer``
does not import jax.
"""

__version__ = "0.1.0"

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
