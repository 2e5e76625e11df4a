"""One replica's training: state, step, evaluation, and a whole run as one pure function.

Loss: mean softmax cross-entropy. Minibatches are drawn with replacement from the training set,
indices = randint(fold_in(data_key, step)), so every replica with the same seed sees the same
batches whatever its scheme or learning rate. A seed gives (init_key, data_key) = split(key(seed)).

:func:`train_step` is the unit the sweep engine vmaps; :func:`train_run` is the plain single
run (no vmap, no segments, no divergence handling), used directly and as the engine's reference.
"""

from __future__ import annotations

import dataclasses
import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from hptransfer.network.data import Dataset
from hptransfer.network.model import Architecture, Params, apply, check_inputs, raw_init, scale_init
from hptransfer.network.movement import flatten_stats, layer_stats
from hptransfer.network.optim import OptimizerConfig, make_optimizer, traced_settings
from hptransfer.network.scaling import Multipliers, multipliers
from hptransfer.network.schedules import scheduled_lr
from hptransfer.network.schemes import Scheme, get_scheme


@struct.dataclass
class TrainState:
    params: Params
    params0: Params
    opt_state: optax.OptState
    step: jax.Array


def seed_keys(seed: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(init_key, data_key) of a seed."""
    keys = jax.random.split(jax.random.key(seed))
    return keys[0], keys[1]


def init_state(
    seed: jax.Array, mult: Multipliers, arch: Architecture, opt: OptimizerConfig
) -> TrainState:
    init_key, _ = seed_keys(seed)
    params = scale_init(raw_init(init_key, arch), mult.init_std)
    optimizer = make_optimizer(opt, jnp.float32(0.0), mult.lr, mult.eps, mult.optimizer, mult.wd)
    return TrainState(params, params, optimizer.init(params), jnp.zeros([], jnp.int32))


BITS_PER_NAT = 1.0 / math.log(2.0)
TOKEN_CHUNK = 64  # sequences per evaluation chunk of the transformer


def token_losses(logits: jax.Array, y: jax.Array, arch: Architecture) -> jax.Array:
    """Cross-entropy per example (per token for the transformer), in nats for the ResNets and
    in bits for the transformer: its objective and every loss it reports is bits per byte."""
    losses = optax.losses.softmax_cross_entropy_with_integer_labels(logits, y)
    return losses * BITS_PER_NAT if arch.family == "transformer" else losses


def loss_fn(params: Params, x: jax.Array, y: jax.Array, mult: Multipliers, arch: Architecture):
    logits = apply(params, x, mult.forward, mult.branch, arch, mult.attention)
    return token_losses(logits, y, arch).mean()


def sample_batch(
    seed: jax.Array, step: jax.Array, x: jax.Array, y: jax.Array, batch_size: int
) -> tuple[jax.Array, jax.Array]:
    _, data_key = seed_keys(seed)
    idx = jax.random.randint(jax.random.fold_in(data_key, step), (batch_size,), 0, x.shape[0])
    return x[idx], y[idx]


def train_step(
    state: TrainState,
    batch: tuple[jax.Array, jax.Array],
    mult: Multipliers,
    lr: jax.Array,
    arch: Architecture,
    opt: OptimizerConfig,
) -> tuple[TrainState, jax.Array]:
    """One optimizer step; returns the new state and the minibatch loss before the step.

    The base rate is ``lr * mult(state.step)`` under a schedule (:mod:`hptransfer.network.schedules`);
    under the constant schedule ``lr`` itself, with no extra operation in the program."""
    x, y = batch
    loss, grads = jax.value_and_grad(loss_fn)(state.params, x, y, mult, arch)
    lr = scheduled_lr(lr, opt.schedule.kind, state.step, mult.optimizer)
    optimizer = make_optimizer(opt, lr, mult.lr, mult.eps, mult.optimizer, mult.wd)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return TrainState(params, state.params0, opt_state, state.step + 1), loss


def evaluate(
    params: Params,
    x: jax.Array,
    y: jax.Array,
    mult: Multipliers,
    arch: Architecture,
    chunk: int = 1024,
) -> tuple[jax.Array, jax.Array]:
    """(mean loss, accuracy) over a whole split, in chunks of ``chunk`` examples (for token
    sequences: the mean over every token, and next-token accuracy)."""
    n = x.shape[0]
    if arch.family == "transformer":  # (chunk, T, vocabulary) logits per replica: keep small
        chunk = min(chunk, TOKEN_CHUNK)
    chunk = min(chunk, n)
    pad = (-n) % chunk
    xs = jnp.concatenate([x, jnp.zeros((pad, *x.shape[1:]), x.dtype)]).reshape(
        -1, chunk, *x.shape[1:]
    )
    ys = jnp.concatenate([y, jnp.zeros((pad, *y.shape[1:]), y.dtype)]).reshape(
        -1, chunk, *y.shape[1:]
    )
    mask = (jnp.arange(n + pad) < n).reshape(-1, chunk)

    def one(args):
        xb, yb, mb = args
        logits = apply(params, xb, mult.forward, mult.branch, arch, mult.attention)
        losses = token_losses(logits, yb, arch)
        correct = jnp.argmax(logits, -1) == yb
        if losses.ndim > 1:  # sequences: the mean over each example's tokens
            losses, correct = losses.mean(-1), correct.mean(-1)
        return jnp.sum(losses * mb), jnp.sum(correct * mb)

    loss_sum, correct = jax.lax.map(one, (xs, ys, mask))
    return loss_sum.sum() / n, correct.sum() / n


def probe_batch(data: Dataset, size: int = 256) -> np.ndarray:
    """The fixed probe batch for feature movement: the first ``size`` training inputs."""
    return data.x_train[: min(size, data.x_train.shape[0])]


@dataclasses.dataclass(frozen=True)
class RunResult:
    losses: np.ndarray  # (steps,) minibatch training loss at each step, before its update
    test_loss: float
    test_accuracy: float
    movement: dict[str, float]  # "own_movement/hidden_1" -> value, ...


@partial(jax.jit, static_argnames=("arch", "opt", "steps", "batch_size"))
def _run(seed, lr, mult, x, y, x_test, y_test, probe, *, arch, opt, steps, batch_size):
    state = init_state(seed, mult, arch, opt)

    def body(state, step):
        batch = sample_batch(seed, step, x, y, batch_size)
        return train_step(state, batch, mult, lr, arch, opt)

    state, losses = jax.lax.scan(body, state, jnp.arange(steps))
    test_loss, test_acc = evaluate(state.params, x_test, y_test, mult, arch)
    stats = layer_stats(state.params0, state.params, probe, mult, arch)
    return losses, test_loss, test_acc, flatten_stats(stats)


def train_run(
    scheme: Scheme | str,
    arch: Architecture,
    opt: OptimizerConfig,
    lr: float,
    seed: int,
    data: Dataset,
    steps: int,
    batch_size: int = 128,
    probe_size: int = 256,
) -> RunResult:
    """Train one network and measure it: the single-run reference (module docstring)."""
    scheme = get_scheme(scheme)
    check_inputs(data.x_train, arch)
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps = {steps}, batch_size = {batch_size}; allowed: integers >= 1")
    mult = multipliers(scheme, arch, opt.family).replace(optimizer=traced_settings(opt, steps))
    losses, test_loss, test_acc, stats = _run(
        jnp.int32(seed),
        jnp.float32(lr),
        mult,
        jnp.asarray(data.x_train),
        jnp.asarray(data.y_train),
        jnp.asarray(data.x_test),
        jnp.asarray(data.y_test),
        jnp.asarray(probe_batch(data, probe_size)),
        arch=arch,
        opt=opt,
        steps=steps,
        batch_size=batch_size,
    )
    return RunResult(
        np.asarray(losses),
        float(test_loss),
        float(test_acc),
        {k: float(v) for k, v in stats.items()},
    )
