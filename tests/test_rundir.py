"""The output directory as a database (one writer, one config, the code version in every cell
hash) and the limits checked before any compute."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest
from conftest import config_with

from hptransfer.stats.results import read_meta
from hptransfer.sweeps import engine, rundir
from hptransfer.sweeps.config import ConfigError
from hptransfer.sweeps.engine import (
    COMPILE_STATS,
    Faults,
    MemoryLimitError,
    SimulatedKill,
    run_sweep,
)
from hptransfer.sweeps.rundir import RunDirError, RunDirLocked, RunDirMismatch


def tiny(**overrides):
    raw = {
        "name": "tiny",
        "steps": 40,
        "eval_every": 10,
        "batch_size": 16,
        "seeds": [0],
        "schemes": ["mup"],
        "data": {"name": "teacher", "num_samples": 256},
        "model": {"widths": [16], "depths": [2], "block_depths": [1], "base_width": 16},
        "lr": {"start": -2, "stop": -1, "step": 1},
        "probe_size": 32,
    }
    return config_with(raw, overrides)


def _files(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


def test_a_second_writer_is_refused_naming_pid_and_host(tmp_path, teacher_data):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from hptransfer.sweeps.rundir import lock\n"
         "with lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(60)",
         str(tmp_path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunDirLocked) as err:
            run_sweep(tiny(), tmp_path, data=teacher_data, progress=False)
    finally:
        holder.kill()
        holder.wait()
    message = str(err.value)
    assert f"pid {holder.pid}" in message and socket.gethostname() in message
    assert not (tmp_path / "results.parquet").exists()


def test_a_stale_lock_of_a_dead_process_is_taken_over_and_said(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / rundir.LOCK_FILE).write_text(
        json.dumps({"pid": dead.pid, "host": socket.gethostname()})
    )
    with rundir.lock(tmp_path) as note:
        assert f"dead pid {dead.pid}" in note
        holder = json.loads((tmp_path / rundir.LOCK_FILE).read_text())
        assert holder == {"pid": os.getpid(), "host": socket.gethostname()}
    assert not (tmp_path / rundir.LOCK_FILE).exists()  # released


def test_another_config_is_refused_and_nothing_of_the_first_deleted(tmp_path, teacher_data):
    first = tiny()
    with pytest.raises(SimulatedKill):
        run_sweep(first, tmp_path, data=teacher_data, progress=False, checkpoint_seconds=0,
                  faults=Faults(kill_after_segments=2))  # fmt: skip
    before = _files(tmp_path)
    assert any(f.startswith("checkpoints/") for f in before)
    other = tiny(lr={"start": -3, "stop": -1, "step": 1})
    with pytest.raises(RunDirMismatch, match="--fresh") as err:
        run_sweep(other, tmp_path, data=teacher_data, progress=False)
    assert "'tiny'" in str(err.value)
    assert _files(tmp_path) == before  # the first config's checkpoint is intact
    # The first config still resumes (2 segments restored, 2 computed) ...
    run_sweep(first, tmp_path, data=teacher_data, progress=False)
    assert read_meta(tmp_path)["replica_steps"] == 2 * 20
    # ... and --fresh is what lets the other config in.
    run_sweep(other, tmp_path, data=teacher_data, progress=False, fresh=True)
    assert read_meta(tmp_path)["config"]["lr"]["start"] == -3


def test_replica_steps_count_only_this_runs_steps(tmp_path, teacher_data):
    config = tiny()
    with pytest.raises(SimulatedKill):
        run_sweep(config, tmp_path, data=teacher_data, progress=False, checkpoint_seconds=0,
                  faults=Faults(kill_after_segments=3))  # fmt: skip
    run_sweep(config, tmp_path, data=teacher_data, progress=False)
    meta = read_meta(tmp_path)
    assert meta["replica_steps"] == 2 * 10  # 2 replicas x the one segment left
    assert meta["replica_steps_total"] == 2 * 40
    assert meta["cells"][0]["replica_steps"] == 2 * 10
    run_sweep(config, tmp_path, data=teacher_data, progress=False)  # all cells done
    meta = read_meta(tmp_path)
    assert meta["replica_steps"] == 0 and meta["cells"][0]["resumed"]


def test_a_code_change_recomputes_and_is_said(tmp_path, teacher_data, monkeypatch, capsys):
    config = tiny(steps=20)
    run_sweep(config, tmp_path, data=teacher_data, progress=False)
    first = read_meta(tmp_path)
    assert first["code"]["version"] and first["code"]["source"]
    real = engine.code_version()
    monkeypatch.setattr(engine, "code_version", lambda: {**real, "source": "edited"})
    run_sweep(config, tmp_path, data=teacher_data, progress=False)
    assert "the code changed" in capsys.readouterr().err
    second = read_meta(tmp_path)
    assert second["replica_steps"] == 2 * 20  # recomputed, not served from the old cell
    assert second["cells"][0]["cell"] != first["cells"][0]["cell"]
    assert second["code"]["source"] == "edited"


def test_the_code_version_is_the_source_imported_not_the_file_as_edited_since(monkeypatch):
    # a sweep's later cells must carry the version of the code that trained them: reading the
    # source again (inspect.getsource reads the file as it is now) would hash an edit made
    # while the sweep ran
    before = engine.code_version()
    monkeypatch.setattr(engine.inspect, "getsource", lambda f: "def edited(): pass\n")
    monkeypatch.setattr(rundir, "source_hash", lambda *a: "edited")
    assert engine.code_version() == before
    assert engine._running_code_version() != before  # what reading it again would have given


def test_the_source_hash_follows_the_bytes_of_the_numeric_modules(tmp_path, monkeypatch):
    for name in ("a", "b"):
        (tmp_path / f"mod_{name}.py").write_text("x = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    mods = ("mod_a", "mod_b")
    before = rundir.source_hash.__wrapped__(mods)
    assert rundir.source_hash.__wrapped__(mods) == before
    (tmp_path / "mod_b.py").write_text("x = 2\n")
    assert rundir.source_hash.__wrapped__(mods) != before


def test_an_oversize_width_is_refused_before_any_compute(tmp_path, teacher_data):
    config = tiny(model={"widths": [1_000_000]})
    compiles = COMPILE_STATS["count"]
    started = time.monotonic()
    with pytest.raises(MemoryLimitError) as err:
        run_sweep(config, tmp_path, data=teacher_data, progress=False)
    message = str(err.value)
    for words in ("width 1000000", "depth 2", "bytes", "available"):
        assert words in message, (words, message)
    assert COMPILE_STATS["count"] == compiles and time.monotonic() - started < 30
    assert not (tmp_path / "results.parquet").exists()


def test_the_cli_refuses_an_oversize_width_in_one_line(tmp_path):
    cfg = tmp_path / "huge.toml"
    cfg.write_text(
        'steps = 10\neval_every = 10\nschemes = ["mup"]\n[data]\nname = "teacher"\n'
        "num_samples = 256\n[model]\nwidths = [1000000]\ndepths = [2]\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "hptransfer.cli", "sweep", str(cfg), "--out", str(tmp_path / "o"),
         "--quiet"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hptransfer: error: ")
    assert "width 1000000" in lines[0]


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"lr": {"start": -6, "stop": 0, "step": 1e-9}}, ["lr.step", "at most 256 points"]),
        (
            {"lr": {"by_scheme": {"mup": {"start": 0, "stop": 300, "step": 1}}}},
            ["lr.by_scheme.mup.step", "at most 256"],
        ),
        (
            {"seeds": list(range(100)), "lr": {"start": -10, "stop": 10, "step": 0.25}},
            ["max_replicas", "8100"],
        ),  # fmt: skip
        ({"max_replicas": 1}, ["max_replicas", "2"]),
    ],
)
def test_too_big_grids_are_refused_naming_the_field(overrides, words):
    with pytest.raises(ConfigError) as err:
        tiny(**overrides)
    for word in words:
        assert word in str(err.value), (word, str(err.value))


def test_a_config_built_in_code_is_checked_by_run_sweep(tmp_path, teacher_data):
    import dataclasses

    config = dataclasses.replace(tiny(), seeds=tuple(range(5000)))
    with pytest.raises(ConfigError, match="max_replicas"):
        run_sweep(config, tmp_path, data=teacher_data, progress=False)
    assert not tmp_path.joinpath(rundir.IDENTITY_FILE).exists()


def test_an_out_that_is_a_file_is_refused(tmp_path, teacher_data):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(RunDirError, match="existing file"):
        run_sweep(tiny(), path, data=teacher_data, progress=False)
    inside = path / "sub"
    with pytest.raises(RunDirError, match="not a directory"):
        run_sweep(tiny(), inside, data=teacher_data, progress=False)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_out_that_is_not_writable_is_refused(tmp_path, teacher_data):
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(RunDirError, match="not writable"):
            run_sweep(tiny(), locked / "run", data=teacher_data, progress=False)
    finally:
        locked.chmod(0o700)


def test_a_directory_from_before_identity_files_is_recognised_by_its_meta(tmp_path):
    """A results directory written before run.json existed (a committed suite's results) holds
    its config in meta.json, without the fields added since: it is the same config when those
    are at their defaults, another config otherwise."""
    config = tiny()
    stored = config.to_dict()
    for newer in ("precision", "max_replicas", "lr_adaptive", "lr_max_extra_octaves", "lr_refine"):
        stored.pop(newer)
    out = tmp_path / "old"
    out.mkdir()
    (out / "meta.json").write_text(json.dumps({"config": stored}, default=list))
    assert rundir.check_identity(out, config, engine.code_version()) is None
    with pytest.raises(RunDirMismatch, match="another config"):
        rundir.check_identity(out, tiny(steps=80), engine.code_version())
