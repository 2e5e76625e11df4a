"""Input files are data, never code; nothing runs that was not asked for; what would exhaust the
machine is refused before compute (issue 21; docs/design.md, "What each input file may contain").
"""

import os
import pickle
import shlex
import sys
import tarfile
from functools import partial

import numpy as np
import pytest
from conftest import TINY_CONFIG

from hptransfer import cli
from hptransfer.cli import main
from hptransfer.network.data import (
    DATASET_SHAPES,
    UnsafePickleError,
    cifar10,
    load_cifar_pickle,
    write_cifar10_archive,
)
from hptransfer.network.schemes import SchemeError, load_schemes, schemes_from_python
from hptransfer.sweeps import limits
from hptransfer.sweeps.config import ConfigError, config_from_dict, load_config

CONFIG = TINY_CONFIG  # base_depth 2 stated: the default

# A Python scheme module that leaves a mark when imported: importing it is running code.
MARKING_MODULE = """
from pathlib import Path
Path({mark!r}).write_text("imported")
SCHEMES = {{"half_branch": {{"extends": "mup", "branch_exponent": 0.25,
                             "description": "muP with beta = r^-1/4"}}}}
"""


@pytest.fixture
def marking_module(tmp_path, monkeypatch):
    """The module name ``marking_schemes`` on sys.path and the file its import would write."""
    mark = tmp_path / "imported.txt"
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "marking_schemes.py").write_text(MARKING_MODULE.format(mark=str(mark)))
    monkeypatch.syspath_prepend(str(package))
    monkeypatch.delitem(sys.modules, "marking_schemes", raising=False)
    return mark


@pytest.fixture
def captured_sweep(monkeypatch):
    """Replace the engine by a recorder of the config the CLI would run."""
    seen = []

    def record(config, out, **kwargs):
        seen.append(config)
        raise SystemExit(0)

    monkeypatch.setattr("hptransfer.sweeps.engine.run_sweep", record)
    return seen


# --------------------------------------------------------------------------------------------
# 1. Scheme sources: .toml from a config file; code only from --scheme-file or the Python API


def test_a_config_file_never_imports_a_python_scheme_source(tmp_path, marking_module):
    path = tmp_path / "sent.toml"
    path.write_text('scheme_files = ["marking_schemes:SCHEMES"]\n' + CONFIG)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert "sent.toml" in message and "'scheme_files[0]'" in message
    assert ".toml scheme file" in message and "--scheme-file" in message
    assert not marking_module.exists()  # the module was never imported


def test_a_config_dict_refuses_python_sources_but_the_caller_may_pass_them(marking_module):
    with pytest.raises(ConfigError, match="scheme_files\\[0\\]"):
        config_from_dict({"name": "x", "scheme_files": ["marking_schemes:SCHEMES"]})
    assert not marking_module.exists()
    config = config_from_dict(
        {"name": "x", "schemes": ["half_branch"]}, scheme_sources=("marking_schemes:SCHEMES",)
    )
    assert config.scheme_files == ("marking_schemes:SCHEMES",)
    assert marking_module.exists()


def test_a_toml_scheme_file_in_a_config_still_loads(tmp_path):
    (tmp_path / "mine.toml").write_text('[mine]\nextends = "mup"\nbranch_exponent = 0.5\n')
    path = tmp_path / "sweep.toml"
    path.write_text('scheme_files = ["mine.toml"]\n' + CONFIG.replace('["mup"]', '["mine"]'))
    config = load_config(path)
    assert config.scheme_files == (str(tmp_path / "mine.toml"),)
    assert load_schemes(config.scheme_files)["mine"].branch_exponent == 0.5


def test_the_command_line_scheme_file_reaches_the_engine(tmp_path, marking_module, captured_sweep):
    """`sweep --scheme-file module:attr`: the user asked for code; the engine gets the source."""
    path = tmp_path / "sweep.toml"
    path.write_text(CONFIG.replace('["mup"]', '["mup", "half_branch"]'))
    with pytest.raises(SystemExit):
        main(["sweep", str(path), "--out", str(tmp_path / "out"), "--quiet",
              "--scheme-file", "marking_schemes:SCHEMES"])  # fmt: skip
    (config,) = captured_sweep
    assert config.scheme_files == ("marking_schemes:SCHEMES",)
    registry = load_schemes(config.scheme_files)  # what the engine's _sweep does
    assert registry["half_branch"].branch_exponent == 0.25


