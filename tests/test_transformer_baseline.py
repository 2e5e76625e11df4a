"""The transformer throughput baseline (benchmarks/): one FLOP count for the engine and PyTorch,
PyTorch's forward equal to ours at SP, the matmul limit, and the benchmark's transformer path."""

import json
import math
import os
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from hptransfer.network.model import apply, raw_init, scale_init
from hptransfer.network.scaling import multipliers
from hptransfer.network.schemes import BUILTIN_SCHEMES
from hptransfer.sweeps import costmodel

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import baselines  # noqa: E402


@pytest.fixture(autouse=True)
def _keep_savings(monkeypatch):
    """benchmarks/throughput.py turns savings off for its own process when imported
    (HPTRANSFER_SAVINGS=0): restore the variable after each test, so the other tests of this
    worker keep the engine's defaults."""
    monkeypatch.setenv("HPTRANSFER_SAVINGS", os.environ.get("HPTRANSFER_SAVINGS", "1"))


# width, depth, seq_len, head_dim, mlp_ratio of a small transformer
SMALL = dict(width=32, depth=3, seq_len=12, head_dim=8, mlp_ratio=2)


def test_flops_are_three_batches_of_the_cost_models_forward():
    for shape, batch in (
        (SMALL, 5),
        (dict(width=64, depth=8, seq_len=64, head_dim=16, mlp_ratio=4), 16),
    ):
        arch = baselines.transformer_arch(**shape)
        assert arch.family == "transformer" and arch.block_depth == 2
        assert arch.in_shape == (shape["seq_len"],) and arch.num_classes == 256
        flops = baselines.transformer_replica_step_flops(**shape, batch_size=batch)
        assert flops == 3 * batch * costmodel.forward_flops(arch)
        assert flops == costmodel.step_cost(arch, batch, _sgd()).flops
    # the benchmark cell by hand: 2 T (L (4 n^2 + 2 r n^2 + 2 T n) + n V) per sequence, 3 B of them
    n, t = 64, 64
    by_hand = 3 * 16 * 2 * t * (8 * (4 * n * n + 8 * n * n + 2 * t * n) + n * 256)
    assert baselines.transformer_replica_step_flops(64, 8, 64, 16, 16, 4) == by_hand


def _sgd():
    from hptransfer.network.optim import OptimizerConfig

    return OptimizerConfig(name="sgd")


def test_torch_forward_equals_ours_at_sp():
    torch = pytest.importorskip("torch")
    arch = baselines.transformer_arch(**SMALL)
    mult = multipliers(BUILTIN_SCHEMES["sp"], arch, "sgd")
    # SP is the torch model's premise: every c and beta 1, tau = 1/sqrt(d_head)
    assert all(float(c) == 1.0 for c in jax.tree.leaves(mult.forward))
    assert float(mult.branch) == 1.0
    assert float(mult.attention) == pytest.approx(1.0 / math.sqrt(SMALL["head_dim"]))
    params = scale_init(raw_init(jax.random.key(0), arch), mult.init_std)
    # nonzero LayerNorm gains (offsets from 1) and biases, so their mapping is checked too
    keys = iter(jax.random.split(jax.random.key(1), 16))
    for tree in (params["norm_final"], *(params["blocks"][k] for k in ("norm_attn", "norm_mlp"))):
        for leaf in ("gain", "bias"):
            tree[leaf] = 0.3 * jax.random.normal(next(keys), tree[leaf].shape)
    tokens = np.asarray(jax.random.randint(jax.random.key(2), (3, SMALL["seq_len"]), 0, 256))
    ours = np.asarray(apply(params, tokens, mult.forward, mult.branch, arch, mult.attention))
    for attention in ("math", "sdpa"):
        model = baselines.torch_transformer(**SMALL, attention=attention, params=params)
        with torch.no_grad():
            theirs = model(torch.tensor(tokens, dtype=torch.long)).numpy()
        assert theirs.shape == ours.shape == (3, SMALL["seq_len"], 256)
        np.testing.assert_allclose(theirs, ours, atol=1e-4, rtol=0)
    assert np.abs(ours).max() > 0.5  # logits of order one, so 1e-4 is a real test


def test_torch_sp_init_and_loss_in_bits():
    torch = pytest.importorskip("torch")
    model = baselines.torch_transformer(**SMALL, seed=3)
    weights = dict(model.named_parameters())
    assert weights["input.weight"].std().item() == pytest.approx(1 / 16, rel=0.05)
    assert weights["blocks.0.hidden_2.weight"].std().item() == pytest.approx(
        1 / math.sqrt(64), rel=0.1
    )
    assert (
        weights["blocks.1.norm_mlp.weight"].eq(1).all() and weights["norm_final.bias"].eq(0).all()
    )
    logits = torch.zeros(2, 5, 256)
    targets = torch.zeros(2, 5, dtype=torch.long)
    assert baselines._bits(torch, logits, targets).item() == pytest.approx(8.0)  # log2(256)


def test_torch_rates_are_positive_at_tiny_size():
    pytest.importorskip("torch")
    tiny = dict(width=16, depth=1, seq_len=8, batch_size=2, head_dim=8, mlp_ratio=2)
    batched = baselines.torch_transformer_replica_steps_per_second(
        **tiny, replicas=4, steps=2, warmup=1, threads=1
    )
    loop = baselines.torch_transformer_loop_steps_per_second(**tiny, steps=2, warmup=1, threads=1)
    assert batched > 0 and loop > 0


def test_transformer_matmul_limit_is_finite():
    limit = baselines.transformer_matmul_limit(2, 2, 8, 16, 2, 8, 2, repeats=2)
    assert math.isfinite(limit) and limit > 0


