"""Test set-up: two host devices (as the CLI does on a 2-core machine), one compilation cache
for the whole test session, and shared fixtures."""

import atexit
import os
import shutil
import tempfile


def xla_flags(devices: int) -> str:
    """XLA_FLAGS for a test process with ``devices`` host devices. Every program the tests compile
    is built at XLA's backend optimisation level 0: the tests are compile-bound (the first run of
    a two-depth tiny sweep: 7.6 s at the default level, 4.7 s at 0), and they compare runs with
    each other (a resumed run with an uninterrupted one, two processes with one), never with a
    number measured at the default level; what changes is float rounding (the 7th digit).
    Subprocesses get it too: set it in their environment through this function."""
    return f"--xla_force_host_platform_device_count={devices} --xla_backend_optimization_level=0"


os.environ.setdefault("XLA_FLAGS", xla_flags(2))

# JAX's persistent compilation cache, fresh for each session and shared by everything it
# starts: the pytest-xdist workers and the CLI subprocesses (distributed, kill and resume, the
# gate) inherit the variables, so a program compiled once (the same config in another process)
# is read back instead of compiled again. A cached executable is the compiled one, so results
# are unchanged; the engine still counts it as a compile. The directory is private to this
# session (mkdtemp: mode 0700), since a compilation cache runs whatever it holds.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="hptransfer-test-jax-cache-")
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "-1"

import pytest  # noqa: E402

from hptransfer.network.data import teacher  # noqa: E402
from hptransfer.sweeps.config import SweepConfig, config_from_dict  # noqa: E402


def config_with(raw: dict, overrides: dict) -> SweepConfig:
    """A sweep config from ``raw`` with ``overrides`` (tables merged key by key, e.g.
    ``model={"depths": [4]}`` keeps the other model fields)."""
    raw = dict(raw)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return config_from_dict(raw)


@pytest.fixture(scope="session")
def teacher_data():
    """A small synthetic classification task (32 features, 10 classes)."""
    return teacher(num_samples=2048, in_shape=(32,), num_classes=10, seed=0)


@pytest.fixture(scope="session")
def image_data():
    return teacher(num_samples=256, in_shape=(8, 8, 3), num_classes=10, seed=1)


# The smallest sweep config the CLI tests run (teacher data, one width-8 cell, 2 rates, 1 seed),
# as TOML text; tests change the name and the steps with str.replace or prepend lines to it.
TINY_CONFIG = """
name = "tiny"
steps = 20
eval_every = 10
batch_size = 16
seeds = [0]
schemes = ["mup"]
probe_size = 16
[data]
name = "teacher"
num_samples = 256
[model]
widths = [8]
depths = [2]
base_width = 8
base_depth = 2
[lr]
start = -2.0
stop = -1.0
step = 1.0
"""


@pytest.fixture(scope="session")
def uninterrupted(tmp_path_factory):
    """``run(text, data=None)``: the results table of the uninterrupted sweep of the config
    ``text`` (TOML), trained once per session in this process and shared by every resume test
    that compares a killed, preempted or distributed run with it (a fresh copy each call)."""
    from hptransfer.sweeps.config import load_config
    from hptransfer.sweeps.engine import run_sweep

    cache = {}

    def run(text: str, data=None):
        key = (text, id(data))
        if key not in cache:
            root = tmp_path_factory.mktemp("uninterrupted")
            (root / "sweep.toml").write_text(text)
            config = load_config(root / "sweep.toml")
            cache[key] = (run_sweep(config, root / "out", data=data, progress=False), data)
        return cache[key][0].copy()

    return run
