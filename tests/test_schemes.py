"""Parameterizations as data: built-ins, the base-shape identity, user schemes, validation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hptransfer.network.model import Architecture, apply, raw_init, scale_init
from hptransfer.network.optim import OptimizerConfig, make_optimizer
from hptransfer.network.scaling import multipliers
from hptransfer.network.schemes import (
    BUILTIN_SCHEMES,
    SchemeError,
    get_scheme,
    load_schemes,
    scheme_from_table,
    schemes_from_toml,
)
from hptransfer.network.train import loss_fn, train_run

BUILTINS = ["sp", "mup", "depth_mup", "nfd", "completep"]


def test_registry_lists_the_builtins():
    assert set(BUILTINS) <= set(BUILTIN_SCHEMES)
    assert "EXTRAPOLATION" in BUILTIN_SCHEMES["nfd"].description


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
@pytest.mark.parametrize("k", [1, 2])
def test_base_shape_every_scheme_is_the_same_network(opt_name, k, teacher_data):
    """At m = r = 1 all schemes give the same initial outputs and the same first update."""
    arch = Architecture(64, 2, k, (32,), 10, base_width=64, base_depth=2)
    opt = OptimizerConfig(opt_name)
    x, y = jnp.asarray(teacher_data.x_train[:64]), jnp.asarray(teacher_data.y_train[:64])
    raw = raw_init(jax.random.key(0), arch)
    outputs, updates = [], []
    for name in BUILTINS:
        mult = multipliers(get_scheme(name), arch, opt.family)
        params = scale_init(raw, mult.init_std)
        outputs.append(apply(params, x, mult.forward, mult.branch, arch))
        grads = jax.grad(loss_fn)(params, x, y, mult, arch)
        optimizer = make_optimizer(opt, jnp.float32(0.1), mult.lr, mult.eps)
        upd, _ = optimizer.update(grads, optimizer.init(params), params)
        updates.append(upd)
    for out, upd in zip(outputs[1:], updates[1:], strict=True):
        np.testing.assert_allclose(out, outputs[0], rtol=1e-6, atol=1e-6)
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-8), upd, updates[0]
        )


def test_scheme_tables_away_from_base():
    """Spot values of the scheme tables (docs/parameterizations.md) at m = 4, r = 16 (n = 256, L = 32)."""
    arch = Architecture(256, 32, 2, (40,), 10, base_width=64, base_depth=2)

    def lr(name, family, role):
        mult = multipliers(get_scheme(name), arch, family)
        tree = mult.lr["blocks"][role] if role.startswith("hidden") else mult.lr[role]
        return float(tree["kernel"])

    assert lr("sp", "sgd", "hidden_1") == 1.0
    assert lr("mup", "sgd", "input") == pytest.approx(4.0)
    assert lr("mup", "sgd", "readout") == pytest.approx(0.25)
    assert lr("mup", "adam", "hidden_2") == pytest.approx(0.25)
    assert lr("depth_mup", "adam", "hidden_1") == pytest.approx(0.25 / 4)
    assert lr("nfd", "sgd", "hidden_1") == pytest.approx(4.0)  # sqrt(r) with k = 2
    assert lr("nfd", "sgd", "hidden_2") == pytest.approx(1.0)
    assert lr("nfd", "adam", "hidden_1") == pytest.approx(0.25)
    assert lr("completep", "sgd", "hidden_1") == pytest.approx(16.0)
    assert float(multipliers(get_scheme("depth_mup"), arch).branch) == pytest.approx(0.25)
    assert float(multipliers(get_scheme("completep"), arch).branch) == pytest.approx(1 / 16)
    eps = multipliers(get_scheme("completep"), arch, "adam").eps["blocks"]["hidden_1"]["kernel"]
    assert float(eps) == pytest.approx(1 / 64)
    readout_std = float(multipliers(get_scheme("mup"), arch).init_std["readout"]["kernel"])
    assert readout_std == pytest.approx(1 / np.sqrt(256) / 2)


def test_nfd_equals_depth_mup_for_one_layer_blocks():
    arch = Architecture(128, 16, 1, (40,), 10)
    a = multipliers(get_scheme("nfd"), arch)
    b = multipliers(get_scheme("depth_mup"), arch)
    jax.tree.map(lambda u, v: np.testing.assert_array_equal(u, v), a, b)


USER_TOML = """
[my_depth_mup]
description = "depth-muP written out in full by a user"
branch_exponent = 0.5
input = { init_std = [0, 0], forward = [0, 0], lr_sgd = [1, 0], lr_adam = [0, 0], eps_adam = [0, 0] }
hidden = { init_std = [0, 0], forward = [0, 0], lr_sgd = [0, 0], lr_adam = [-1, -0.5], eps_adam = [0, 0] }
readout = { init_std = [-0.5, 0], forward = [0, 0], lr_sgd = [-1, 0], lr_adam = [-1, 0], eps_adam = [0, 0] }
vector = { init_std = [0, 0], forward = [0, 0], lr_sgd = [1, 0], lr_adam = [0, 0], eps_adam = [0, 0] }

