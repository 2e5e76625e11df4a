"""Mutation test of a regression gate: does the check fail on every mutant of the schemes, and
pass on the unmutated ones?

:func:`mutation_test` runs the gate's sweep (DIR/gate, resumable like any sweep), then ONE sweep
of every mutant copy of the swept schemes (DIR/mutants: :mod:`hptransfer.tools.mutants`; same cells,
seeds and learning-rate grids, so replicas of one seed see the same draws and batches), and
judges with :func:`hptransfer.tools.check.evaluate_run`:

- the unmutated run, as the gate does;
- for every mutant, the run the gate would have seen had the scheme source been edited:
  DIR/as/<mutant>, the gate's results with the affected schemes' rows replaced by their mutant
  copies' (:func:`hptransfer.tools.mutants.substitute`), and the coordinate checks of the gate run on
  the mutated schemes.

With ``seed_sets`` the same is done on disjoint subsets of the seeds of one larger sweep: the
unmutated code with another seed set than the baseline's measures the gate's false-alarm rate,
the mutants its power (benchmarks/gate_power.py). The result is the kill table, one row per
(seed set, mutant): caught (the gate failed), what caught it, and the check's seconds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from hptransfer.network.schemes import Scheme, load_schemes, schemes_from_tables
from hptransfer.stats.results import META_FILE, RESULTS_FILE, read_meta, read_results, write_json
from hptransfer.sweeps.config import SweepConfig, load_config
from hptransfer.tools import check
from hptransfer.tools.mutants import (
    Mutant,
    as_toml,
    builtin_tables,
    load_mutants,
    mutant_tables,
    original_name,
    substitute,
)

UNMUTATED = "(none)"
INPUTS_FILE = "inputs.json"  # gate_inputs() of a measured kill table, next to it


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def gate_inputs(
    config: SweepConfig,
    mutants_path: str | Path,
    suite: str,
    *,
    expectations: str | Path = check.EXPECTATIONS,
    baseline: str | Path | None = None,
) -> dict[str, str]:
    """{input: sha256 of its parsed content} for every input that decides a mutation test's
    kill table besides the code: the sweep config, the scheme tables it trains or a mutant or a
    coordinate check reads (with every table they extend), the mutants, the suite's
    expectations and its baseline (``baseline``, else ``<baselines>/<suite>.json``). Parsed,
    not raw bytes: a comment or a reordering changes nothing. Stored next to a committed kill
    table (:data:`INPUTS_FILE`), it tells whether that table still describes today's gate (the
    mutation test is too long for CI: a test compares the two)."""
    spec = check.load_expectations(suite, expectations)
    with open(mutants_path, "rb") as f:
        mutants = tomllib.load(f)
    tables = source_tables(config)
    wanted = set(config.schemes) | {c["scheme"] for c in spec.get("coordcheck", [])}
    wanted |= {s for m in mutants.values() for s in m.get("edit", {})}
    names: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name in tables and name not in names:
            names.add(name)
            wanted |= {tables[name].get("extends")} - {None}
    base = Path(baseline) if baseline else check.BASELINES / f"{suite}.json"
    return {
        "config": _digest(config.to_dict()),
        "schemes": _digest({n: tables[n] for n in sorted(names)}),
        "mutants": _digest(mutants),
        "expectations": _digest(spec),
        "baseline": _digest(json.loads(base.read_text()) if base.exists() else None),
    }


def same_at_shapes(a: Scheme, b: Scheme, config: SweepConfig) -> bool:
    """Whether two schemes give the same multipliers (the same network and learning rates) at
    every cell of ``config``: a width regression is invisible at the base width, so such a
    mutant copy needs no training there (its rows are the original's)."""
    import jax
    import numpy as np

    from hptransfer.network.model import Architecture
    from hptransfer.network.scaling import multipliers

    m = config.model
    family = "sgd" if config.optimizer.name == "sgd" else "adam"
    for n, L in m.shapes():
        for k in m.block_depths:
            arch = Architecture(
                width=n, depth=L, block_depth=k, in_shape=(8,), num_classes=2, family=m.family,
                base_width=m.base_width, base_depth=m.base_depth, bias=m.bias,
            )  # fmt: skip
            ma, mb = multipliers(a, arch, family), multipliers(b, arch, family)
            la, lb = jax.tree.leaves(ma), jax.tree.leaves(mb)
            if len(la) != len(lb) or not all(
                np.array_equal(x, y) for x, y in zip(la, lb, strict=True)
            ):
                return False
    return True


def source_tables(config: SweepConfig) -> dict[str, dict[str, Any]]:
    """The raw scheme tables a sweep's schemes come from: the built-in file and the config's
    scheme files (.toml), as written, so that a mutant edits a user's scheme like a built-in."""
    tables = builtin_tables()
    for path in config.scheme_files:
        if not str(path).endswith(".toml"):
            continue  # a Python source given on the command line has no tables to edit
        with open(path, "rb") as f:
            tables |= tomllib.load(f)
    return tables


def mutant_configs(
    config: SweepConfig, mutants: Sequence[Mutant], scheme_file: Path
) -> tuple[list[SweepConfig], dict[str, Scheme], list[tuple[str, int, str]]]:
    """(one sweep per block depth k of the mutant copies of ``config``'s schemes that are not
    the same network as their original at some cell of that k (:func:`same_at_shapes`: e.g.
    NFD's copies at k = 1, where NFD is depth-muP, or a width mutant at the base width), {every
    copy's name: Scheme}, aliases: (copy, k, original) where a copy is at every cell of that k
    the same network as another swept original, whose rows then stand for it); writes the
    copies' tables to ``scheme_file``."""
    tables = source_tables(config)
    registry = load_schemes(config.scheme_files)
    raw: dict[str, Any] = {}
    for m in mutants:
        raw |= mutant_tables(m, tables)
    copies = schemes_from_tables(raw, registry)
    scheme_file.parent.mkdir(parents=True, exist_ok=True)
    scheme_file.write_text(as_toml(raw))
    grids = dict(config.lr_by_scheme)
    sweeps = []
    aliases: list[tuple[str, int, str]] = []
    for k in config.model.block_depths:
        at_k = dataclasses.replace(
            config, model=dataclasses.replace(config.model, block_depths=(k,))
        )
        swept = []
        for name, scheme in copies.items():
            if original_name(name) not in config.schemes:
                continue
            if same_at_shapes(scheme, registry[original_name(name)], at_k):
                continue  # the original's rows stand for it
            twin = next((o for o in config.schemes
                         if same_at_shapes(scheme, registry[o], at_k)), None)  # fmt: skip
            if twin is not None:  # e.g. NFD without its correction is depth-muP: reuse its rows
                aliases.append((name, k, twin))
            else:
                swept.append(name)
        if not swept:
            continue
        sweeps.append(dataclasses.replace(
            at_k,
            name=f"{config.name}-mutants-k{k}",
            schemes=tuple(swept),
            scheme_files=(*config.scheme_files, str(scheme_file.resolve())),
            lr_by_scheme=tuple((n, grids[original_name(n)]) for n in swept
                               if original_name(n) in grids),
        ))  # fmt: skip
    return sweeps, copies, aliases


def _write_run(results: pd.DataFrame, meta: dict[str, Any], out: Path) -> Path:
    """A run directory (results + meta) for the check to read, replaced if it exists."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    results.to_parquet(out / RESULTS_FILE)
    write_json(meta, out / META_FILE)
    return out


def _seed_subset(results: pd.DataFrame, meta: dict[str, Any], seeds: Sequence[int]):
    sub = results[results["seed"].isin(list(seeds))].reset_index(drop=True)
    meta = dict(meta)
    meta["config"] = dict(meta["config"]) | {"seeds": [int(s) for s in seeds]}
    return sub, meta


def _caught_by(table: pd.DataFrame) -> str:
    failed = table[~table["held"]]
    return "; ".join(f"{r.check}: {r.what} ({r.outcome})" for r in failed.itertuples())


def mutation_test(
    config_path: str | Path | SweepConfig,
    mutants_path: str | Path | None,
    out: str | Path,
    suite: str | None = None,
    *,
    expectations: str | Path | None = None,
    baseline: str | Path | None = None,
    seed_sets: Sequence[Sequence[int]] | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """The kill table of ``mutants_path`` against the gate (``config_path`` swept, checked by
    ``suite`` of ``expectations`` with ``baseline``; the built-in ones by default): one row per
    (seed set, mutant) with seeds, mutant ('(none)' = the unmutated schemes), description,
    failed (the gate failed), n_failed, caught_by, seconds (of its check). ``seed_sets`` =
    subsets of the config's seeds to judge separately (default: all seeds, once); without
    ``mutants_path`` only the unmutated gate is judged (the false-alarm measurement)."""
    from hptransfer.sweeps.engine import run_sweep

    out = Path(out)
    config = config_path if isinstance(config_path, SweepConfig) else load_config(config_path)
    known = sorted(source_tables(config))
    mutants = load_mutants(mutants_path, known) if mutants_path else []
    sweeps, copies, aliases = mutant_configs(config, mutants, out / "mutant_schemes.toml")
    run_sweep(config, out / "gate", progress=progress)
    gate_rows = read_results(out / "gate")
    frames = [gate_rows]
    for name, k, twin in aliases:
        same = gate_rows[(gate_rows["scheme"] == twin) & (gate_rows["block_depth"] == k)]
        frames.append(same.assign(scheme=name))
    for sweep in sweeps:
        k = sweep.model.block_depths[0]
        run_sweep(sweep, out / f"mutants-k{k}", progress=progress)
        frames.append(read_results(out / f"mutants-k{k}"))
    meta = read_meta(out / "gate")
    everything = pd.concat(frames, ignore_index=True)
    kwargs: dict[str, Any] = {}
    if expectations is not None:  # a project's own gate: its baseline only when given
        kwargs = {"expectations": expectations, "baselines": None, "baseline": baseline}
    elif baseline is not None:
        kwargs = {"baseline": baseline}
    sets = [tuple(s) for s in (seed_sets or [tuple(config.seeds)])]
    rows = []
    for seeds in sets:
        forced = sorted(seeds) != sorted(config.seeds)
        for m in [None, *mutants]:
            name = UNMUTATED if m is None else m.name
            results = gate_rows if m is None else substitute(everything, m.name, config.schemes)
            sub, sub_meta = _seed_subset(results, meta, seeds)
            run = _write_run(
                sub, sub_meta, out / "as" / f"{name.strip('()')}-{'_'.join(map(str, seeds))}"
            )
            # every mutated scheme stands in for its original in the coordinate checks, also
            # one the sweep does not train (muP's width scaling, checked across widths)
            overrides = {} if m is None else {
                original_name(n): dataclasses.replace(copies[n], name=original_name(n))
                for n in copies if n.endswith("--" + m.name)
            }  # fmt: skip
            start = time.perf_counter()
            table = check.evaluate_run(run, suite, force=forced, schemes=overrides, **kwargs)
            seconds = time.perf_counter() - start
            failed = table[~table["held"]]
            rows.append({
                "seeds": ",".join(map(str, seeds)), "mutant": name,
                "description": "" if m is None else m.description,
                "failed": bool(len(failed)), "n_failed": int(len(failed)),
                "caught_by": _caught_by(table), "seconds": round(seconds, 1),
                "mutant_schemes": ", ".join(n for n in copies if m and n.endswith("--" + m.name)),
            })  # fmt: skip
    return pd.DataFrame(rows)


def format_kill_table(table: pd.DataFrame, width: int = 100) -> str:
    """The kill table as text: per (seed set, mutant) whether the gate failed and what failed."""
    import textwrap

    lines = []
    for r in table.itertuples():
        state = "gate FAILS" if r.failed else "gate passes"
        lines.append(
            f"{r.mutant} (seeds {r.seeds}): {state} ({r.n_failed} failed, {r.seconds:.1f} s)"
        )
        if r.description:
            lines += textwrap.wrap(
                r.description, width, initial_indent="    ", subsequent_indent="    "
            )
        for part in r.caught_by.split("; ") if r.caught_by else []:
            lines += textwrap.wrap(part, width, initial_indent="    - ", subsequent_indent="      ")
    return "\n".join(lines)
