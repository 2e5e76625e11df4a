"""The hand-written per-leaf-epsilon Adam against optax, and the optimizer settings' checks."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from hptransfer.network.optim import OptimizerConfig, OptimizerError, make_optimizer

STEPS = 6


def _tree(key, scale=1.0):
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "input": {"kernel": scale * jax.random.normal(k1, (5, 4))},
        "blocks": {"hidden_1": {"kernel": scale * jax.random.normal(k2, (3, 4, 4))}},
        "readout": {"bias": scale * jax.random.normal(k3, (4,))},
    }


def _grads(step):
    # Gradients of very different sizes per leaf and step, so epsilon matters for some leaves.
    g = _tree(jax.random.key(100 + step), 1e-3)
    g["input"]["kernel"] = g["input"]["kernel"] * 1e3
    return g


def _run(optimizer, params, steps=STEPS):
    """The parameters after each of ``steps`` updates with the gradient sequence above."""
    state = optimizer.init(params)
    out = []
    for t in range(steps):
        updates, state = optimizer.update(_grads(t), state, params)
        params = optax.apply_updates(params, updates)
        out.append(params)
    return out


def _ones(params, value=1.0):
    return jax.tree.map(lambda _: jnp.float32(value), params)


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_per_leaf_adam_equals_optax_adam_when_every_leaf_has_the_same_eps(name):
    params = _tree(jax.random.key(0))
    lr, eps, wd = 0.05, 1e-4, (0.1 if name == "adamw" else 0.0)
    config = OptimizerConfig(name, b1=0.8, b2=0.99, eps=eps, weight_decay=wd)
    ours = _run(make_optimizer(config, jnp.float32(lr), _ones(params), _ones(params)), params)
    reference = optax.adamw(lr, b1=0.8, b2=0.99, eps=eps, weight_decay=wd)
    theirs = _run(reference if name == "adamw" else optax.adam(lr, 0.8, 0.99, eps), params)
    for a, b in zip(ours, theirs, strict=True):
        jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-7), a, b)
    moved = jax.tree.map(lambda u, v: float(jnp.abs(u - v).max()), ours[-1], params)
    assert min(jax.tree.leaves(moved)) > 1e-3  # the comparison is not between unmoved trees


def test_per_role_lr_and_eps_scales_equal_one_optax_adam_per_leaf():
    """Leaf i with factors (s_i, e_i) moves exactly as optax.adam(lr * s_i, eps = eps * e_i)."""
    params = _tree(jax.random.key(1))
    lr, eps = 0.02, 1e-3
    lr_scale = {
        "input": {"kernel": jnp.float32(4.0)},
        "blocks": {"hidden_1": {"kernel": jnp.float32(0.25)}},
        "readout": {"bias": jnp.float32(1.0)},
    }
    eps_scale = {
        "input": {"kernel": jnp.float32(1.0)},
        "blocks": {"hidden_1": {"kernel": jnp.float32(1 / 64)}},
        "readout": {"bias": jnp.float32(30.0)},
    }
    config = OptimizerConfig("adam", eps=eps)
    ours = _run(make_optimizer(config, jnp.float32(lr), lr_scale, eps_scale), params)
    factors = {  # (lr factor, eps factor) per leaf, the same numbers as the trees above
        "input": (4.0, 1.0),
        "hidden_1": (0.25, 1 / 64),
        "readout": (1.0, 30.0),
    }
    labels = {
        "input": {"kernel": "input"},
        "blocks": {"hidden_1": {"kernel": "hidden_1"}},
        "readout": {"bias": "readout"},
    }
    per_leaf = optax.multi_transform(
        {name: optax.adam(lr * s, eps=eps * e) for name, (s, e) in factors.items()}, labels
    )
    theirs = _run(per_leaf, params)
    for a, b in zip(ours, theirs, strict=True):
        jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-7), a, b)
    # The eps factors matter here: one scalar eps for every leaf gives other parameters.
    scalar = _run(make_optimizer(config, jnp.float32(lr), lr_scale, _ones(params)), params)
    diff = float(jnp.abs(scalar[-1]["readout"]["bias"] - ours[-1]["readout"]["bias"]).max())
    assert diff > 1e-4


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_weight_decay_needs_adamw(name):
    with pytest.raises(OptimizerError, match="weight_decay.*adamw"):
        OptimizerConfig(name, weight_decay=0.01)
    assert OptimizerConfig("adamw", weight_decay=0.01).weight_decay == 0.01


# Weight decay with adam in a sweep config: test_cli_errors.CASES (adam_wd.toml).


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "adam", "momentum": 0.9}, "momentum"),
        ({"name": "sgd", "nesterov": True}, "nesterov"),
        ({"name": "sgd", "eps": -1.0}, "eps"),
        ({"name": "adamw", "b2": 1.0}, "b2"),
    ],
)
def test_settings_the_optimizer_would_ignore_or_cannot_use_are_refused(kwargs, field):
    with pytest.raises(OptimizerError, match=f"'{field}'.*allowed"):
        OptimizerConfig(**kwargs)
