"""Several processes for real: two JAX processes on this machine (CPU backend, one device
each, the distributed service on a free localhost port) run `hptransfer sweep --distributed`.

They give the single-process results, only process 0 writes files; a peer that dies
mid-run (SIGKILL) makes the survivor end within a bounded time with one line naming it, and
SIGTERM to any process stops all of them at one segment; each time the printed command resumes.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest
from conftest import xla_flags

from hptransfer.sweeps.engine import DistributedError, initialize_distributed
from hptransfer.sweeps.hosts import PEER_LOST_EXIT

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
            "XLA_FLAGS": xla_flags(1),
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


def test_two_processes_equal_one_and_only_process_0_writes(tmp_path, uninterrupted):
    cfg = tmp_path / "two.toml"
    cfg.write_text(CONFIG)
    out = tmp_path / "shared"
    start = time.monotonic()
    # Checkpoint after every segment: each process writes its own shards of the training
    # state (Orbax); everything else is process 0's. Process 1 runs under umask 077, so a
    # file or folder it made outside checkpoints/ would be unreadable to group and others.
    often = {"HPTRANSFER_CHECKPOINT_SECONDS": "0"}
    procs = _launch(cfg, [out, out], {0: often, 1: often}, {1: 0o077})
    single = _sorted(uninterrupted(CONFIG))  # while they run; shared (conftest)
    for rc, err in _wait(procs, start + TIMEOUT):
        assert rc == 0, err[-3000:]
    made = [p for p in out.rglob("*") if "checkpoints" not in p.relative_to(out).parts]
    assert {p.name for p in made} >= {"results.parquet", "meta.json", "run.json", "cells"}
    assert [p for p in made if not p.stat().st_mode & 0o044] == []
    both = _sorted(pd.read_parquet(out / "results.parquet"))
    pd.testing.assert_frame_equal(both, single, check_exact=False, rtol=1e-6)
    meta = pd.read_json(out / "meta.json", typ="series")
    assert meta["processes"] == 2 and meta["devices"] == 2


def _checkpoint_steps(out) -> list[int]:
    """The steps of the saved checkpoints (not a save a kill left unfinished)."""
    return sorted(int(p.name) for p in out.glob("checkpoints/*/chunk_0/*") if p.name.isdigit())


def _wait_for_new_checkpoint(out, procs, after: list[int], deadline: float) -> None:
    """Until the sweep has saved a checkpoint other than ``after`` (the steps saved when this
    leg started): it is past its start-up and training."""
    while _checkpoint_steps(out) in ([], after):
        for p in procs:
            assert p.poll() is None, p.communicate()
        assert time.monotonic() < deadline, "the sweep never saved a checkpoint"
        time.sleep(0.02)


def _resume_matches_single(cfg, out, uninterrupted) -> dict:
    """Rerun both processes on ``out``; they finish and give the single-process results (the
    uninterrupted run of ``cfg``, trained once for the resume tests: conftest)."""
    procs = _launch(cfg, [out, out])
    single = _sorted(uninterrupted(cfg.read_text()))
    for rc, err in _wait(procs, time.monotonic() + TIMEOUT):
        assert rc == 0, err[-3000:]
    both = _sorted(pd.read_parquet(out / "results.parquet"))
    pd.testing.assert_frame_equal(both, single, check_exact=False, rtol=1e-6)
    return json.loads((out / "meta.json").read_text())


LONG = CONFIG.replace("steps = 20", "steps = 400")  # 40 segments: time to act mid-run, 4 times
EVERY_SEGMENT = {"HPTRANSFER_CHECKPOINT_SECONDS": "0"}


def _sigkill_leg(cfg, out, dead: int) -> None:
    """Process ``dead`` is SIGKILLed mid-run: the survivor ends within 15 s (it needs the dead
    process's shards, and for process 0 its coordination service: it must not wait forever
    nor abort inside JAX with SIGABRT) with exit 75 and one line naming the lost process and
    the resume command."""
    procs = _launch(cfg, [out, out], {0: EVERY_SEGMENT, 1: EVERY_SEGMENT})
    victim, survivor = procs[dead], procs[1 - dead]
    try:
        _wait_for_new_checkpoint(out, procs, _checkpoint_steps(out), time.monotonic() + TIMEOUT)
        victim.send_signal(signal.SIGKILL)  # its sweep process dies with it (PR_SET_PDEATHSIG)
        died = time.monotonic()
        _, err = survivor.communicate(timeout=30)
        took = time.monotonic() - died
    except subprocess.TimeoutExpired:
        pytest.fail(f"the survivor of a dead process {dead} hung")
    finally:
        survivor.kill()
        victim.kill()
    assert victim.wait() == -signal.SIGKILL
    assert survivor.returncode == PEER_LOST_EXIT, err[-3000:]  # not -6 (SIGABRT)
    assert took < 15, f"{took:.1f} s from the kill of process {dead} to the survivor's exit"
    # One line of ours, last; before it at most the log of an Orbax thread whose collective
    # failed when the kill landed during a checkpoint save; no JAX abort.
    # (A rerun after a kill also says, first, that it took over the dead run's lock.)
    ours = [
        line
        for line in err.splitlines()
        if line.startswith("hptransfer:") and "took over the stale lock" not in line
    ]
    assert len(ours) == 1 and err.strip().splitlines()[-1] == ours[0], err[-3000:]
    assert "Terminating process" not in err and "Check failure" not in err, err[-3000:]
    # A dead coordinator is named by whichever sees it first: JAX's client abort, turned into
    # our line by the supervisor ("stopped"), or our watchdog's failed heartbeat ("cannot be
    # reached"); a dead process 1 only by process 0's coordination service.
    named = (
        (
            "process 0 of 2 (the coordinator) stopped ",
            "process 0 of 2 (the coordinator) cannot be reached ",
        )
        if dead == 0
        else ("process 1 of 2 stopped ",)
    )
    assert ours[0].startswith(tuple(f"hptransfer: error: {n}" for n in named)), ours[0]
    assert ours[0].split("resume with: ", 1)[1] == (
        f"hptransfer sweep {cfg} --out {out} --distributed --quiet"
    )
    assert not (out / "results.parquet").exists()


def _sigterm_leg(cfg, out, to: str) -> int:
    """A scheduler sends SIGTERM to every process, or to process 1 alone (the others stop too:
    they agree between segments): all exit 143 within 10 s with one line each, having saved
    the same checkpoint where they stopped; returns its step."""
    procs = _launch(cfg, [out, out], {0: EVERY_SEGMENT, 1: EVERY_SEGMENT})
    try:
        _wait_for_new_checkpoint(out, procs, _checkpoint_steps(out), time.monotonic() + TIMEOUT)
        for p in procs if to == "every process" else procs[1:]:
            p.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        results = _wait(procs, sent + 30)
        took = time.monotonic() - sent
    finally:
        for p in procs:
            p.kill()
    resume = f"hptransfer sweep {cfg} --out {out} --distributed --quiet"
    for i, (rc, err) in enumerate(results):
        assert rc == 143, err[-3000:]
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1, err[-3000:]
        by = "SIGTERM to process 1" if to == "process 1" and i == 0 else "SIGTERM"
        assert lines[0].startswith(f"hptransfer: terminated ({by}); "), lines[0]
        assert lines[0].endswith(f"resume with: {resume}")
    assert took < 10, f"{took:.1f} s from SIGTERM to {to} to the last exit"
    steps = _checkpoint_steps(out)
    assert len(steps) == 1 and 0 < steps[0] < 40, steps  # saved where they stopped
    return steps[0]


def test_sigterm_to_one_process_then_to_every_process_stops_all_and_each_rerun_resumes(
    tmp_path, uninterrupted
):
    """One two-process sweep of 40 segments, stopped twice by SIGTERM (to process 1 alone, then
    to every process: :func:`_sigterm_leg`), each rerun resuming the last stop; the last rerun
    trains only what was left and gives the single-process results. (Chained, the two stops
    share one final rerun.)"""
    cfg = tmp_path / "two.toml"
    cfg.write_text(LONG)
    out = tmp_path / "shared"
    _sigterm_leg(cfg, out, to="process 1")
    stopped_at = _sigterm_leg(cfg, out, to="every process")
    meta = _resume_matches_single(cfg, out, uninterrupted)
    trained = meta["cells"][0]["replicas_trained"]
    assert meta["replica_steps"] == trained * 10 * (40 - stopped_at)  # only what was left


def test_a_sigkilled_peer_then_a_sigkilled_coordinator_end_the_survivor_and_each_rerun_resumes(
    tmp_path, uninterrupted
):
    """One two-process sweep of 40 segments, process 1 SIGKILLed, then (in the rerun) process 0,
    the coordinator (:func:`_sigkill_leg`); the last rerun resumes from a checkpoint and gives
    the single-process results."""
    cfg = tmp_path / "two.toml"
    cfg.write_text(LONG)
    out = tmp_path / "shared"
    _sigkill_leg(cfg, out, dead=1)
    _sigkill_leg(cfg, out, dead=0)
    meta = _resume_matches_single(cfg, out, uninterrupted)
    assert meta["replica_steps"] < meta["replica_steps_total"]  # resumed from the checkpoint


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


def test_a_supervised_sweep_passes_its_errors_and_exit_code_through(tmp_path):
    """`--distributed` runs the sweep in a child process: a user error still ends in the child's
    one line and exit code 2, not in a second message of the parent."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("HPTRANSFER_SUPERVISOR_PID", None)
    missing = tmp_path / "missing.toml"
    cmd = [sys.executable, "-m", "hptransfer.cli", "sweep", str(missing), "--out", str(tmp_path)]
    done = subprocess.run([*cmd, "--distributed"], env=env, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("hptransfer: error:") == 1 and str(missing) in done.stderr


# What JAX's client logs when it ends a process whose coordination service declared a peer dead
# (jaxlib 0.10.2, abridged): process 0 hosts the service; the others see it close.
ABORT_IN_PROCESS_0 = """Traceback (most recent call last):
ValueError: UNKNOWN: Gloo AllGather failed: Connection closed by peer [127.0.0.1]:30089
E1202 01:46:14.068065   20612 coordination_service.cc:1549] Use error polling to propagate the \
following error to all tasks: UNAVAILABLE: The following tasks are unhealthy (stopped sending \
heartbeats):
1
The tasks have crashed. Check the task logs for an earlier error.
F1202 01:46:14.069199   20623 client.h:80] Terminating process because the JAX distributed \
service detected fatal errors. This most likely indicates that another task died.
"""
ABORT_ELSEWHERE = (
    "F1202 01:46:14.069199   20623 client.h:80] Terminating process because the JAX distributed "
    "service detected fatal errors. absl::Status: UNAVAILABLE: Failed to send RPC to coordination "
    "service.\n"
)


@pytest.mark.parametrize(
    ("me", "held", "named"),
    [
        ("0", ABORT_IN_PROCESS_0, "process 1 of 3 stopped (its heartbeats stopped"),
        ("0", ABORT_IN_PROCESS_0.replace("heartbeats):\n1\n", "heartbeats):\n1\n2\n"),
         "process 1, 2 of 3 stopped"),
        ("2", ABORT_ELSEWHERE, "process 0 of 3 (the coordinator) stopped"),
        ("0", ABORT_ELSEWHERE, None),  # process 0 aborted, no peer named: shown as it is
        ("1", "Traceback (most recent call last):\nValueError: a bug\n", None),
    ],
)  # fmt: skip
def test_the_supervisor_names_the_lost_peer_of_a_jax_abort(monkeypatch, me, held, named):
    """When JAX ends a process for a lost peer before the watchdog could, the supervising parent
    replaces the held crash with one line naming the peer (process 0: the ids its service
    declared dead; elsewhere: process 0) and the resume command."""
    from hptransfer.sweeps.supervise import peer_lost_line

    monkeypatch.setenv("JAX_PROCESS_ID", me)
    monkeypatch.setenv("JAX_NUM_PROCESSES", "3")
    argv = ["sweep", "c.toml", "--out", "o", "--distributed", "--fresh"]
    line = peer_lost_line(argv, held)
    if named is None:
        assert line is None
        return
    assert line.startswith(f"hptransfer: error: {named}") and "\n" not in line
    assert line.endswith(
        "in o are kept; resume with: hptransfer sweep c.toml --out o --distributed"
    )
