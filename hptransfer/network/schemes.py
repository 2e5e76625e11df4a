"""Parameterizations as data (docs/parameterizations.md).

A scheme is a frozen table. For every tensor role it gives, for each scaled quantity q, a pair of
exponents (a, b) so that the factor applied relative to the base shape (n0, L0) is

    factor_q = m**a * r**b,        m = n / n0,   r = L / L0.

The quantities are ``init_std`` (on top of the fan-in std 1/sqrt(fan_in)), ``forward`` (the
forward multiplier), ``lr_sgd`` and ``lr_adam`` (on top of the swept learning rate eta) and
``eps_adam`` (on top of Adam's epsilon) and ``wd_adam`` (on top of AdamW's decoupled weight
decay; optional, default m**0 r**0). The residual branch is multiplied by
beta = r**(-branch_exponent). At m = r = 1 every factor is 1, so every scheme is the same network
with the same learning rate at the base shape.

Roles: ``input``; ``hidden`` (every layer inside a residual block) with optional overrides
``hidden_<j>`` for layer j of a k-layer block, merged over ``hidden`` and applied only when
k >= ``min_block_depth``; ``readout``; ``vector`` (biases). The transformer
(:mod:`hptransfer.network.transformer`) reads the same roles (embedding = ``input``, its MLP's two
layers = ``hidden_1``, ``hidden_2``, unembedding = ``readout``) plus optional overrides that
start from a base role (:data:`DERIVED_ROLES`): ``attn_q``, ``attn_k``, ``attn_v``, ``attn_out``
from ``hidden`` and ``norm`` (the LayerNorms' gains and biases) from ``vector``. A scheme's
``attention_exponent`` e sets the attention logit scale tau = d0^-1/2 (d/d0)^-e for head dimension
d (base d0): 1/2 is SP's 1/sqrt(d), 1 is muP's 1/d (default 1/2; inherited through ``extends``). Built-in schemes live in
``schemes.toml`` next to this module and are read by the same loader as user schemes, so a new
scheme is a new table, never new code.

``extends = "parent"`` starts from another scheme: base roles are merged field by field over the
parent's, and so are ``hidden_<j>`` overrides over the parent's override of the same layer (its
``min_block_depth`` and its SGD/Adam rules stay unless restated). Within one file or dict,
``extends`` is resolved by name whatever the order; a cycle is an error naming the schemes.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hptransfer.network.architecture import ATTENTION_ROLES

QUANTITIES: tuple[str, ...] = ("init_std", "forward", "lr_sgd", "lr_adam", "eps_adam", "wd_adam")
OPTIONAL_QUANTITIES: tuple[str, ...] = ("wd_adam",)
"""Quantities a base role may leave out (then m**0 r**0): added after schemes existed, so
that a scheme file written before them still reads the same."""
BASE_ROLES: tuple[str, ...] = ("input", "hidden", "readout", "vector")
DERIVED_ROLES: dict[str, str] = {role: "hidden" for role in ATTENTION_ROLES} | {"norm": "vector"}
"""The transformer's optional roles and the base role each starts from (a scheme that does not
state one uses its base role's rule)."""
DEFAULT_ATTENTION_EXPONENT = 0.5  # tau = 1/sqrt(d_head), the standard scale
_HIDDEN_J = re.compile(r"^hidden_([1-9][0-9]*)$")
_SCHEME_KEYS = ("description", "label", "branch_exponent", "attention_exponent", "extends")


class SchemeError(ValueError):
    """A scheme table is malformed; the message names the scheme, the field and what is allowed."""


@dataclasses.dataclass(frozen=True)
class Exponents:
    """The factor m**m_exp * r**r_exp."""

    m: float = 0.0
    r: float = 0.0

    def factor(self, m: float, r: float) -> float:
        return float(m**self.m * r**self.r)