@pytest.mark.parametrize("spec", [":X", "mod:", "a..b:X", ".rel:X", "mod:X:Y", "os.path"])
def test_a_malformed_python_source_is_a_scheme_error_from_the_api(spec):
    with pytest.raises(SchemeError, match="package.module:attribute"):
        schemes_from_python(spec)


@pytest.mark.parametrize("command", ["schemes", "run", "coordcheck"])
def test_a_malformed_scheme_file_option_is_one_line(command, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_user_schemes", lambda *a: pytest.fail("reached the loader"))
    assert main([command, "--scheme-file", ":X"]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith("hptransfer: error: argument --scheme-file: ':X'")
    assert "package.module:attribute" in lines[0]


# --------------------------------------------------------------------------------------------
# CIFAR-10 batches: a restricted unpickler


class _Marks:
    """Unpickled, this calls os.system: a crafted data_batch_1 that runs a shell command."""

    def __init__(self, mark):
        self.mark = mark

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.mark))}",))


def _cifar_folder(tmp_path):
    """A small dataset in the exact CIFAR-10 format, as an extracted folder (no checksum)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, 24)
    archive = write_cifar10_archive(tmp_path / "cifar-10-python.tar.gz", images, labels)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "extracted", filter="data")
    return tmp_path / "extracted" / "cifar-10-batches-py", images, labels


def test_a_cifar_batch_that_would_call_a_function_is_refused(tmp_path):
    folder, _, _ = _cifar_folder(tmp_path)
    mark = tmp_path / "ran"
    batch = {b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2, 3], b"x": _Marks(mark)}
    (folder / "data_batch_1").write_bytes(pickle.dumps(batch))
    with pytest.raises(UnsafePickleError) as err:
        cifar10(folder)
    message = str(err.value)
    assert "data_batch_1" in message and f"{os.system.__module__}.system" in message
    assert "\n" not in message and cli.is_user_error(err.value)
    assert not mark.exists()  # the command never ran


def test_a_crafted_cifar_folder_ends_a_sweep_in_one_line_before_compute(tmp_path, capsys):
    folder, _, _ = _cifar_folder(tmp_path)
    mark = tmp_path / "ran"
    (folder / "test_batch").write_bytes(pickle.dumps(_Marks(mark), protocol=2))
    config = tmp_path / "cifar.toml"
    config.write_text(
        CONFIG.replace('name = "teacher"', f'name = "cifar10"\npath = "{folder}"').replace(
            "[model]", '[model]\nfamily = "conv"'
        )
    )
    assert main(["sweep", str(config), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("hptransfer: error: CIFAR-10 batch") and "test_batch" in lines[0]
    assert not mark.exists()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_the_cifar_format_still_loads_at_every_pickle_protocol(tmp_path, protocol):
    folder, images, labels = _cifar_folder(tmp_path)
    for path in folder.iterdir():
        batch = pickle.loads(path.read_bytes())  # our own fixture: trusted
        path.write_bytes(pickle.dumps(batch, protocol=protocol))
    assert load_cifar_pickle((folder / "data_batch_1").read_bytes())[b"labels"] == [
        int(v) for v in labels[:4]
    ]
    data = cifar10(folder)
    assert data.x_train.shape == (20, 32, 32, 3) and data.x_test.shape == (4, 32, 32, 3)
    np.testing.assert_array_equal(data.y_test, labels[20:])


def test_a_numpy_1_cifar_batch_loads(tmp_path):
    """The published batches were pickled by Python 2 with numpy 1: they name
    numpy.core.multiarray._reconstruct (numpy 2 calls it numpy._core.multiarray)."""
    folder, _, labels = _cifar_folder(tmp_path)
    blob = pickle.dumps(pickle.loads((folder / "data_batch_1").read_bytes()), protocol=2)
    old = blob.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert old != blob
    batch = load_cifar_pickle(old)
    assert batch[b"data"].shape == (4, 3072) and batch[b"labels"] == [int(v) for v in labels[:4]]


# --------------------------------------------------------------------------------------------
# 2. Nothing runs that was not asked for


@pytest.mark.parametrize(
    "raw",
    [{}, {"steps": 20, "eval_every": 10}, {"data": {"num_samples": 256}, "model": {"bias": True}}],
)
def test_a_config_that_names_no_suite_and_no_cells_is_refused(raw):
    with pytest.raises(ConfigError, match="sent.toml: .*name the suite .*state its cells"):
        config_from_dict(raw, "sent.toml")


@pytest.mark.parametrize(
    "raw",
    [{"name": "mine"}, {"schemes": ["mup"]}, {"model": {"widths": [64]}},
     {"model": {"path": [[32, 2], [64, 4]]}}, {"model": {"block_depths": [2]}}],
)  # fmt: skip
def test_a_config_that_names_its_suite_or_states_its_cells_loads(raw):
    assert config_from_dict(raw).replicas_per_cell() > 0


def test_an_empty_config_file_is_refused_before_anything_runs(tmp_path, captured_sweep, capsys):
    path = tmp_path / "empty.toml"
    path.write_text("")
    with pytest.raises(ConfigError, match="empty.toml: empty config"):
        load_config(path)
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith("hptransfer: error: ") and "empty config: name the suite" in lines[0]
    assert captured_sweep == [] and not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------
# 3. Limits: refused before compute, naming the field, the need and the available amount

TINY = {
    "name": "tiny", "steps": 20, "eval_every": 10, "batch_size": 16, "seeds": [0],
    "schemes": ["mup", "depth_mup"], "data": {"name": "teacher", "num_samples": 256},
    "model": {"widths": [8], "depths": [2, 4], "block_depths": [2], "base_width": 8},
    "lr": {"start": -2.0, "stop": -1.0, "step": 1.0}, "probe_size": 16,
}  # fmt: skip
PLENTY = 1 << 50


def test_check_fits_refuses_only_a_need_over_the_available_amount():
    limits.check_fits(100, 100, "never raised")
    with pytest.raises(limits.LimitError, match="^the message$"):
        limits.check_fits(101, 100, "the message")


def test_a_dataset_over_the_available_memory_is_refused_naming_the_field():
    config = config_from_dict({**TINY, "data": {"name": "mnist1d", "num_samples": 10**6}})
    need = limits.dataset_bytes("mnist1d", 10**6)
    limits.check_sweep(config, ".", memory=need, disk=PLENTY)
    with pytest.raises(limits.LimitError) as err:
        limits.check_sweep(config, ".", source="sent.toml", memory=need - 1, disk=PLENTY)
    line = str(err.value)
    assert line.startswith("sent.toml: field 'data.num_samples' = 1000000: building the mnist1d")
    assert f"({need} bytes) of memory" in line and f"({need - 1} bytes) are available" in line
    assert "at most 999999 samples" in line


def test_the_results_table_over_the_available_memory_is_refused_naming_eval_every():
    config = config_from_dict({**TINY, "steps": 100_000, "eval_every": 1})
    rows, cols = limits.results_shape(config)
    assert rows == 2 * 4 * 100_000  # 2 cells x (2 schemes x 2 rates) x 100000 evaluations
    need = limits.results_bytes(config)
    assert need == 2 * rows * cols * 8 > limits.dataset_bytes("teacher", 256)
    limits.check_sweep(config, ".", memory=need, disk=PLENTY)
    with pytest.raises(limits.LimitError, match="field 'eval_every' = 1: the results table"):
        limits.check_sweep(config, ".", memory=need - 1, disk=PLENTY)


def test_the_checkpoint_over_the_free_disk_is_refused_naming_max_replicas_per_chunk(
    tmp_path, monkeypatch
):
    config = config_from_dict({**TINY, "lr": {"start": -8.0, "stop": -1.0, "step": 1.0}})
    need, arch, n = limits.checkpoint_bytes(config, devices=2)
    assert (arch.depth, n) == (4, 16)  # the deeper cell; 2 schemes x 8 rates, all in one chunk
    with pytest.raises(limits.LimitError) as err:
        limits.check_sweep(config, tmp_path / "out", devices=2, memory=PLENTY, disk=need - 1)
    line = str(err.value)
    assert "field 'max_replicas_per_chunk' = 0: the checkpoint of the largest chunk" in line
    assert f"({need} bytes) of disk" in line and f"({need - 1} bytes) are free" in line
    assert "max_replicas_per_chunk <= 15" in line
    # Smaller chunks (from the config, or from device memory as the engine plans) fit.
    smaller = config_from_dict({**TINY, "lr": config.to_dict()["lr"], "max_replicas_per_chunk": 4})
    limits.check_sweep(smaller, tmp_path / "out", devices=2, memory=PLENTY, disk=need - 1)
    limits.check_sweep(config, tmp_path, devices=2, fit=lambda a: 4, memory=PLENTY, disk=need - 1)
    # A directory not made yet is measured on the filesystem of its nearest existing parent
    # (asked of that parent: the free bytes themselves move while other tests write files).
    asked, usage = [], limits.shutil.disk_usage
    monkeypatch.setattr(limits.shutil, "disk_usage", lambda p: asked.append(p) or usage(p))
    assert limits.free_disk(tmp_path / "not" / "made") > 0 and asked == [tmp_path]


def test_the_results_shape_is_that_of_the_engines_table():
    """The estimate's columns are those of a real cell table (hptransfer.sweeps.engine._chunk_table)."""
    from hptransfer.network.movement import STATS
    from hptransfer.sweeps import engine

    config = config_from_dict({**TINY, "model": {**TINY["model"], "depths": [2]}})
    (arch,) = limits.architectures(config)
    chunk = engine.replicas(config)
    n_seg = config.steps // config.eval_every
    history = {key: np.zeros((n_seg, len(chunk)), np.float32)
               for key in ["train_loss", "test_loss", "test_accuracy",
                           *(f"{s}/{r}" for s in STATS for r in arch.roles)]}  # fmt: skip
    history["diverged_step"] = np.full(len(chunk), -1, np.int32)
    table = engine._chunk_table(config, arch, "hash", chunk, history)
    assert table.shape == limits.results_shape(config)


