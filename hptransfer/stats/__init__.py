"""Layer 2, the statistics: the results format and what is computed from it.

results (the results table and meta.json: file names, atomic writers, checked readers), columns
(the table's key columns and series keys), frames (the wide reshape the chain shares), optimum
(eta* of a loss-versus-rate curve, censoring), intervals (t-intervals, widening, Bonferroni
worst), rules (the one verdict rule), tables (the chain from results to per-seed curves, optima
and regrets), hparams (other hyperparameter axes), local_drift, path_transfer (width x depth
paths), twins, seed_metrics, baseline_test (the baseline record and its two-sample test),
calibration (coverage of the intervals on planted curves), verdicts (scorecard, claims, suite
metrics), analysis (one run's analysis). Imports only :mod:`hptransfer.network`; the sweep
engine above reads them (early elimination decides on eta* with the analysis's own estimator).
"""
