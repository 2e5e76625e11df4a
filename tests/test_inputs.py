"""Input files are data, never code; nothing runs that was not asked for; what would exhaust the
machine is refused before compute (issue 21; docs/design.md, "What each input file may contain").
"""

import sys

import pytest

from hptransfer import cli
from hptransfer.cli import main
from hptransfer.config import ConfigError, config_from_dict, load_config
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