def test_the_checkpointed_state_is_what_the_estimate_counts():
    """Parameters, initial parameters and optimizer slots of one replica, from the real init."""
    import jax

    from hptransfer.network.optim import traced_settings
    from hptransfer.network.scaling import multipliers
    from hptransfer.network.schemes import get_scheme
    from hptransfer.network.train import init_state

    for optimizer in ({"name": "sgd"}, {"name": "sgd", "momentum": 0.9}, {"name": "adam"}):
        config = config_from_dict({**TINY, "optimizer": optimizer})
        arch = limits.architectures(config)[-1]
        mult = multipliers(get_scheme("mup"), arch, config.optimizer.family)
        mult = mult.replace(optimizer=traced_settings(config.optimizer))
        init = partial(init_state, arch=arch, opt=config.optimizer)
        shapes = jax.eval_shape(init, np.uint32(0), mult)
        state = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(shapes))
        _, cols = limits.results_shape(config)
        estimate = limits.checkpoint_bytes_per_replica(config, arch) - 2 * cols * 4
        assert state - 64 <= estimate <= state, optimizer  # a few scalars (step, counts) aside


@pytest.mark.parametrize(("name", "in_shape"), [("teacher", (32,)), ("teacher_images", (8, 8, 3))])
def test_the_dataset_estimate_covers_the_real_peak(name, in_shape):
    import tracemalloc

    from hptransfer.network.data import load_dataset

    tracemalloc.start()
    data = load_dataset(name, num_samples=4000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert data.in_shape == in_shape == DATASET_SHAPES[name]
    assert peak <= limits.dataset_bytes(name, 4000) <= 3 * peak


def test_the_mnist1d_estimate_covers_the_real_peak(tmp_path, monkeypatch):
    import tracemalloc

    import mnist1d.data  # noqa: F401  (imported first: its import is not the dataset's memory)

    from hptransfer.network.data import mnist1d

    monkeypatch.setenv("HPTRANSFER_CACHE", str(tmp_path))
    tracemalloc.start()
    data = mnist1d(num_samples=1000, seed=3)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert data.in_shape == DATASET_SHAPES["mnist1d"]
    assert peak <= limits.dataset_bytes("mnist1d", 1000) <= 3 * peak


def test_a_huge_dataset_ends_the_cli_in_one_line_before_anything_is_made(tmp_path, capsys,
                                                                        captured_sweep):  # fmt: skip
    path = tmp_path / "huge.toml"
    path.write_text(CONFIG.replace("num_samples = 256", "num_samples = 10000000000"))
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert "field 'data.num_samples' = 10000000000" in lines[0] and "are available" in lines[0]
    assert captured_sweep == [] and not out.exists()
