"""Nothing is lost when a cluster preempts (issue 21): SIGTERM stops a sweep like Ctrl-C after
saving a checkpoint of the chunk it is training, and a write that fails (no space left, a
read-only directory) ends in one line that keeps the last complete results and checkpoint; the
printed command resumes, and the resumed run equals an uninterrupted one."""

import errno
import json
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import orbax.checkpoint as ocp
import pandas as pd
import pytest
from conftest import TINY_CONFIG
from orbax.checkpoint._src.path import async_path

from hptransfer import cli
from hptransfer.cli import main
from hptransfer.stats import results as results_io
from hptransfer.sweeps import engine, interrupt

CONFIG = TINY_CONFIG.replace('name = "tiny"', 'name = "preempt"').replace(
    "steps = 20", "steps = 2000"
)
SEGMENTS = 200  # steps / eval_every
REPLICAS = 2


@pytest.fixture(autouse=True)
def _restore_signal_handlers():
    """main() installs SIGINT and SIGTERM handlers in this (pytest's) process: put them back."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    interrupt.cancel_deadline()
    for s, handler in saved.items():
        signal.signal(s, handler)


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["scheme", "log2_lr", "seed", "step"]).reset_index(drop=True)


def _checkpoint_steps(out: Path) -> list[int]:
    """The finished (renamed) checkpoint steps of the sweep's only chunk."""
    (chunk,) = out.glob("checkpoints/*/chunk_0")
    return sorted(int(p.name) for p in chunk.iterdir() if p.name.isdigit())


