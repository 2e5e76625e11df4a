"""Mutants of scheme tables: the edits a regression could make, as data.

A mutants file (TOML, ``benchmarks/mutants.toml`` for the built-in schemes) has one table per
mutant: a description and an ``edit`` table that states, in the scheme tables' own words, what
changes in which scheme::

    [nfd_no_correction]
    description = "NFD's sqrt(L) on hidden_1 removed: NFD becomes depth-muP"
    edit.nfd.hidden_1 = { lr_sgd = [0, 0] }

An edit merges into the scheme's table as written in its source (hptransfer/network/schemes.toml, or a
user's scheme file): a role table merges field by field, any other field is replaced. Schemes
that ``extends`` an edited one inherit the edit, as they would if the source file were edited:
:func:`mutant_tables` copies every affected scheme under the name ``<scheme>--<mutant>`` with
its parent renamed the same way, so one sweep can train the mutants next to the originals (a
scheme is data; every scheme shares one compiled program per shape).

:func:`substitute` then builds the results table the gate would have seen had the source been
edited: the original schemes' rows replaced by their mutant copies' rows, renamed back. Replicas
of one seed draw the same initial weights and batches whatever the scheme, so the mutant's rows
are those of a sweep of the edited source.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from hptransfer.network.schemes import BASE_ROLES, BUILTIN_FILE, Scheme, schemes_from_tables

SEPARATOR = "--"
_HIDDEN_J = re.compile(r"^hidden_[1-9][0-9]*$")  # the schemes' per-layer override roles


class MutantError(ValueError):
    """A mutants file is malformed; the message names the mutant and the field."""


@dataclasses.dataclass(frozen=True)
class Mutant:
    """One regression, as an edit of scheme tables: {scheme: {field or role: value}}."""

    name: str
    description: str
    edit: Mapping[str, Mapping[str, Any]]


def load_mutants(path: str | Path, known: Sequence[str]) -> list[Mutant]:
    """The mutants of a TOML file (data only), each editing schemes among ``known``."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise MutantError(f"mutants file {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as err:
        raise MutantError(f"mutants file {str(path)!r} is not valid TOML: {err}") from None
    out = []
    for name, table in data.items():
        if not isinstance(table, dict) or set(table) - {"description", "edit"}:
            raise MutantError(
                f"{path}: mutant {name!r}: allowed fields: description, edit (a table)"
            )
        edit = table.get("edit")
        if not isinstance(edit, dict) or not edit:
            raise MutantError(f"{path}: mutant {name!r}: field 'edit' must name schemes to edit")
        unknown = sorted(set(edit) - set(known))
        if unknown:
            raise MutantError(
                f"{path}: mutant {name!r} edits unknown scheme(s) {unknown}; allowed: {sorted(known)}"
            )
        if SEPARATOR in name:
            raise MutantError(f"{path}: mutant name {name!r} may not contain {SEPARATOR!r}")
        out.append(Mutant(name, str(table.get("description", "")), edit))
    return out


def _is_role(key: str) -> bool:
    return key in BASE_ROLES or bool(_HIDDEN_J.match(key))


def edited_table(table: Mapping[str, Any], edit: Mapping[str, Any]) -> dict[str, Any]:
    """``table`` with ``edit`` merged in: role tables field by field, other fields replaced."""
    out = copy.deepcopy(dict(table))
    for key, value in edit.items():
        if _is_role(key) and isinstance(value, Mapping):
            out[key] = {**dict(out.get(key, {})), **dict(value)}
        else:
            out[key] = copy.deepcopy(value)
    return out


def mutant_name(scheme: str, mutant: str) -> str:
    return f"{scheme}{SEPARATOR}{mutant}"


def original_name(name: str) -> str:
    return name.split(SEPARATOR, 1)[0]


def affected(tables: Mapping[str, Mapping[str, Any]], edited: Sequence[str]) -> list[str]:
    """The schemes of ``tables`` that are edited or extend an edited one (transitively)."""
    hit = set(edited)
    changed = True
    while changed:
        changed = False
        for name, t in tables.items():
            if name not in hit and t.get("extends") in hit:
                hit.add(name)
                changed = True
    return [n for n in tables if n in hit]


def mutant_tables(
    mutant: Mutant, tables: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The scheme tables of ``mutant``: every affected scheme of ``tables`` (raw source tables,
    with ``extends``) edited and renamed ``<scheme>--<mutant>``, parents renamed alike."""
    names = affected(tables, list(mutant.edit))
    out = {}
    for name in names:
        t = edited_table(tables[name], mutant.edit.get(name, {}))
        if t.get("extends") in names:
            t["extends"] = mutant_name(t["extends"], mutant.name)
        t["description"] = f"{mutant.name}: {mutant.description}"
        out[mutant_name(name, mutant.name)] = t
    return out


def builtin_tables() -> dict[str, dict[str, Any]]:
    """The raw tables of the built-in schemes (hptransfer/network/schemes.toml), as written."""
    with BUILTIN_FILE.open("rb") as f:
        return tomllib.load(f)


def mutant_schemes(
    mutants: Sequence[Mutant], tables: Mapping[str, Mapping[str, Any]], known: Mapping[str, Scheme]
) -> dict[str, Scheme]:
    """Every mutant copy as a Scheme (validated by the same loader as any scheme)."""
    raw: dict[str, Any] = {}
    for m in mutants:
        raw |= mutant_tables(m, tables)
    return schemes_from_tables(raw, known)


def substitute(results: pd.DataFrame, mutant: str, schemes: Sequence[str]) -> pd.DataFrame:
    """The results a sweep of the edited source would give: for each of ``schemes``, at every
    cell (family, optimizer, width, depth, block_depth) where its ``<scheme>--<mutant>`` copy
    has rows, the original's rows replaced by the copy's, renamed back (elsewhere the copy is
    the same network and the original's rows stand); every other mutant copy's rows dropped."""
    cell = ["family", "optimizer", "width", "depth", "block_depth"]
    names = results["scheme"].astype(str)
    mine = names.map(lambda n: n in {mutant_name(s, mutant) for s in schemes})
    copies = results[mine].assign(scheme=names[mine].map(original_name))
    replaced = copies[["scheme", *cell]].drop_duplicates()
    originals = results[names.isin(list(schemes))]
    key = originals[["scheme", *cell]].merge(replaced, how="left", indicator=True)["_merge"]
    kept = originals[(key == "left_only").to_numpy()]
    return pd.concat([kept, copies]).reset_index(drop=True)


def as_toml(tables: Mapping[str, Mapping[str, Any]]) -> str:
    """Scheme tables as TOML text (numbers, strings, pairs and role tables only)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(float(v)) if isinstance(v, float) else str(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list | tuple):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, Mapping):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        raise MutantError(f"cannot write {v!r} to TOML")

    lines = []
    for name, t in tables.items():
        lines.append(f'["{name}"]')
        lines += [f"{k} = {value(v)}" for k, v in t.items()]
        lines.append("")
    return "\n".join(lines)
