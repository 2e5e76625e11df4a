"""Layer 4, reports and figures: report (report.md and its tables), figures and axis_figures
(matplotlib/seaborn figures of an analysis). Imports the layers below, never tools or the command line.
"""