@dataclasses.dataclass(frozen=True)
class RoleRule:
    """Exponents of every quantity for one role. ``min_block_depth`` only matters for hidden_<j>."""

    init_std: Exponents = Exponents()
    forward: Exponents = Exponents()
    lr_sgd: Exponents = Exponents()
    lr_adam: Exponents = Exponents()
    eps_adam: Exponents = Exponents()
    wd_adam: Exponents = Exponents()
    min_block_depth: int = 1


@dataclasses.dataclass(frozen=True)
class Scheme:
    """A parameterization: per-role exponents plus the branch exponent alpha (beta = r**-alpha)."""

    name: str
    description: str
    branch_exponent: float
    roles: Mapping[str, RoleRule]
    overrides: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    label: str | None = None  # the display name in reports and figures (default: the name)
    attention_exponent: float = DEFAULT_ATTENTION_EXPONENT  # tau ~ d_head**-e (module docstring)

    @property
    def display(self) -> str:
        """The scheme's name as reports and figures show it."""
        return self.label or self.name

    def rule(self, role: str, block_depth: int = 1) -> RoleRule:
        """The rule for ``role`` ("input", "readout", "vector", "hidden_<j>" or one of
        :data:`DERIVED_ROLES`) in a k-layer block."""
        if role in ("input", "readout", "vector"):
            return self.roles[role]
        if role in DERIVED_ROLES:
            override = self.overrides.get(role, {})
            fields = {q: override[q] for q in QUANTITIES if q in override}
            return dataclasses.replace(self.roles[DERIVED_ROLES[role]], **fields)
        match = _HIDDEN_J.match(role)
        if not match:
            raise SchemeError(f"scheme {self.name!r}: unknown role {role!r}")
        j = int(match.group(1))
        if j > block_depth:
            raise SchemeError(
                f"scheme {self.name!r}: role {role!r} but block depth is {block_depth}"
            )
        base = self.roles["hidden"]
        override = self.overrides.get(role)
        if override is None or block_depth < override.get("min_block_depth", 1):
            return base
        fields = {q: override[q] for q in QUANTITIES if q in override}
        return dataclasses.replace(base, **fields)

    def branch_multiplier(self, r: float) -> float:
        """beta = r**(-alpha)."""
        return float(r ** (-self.branch_exponent))

    def attention_scale(self, d_head: int, d_head0: int) -> float:
        """The attention logit scale tau = d0**-1/2 * (d / d0)**-e (module docstring)."""
        return float(d_head0**-0.5 * (d_head / d_head0) ** (-self.attention_exponent))

    def to_table(self) -> dict[str, Any]:
        """The scheme as a TOML-ready table (the inverse of :func:`scheme_from_table`)."""
        table: dict[str, Any] = {
            "description": self.description,
            "branch_exponent": self.branch_exponent,
        }
        if self.label is not None:
            table["label"] = self.label
        if self.attention_exponent != DEFAULT_ATTENTION_EXPONENT:
            table["attention_exponent"] = self.attention_exponent
        for role, rule in self.roles.items():
            table[role] = {q: [getattr(rule, q).m, getattr(rule, q).r] for q in QUANTITIES}
        for role, override in self.overrides.items():
            table[role] = {
                k: ([v.m, v.r] if isinstance(v, Exponents) else v) for k, v in override.items()
            }
        return table


