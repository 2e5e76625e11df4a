"""Layer 5, tools built on the layers below: check (expectations and baselines: the regression
gate), mutants and mutation (the gate's mutation test), coordcheck (coordinate checks), ladder
(a scheme ladder), coverage_doc (writes the committed coverage table). Nothing below imports them.
"""
