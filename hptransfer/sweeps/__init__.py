"""Layer 3, the sweep: many replicas trained as one vmapped program, resumable.

config (the sweep config and its validation), axes (grids of the hyperparameters of
:mod:`hptransfer.network.hyperparameters` and how a point reaches the network), engine (chunks,
segments, refinement rounds, compaction), elimination (early stopping of rates that cannot
change the report), savings (deduplication), rundir (the output directory: lock, identity,
versions), hosts and supervise (several processes), interrupt (SIGTERM and Ctrl-C), costmodel
and limits (memory and time before compute). Writes results through
:mod:`hptransfer.stats.results`; imports only the network and the statistics.
"""