[my_nfd]
extends = "my_depth_mup"
description = "NFD from a user's depth-muP"
hidden_1 = { min_block_depth = 2, lr_sgd = { m = 0, r = 0.5 } }
"""


def test_user_scheme_from_toml_trains_like_the_builtin(tmp_path, teacher_data):
    path = tmp_path / "mine.toml"
    path.write_text(USER_TOML)
    registry = load_schemes([str(path)])
    assert {"my_depth_mup", "my_nfd"} <= set(registry)
    arch = Architecture(96, 8, 2, (32,), 10, base_width=64, base_depth=2)
    opt = OptimizerConfig("sgd")
    for user, builtin in (("my_depth_mup", "depth_mup"), ("my_nfd", "nfd")):
        a = train_run(registry[user], arch, opt, 0.3, 0, teacher_data, 20, 64)
        b = train_run(builtin, arch, opt, 0.3, 0, teacher_data, 20, 64)
        np.testing.assert_allclose(a.losses, b.losses, rtol=1e-6)
        assert a.test_loss == pytest.approx(b.test_loss, rel=1e-6)


def test_user_scheme_from_python_attribute(tmp_path, monkeypatch):
    (tmp_path / "my_schemes.py").write_text(
        "SCHEMES = {'half_branch': {'extends': 'mup', 'branch_exponent': 0.25,"
        " 'description': 'muP with beta = r^-1/4'}}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = load_schemes(["my_schemes:SCHEMES"])
    assert registry["half_branch"].branch_exponent == 0.25
    assert registry["half_branch"].roles == BUILTIN_SCHEMES["mup"].roles


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"extends": "sp", "hiden": {"lr_sgd": [0, 0]}}, ["'bad'", "'hiden'", "allowed"]),
        (
            {"extends": "sp", "input": {"lr_sgd": [0, "x"]}},
            ["'bad'", "input.lr_sgd", "two finite numbers"],
        ),
        (
            {"extends": "sp", "input": {"learning_rate": [0, 0]}},
            ["'bad'", "learning_rate", "allowed"],
        ),
        (
            {"description": "d", "branch_exponent": 0.5, "input": {}},
            ["'bad'", "missing", "init_std"],
        ),
        ({"extends": "sp", "input": {"lr_sgd": {"m": 1}}}, ["'bad'", "input.lr_sgd", "missing"]),
        ({"extends": "nope"}, ["'bad'", "extends", "allowed"]),
        (
            {"extends": "sp", "branch_exponent": "half"},
            ["'bad'", "branch_exponent", "finite number"],
        ),
    ],
)
def test_bad_scheme_tables_name_scheme_field_and_allowed(table, words):
    with pytest.raises(SchemeError) as err:
        scheme_from_table("bad", table, BUILTIN_SCHEMES)
    for word in words:
        assert word in str(err.value)


def test_unknown_scheme_and_name_clash(tmp_path):
    with pytest.raises(SchemeError, match="unknown scheme 'mu_p'.*allowed"):
        get_scheme("mu_p")
    path = tmp_path / "clash.toml"
    path.write_text('[mup]\nextends = "sp"\n')
    with pytest.raises(SchemeError, match="built in"):
        load_schemes([str(path)])
    with pytest.raises(SchemeError, match="does not exist"):
        schemes_from_toml(tmp_path / "missing.toml")


def test_to_table_round_trips():
    for name in BUILTINS:
        scheme = BUILTIN_SCHEMES[name]
        again = scheme_from_table(name, scheme.to_table())
        assert again.roles == scheme.roles
        assert again.branch_exponent == scheme.branch_exponent
        assert again.rule("hidden_1", 2) == scheme.rule("hidden_1", 2)


def test_hidden_override_merges_over_the_parents_field_by_field():
    """Extending nfd and restating only hidden_1's Adam rule keeps nfd's SGD correction and its
    min_block_depth: the override is merged over the parent's, not put in its place."""
    child = scheme_from_table(
        "nfd_adam_half",
        {"extends": "nfd", "description": "d", "hidden_1": {"lr_adam": [-1, -0.25]}},
        BUILTIN_SCHEMES,
    )
    nfd = BUILTIN_SCHEMES["nfd"]
    assert child.rule("hidden_1", 2).lr_sgd == nfd.rule("hidden_1", 2).lr_sgd
    assert child.rule("hidden_1", 2).lr_sgd.r == 0.5
    assert child.rule("hidden_1", 2).lr_adam.r == -0.25
    assert child.rule("hidden_1", 1) == nfd.rule("hidden_1", 1) == nfd.roles["hidden"]
    assert child.overrides["hidden_1"]["min_block_depth"] == 2
    assert child.rule("hidden_2", 2) == nfd.rule("hidden_2", 2)