def test_throughput_parses_the_transformer_family():
    import throughput

    args = throughput.parse_args(["--family", "transformer"])
    assert args.family == "transformer"
    assert (args.widths, args.depth, args.batch_size, args.steps) == ([64], 8, 16, [40])
    assert (args.seq_len, args.head_dim, args.mlp_ratio) == (64, 16, 4)
    cell = throughput.transformer_cell(args, 64)
    assert cell.replicas == 16
    assert cell.flops() == baselines.transformer_replica_step_flops(64, 8, 64, 16, 16, 4)
    config = throughput.sweep_config(cell, 4, 2)
    assert config.model.family == "transformer" and config.data.name == "text"
    assert (config.optimizer.name, len(throughput.engine.replicas(config))) == ("sgd", 16)
    with pytest.raises(SystemExit):
        throughput.parse_args(["--family", "conv"])
    with pytest.raises(SystemExit):
        throughput.parse_args(["--family", "transformer", "--block-depth", "3"])


def test_throughput_mlp_options_are_unchanged():
    """The MLP cell's defaults, and the args its report records (the transformer's options are
    left out), are what they were before --family existed."""
    import throughput

    old = {
        "device_label": None, "widths": [64], "depth": 16, "block_depth": 2, "batch_size": 128,
        "steps": [400], "seq_runs": 16, "compile_depths": None, "skip_torch": False,
        "no_checkpoint": False, "out": Path("results/bench"),
    }  # fmt: skip
    args = vars(throughput.parse_args([]))
    recorded = {k: v for k, v in args.items() if k not in throughput.TRANSFORMER_ARGS}
    assert list(recorded.items()) == list(old.items())
    assert args["family"] == "mlp"


def _tiny_transformer_args(tmp_path, *extra):
    import throughput

    return throughput.parse_args(
        ["--family", "transformer", "--widths", "16", "--depth", "1", "--seq-len", "8",
         "--batch-size", "2", "--head-dim", "8", "--mlp-ratio", "2", "--steps", "2",
         "--seq-runs", "2", "--torch-steps", "1", "--eval-sequences", "4", "--probe-size", "4",
         "--device-label", "smoke", "--out", str(tmp_path), *extra]
    )  # fmt: skip


def _check_transformer_report(tmp_path, report):
    row = report["widths"][0]
    assert report["family"] == "transformer" and row["matmul_limit"] > 0
    if row["torch_vmap"]["rate"] is not None:  # torch installed
        assert all(row[part]["rate"] > 0 for part in ("torch_vmap", "torch_loop"))
        threads = [row[part]["threads"] for part in ("torch_vmap", "torch_loop")]
        assert threads == [os.cpu_count()] * 2
    stored = json.loads((tmp_path / "throughput_smoke-transformer.json").read_text())
    assert stored["family"] == "transformer" and stored["args"]["family"] == "transformer"
    markdown = (tmp_path / "throughput_smoke-transformer.md").read_text()
    assert markdown.startswith("# Throughput: smoke, transformer cell")
    assert "| (c) torch vmap, 1 thread |" in markdown and "(c') torch loop" in markdown
    assert not (tmp_path / "throughput_smoke.json").exists()  # the MLP files are not touched


def test_transformer_benchmark_path_without_the_engine(tmp_path, monkeypatch):
    """The transformer path end to end with the engine's and jax's parts stubbed (their real run
    is the slow test below): options, PyTorch at a tiny size, FLOP fractions, files, Markdown."""
    import throughput

    engine = {"rate": 100.0, "rate_steady": 120.0, "steps": 2, "chunk_size": 16, "cores_busy": 2}
    monkeypatch.setattr(throughput, "engine_rate", lambda *a: dict(engine))
    monkeypatch.setattr(throughput, "sequential_rate", lambda *a: {"rate": 10.0})
    monkeypatch.setattr(throughput, "cell_data", lambda cell: None)
    monkeypatch.setattr(throughput.baselines, "transformer_matmul_limit", lambda *a, **k: 1e9)
    monkeypatch.setattr(
        throughput, "peak_flops", lambda on_gpu: {"flops": 2e9, "n": 1, "what": "x"}
    )
    report = throughput.run(_tiny_transformer_args(tmp_path))
    _check_transformer_report(tmp_path, report)
    row, flops = report["widths"][0], throughput.TransformerCell(16, 1, 8, 2, 8, 2).flops()
    assert row["flops"] == flops
    assert row["methods"]["engine"]["achieved_flops"] == pytest.approx(100 * flops)
    assert row["methods"]["engine_steady"]["peak_fraction"] == pytest.approx(120 * flops / 2e9)
    assert row["methods"]["sequential"]["limit_fraction"] == pytest.approx(10 * flops / 1e9)
    assert row["a_over_sequential"] == pytest.approx(10.0)


@pytest.mark.slow
def test_transformer_benchmark_smoke(tmp_path):
    """The whole transformer path at a tiny size, engine and jax included (about a minute on 2
    cores, nearly all of it XLA compiles); the same as

    .venv/bin/python benchmarks/throughput.py --family transformer --widths 16 --depth 1 \
        --seq-len 8 --batch-size 2 --head-dim 8 --mlp-ratio 2 --steps 2 --seq-runs 2 \
        --torch-steps 1 --eval-sequences 4 --probe-size 4 --device-label smoke --out /tmp/smoke
    """
    import throughput

    report = throughput.run(_tiny_transformer_args(tmp_path))
    _check_transformer_report(tmp_path, report)
    row = report["widths"][0]
    assert row["engine"]["rate"] > 0 and row["sequential"]["rate"] > 0
    assert row["engine"]["recompiles"] == 0
    assert math.isfinite(row["engine"]["check_final_loss"])