# --------------------------------------------------------------------------------------------
# Parsing and validation


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _parse_exponents(scheme: str, field: str, value: Any) -> Exponents:
    if isinstance(value, Mapping):
        unknown = set(value) - {"m", "r"}
        if unknown:
            raise SchemeError(
                f"scheme {scheme!r}: field {field!r} has unknown key(s) {sorted(unknown)}; "
                "allowed: 'm' and 'r' (exponents of n/n0 and L/L0)"
            )
        missing = {"m", "r"} - set(value)
        if missing:
            raise SchemeError(
                f"scheme {scheme!r}: field {field!r} is missing {sorted(missing)}; "
                "give both exponents, e.g. {m = 0, r = 0}"
            )
        pair = [value["m"], value["r"]]
    elif isinstance(value, list | tuple):
        pair = list(value)
    else:
        raise SchemeError(
            f"scheme {scheme!r}: field {field!r} = {value!r} is not allowed; "
            "use a pair of numbers [m_exponent, r_exponent] or {m = .., r = ..}"
        )
    if len(pair) != 2 or not all(_is_number(v) for v in pair):
        raise SchemeError(
            f"scheme {scheme!r}: field {field!r} = {value!r} must be two finite numbers "
            "[m_exponent, r_exponent]"
        )
    return Exponents(float(pair[0]), float(pair[1]))


def _parse_role(scheme: str, role: str, table: Any, *, partial: bool) -> dict[str, Any]:
    if not isinstance(table, Mapping):
        raise SchemeError(
            f"scheme {scheme!r}: role {role!r} must be a table of {list(QUANTITIES)}, got {table!r}"
        )
    allowed = set(QUANTITIES) | ({"min_block_depth"} if _HIDDEN_J.match(role) else set())
    unknown = set(table) - allowed
    if unknown:
        raise SchemeError(
            f"scheme {scheme!r}: role {role!r} has unknown field(s) {sorted(unknown)}; "
            f"allowed: {sorted(allowed)}"
        )
    if not partial:
        required = [q for q in QUANTITIES if q not in OPTIONAL_QUANTITIES]
        missing = [q for q in required if q not in table]
        if missing:
            raise SchemeError(
                f"scheme {scheme!r}: role {role!r} is missing field(s) {missing}; every base role "
                f"needs all of {required} (or use `extends` to inherit them)"
            )
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key == "min_block_depth":
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SchemeError(
                    f"scheme {scheme!r}: field '{role}.min_block_depth' = {value!r}; "
                    "allowed: an integer >= 1"
                )
            out[key] = value
        else:
            out[key] = _parse_exponents(scheme, f"{role}.{key}", value)
    return out


def scheme_from_table(
    name: str, table: Mapping[str, Any], known: Mapping[str, Scheme] | None = None
) -> Scheme:
    """Build and validate a :class:`Scheme` from a TOML-style table.

    ``extends`` names a scheme in ``known`` to inherit from; without it, every base role and every
    quantity must be given.
    """
    if not isinstance(name, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_\-]*$", name):
        raise SchemeError(f"scheme name {name!r} is not allowed; use letters, digits, '_' or '-'")
    if not isinstance(table, Mapping):
        raise SchemeError(f"scheme {name!r} must be a table, got {type(table).__name__}")
    known = known if known is not None else {}
    roles_allowed = set(BASE_ROLES)
    for key in table:
        if key in _SCHEME_KEYS or key in roles_allowed or key in DERIVED_ROLES:
            continue
        if _HIDDEN_J.match(key):
            continue
        raise SchemeError(
            f"scheme {name!r}: unknown field or role {key!r}; allowed: {list(_SCHEME_KEYS)}, "
            f"roles {list(BASE_ROLES)}, 'hidden_<j>' overrides (j >= 1) and the transformer's "
            f"{list(DERIVED_ROLES)}"
        )
    parent: Scheme | None = None
    if "extends" in table:
        parent_name = table["extends"]
        if not isinstance(parent_name, str) or parent_name not in known:
            raise SchemeError(
                f"scheme {name!r}: field 'extends' = {parent_name!r} is not a known scheme; "
                f"allowed: {sorted(known)}"
            )
        parent = known[parent_name]

    description = table.get("description", parent.description if parent else None)
    if not isinstance(description, str):
        raise SchemeError(f"scheme {name!r}: field 'description' is missing or not a string")
    label = table.get("label")  # not inherited: a label names this scheme, not its parent
    if label is not None and (not isinstance(label, str) or not label.strip()):
        raise SchemeError(
            f"scheme {name!r}: field 'label' = {label!r}; allowed: a non-empty string"
        )
    if "branch_exponent" in table:
        alpha = table["branch_exponent"]
        if not _is_number(alpha):
            raise SchemeError(
                f"scheme {name!r}: field 'branch_exponent' = {alpha!r}; allowed: a finite number "
                "(beta = (L/L0)**-branch_exponent)"
            )
        alpha = float(alpha)
    elif parent is not None:
        alpha = parent.branch_exponent
    else:
        raise SchemeError(
            f"scheme {name!r}: field 'branch_exponent' is missing; allowed: a finite number"
        )

    attention = _scheme_number(name, table, "attention_exponent", parent)
    roles: dict[str, RoleRule] = {}
    for role in BASE_ROLES:
        if role in table:
            fields = _parse_role(name, role, table[role], partial=parent is not None)
            base = parent.roles[role] if parent is not None else RoleRule()
            roles[role] = dataclasses.replace(base, **fields)
        elif parent is not None:
            roles[role] = parent.roles[role]
        else:
            raise SchemeError(
                f"scheme {name!r}: role {role!r} is missing; every scheme needs roles "
                f"{list(BASE_ROLES)} (or `extends` another scheme)"
            )
    overrides: dict[str, dict[str, Any]] = dict(parent.overrides) if parent else {}
    for key, value in table.items():
        if _HIDDEN_J.match(key) or key in DERIVED_ROLES:
            # Field by field over the parent's override of the same layer (not a replacement).
            overrides[key] = {
                **overrides.get(key, {}),
                **_parse_role(name, key, value, partial=True),
            }
    return Scheme(name, description, alpha, roles, overrides, label, attention)


