"""Several processes for real: two JAX processes on this machine (CPU backend, one device
each, the distributed service on a free localhost port) run `hptransfer sweep --distributed`.

They give the single-process results, only process 0 writes files, and a peer that dies
mid-run makes the survivor fail within a bounded time instead of waiting forever.
"""

import os
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest

from hptransfer.config import load_config
from hptransfer.engine import DistributedError, initialize_distributed, run_sweep

CONFIG = """name = "two-hosts"
steps = 20
eval_every = 10
batch_size = 16
seeds = [0]
schemes = ["mup", "depth_mup"]
probe_size = 32
[data]
name = "teacher"
num_samples = 256
[model]
widths = [16]
depths = [2]
block_depths = [1]
base_width = 16
[lr]
start = -2
stop = -1
step = 1
"""
TIMEOUT = 120  # a bound on the whole test: nothing may wait for a dead peer past it


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _launch(cfg, outs, extra_env=None, umasks=None):
    """Start process i of len(outs) with --out outs[i] (and umask umasks[i]); returns the
    Popen objects."""
    port = _free_port()
    procs = []
    for i, out in enumerate(outs):
        env = {
            **os.environ,
            "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
            "JAX_PLATFORMS": "cpu",
            "JAX_COORDINATOR_ADDRESS": f"localhost:{port}",
            "JAX_NUM_PROCESSES": str(len(outs)),
            "JAX_PROCESS_ID": str(i),
            "HPTRANSFER_HEARTBEAT_TIMEOUT": "5",
            "HPTRANSFER_INIT_TIMEOUT": "60",
            **(extra_env or {}).get(i, {}),
        }
        cmd = [sys.executable, "-m", "hptransfer.cli", "sweep", str(cfg), "--out", str(out)]
        if i in (umasks or {}):  # no preexec_fn: forking a process that runs JAX is unsafe
            cmd = ["sh", "-c", f'umask {umasks[i]:03o} && exec "$@"', "sh", *cmd]
        procs.append(
            subprocess.Popen(
                [*cmd, "--distributed", "--quiet"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    return procs


def _wait(procs, deadline):
    results = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail("a process of the distributed sweep hung")
        results.append((p.returncode, err))
    return results


def _sorted(frame):
    return frame.sort_values(["scheme", "log2_lr", "seed", "step"]).reset_index(drop=True)


def test_two_processes_equal_one_and_only_process_0_writes(tmp_path):
    cfg = tmp_path / "two.toml"
    cfg.write_text(CONFIG)
    out = tmp_path / "shared"
    start = time.monotonic()
    # Checkpoint after every segment: each process writes its own shards of the training
    # state (Orbax); everything else is process 0's. Process 1 runs under umask 077, so a
    # file or folder it made outside checkpoints/ would be unreadable to group and others.
    often = {"HPTRANSFER_CHECKPOINT_SECONDS": "0"}
    procs = _launch(cfg, [out, out], {0: often, 1: often}, {1: 0o077})
    single = _sorted(run_sweep(load_config(cfg), tmp_path / "single", progress=False))
    for rc, err in _wait(procs, start + TIMEOUT):
        assert rc == 0, err[-3000:]
    made = [p for p in out.rglob("*") if "checkpoints" not in p.relative_to(out).parts]
    assert {p.name for p in made} >= {"results.parquet", "meta.json", "run.json", "cells"}
    assert [p for p in made if not p.stat().st_mode & 0o044] == []
    both = _sorted(pd.read_parquet(out / "results.parquet"))
    pd.testing.assert_frame_equal(both, single, check_exact=False, rtol=1e-6)
    meta = pd.read_json(out / "meta.json", typ="series")
    assert meta["processes"] == 2 and meta["devices"] == 2


def test_a_killed_peer_is_reported_not_waited_for(tmp_path):
    cfg = tmp_path / "two.toml"
    cfg.write_text(CONFIG.replace("steps = 20", "steps = 40"))
    out = tmp_path / "shared"
    die = {"HPTRANSFER_HARD_KILL": "1", "HPTRANSFER_KILL_AFTER_SEGMENTS": "2"}
    survivor, victim = _launch(cfg, [out, out], {1: die})
    try:
        assert victim.wait(timeout=TIMEOUT) == 137  # died after 2 of 4 segments, no cleanup
        died = time.monotonic()
        # Process 0 needs process 1's shards for segment 3: it must not wait forever.
        _, err = survivor.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("the survivor of a dead peer hung")
    finally:
        survivor.kill()
        victim.kill()
    assert survivor.returncode != 0, "process 0 finished although its peer died"
    assert time.monotonic() - died < 30
    assert "heartbeat" in err or "unhealthy" in err or "error" in err.lower(), err[-2000:]
    assert not (out / "results.parquet").exists()


def test_distributed_needs_all_three_variables_or_none(monkeypatch):
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "localhost:1")
    monkeypatch.delenv("JAX_NUM_PROCESSES", raising=False)
    monkeypatch.delenv("JAX_PROCESS_ID", raising=False)
    with pytest.raises(DistributedError, match="JAX_NUM_PROCESSES"):
        initialize_distributed()
    monkeypatch.setenv("JAX_NUM_PROCESSES", "2")
    monkeypatch.setenv("JAX_PROCESS_ID", "2")
    with pytest.raises(DistributedError, match="JAX_PROCESS_ID=2"):
        initialize_distributed()


def test_distributed_without_a_cluster_is_one_line_error(tmp_path):
    cfg = tmp_path / "two.toml"
    cfg.write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "SLURM_", "OMPI_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "hptransfer.cli", "sweep", str(cfg), "--out", str(tmp_path / "o"),
         "--distributed", "--quiet"],
        env=env, capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hptransfer: error: --distributed:")
    assert "JAX_COORDINATOR_ADDRESS" in lines[0] and "SLURM" in lines[0]
    assert not (tmp_path / "o").exists()  # refused before the output directory is touched
