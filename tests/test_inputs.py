"""Input files are data, never code; nothing runs that was not asked for; what would exhaust the
machine is refused before compute (issue 21; docs/design.md, "What each input file may contain").
"""

import os
import pickle
import shlex
import sys
import tarfile

import numpy as np
import pytest

from hptransfer import cli
from hptransfer.cli import main
from hptransfer.config import ConfigError, config_from_dict, load_config
from hptransfer.data import UnsafePickleError, cifar10, load_cifar_pickle, write_cifar10_archive
from hptransfer.schemes import SchemeError, load_schemes, schemes_from_python

CONFIG = """
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
[lr]
start = -2.0
stop = -1.0
step = 1.0
"""

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

    monkeypatch.setattr("hptransfer.engine.run_sweep", record)
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


def test_an_empty_config_file_is_refused_before_anything_runs(tmp_path, captured_sweep):
    path = tmp_path / "empty.toml"
    path.write_text("")
    with pytest.raises(ConfigError, match="empty.toml: empty config"):
        load_config(path)
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    assert captured_sweep == [] and not (tmp_path / "out").exists()