def _scheme_number(name: str, table: Mapping[str, Any], key: str, parent: Scheme | None) -> float:
    """A scheme-level exponent: the table's, else the parent's, else the default."""
    if key not in table:
        return getattr(parent, key) if parent is not None else DEFAULT_ATTENTION_EXPONENT
    if not _is_number(table[key]):
        raise SchemeError(
            f"scheme {name!r}: field {key!r} = {table[key]!r}; allowed: a finite number "
            "(tau = d0**-1/2 * (d_head/d0)**-attention_exponent)"
        )
    return float(table[key])


def schemes_from_tables(
    tables: Mapping[str, Any], known: Mapping[str, Scheme] | None = None
) -> dict[str, Scheme]:
    """Build every scheme of ``tables`` ({name: table or Scheme}), in the order given.

    ``extends`` may name another entry of ``tables`` (before or after it) or a scheme of
    ``known``; entries are built parents first. A cycle a -> b -> a raises :class:`SchemeError`
    naming every scheme on it.
    """
    known = dict(known or {})
    built: dict[str, Scheme] = {}

    def build(name: str, chain: tuple[str, ...]) -> None:
        if name in built:
            return
        if name in chain:
            cycle = " -> ".join((*chain[chain.index(name) :], name))
            raise SchemeError(
                f"scheme {name!r}: field 'extends' makes a cycle {cycle}; allowed: a chain of "
                "`extends` that ends at a scheme without `extends`"
            )
        table = tables[name]
        if isinstance(table, Scheme):
            built[name] = table
            return
        parent = table.get("extends") if isinstance(table, Mapping) else None
        if isinstance(parent, str) and parent in tables:
            build(parent, (*chain, name))
        built[name] = scheme_from_table(name, table, {**known, **built})

    for name in tables:
        build(name, ())
    return {name: built[name] for name in tables}


