"""Mutants of scheme tables (hptransfer.tools.mutants) and the mutation test's shape rule
(hptransfer.tools.mutation.same_at_shapes): no training, only tables and multipliers."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest

from hptransfer.network.model import Architecture
from hptransfer.network.scaling import multipliers
from hptransfer.network.schemes import BUILTIN_SCHEMES
from hptransfer.sweeps.config import config_from_dict
from hptransfer.tools.mutants import (
    Mutant,
    MutantError,
    builtin_tables,
    load_mutants,
    mutant_schemes,
    mutant_tables,
    original_name,
    substitute,
)
from hptransfer.tools.mutation import INPUTS_FILE, gate_inputs, same_at_shapes

ROOT_MUTANTS = "benchmarks/mutants.toml"
KNOWN = sorted(BUILTIN_SCHEMES)


def _write(tmp_path, text):
    path = tmp_path / "mutants.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[typo]\nedit.nfdd.hidden_1 = { lr_sgd = [0, 0] }\n', "unknown scheme(s) ['nfdd']"),
        ('[no_edit]\ndescription = "forgot the edit"\n', "'edit' must name schemes"),
        ('[empty]\nedit = {}\n', "'edit' must name schemes"),
        ('[flat]\nedit = "nfd"\n', "'edit' must name schemes"),
        ('[extra]\nedit.nfd.hidden_1 = { lr_sgd = [0, 0] }\nschemes = ["nfd"]\n',
         "allowed fields: description, edit"),
        ('bare = 1\n', "allowed fields"),
        ('["a--b"]\nedit.nfd.hidden_1 = { lr_sgd = [0, 0] }\n', "may not contain '--'"),
    ],
)  # fmt: skip
def test_load_mutants_refuses_in_one_line(tmp_path, text, needle):
    with pytest.raises(MutantError) as err:
        load_mutants(_write(tmp_path, text), KNOWN)
    message = str(err.value)
    assert needle in message and "\n" not in message, message
    assert "mutants.toml" in message


def test_the_builtin_mutants_load_and_build():
    mutants = load_mutants(ROOT_MUTANTS, KNOWN)
    assert len(mutants) >= 5 and all(m.description for m in mutants)
    schemes = mutant_schemes(mutants, builtin_tables(), BUILTIN_SCHEMES)
    for m in mutants:
        assert any(name.endswith(f"--{m.name}") for name in schemes), m.name


EDIT = Mutant(
    "x",
    "depth-muP's branch multiplier lost and its readout SGD rate divided by L",
    {"depth_mup": {"branch_exponent": 0.0, "readout": {"lr_sgd": [-1, -1]}}},
)


def test_an_edit_of_depth_mup_reaches_nfd_with_renamed_parents():
    tables = builtin_tables()
    out = mutant_tables(EDIT, tables)
    assert sorted(out) == ["depth_mup--x", "nfd--x"]  # nfd extends depth_mup; mup does not
    assert out["depth_mup--x"]["extends"] == "mup"  # an unedited parent keeps its name
    assert out["nfd--x"]["extends"] == "depth_mup--x"
    assert out["depth_mup--x"]["branch_exponent"] == 0.0
    assert out["depth_mup--x"]["readout"] == {"lr_sgd": [-1, -1]}
    assert out["depth_mup--x"]["hidden"] == tables["depth_mup"]["hidden"]  # untouched role kept
    assert out["nfd--x"]["hidden_1"] == tables["nfd"]["hidden_1"]
    assert tables["depth_mup"]["branch_exponent"] == 0.5  # the source tables are not edited


def _leaves(mult):
    """{(field, path): value} of every multiplier array, plus the branch multiplier."""
    out = {("branch", ()): float(mult.branch)}
    for field in ("init_std", "forward", "lr", "eps"):
        for path, leaf in jax.tree_util.tree_flatten_with_path(getattr(mult, field))[0]:
            out[(field, tuple(k.key for k in path))] = float(leaf)
    return out


def _differences(a, b, arch, family):
    la, lb = _leaves(multipliers(a, arch, family)), _leaves(multipliers(b, arch, family))
    assert la.keys() == lb.keys()
    return {key: (la[key], lb[key]) for key in la if not np.isclose(la[key], lb[key])}


def test_mutant_multipliers_differ_exactly_where_the_edit_says():
    schemes = mutant_schemes([EDIT], builtin_tables(), BUILTIN_SCHEMES)
    arch = Architecture(128, 8, 2, (8,), 2, base_width=64, base_depth=2)  # m = 2, r = 4
    readout_lr = ("lr", ("readout", "kernel"))
    for name in ("depth_mup", "nfd"):
        original, mutant = BUILTIN_SCHEMES[name], schemes[f"{name}--x"]
        diff = _differences(original, mutant, arch, "sgd")
        assert set(diff) == {("branch", ()), readout_lr}, (name, diff)
        assert diff[("branch", ())] == pytest.approx((0.5, 1.0))  # r^-1/2 -> r^0
        before, after = diff[readout_lr]
        assert after / before == pytest.approx(1 / 4)  # times r^-1
        # the edit is of the SGD rate: under Adam only the branch multiplier moves
        assert set(_differences(original, mutant, arch, "adam")) == {("branch", ())}
    # NFD's own correction survives the edit of its parent: hidden_1 = sqrt(L) x depth-muP's
    lr = {n: _leaves(multipliers(schemes[n], arch, "sgd")) for n in ("depth_mup--x", "nfd--x")}
    h1 = ("lr", ("blocks", "hidden_1", "kernel"))
    assert lr["nfd--x"][h1] / lr["depth_mup--x"][h1] == pytest.approx(2.0)
    # at the base shape every scheme is the same network, mutated or not
    base = Architecture(64, 2, 2, (8,), 2, base_width=64, base_depth=2)
    assert not _differences(BUILTIN_SCHEMES["nfd"], schemes["nfd--x"], base, "sgd")


def _cells(frame):
    return {
        (r.scheme, r.depth): r.source
        for r in frame[["scheme", "depth", "source"]].drop_duplicates().itertuples()
    }


def test_substitute_replaces_rows_only_where_the_copy_has_rows():
    rows = []

    def add(scheme, depths, source):
        for depth in depths:
            for seed in (0, 1):
                rows.append(dict(scheme=scheme, family="mlp", optimizer="sgd", width=64,
                                 depth=depth, block_depth=2, seed=seed, source=source))  # fmt: skip

    add("nfd", (2, 4, 8), "original")
    add("depth_mup", (2, 4, 8), "original")
    add("mup", (2, 4, 8), "original")
    add("nfd--x", (8,), "copy")  # the copy trained only where it differs
    add("depth_mup--x", (4, 8), "copy")
    add("nfd--y", (2, 4, 8), "other mutant")
    results = pd.DataFrame(rows)
    out = substitute(results, "x", ["nfd", "depth_mup", "mup"])
    assert _cells(out) == {
        ("nfd", 2): "original", ("nfd", 4): "original", ("nfd", 8): "copy",
        ("depth_mup", 2): "original", ("depth_mup", 4): "copy", ("depth_mup", 8): "copy",
        ("mup", 2): "original", ("mup", 4): "original", ("mup", 8): "original",
    }  # fmt: skip
    assert len(out) == 3 * 3 * 2  # one row per (scheme, depth, seed): none doubled or lost
    assert (out["scheme"].map(original_name) == out["scheme"]).all()  # renamed back
    assert "other mutant" not in set(out["source"])
    # a copy at another block depth replaces nothing at this one
    other_k = results.assign(block_depth=np.where(results["scheme"] == "nfd--x", 1, 2))
    at_k2 = substitute(other_k, "x", ["nfd"]).query("block_depth == 2")
    assert set(at_k2["source"]) == {"original"} and len(at_k2) == 3 * 2


def _config(widths, depths, block_depths=(1,)):
    return config_from_dict({
        "name": "t", "schemes": ["mup"],
        "model": {"widths": list(widths), "depths": list(depths),
                  "block_depths": list(block_depths), "base_width": 64},
    })  # fmt: skip


def test_same_at_shapes_sees_a_width_mutant_only_off_the_base_width():
    mutants = {m.name: m for m in load_mutants(ROOT_MUTANTS, KNOWN)}
    schemes = mutant_schemes(list(mutants.values()), builtin_tables(), BUILTIN_SCHEMES)
    readout = schemes["mup--mup_readout_lr_sp"]
    mup = BUILTIN_SCHEMES["mup"]
    assert same_at_shapes(readout, mup, _config([64], [2, 4, 8]))
    assert not same_at_shapes(readout, mup, _config([64, 128], [2]))
    # NFD's correction acts only in blocks of k >= 2 layers: removing it is invisible at k = 1
    no_corr = schemes["nfd--nfd_no_correction"]
    nfd = BUILTIN_SCHEMES["nfd"]
    assert same_at_shapes(no_corr, nfd, _config([64], [2, 4, 8], (1,)))
    assert not same_at_shapes(no_corr, nfd, _config([64], [2, 4, 8], (2,)))
    assert same_at_shapes(no_corr, nfd, _config([64], [2], (2,)))  # base depth: r = 1


# --------------------------------------------------------------------------------------------
# The committed kill table against today's gate (the mutation test itself is `make mutation`)

REPO = Path(__file__).resolve().parents[1]


def _gate_inputs(**overrides):
    from hptransfer.sweeps.config import load_config

    config = overrides.pop("config", load_config(REPO / "benchmarks/ci.toml"))
    return gate_inputs(config, overrides.pop("mutants", REPO / ROOT_MUTANTS), "ci", **overrides)


def test_the_committed_kill_table_was_measured_on_todays_gate():
    committed = json.loads((REPO / "results/gate" / INPUTS_FILE).read_text())
    today = _gate_inputs()
    changed = sorted(k for k in committed.keys() | today.keys() if committed.get(k) != today.get(k))
    assert not changed, (
        f"the gate's {changed} changed since results/gate/ was measured; rerun the mutation test "
        "and commit its kill table: python benchmarks/gate_power.py --out results/gate --sets 6"
    )


def test_gate_inputs_see_each_input_and_ignore_what_cannot_matter(tmp_path):
    from hptransfer.sweeps.config import load_config

    today = _gate_inputs()
    config = load_config(REPO / "benchmarks/ci.toml")
    longer = dataclasses.replace(config, steps=config.steps + 100)
    assert _gate_inputs(config=longer)["config"] != today["config"]
    text = (REPO / ROOT_MUTANTS).read_text()
    _write(tmp_path, "# a comment changes nothing\n" + text)
    assert _gate_inputs(mutants=tmp_path / "mutants.toml") == today
    _write(tmp_path, text.replace("lr_sgd = [0, 1]", "lr_sgd = [0, 2]"))
    assert _gate_inputs(mutants=tmp_path / "mutants.toml")["mutants"] != today["mutants"]
    baseline = json.loads((REPO / "results/baselines/ci.json").read_text())
    (tmp_path / "ci.json").write_text(json.dumps({**baseline, "extra": 1}))
    moved = _gate_inputs(baseline=tmp_path / "ci.json")
    assert {k for k in today if moved[k] != today[k]} == {"baseline"}
    # a scheme file the sweep reads is part of the gate; one it never names is not
    (tmp_path / "s.toml").write_text('[nfd_x]\nextends = "nfd"\nbranch_exponent = 0.3\n')
    with_file = dataclasses.replace(config, scheme_files=(str(tmp_path / "s.toml"),))
    assert _gate_inputs(config=with_file)["schemes"] == today["schemes"]
    swept = dataclasses.replace(with_file, schemes=(*config.schemes, "nfd_x"))
    assert _gate_inputs(config=swept)["schemes"] != today["schemes"]
