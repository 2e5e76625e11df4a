"""The transformer family: shapes, causality, the schemes' multipliers and roles, Adam per role
against optax per leaf, feature movement, and its architecture checks."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from hptransfer.network.architecture import Architecture, ArchitectureError
from hptransfer.network.model import apply, check_inputs, param_roles, raw_init, scale_init
from hptransfer.network.movement import flatten_stats, layer_stats
from hptransfer.network.optim import OptimizerConfig
from hptransfer.network.scaling import multipliers
from hptransfer.network.schemes import BUILTIN_SCHEMES, SchemeError, schemes_from_tables
from hptransfer.network.train import init_state, train_step
from hptransfer.sweeps.costmodel import parameters

T, V = 12, 256


def _arch(width=32, depth=2, **kw):
    kw = {"base_width": 32, "base_depth": 2, "head_dim": 8, "mlp_ratio": 2} | kw
    return Architecture(width, depth, 2, (T,), V, family="transformer", **kw)


def _tokens(key=1, batch=3):
    return jax.random.randint(jax.random.key(key), (batch, T), 0, V)


def _net(scheme, arch, family="adam", seed=0):
    mult = multipliers(BUILTIN_SCHEMES[scheme], arch, family)
    return scale_init(raw_init(jax.random.key(seed), arch), mult.init_std), mult


def test_shapes_roles_and_parameter_count():
    arch = _arch(depth=3)
    params, mult = _net("mup", arch)
    logits = apply(params, _tokens(), mult.forward, mult.branch, arch, mult.attention)
    assert logits.shape == (3, T, V)
    assert params["blocks"]["attn_q"]["kernel"].shape == (3, 32, 32)
    assert params["blocks"]["hidden_1"]["kernel"].shape == (3, 32, 64)
    assert params["blocks"]["hidden_2"]["kernel"].shape == (3, 64, 32)
    assert params["input"]["kernel"].shape == (V, 32)
    assert params["readout"]["kernel"].shape == (32, V)
    assert sum(x.size for x in jax.tree.leaves(params)) == parameters(arch)
    roles = set(jax.tree.leaves(param_roles(arch)))
    assert roles == {"input", *arch.block_roles, "norm", "readout"}
    # The norms start at zero (gain offsets and biases): LN is the plain normalisation at init.
    assert all(float(jnp.abs(p).max()) == 0.0 for p in jax.tree.leaves(params["norm_final"]))


@pytest.mark.parametrize("scheme", ["sp", "mup", "completep"])
def test_a_later_token_never_changes_an_earlier_logit(scheme):
    arch = _arch(depth=4)
    params, mult = _net(scheme, arch)
    x = _tokens(batch=2)
    for j in (0, 5, T - 1):
        changed = x.at[:, j].set((x[:, j] + 7) % V)
        a = apply(params, x, mult.forward, mult.branch, arch, mult.attention)
        b = apply(params, changed, mult.forward, mult.branch, arch, mult.attention)
        np.testing.assert_array_equal(a[:, :j], b[:, :j])
        assert float(jnp.abs(a[:, j:] - b[:, j:]).max()) > 1e-4  # and later logits do change


@pytest.mark.parametrize("family", ["sgd", "adam"])
def test_every_scheme_is_the_same_network_at_the_base_shape(family):
    arch = _arch()
    ref = multipliers(BUILTIN_SCHEMES["sp"], arch, family)
    for name, scheme in BUILTIN_SCHEMES.items():
        got = multipliers(scheme, arch, family)
        for field in ("init_std", "forward", "lr", "eps", "wd", "branch", "attention"):
            assert jax.tree.map(float, getattr(got, field)) == jax.tree.map(
                float, getattr(ref, field)
            ), (name, field)
    assert float(ref.attention) == pytest.approx(8**-0.5)


def test_roles_follow_the_scheme_tables():
    """At m = 2, r = 4 (hand-written factors, not the code's): the attention matrices are hidden
    matrices, the norms are vectors, and NFD multiplies only the MLP's first layer's rate by
    sqrt(L / L0) relative to depth-muP."""
    arch = _arch(width=64, depth=8)

    def lr(scheme, role, family):
        tree = multipliers(BUILTIN_SCHEMES[scheme], arch, family).lr
        return float(
            tree["blocks"][role]["kernel"] if role != "norm" else tree["norm_final"]["gain"]
        )

    for role in ("attn_q", "attn_k", "attn_v", "attn_out", "hidden_2"):
        assert lr("mup", role, "adam") == pytest.approx(0.5)  # 1/m
        assert lr("depth_mup", role, "adam") == pytest.approx(0.25)  # 1/(m sqrt(r))
        assert lr("nfd", role, "adam") == pytest.approx(0.25)
        assert lr("completep", role, "sgd") == pytest.approx(4.0)  # r
    assert lr("nfd", "hidden_1", "adam") == pytest.approx(0.5)  # depth-muP's times sqrt(4)
    assert lr("nfd", "hidden_1", "sgd") == pytest.approx(2.0)
    assert lr("depth_mup", "hidden_1", "sgd") == pytest.approx(1.0)
    assert lr("mup", "norm", "sgd") == pytest.approx(2.0)  # vector: m under SGD
    assert lr("mup", "norm", "adam") == pytest.approx(1.0)
    beta = {s: float(multipliers(BUILTIN_SCHEMES[s], arch).branch) for s in BUILTIN_SCHEMES}
    assert beta == pytest.approx(
        {"sp": 1, "mup": 1, "depth_mup": 0.5, "nfd": 0.5, "completep": 0.25}
    )


def test_attention_scale_is_one_over_d_under_mup_and_one_over_sqrt_d_under_sp():
    wide = _arch(width=64, head_layout="fixed_heads", heads=4)  # d = 16, d0 = 8
    assert float(multipliers(BUILTIN_SCHEMES["sp"], wide).attention) == pytest.approx(16**-0.5)
    assert float(multipliers(BUILTIN_SCHEMES["mup"], wide).attention) == pytest.approx(8**0.5 / 16)
    fixed_dim = _arch(width=64)  # heads grow, d = 8: every scheme keeps 1/sqrt(8)
    assert float(multipliers(BUILTIN_SCHEMES["mup"], fixed_dim).attention) == pytest.approx(8**-0.5)
    assert (wide.n_heads, wide.d_head, fixed_dim.n_heads, fixed_dim.d_head) == (4, 16, 8, 8)


def test_a_user_scheme_states_transformer_roles_in_toml_form():
    table = {
        "mine": {
            "extends": "mup",
            "description": "muP with a slower query and the SP logit scale",
            "attention_exponent": 0.5,
            "attn_q": {"lr_adam": [-2, 0]},
            "norm": {"lr_sgd": [0, 0]},
        }
    }
    mine = schemes_from_tables(table, BUILTIN_SCHEMES)["mine"]
    arch = _arch(width=64)
    mult = multipliers(mine, arch, "adam")
    assert float(mult.lr["blocks"]["attn_q"]["kernel"]) == pytest.approx(0.25)
    assert float(mult.lr["blocks"]["attn_k"]["kernel"]) == pytest.approx(0.5)
    assert mine.rule("norm").lr_sgd.factor(2, 1) == 1.0
    again = schemes_from_tables({"again": mine.to_table()})["again"]  # the table round trip
    assert (again.rule("attn_q"), again.attention_exponent) == (mine.rule("attn_q"), 0.5)
    assert BUILTIN_SCHEMES["mup"].to_table()["attention_exponent"] == 1.0
    with pytest.raises(SchemeError, match="'attention_exponent' = 'x'"):
        schemes_from_tables({"bad": {"extends": "mup", "attention_exponent": "x"}}, BUILTIN_SCHEMES)
    with pytest.raises(SchemeError, match="unknown field or role 'attn_z'.*attn_q"):
        schemes_from_tables({"bad": {"extends": "mup", "attn_z": {}}}, BUILTIN_SCHEMES)


def test_adam_per_role_equals_optax_adam_per_leaf():
    """One optimizer step of CompleteP at m = 2, r = 4 moves each leaf exactly as optax.adam with
    the rate and epsilon the scheme table gives its role (hand-written factors)."""
    arch = _arch(width=64, depth=8)
    opt = OptimizerConfig("adam", eps=1e-6)
    mult = multipliers(BUILTIN_SCHEMES["completep"], arch, "adam")
    state = init_state(jnp.int32(0), mult, arch, opt)
    x, y = _tokens(batch=4), _tokens(key=2, batch=4)
    lr = 0.01
    new, _ = train_step(state, (x, y), mult, jnp.float32(lr), arch, opt)
    factors = {  # role: (lr factor, eps factor) at m = 2, r = 4 (CompleteP, alpha = 1)
        "input": (1.0, 1.0),
        "readout": (0.5, 1.0),
        "norm": (1.0, 1.0),
        **{role: (0.5, 1 / 8) for role in arch.block_roles},
    }
    reference = optax.multi_transform(
        {role: optax.adam(lr * s, eps=1e-6 * e) for role, (s, e) in factors.items()},
        param_roles(arch),
    )

    def loss(p):
        logits = apply(p, x, mult.forward, mult.branch, arch, mult.attention)
        return optax.losses.softmax_cross_entropy_with_integer_labels(logits, y).mean() / math.log(
            2
        )

    grads = jax.grad(loss)(state.params)
    updates, _ = reference.update(grads, reference.init(state.params), state.params)
    expected = optax.apply_updates(state.params, updates)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-7), new.params, expected
    )


def test_feature_movement_reads_every_role_and_is_zero_without_change():
    arch = _arch(depth=3)
    params, mult = _net("nfd", arch)
    x = _tokens(batch=2)
    same = flatten_stats(layer_stats(params, params, x, mult, arch))
    roles = {"input", "attn_q", "attn_k", "attn_v", "attn_out", "hidden_1", "hidden_2", "readout"}
    assert {k.split("/")[1] for k in same} == roles
    assert all(float(same[f"own_movement/{r}"]) == 0.0 for r in roles)
    assert all(float(same[f"rms_init/{r}"]) > 0.0 for r in roles)
    # Move only the MLP's first layer: its own movement is the relative change of its output.
    moved = jax.tree.map(lambda a: a, params)
    moved["blocks"]["hidden_1"]["kernel"] = params["blocks"]["hidden_1"]["kernel"] * 1.1
    stats = flatten_stats(layer_stats(params, moved, x, mult, arch))
    assert float(stats["own_movement/hidden_1"]) == pytest.approx(0.1, rel=1e-4)
    assert float(stats["own_movement/attn_q"]) == 0.0
    assert float(stats["total_movement/hidden_2"]) > 0.0  # its input changed


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"width": 36}, "width = 36 is not a multiple of head_dim = 8"),
        ({"head_layout": "fixed_heads", "heads": 5}, "multiple of heads = 5"),
        ({"head_dim": 5, "width": 30, "base_width": 30}, "head dimension = 5; allowed: an even"),
        ({"head_layout": "grouped"}, "head_layout = 'grouped'"),
        ({"mlp_ratio": 0}, "mlp_ratio = 0"),
    ],
)
def test_bad_architectures_are_refused_with_one_line(kw, match):
    with pytest.raises(ArchitectureError, match=match):
        _arch(**kw)
    with pytest.raises(ArchitectureError, match="block_depth = 1 for the transformer"):
        Architecture(32, 2, 1, (T,), V, family="transformer", base_width=32, head_dim=8)


def test_inputs_must_be_integer_tokens_of_the_sequence_length():
    arch = _arch()
    check_inputs(np.zeros((2, T), np.int32), arch)
    with pytest.raises(ArchitectureError, match="integer tokens"):
        check_inputs(np.zeros((2, T), np.float32), arch)
    with pytest.raises(ArchitectureError, match=r"expects \(batch, 12\)"):
        check_inputs(np.zeros((2, T + 1), np.int32), arch)