def schemes_from_toml(
    path: str | Path, known: Mapping[str, Scheme] | None = None
) -> dict[str, Scheme]:
    """Read every top-level table of a TOML file as a scheme (`extends` in any order)."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError as err:
        raise SchemeError(f"scheme file {str(path)!r} does not exist") from err
    except IsADirectoryError as err:
        raise SchemeError(
            f"scheme file {str(path)!r} is a directory; allowed: a .toml file"
        ) from err
    except OSError as err:
        raise SchemeError(f"scheme file {str(path)!r} cannot be read: {err.strerror}") from err
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise SchemeError(f"scheme file {str(path)!r} is not valid TOML: {err}") from err
    try:
        return schemes_from_tables(data, known)
    except SchemeError as err:
        raise SchemeError(f"{path}: {err}") from None


_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
PYTHON_SOURCE = re.compile(rf"^{_IDENT}(\.{_IDENT})*:{_IDENT}$")
"""The form of a Python scheme source: ``package.module:attribute`` (identifiers only)."""

SOURCE_FORMS = "an existing .toml file or 'package.module:attribute'"


def is_python_source(spec: str) -> bool:
    """Whether ``spec`` has the form ``package.module:attribute`` (a Python scheme source)."""
    return bool(PYTHON_SOURCE.match(spec))


def schemes_from_python(spec: str) -> dict[str, Scheme]:
    """Load schemes from ``module:attribute``: a Scheme, a list of them, or a {name: table} dict.

    This imports and so runs the module: it is reached only from code or from the command
    line's ``--scheme-file``, never from a config file (which accepts .toml files only).
    """
    if not is_python_source(spec):
        raise SchemeError(f"scheme source {spec!r} is not allowed; allowed: {SOURCE_FORMS}")
    module_name, attr = spec.split(":", 1)
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise SchemeError(f"cannot load schemes from {spec!r}: {err}") from err
    if isinstance(obj, Scheme):
        return {obj.name: obj}
    if isinstance(obj, list | tuple) and all(isinstance(s, Scheme) for s in obj):
        return {s.name: s for s in obj}
    if isinstance(obj, Mapping):
        return schemes_from_tables(obj, BUILTIN_SCHEMES)
    raise SchemeError(
        f"{spec!r} is a {type(obj).__name__}; allowed: a Scheme, a list of Schemes or a dict of tables"
    )


BUILTIN_FILE = Path(__file__).with_name("schemes.toml")
BUILTIN_SCHEMES: dict[str, Scheme] = schemes_from_toml(BUILTIN_FILE)


def scheme_label(name: str, registry: Mapping[str, Scheme] = BUILTIN_SCHEMES) -> str:
    """The display name of scheme ``name`` (its table's ``label``; the raw name for a scheme
    without one or outside ``registry``)."""
    scheme = registry.get(name)
    return scheme.display if scheme is not None else name


def load_schemes(sources: list[str] | tuple[str, ...] = ()) -> dict[str, Scheme]:
    """The registry: built-in schemes plus those from each source (a .toml path or module:attr).

    A ``module:attr`` source is imported (it is code): this is the Python API and the command
    line's ``--scheme-file``; a config file's ``scheme_files`` are checked to be .toml paths
    before they get here (:func:`hptransfer.sweeps.config.config_from_dict`). A user scheme may not
    silently replace a built-in one of the same name.
    """
    registry = dict(BUILTIN_SCHEMES)
    for source in sources:
        if str(source).endswith(".toml") or Path(source).exists():
            new = schemes_from_toml(source, registry)
        else:
            new = schemes_from_python(str(source))
        clash = sorted(set(new) & set(BUILTIN_SCHEMES))
        if clash:
            raise SchemeError(
                f"{source}: scheme name(s) {clash} are built in; choose another name "
                "(use `extends` to start from a built-in)"
            )
        registry.update(new)
    return registry


def get_scheme(name: str, registry: Mapping[str, Scheme] | None = None) -> Scheme:
    """Look a scheme up by name, with an error listing what is allowed."""
    registry = BUILTIN_SCHEMES if registry is None else registry
    if isinstance(name, Scheme):
        return name
    if name not in registry:
        raise SchemeError(f"unknown scheme {name!r}; allowed: {sorted(registry)}")
    return registry[name]
