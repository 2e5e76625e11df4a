"""Cost of one evaluation against one training segment, in one process, on one sweep cell.

    .venv/bin/python benchmarks/eval_cost.py benchmarks/quick.toml --depth 32 --block-depth 2

Compiles the engine's segment program (``eval_every`` SGD steps of every replica of the cell,
vmapped) and its evaluation program (test loss and accuracy, layer movement on the probe
batch), times each ``--repeats`` times after a warm-up, and prints the median times and their
ratio: the relative wall-time cost of evaluating after every segment. Both run on the same
machine in the same process, so the ratio holds even on a busy machine where the times do not.
"""

from __future__ import annotations

import argparse
import os
import time
from functools import partial

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import NamedSharding, PartitionSpec  # noqa: E402

from hptransfer.network.data import load_dataset  # noqa: E402
from hptransfer.network.scaling import multipliers, stack  # noqa: E402
from hptransfer.network.schemes import load_schemes  # noqa: E402
from hptransfer.sweeps import engine as E  # noqa: E402
from hptransfer.sweeps.config import load_config  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config")
    p.add_argument("--depth", type=int, default=32)
    p.add_argument("--block-depth", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    config = load_config(args.config)
    data = load_dataset(config.data.name, **config.data.load_kwargs())
    registry = load_schemes(config.scheme_files)
    arch = next(
        a
        for a in E.architectures(config, data)
        if a.depth == args.depth and a.block_depth == args.block_depth
    )
    x, y, x_test, y_test, probe, factor = E._device_data(
        config, data, NamedSharding(E._mesh(), PartitionSpec())
    )
    reps = E.replicas(config)
    size = E.chunk_size(len(reps), E.bytes_per_replica(arch, config), len(jax.devices()))
    chunk = reps[:size]
    by = NamedSharding(E._mesh(), PartitionSpec("replica"))
    seeds = jax.device_put(jnp.array([r.seed for r in chunk], jnp.int32), by)
    lrs = jax.device_put(jnp.array([2.0**r.log2_lr for r in chunk], jnp.float32), by)
    family = config.optimizer.family
    mult = E._place(stack([multipliers(registry[r.scheme], arch, family) for r in chunk]), by)
    state = jax.vmap(partial(E._init_replica, arch=arch, opt=config.optimizer))(seeds, mult)
    seg = jax.jit(
        jax.vmap(
            partial(E._segment_replica, arch=arch, opt=config.optimizer,
                    steps=config.eval_every, batch_size=config.batch_size),
            in_axes=(0, 0, 0, 0, None, None, None, None),
        )
    )  # fmt: skip
    ev = jax.jit(jax.vmap(partial(E._eval_replica, arch=arch), in_axes=(0, 0, None, None, None)))
    state, _ = seg(state, seeds, lrs, mult, factor, x, y, jnp.int32(0))
    jax.block_until_ready(ev(state, mult, x_test, y_test, probe))
    t_seg, t_eval = [], []
    for i in range(args.repeats):
        first = jnp.int32(config.eval_every * (i + 1))
        t = time.perf_counter()
        state = jax.block_until_ready(seg(state, seeds, lrs, mult, factor, x, y, first))[0]
        t_seg.append(time.perf_counter() - t)
        t = time.perf_counter()
        jax.block_until_ready(ev(state, mult, x_test, y_test, probe))
        t_eval.append(time.perf_counter() - t)
    s, e = float(np.median(t_seg)), float(np.median(t_eval))
    print(
        f"{config.name}: cell n={arch.width} L={arch.depth} k={arch.block_depth}, "
        f"{len(chunk)} of {len(reps)} replicas; {config.eval_every} training steps {s:.2f} s, "
        f"one evaluation {e:.2f} s ({x_test.shape[0]} test examples): eval / segment = {e / s:.3f}"
    )


if __name__ == "__main__":
    main()
