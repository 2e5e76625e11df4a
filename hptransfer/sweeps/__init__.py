"""Layer 2, the sweep: many replicas trained as one vmapped program, resumable.

config (the sweep config and its validation), axes (sweep axes: traced and shape), engine
(chunks, segments, refinement rounds, compaction), savings (deduplication), rundir (the output
directory: lock, identity, versions), hosts and supervise (several processes), interrupt
(SIGTERM and Ctrl-C), costmodel and limits (memory and time before compute), results (the
results table and meta.json). Imports only :mod:`hptransfer.network`.
"""
