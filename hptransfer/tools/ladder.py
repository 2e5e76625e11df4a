"""The ladder: from a start scheme to a target scheme, one rule at a time.

Rung 0 is the start scheme. Each further rung copies ONE rule of the target into the previous
rung: the exponents (a, b) of one quantity of one role (init_std, forward, lr, eps; see
:data:`hptransfer.network.schemes.QUANTITIES`), in forward order of the roles (input, hidden_1 ..
hidden_k, readout, vector), and last the branch exponent alpha. Rules on which the two schemes
agree at block depth k are skipped, and so are the quantities the chosen optimizer never reads
(SGD: lr_adam, eps_adam, wd_adam; Adam: lr_sgd). The last rung is the target in every rule the
optimizer reads.

Running a coordinate check at every rung (``hptransfer coordcheck --ladder``) shows which rule
first makes the check pass, or which one breaks it: a scheme that fails is localised to a rule.
This module only builds the sequence; :mod:`hptransfer.tools.coordcheck` measures it.
"""

from __future__ import annotations

import dataclasses

from hptransfer.network.schemes import QUANTITIES, Exponents, RoleRule, Scheme

UNUSED_BY: dict[str, tuple[str, ...]] = {
    "sgd": ("lr_adam", "eps_adam", "wd_adam"),
    "adam": ("lr_sgd",),
}


@dataclasses.dataclass(frozen=True)
class Rung:
    """One step of the ladder: the rule just changed (empty at rung 0) and the scheme so far."""

    index: int
    change: str
    scheme: Scheme


def effective_rules(scheme: Scheme, block_depth: int) -> dict[str, RoleRule]:
    """Role -> rule as the network of block depth k uses it (hidden_j overrides merged)."""
    roles = ["input", *(f"hidden_{j}" for j in range(1, block_depth + 1)), "readout", "vector"]
    return {role: scheme.rule(role, block_depth) if role.startswith("hidden_") else scheme.roles[role]
            for role in roles}  # fmt: skip


def scheme_from_rules(
    name: str, description: str, alpha: float, rules: dict[str, RoleRule]
) -> Scheme:
    """A scheme whose every hidden_j carries its full rule as an override (min_block_depth 1)."""
    base = {role: rules[role] for role in ("input", "readout", "vector")}
    base["hidden"] = rules["hidden_1"]
    overrides = {
        role: {q: getattr(rule, q) for q in QUANTITIES}
        for role, rule in rules.items()
        if role.startswith("hidden_")
    }
    return Scheme(name, description, alpha, base, overrides)


def _text(e: Exponents) -> str:
    return f"m^{e.m:g} r^{e.r:g}"


def ladder(
    start: Scheme,
    target: Scheme,
    block_depth: int = 1,
    optimizer: str = "sgd",
    bias: bool = True,
) -> list[Rung]:
    """Rungs from ``start`` (rung 0) to ``target`` (last rung), one rule each (module docstring).

    ``bias=False`` (networks without biases) also skips the rules of the ``vector`` role.
    """
    if optimizer not in UNUSED_BY:
        raise ValueError(f"optimizer = {optimizer!r}; allowed: {sorted(UNUSED_BY)}")
    rules = effective_rules(start, block_depth)
    goal = effective_rules(target, block_depth)
    alpha = start.branch_exponent
    name = f"{start.name}_to_{target.name}"
    rungs = [Rung(0, "", scheme_from_rules(f"{name}_0", f"{start.name} (start)", alpha, rules))]
    for role in rules:
        for q in QUANTITIES:
            old, new = getattr(rules[role], q), getattr(goal[role], q)
            if old == new or q in UNUSED_BY[optimizer] or (role == "vector" and not bias):
                continue
            rules = {**rules, role: dataclasses.replace(rules[role], **{q: new})}
            change = f"{role}.{q}: {_text(old)} -> {_text(new)}"
            i = len(rungs)
            rungs.append(Rung(i, change, scheme_from_rules(f"{name}_{i}", change, alpha, rules)))
    if target.branch_exponent != alpha:
        change = f"branch_exponent: {alpha:g} -> {target.branch_exponent:g}"
        alpha = target.branch_exponent
        i = len(rungs)
        rungs.append(Rung(i, change, scheme_from_rules(f"{name}_{i}", change, alpha, rules)))
    return rungs
