"""hptransfer: does the optimal learning rate transfer across width and depth? Measured.

Data flow (one module per stage): schemes -> scaling -> model -> optim -> train -> engine ->
results -> analysis -> report, with the command line in :mod:`hptransfer.cli`.
"""

__version__ = "0.1.0"
