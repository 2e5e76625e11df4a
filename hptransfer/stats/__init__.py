"""Layer 3, the statistics: from results tables to intervals and verdicts.

optimum (eta* of a loss-versus-rate curve, censoring), intervals (t-intervals, widening,
Bonferroni worst), rules (the one verdict rule), tables (the chain from results to per-seed
curves, optima and regrets), hparams (other hyperparameter axes), local_drift, path_transfer
(width x depth paths), twins, seed_metrics, baseline_test (the baseline record and its
two-sample test), calibration (coverage of the intervals on planted curves), verdicts
(scorecard, claims, suite metrics), analysis (one run's analysis). Reads results through
:mod:`hptransfer.sweeps.results`; imports nothing above it.
"""