def test_extends_is_resolved_by_name_in_any_order(tmp_path):
    child_first = tmp_path / "child_first.toml"
    child_first.write_text(
        '[my_nfd2]\nextends = "my_dmup"\ndescription = "child before its parent"\n'
        "hidden_1 = { min_block_depth = 2, lr_sgd = [0, 0.5], lr_adam = [-1, 0] }\n"
        '[my_dmup]\nextends = "mup"\nbranch_exponent = 0.5\nhidden = { lr_adam = [-1, -0.5] }\n'
    )
    registry = load_schemes([str(child_first)])
    assert list(schemes_from_toml(child_first, BUILTIN_SCHEMES)) == ["my_nfd2", "my_dmup"]
    for k in (1, 2):
        for role in [f"hidden_{j}" for j in range(1, k + 1)]:
            assert registry["my_nfd2"].rule(role, k) == BUILTIN_SCHEMES["nfd"].rule(role, k)
    assert registry["my_nfd2"].branch_exponent == 0.5


@pytest.mark.parametrize(
    ("text", "cycle"),
    [
        ('[a]\nextends = "b"\n[b]\nextends = "a"\n', "a -> b -> a"),
        ('[a]\nextends = "b"\n[b]\nextends = "c"\n[c]\nextends = "b"\n', "b -> c -> b"),
        ('[a]\nextends = "a"\n', "a -> a"),
    ],
)
def test_an_extends_cycle_is_named(tmp_path, text, cycle):
    path = tmp_path / "cycle.toml"
    path.write_text(text)
    with pytest.raises(SchemeError, match="cycle") as err:
        load_schemes([str(path)])
    assert cycle in str(err.value)
    assert str(path) in str(err.value)


def test_scheme_labels_come_from_the_scheme_tables() -> None:
    from hptransfer.network.schemes import BUILTIN_SCHEMES, scheme_label, schemes_from_tables

    assert [scheme_label(s) for s in ("sp", "mup", "depth_mup", "nfd", "completep")] == [
        "SP", "muP", "depth-muP", "NFD", "CompleteP",
    ]  # fmt: skip
    user = schemes_from_tables(
        {"mine": {"extends": "nfd"}, "named": {"extends": "mup", "label": "muP-2"}}, BUILTIN_SCHEMES
    )
    registry = {**BUILTIN_SCHEMES, **user}
    assert scheme_label("mine", registry) == "mine"  # a label is not inherited
    assert scheme_label("named", registry) == "muP-2"
    assert scheme_label("unknown") == "unknown"
    assert user["named"].to_table()["label"] == "muP-2"
    with pytest.raises(SchemeError, match="field 'label'"):
        schemes_from_tables({"bad": {"extends": "mup", "label": ""}}, BUILTIN_SCHEMES)