@pytest.mark.slow  # one compile in a subprocess: about 20 s on 2 busy cores
def test_sigterm_saves_the_chunk_exits_143_and_the_printed_command_resumes(tmp_path, uninterrupted):
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(CONFIG)
    out = tmp_path / "out"
    argv = ["sweep", str(cfg), "--out", str(out), "--fresh", "--quiet"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "hptransfer.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not list(out.glob("checkpoints/*/chunk_0")):  # made when the chunk starts training
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the chunk never started"
        time.sleep(0.01)
    time.sleep(0.2)  # a few segments in (each takes a few ms)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    took = time.monotonic() - sent
    assert proc.returncode == 143, err
    assert took < 5, f"{took:.2f} s from SIGTERM to exit"
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("hptransfer: terminated (SIGTERM); finished cells and the last ")
    resume = lines[0].split("resume with: ", 1)[1]
    assert resume == f"hptransfer sweep {cfg} --out {out} --quiet"
    assert not (out / "results.parquet").exists()
    # The engine saved the chunk where it stopped (checkpoints are otherwise every 30 s).
    (saved,) = _checkpoint_steps(out)
    assert 0 < saved < SEGMENTS

    assert main(shlex.split(resume)[1:]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["replica_steps"] == REPLICAS * 10 * (SEGMENTS - saved)  # only what was left
    resumed = _sorted(pd.read_parquet(out / "results.parquet"))
    reference = _sorted(uninterrupted(cfg.read_text()))  # shared (conftest): trained once
    pd.testing.assert_frame_equal(resumed, reference, check_exact=True)


# --------------------------------------------------------------------------------------------
# A full disk or a read-only directory mid-run

SHORT = CONFIG.replace("steps = 2000", "steps = 200")  # 20 segments
SHORT_SEGMENTS = 20


def _fails_once(monkeypatch, module, name: str, hit, code: int) -> list[str]:
    """Make ``module.name`` raise OSError(``code``) on its first call for which ``hit(*args)``
    is true (the write fails as the OS would fail it); returns the paths it failed on."""
    real, failed = getattr(module, name), []
    assert callable(real)

    def wrapper(*args, **kwargs):
        if not failed and hit(*args):
            failed.append(str(args[1]))
            raise OSError(code, __import__("os").strerror(code), str(args[1]))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return failed


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    ("target", "code", "remedy"),
    [
        ("cells", errno.ENOSPC, "No space left on device; the last complete results and "
         "checkpoint are kept; free space and rerun: "),
        ("results.parquet", errno.EROFS, "Read-only file system; the last complete results and "
         "checkpoint are kept; make the directory writable and rerun: "),
    ],
    ids=["full-disk-at-the-cell-file", "read-only-at-the-results-file"],
)  # fmt: skip
def test_a_failed_result_write_keeps_what_was_written_and_the_rerun_completes(
    tmp_path, monkeypatch, capsys, uninterrupted, target, code, remedy
):
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(SHORT)
    out = tmp_path / "out"
    argv = ["sweep", str(cfg), "--out", str(out), "--quiet"]
    # The write itself fails (into the temporary file that would be renamed over ``target``).
    failed = _fails_once(
        monkeypatch, pd.DataFrame, "to_parquet", lambda frame, tmp: tmp.startswith(prefix), code
    )
    prefix = str(out / "cells" / ".") if target == "cells" else str(out / f".{target}.")
    assert main(argv) == 2
    assert failed
    line = _one_error_line(capsys)
    path = re.escape(str(out / target)) + (r"/[0-9a-f]{16}\.parquet" if target == "cells" else "")
    tail = re.escape(f": {remedy}hptransfer {shlex.join(argv)}")
    assert re.fullmatch(re.escape("hptransfer: error: cannot write ") + path + tail, line), line
    assert not list(out.rglob("*.tmp")), "a temporary file was left behind"
    assert not (out / "results.parquet").exists()
    if target == "cells":  # the finished chunk's checkpoint is what is kept
        assert _checkpoint_steps(out) == [SHORT_SEGMENTS]
    else:
        assert len(list(out.glob("cells/*.parquet"))) == 1

    monkeypatch.undo()  # space is back
    assert main(argv) == 0
    assert json.loads((out / "meta.json").read_text())["replica_steps"] == 0  # nothing recomputed
    resumed = _sorted(pd.read_parquet(out / "results.parquet"))
    reference = _sorted(uninterrupted(cfg.read_text()))  # shared (conftest): trained once
    pd.testing.assert_frame_equal(resumed, reference, check_exact=True)


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(
    tmp_path, monkeypatch, capsys, uninterrupted
):
    """Orbax writes a checkpoint into a temporary directory and renames it; the rename of the
    third one fails for lack of space: the second stays the latest and the rerun resumes it."""
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(SHORT)
    out = tmp_path / "out"
    argv = ["sweep", str(cfg), "--out", str(out), "--quiet"]
    monkeypatch.setenv("HPTRANSFER_CHECKPOINT_SECONDS", "0")  # a checkpoint after every segment
    _fails_once(monkeypatch, async_path, "rename", lambda src, dst: Path(dst).name == "3",
                errno.ENOSPC)  # fmt: skip
    assert main(argv) == 2
    line = _one_error_line(capsys)
    (chunk,) = out.glob("checkpoints/*/chunk_0")
    assert line.startswith(f"hptransfer: error: cannot write {chunk}: No space left on device; ")
    assert line.endswith(f"; free space and rerun: hptransfer {shlex.join(argv)}")
    assert _checkpoint_steps(out) == [2]
    mgr = ocp.CheckpointManager(chunk, options=ocp.CheckpointManagerOptions(read_only=True))
    assert mgr.latest_step() == 2  # readable: the half-written third one is not taken for it
    mgr.close()

    monkeypatch.undo()  # space is back (and checkpoints every 30 s again)
    assert main(argv) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["replica_steps"] == REPLICAS * 10 * (SHORT_SEGMENTS - 2)
    resumed = _sorted(pd.read_parquet(out / "results.parquet"))
    reference = _sorted(uninterrupted(cfg.read_text()))  # shared (conftest): trained once
    pd.testing.assert_frame_equal(resumed, reference, check_exact=True)


def test_a_wrapped_os_error_names_the_file_and_a_network_error_is_left_alone(tmp_path):
    """Orbax wraps the OS's error in its own; a peer that died mid-save is not a disk error."""
    path = tmp_path / "checkpoints" / "chunk_0"
    with pytest.raises(results_io.WriteError) as caught:
        with results_io.writing(path):
            try:
                raise OSError(errno.EDQUOT, "Disk quota exceeded")
            except OSError as err:
                raise RuntimeError("orbax: save failed") from err
    assert str(caught.value) == f"cannot write {path}: Disk quota exceeded"
    assert caught.value.remedy == "free space and rerun"
    with pytest.raises(ConnectionResetError):
        with results_io.writing(path):
            raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
    with pytest.raises(ValueError, match="not about files"):
        with results_io.writing(path):
            raise ValueError("not about files")


def test_sigterm_in_process_saves_the_chunk_returns_143_and_the_printed_command_resumes(
    tmp_path, monkeypatch, capsys, uninterrupted
):
    """The in-process form of the first test (no subprocess, 20 segments): SIGTERM arrives as
    the chunk starts; the watchdog's grace is lengthened so that a compile on a busy machine
    cannot end pytest's own process (the watchdog: test_interrupt)."""
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(SHORT)
    out = tmp_path / "out"
    monkeypatch.setattr(cli, "TERM_GRACE_SECONDS", 3600.0)
    real = engine.run_cell

    def terminated(*args, **kwargs):
        signal.raise_signal(signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "run_cell", terminated)
    assert main(["sweep", str(cfg), "--out", str(out), "--fresh", "--quiet"]) == 143
    line = _one_error_line(capsys)
    assert line.startswith("hptransfer: terminated (SIGTERM); finished cells and the last ")
    resume = line.split("resume with: ", 1)[1]
    assert resume == f"hptransfer sweep {cfg} --out {out} --quiet"
    assert not (out / "results.parquet").exists()
    (saved,) = _checkpoint_steps(out)  # saved where it stopped
    assert 0 < saved < SHORT_SEGMENTS

    monkeypatch.undo()
    assert main(shlex.split(resume)[1:]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["replica_steps"] == REPLICAS * 10 * (SHORT_SEGMENTS - saved)  # only what was left
    resumed = _sorted(pd.read_parquet(out / "results.parquet"))
    reference = _sorted(uninterrupted(cfg.read_text()))  # shared (conftest): trained once
    pd.testing.assert_frame_equal(resumed, reference, check_exact=True)
