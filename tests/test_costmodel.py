"""The cost model: FLOPs against XLA's own count, parameter counts against the params pytree,
optimizer state in the bytes, measured roofs, and the roofline table."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hptransfer.network.model import Architecture, apply, raw_init
from hptransfer.network.optim import OptimizerConfig
from hptransfer.sweeps import costmodel

ARCHS = [
    Architecture(64, 3, 2, (32,), 10, base_width=64),
    Architecture(48, 2, 1, (32,), 10, base_width=64, bias=True),
    Architecture(16, 2, 2, (32, 32, 3), 10, family="conv", base_width=16),
]


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: f"{a.family}-{a.width}-{a.bias}")
def test_parameters_match_the_params_pytree(arch):
    params = jax.eval_shape(lambda: raw_init(jax.random.key(0), arch))
    assert costmodel.parameters(arch) == sum(x.size for x in jax.tree.leaves(params))


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: f"{a.family}-{a.width}-{a.bias}")
def test_forward_flops_match_xla_cost_analysis(arch):
    # XLA's cost analysis counts a scanned loop body once, so compare at depth 1.
    arch = dataclasses.replace(arch, depth=1)
    batch = 8
    params = raw_init(jax.random.key(0), arch)
    ones = jax.tree.map(lambda _: jnp.float32(1.0), params)
    x = jnp.ones((batch, *arch.in_shape), jnp.float32)
    fn = jax.jit(lambda p, x: apply(p, x, ones, jnp.float32(1.0), arch))
    analysis = fn.lower(params, x).compile().cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list) else analysis
    # XLA also counts the elementwise work (ReLU, multipliers, residual adds): a few percent.
    assert batch * costmodel.forward_flops(arch) == pytest.approx(analysis["flops"], rel=0.15)


def test_optimizer_state_adds_two_parameter_copies_per_slot():
    arch = ARCHS[0]
    p = costmodel.parameters(arch)
    sgd, mom, adam = (
        costmodel.step_cost(arch, 32, OptimizerConfig(**kw))
        for kw in ({}, {"momentum": 0.9}, {"name": "adam"})
    )
    assert mom.bytes - sgd.bytes == adam.bytes - mom.bytes == 2 * p * costmodel.WORD
    assert sgd.flops == mom.flops == adam.flops == 3 * 32 * costmodel.forward_flops(arch)
    assert costmodel.step_cost(arch, 64, OptimizerConfig()).flops == 2 * sgd.flops


def test_measured_roofs_are_finite_and_positive():
    peaks = costmodel.measure_peaks(matmul_size=128, stream_words=1 << 16)
    for value in (peaks.flops_per_second, peaks.bytes_per_second):
        assert math.isfinite(value) and value > 0


def test_roofline_table_marks_the_bounding_roof():
    peaks = {"flops_per_second": 100e9, "bytes_per_second": 10e9}  # ridge: 10 FLOP/byte
    cost = costmodel.StepCost(flops=1e6, bytes=1e6)  # 1 FLOP/byte: memory bound
    cells = [
        {"width": 64, "depth": 2, "block_depth": 1, "flops_per_replica_step": cost.flops,
         "bytes_per_replica_step": cost.bytes,
         **costmodel.achieved(cost, 1000, 0.5, costmodel.Peaks(**peaks))},
        {"width": 64, "depth": 4, "block_depth": 1, "flops_per_replica_step": 1e8,
         "bytes_per_replica_step": 1e6, **costmodel.achieved(cost, 1000, 1.0,
                                                             costmodel.Peaks(**peaks))},
        {"width": 64, "depth": 8, "block_depth": 1, "resumed": True},  # not computed: no row
    ]  # fmt: skip
    table = costmodel.roofline(cells, peaks)
    assert list(table.columns) == list(costmodel.ROOFLINE_COLUMNS)
    assert list(table["bound"]) == ["memory", "compute"]
    np.testing.assert_allclose(table["GFLOP/s"], [2.0, 1.0])  # 1e6 x 1000 / 0.5 s
    np.testing.assert_allclose(table["% of bandwidth"], [20.0, 10.0])
