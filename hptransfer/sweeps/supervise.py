"""A process of a multi-host sweep that outlives JAX's abort when process 0 dies.

Process 0 hosts JAX's coordination service. When it dies, every other process's JAX client
loses the service at once and ends the process from C++ (``LOG(FATAL)``: "Terminating process
because the JAX distributed service detected fatal errors", SIGABRT about 0.2 s after the death)
before any Python code can run; the client's ``missed_heartbeat_callback`` cannot reach Python
in jaxlib 0.10.2. So ``hptransfer sweep --distributed`` runs the sweep in a child process
(:func:`run`) and stays a thin parent that imports nothing heavy:

* the child's stdout is the parent's; its stderr passes through line by line, except that from
  the first line of a crash (a traceback, an absl error or fatal log line) the lines are held
  for up to :data:`HOLD_SECONDS`: if the child then dies with JAX's coordination-service abort,
  they are replaced by one ``hptransfer: error:`` line naming the lost process and the resume
  command (exit :data:`hptransfer.sweeps.hosts.PEER_LOST_EXIT`): process 0 when the service
  closed, or, in process 0, the peers its service declared dead (when a peer's heartbeats stop,
  the service may end process 0 before :func:`hptransfer.sweeps.hosts.watch_peers` has named
  them, on a loaded machine); otherwise they are printed as they were;
* SIGTERM to the parent is passed on to the child (a sweep saves and exits 143); Ctrl-C from a
  terminal reaches both (one process group), so the parent ignores SIGINT and waits;
* the child dies with the parent (``PR_SET_PDEATHSIG``: a SIGKILLed parent leaves no orphan
  training on).

The exit code is the child's (128 + n when a signal n ended it).
"""

from __future__ import annotations

import ctypes
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

PEER_LOST_EXIT = 75  # EX_TEMPFAIL: nothing is wrong with the sweep; rerun to resume
SUPERVISED = "HPTRANSFER_SUPERVISOR_PID"  # set in the child: the parent's pid
HOLD_SECONDS = 10.0  # JAX aborts within a second of the first error line
_CRASH_START = re.compile(r"^(Traceback \(most recent call last\)|[EF]\d{4} |ERROR:absl:|\*\*\* )")
_COORDINATOR_LOST = "Terminating process because the JAX distributed service detected fatal errors"
_UNHEALTHY = re.compile(r"tasks are unhealthy \(stopped sending heartbeats\):\s*((?:\d+[\s,]*)+)")
_PR_SET_PDEATHSIG = 1


def is_supervised_child() -> bool:
    """Whether this process is the child of :func:`run`."""
    return SUPERVISED in os.environ


def wanted(argv: list[str]) -> bool:
    """A multi-host sweep that is not already the supervised child."""
    return "--distributed" in argv and not is_supervised_child()


def die_with_parent() -> None:
    """In the child: be SIGKILLed when the parent dies (Linux ``prctl``); if the parent is
    already gone, end now."""
    parent = int(os.environ.get(SUPERVISED, "0") or 0)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the child may outlive a SIGKILLed parent
        return
    if parent and os.getppid() != parent:
        os._exit(128 + signal.SIGKILL)


def peer_lost_line(argv: list[str], held: str) -> str | None:
    """The one line for a child that JAX ended because a peer is gone, or None when ``held``
    (the child's held stderr) shows another failure: in process 0, the processes its
    coordination service declared dead ("The following tasks are unhealthy (stopped sending
    heartbeats):" and their ids); in any other process, process 0 (the coordinator)."""
    if _COORDINATOR_LOST not in held:
        return None
    import shlex

    n = os.environ.get("JAX_NUM_PROCESSES")
    of = f" of {n}" if n else ""
    if os.environ.get("JAX_PROCESS_ID") == "0":
        unhealthy = _UNHEALTHY.search(held)
        if unhealthy is None:
            return None
        names = ", ".join(re.findall(r"\d+", unhealthy.group(1)))
        what = (
            f"process {names}{of} stopped (its heartbeats stopped: killed, crashed or its host is "
            "gone)"
        )
    else:
        what = (
            f"process 0{of} (the coordinator) stopped (its coordination service closed: killed, "
            "crashed or its host is gone)"
        )
    out = argv[argv.index("--out") + 1] if "--out" in argv[:-1] else "the output directory"
    resume = shlex.join(["hptransfer", *(a for a in argv if a != "--fresh")])
    return (
        f"hptransfer: error: {what}; finished cells and the last checkpoint in {out} are kept; "
        f"resume with: {resume}"
    )


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def run(argv: list[str]) -> int:
    """Run ``hptransfer *argv`` in a child process as the module docstring says; its exit code."""
    env = {**os.environ, SUPERVISED: str(os.getpid())}
    child = subprocess.Popen(
        [sys.executable, "-m", "hptransfer.cli", *argv],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    signal.signal(signal.SIGTERM, lambda signum, frame: child.send_signal(signum))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert child.stderr is not None
        for line in child.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, name="hptransfer-stderr", daemon=True).start()
    held: list[str] = []
    since = 0.0
    while True:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            line = ""
        if line is None:
            break
        if line and not held and _CRASH_START.match(line):
            since = time.monotonic()
        if since and time.monotonic() - since > HOLD_SECONDS:  # not an abort: show it
            sys.stderr.write("".join(held))
            held, since = [], 0.0
        if line and since:
            held.append(line)
        elif line:
            sys.stderr.write(line)
            sys.stderr.flush()
    returncode = child.wait()
    lost = peer_lost_line(argv, "".join(held)) if returncode else None
    if lost is not None:
        print(lost, file=sys.stderr, flush=True)
        return PEER_LOST_EXIT
    sys.stderr.write("".join(held))
    sys.stderr.flush()
    return _exit_code(returncode)
