"""Every user error of every command ends in one line ``hptransfer: error: ...`` and exit code 2,
before any compute; Ctrl-C ends with exit code 130 and a command that resumes; help and version.

The table runs ``hptransfer.cli.main`` in-process. An autouse fixture makes every compute entry
point (data loading, training, the sweep engine, the analysis) fail the test if reached, so each
case also shows that its error comes before any compile.
"""

import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import TINY_CONFIG

from hptransfer import __version__
from hptransfer.cli import build_parser, main
from hptransfer.network import data, train
from hptransfer.stats import analysis
from hptransfer.sweeps import engine, interrupt

GOOD_CONFIG = TINY_CONFIG

CYCLE_SCHEMES = '[a]\nextends = "b"\n[b]\nextends = "a"\n'


def _with_top(line: str) -> str:
    """GOOD_CONFIG with one more top-level line (before the first table)."""
    return f"{line}\n{GOOD_CONFIG}"


class ComputeStarted(RuntimeError):
    """Raised where compute would begin: a case that reaches it is an error found too late."""


@pytest.fixture(autouse=True)
def _no_compute(monkeypatch):
    def refuse(*args, **kwargs):
        raise ComputeStarted("compute started before the error was found")

    monkeypatch.setattr(engine, "run_sweep", refuse)
    monkeypatch.setattr(train, "train_run", refuse)
    monkeypatch.setattr(data, "load_dataset", refuse)
    monkeypatch.setattr(analysis, "analyze", refuse)


@pytest.fixture
def files(tmp_path):
    """A workspace of good and bad inputs; returns {name: path string}."""
    p = {}

    def write(name: str, text: str | bytes) -> str:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        p[name] = str(path)
        return str(path)

    write("good.toml", GOOD_CONFIG)
    write("bad_toml.toml", "steps = \n")
    write("binary.toml", b"\xff\xfe\x00\x01")
    write("unknown_field.toml", _with_top("stepz = 10"))
    write("unknown_model_field.toml", GOOD_CONFIG.replace("[model]", "[model]\nwidht = 3"))
    write("bad_grid.toml", GOOD_CONFIG.replace("stop = -1.0", "stop = -3.0"))
    write("zero_step.toml", GOOD_CONFIG.replace("step = 1.0", "step = 0.0"))
    write("unknown_scheme.toml", GOOD_CONFIG.replace('["mup"]', '["mu_p"]'))
    write("eval_every.toml", GOOD_CONFIG.replace("eval_every = 10", "eval_every = 7"))
    write("neg_width.toml", GOOD_CONFIG.replace("widths = [8]", "widths = [-8]"))
    write("empty_seeds.toml", GOOD_CONFIG.replace("seeds = [0]", "seeds = []"))
    write("adam_wd.toml", GOOD_CONFIG + '[optimizer]\nname = "adam"\nweight_decay = 0.1\n')
    write("bad_opt.toml", GOOD_CONFIG + '[optimizer]\nname = "lion"\n')
    write("bad_data.toml", GOOD_CONFIG.replace('name = "teacher"', 'name = "mnist2d"'))
    write("conv_1d.toml", GOOD_CONFIG.replace("[model]", '[model]\nfamily = "conv"'))
    write("by_scheme.toml", GOOD_CONFIG + "[lr.by_scheme.sp]\nstart = 0\nstop = 1\nstep = 1\n")
    write("divergence.toml", _with_top("divergence_factor = 0.5"))
    write("cifar_no_path.toml", GOOD_CONFIG.replace('name = "teacher"', 'name = "cifar10"'))
    write("cycle.toml", CYCLE_SCHEMES)
    write("uses_cycle.toml", _with_top('scheme_files = ["cycle.toml"]'))
    write("uses_missing.toml", _with_top('scheme_files = ["nowhere.toml"]'))
    write("uses_python.toml", _with_top('scheme_files = ["os:system"]'))
    write("float_data.toml", GOOD_CONFIG.replace("num_samples = 256", "num_samples = 1e10"))
    write("comments_only.toml", "# a sweep, one day\n")
    write("settings_only.toml", "steps = 20\neval_every = 10\n[data]\nnum_samples = 256\n")
    write("scheme_unknown_field.toml", '[mine]\nextends = "mup"\nhiden = { lr_sgd = [0, 0] }\n')
    write("scheme_clash.toml", '[mup]\nextends = "sp"\n')
    write("unknown_axis.toml", GOOD_CONFIG + "[axes.init_scal]\nvalues = [0.0]\n")
    write("axis_grid.toml", GOOD_CONFIG + "[axes.init_scale]\nstart = 1\nstop = 0\nstep = 1\n")
    write("axis_opt.toml", GOOD_CONFIG + "[axes.b2]\nvalues = [0.9, 0.99]\n")
    write(
        "axis_group.toml",
        GOOD_CONFIG + '[axes]\ngroups = [["init_scale"]]\n[axes.init_scale]\nvalues = [0.0]\n',
    )
    sched = GOOD_CONFIG + "[schedule]\n"  # GOOD_CONFIG trains 20 steps
    write("sched_warmup.toml", sched + 'kind = "cosine"\nwarmup_fraction = 1.0\n')
    write("sched_final.toml", sched + 'kind = "linear"\nfinal_fraction = 1.5\n')
    write("sched_no_decay.toml", sched + 'kind = "wsd"\ndecay_fraction = 0.01\n')
    write("sched_sum.toml", sched + 'kind = "wsd"\nwarmup_fraction = 0.6\ndecay_fraction = 0.5\n')
    write("sched_kind.toml", sched + 'kind = "step"\n')
    write("sched_field.toml", sched + 'kind = "cosine"\ndecay_fraction = 0.2\n')
    write("bad_path.toml", GOOD_CONFIG.replace("widths = [8]\ndepths = [2]", "path = [[8, 2]]"))
    lm = (
        GOOD_CONFIG.replace('name = "teacher"', 'name = "text"')
        .replace("num_samples = 256", "seq_len = 8")
        .replace("[model]", '[model]\nfamily = "transformer"\nhead_dim = 4')
    )
    write("lm_good.toml", lm)
    write(
        "lm_mnist.toml", lm.replace('name = "text"', 'name = "mnist1d"').replace("seq_len = 8", "")
    )
    write("lm_heads.toml", lm.replace("head_dim = 4", "head_dim = 3"))
    write("lm_k1.toml", lm.replace("[model]", "[model]\nblock_depths = [1]"))
    write("lm_layout.toml", lm.replace("head_dim = 4", 'head_layout = "grouped"'))
    write("lm_corpus.toml", lm.replace('name = "text"', 'name = "text"\npath = "no/such/corpus"'))
    write("mlp_heads.toml", GOOD_CONFIG.replace("[model]", "[model]\nhead_dim = 4"))
    write("mlp_seq.toml", GOOD_CONFIG.replace("num_samples = 256", "seq_len = 8"))
    write("lm_seq.toml", lm.replace("seq_len = 8", "seq_len = 1"))
    write("a_file", "not a directory")
    (tmp_path / "config_dir").mkdir()
    p["config_dir"] = str(tmp_path / "config_dir")
    (tmp_path / "empty_run").mkdir()
    p["empty_run"] = str(tmp_path / "empty_run")
    p["missing"] = str(tmp_path / "missing")

    table = pd.DataFrame({"scheme": ["mup"], "log2_lr": [-1.0], "train_loss": [0.5]})
    table.to_parquet(tmp_path / "full.parquet")
    blob = (tmp_path / "full.parquet").read_bytes()
    write("cut_parquet/results.parquet", blob[: len(blob) // 2])
    write("cut_parquet/meta.json", json.dumps({"config": {"name": "x"}}))
    write("cut_meta/results.parquet", blob)
    write("cut_meta/meta.json", '{"config": {"name": ')
    write("list_meta/results.parquet", blob)
    write("list_meta/meta.json", "[1, 2]")
    p["cut_parquet"] = str(tmp_path / "cut_parquet")
    p["cut_meta"] = str(tmp_path / "cut_meta")
    p["list_meta"] = str(tmp_path / "list_meta")
    p["out"] = str(tmp_path / "out")
    return p


# (argv with {name} placeholders for `files`, a word or a tuple of words the one error line
# must contain). A bad config's line names the file, the field, the value and what is allowed:
# these rows are the only copy of those cases (test_engine and test_axes keep the config errors
# this table has no row for). An empty config, a huge dataset and `schemes --scheme-file :X`
# are in test_inputs.py, with more assertions.
CASES = [
    # sweep: the config file
    (["sweep", "{config_dir}", "--out", "{out}"], "is a directory"),
    (["sweep", "{missing}", "--out", "{out}"], "does not exist"),
    (["sweep", "{bad_toml.toml}", "--out", "{out}"], "not valid TOML"),
    (["sweep", "{binary.toml}", "--out", "{out}"], "UTF-8"),
    (
        ["sweep", "{unknown_field.toml}", "--out", "{out}"],
        ("unknown_field.toml", "unknown field 'stepz'", "allowed"),
    ),
    (
        ["sweep", "{unknown_model_field.toml}", "--out", "{out}"],
        ("unknown_model_field.toml", "'model.widht'", "allowed"),
    ),
    (["sweep", "{bad_grid.toml}", "--out", "{out}"], ("bad_grid.toml", "'lr.stop'", ">= start")),
    (["sweep", "{zero_step.toml}", "--out", "{out}"], "'lr.step'"),
    (
        ["sweep", "{unknown_scheme.toml}", "--out", "{out}"],
        ("unknown_scheme.toml", "'schemes[0]'", "mu_p", "depth_mup"),
    ),
    (
        ["sweep", "{eval_every.toml}", "--out", "{out}"],
        ("eval_every.toml", "'eval_every'", "divisor of steps"),
    ),
    (
        ["sweep", "{neg_width.toml}", "--out", "{out}"],
        ("neg_width.toml", "'model.widths[0]'", "-8", "integer >= 1"),
    ),
    (["sweep", "{empty_seeds.toml}", "--out", "{out}"], "'seeds'"),
    (["sweep", "{adam_wd.toml}", "--out", "{out}"], ("adam_wd.toml", "weight_decay", "adamw")),
    (
        ["sweep", "{bad_opt.toml}", "--out", "{out}"],
        ("bad_opt.toml", "'optimizer.name'", "lion", "adam"),
    ),
    (["sweep", "{bad_data.toml}", "--out", "{out}"], ("bad_data.toml", "'data.name'", "mnist1d")),
    (["sweep", "{conv_1d.toml}", "--out", "{out}"], ("conv_1d.toml", "'model.family'", "conv")),
    (
        ["sweep", "{by_scheme.toml}", "--out", "{out}"],
        ("by_scheme.toml", "'lr.by_scheme.sp'", "a scheme of this sweep"),
    ),
    (["sweep", "{divergence.toml}", "--out", "{out}"], "'divergence_factor'"),
    (
        ["sweep", "{cifar_no_path.toml}", "--out", "{out}"],
        ("cifar_no_path.toml", "'data.path'", "missing"),
    ),
    (["sweep", "{uses_cycle.toml}", "--out", "{out}"], "cycle a -> b -> a"),
    (["sweep", "{uses_missing.toml}", "--out", "{out}"], "nowhere.toml"),
    (["sweep", "{uses_python.toml}", "--out", "{out}"], "'scheme_files[0]' = 'os:system'"),
    (["sweep", "{unknown_axis.toml}", "--out", "{out}"], ("'axes.init_scal'", "init_scale")),
    (["sweep", "{axis_grid.toml}", "--out", "{out}"], "'axes.init_scale.stop'"),
    (["sweep", "{axis_opt.toml}", "--out", "{out}"], ("'axes.b2'", "adam")),
    (["sweep", "{axis_group.toml}", "--out", "{out}"], "'lr.default'"),
    (["sweep", "{bad_path.toml}", "--out", "{out}"], "'model.path'"),
    # the transformer and the text corpus
    (["sweep", "{lm_mnist.toml}", "--out", "{out}"], ("'model.family' = 'transformer'", "text")),
    (
        ["sweep", "{lm_heads.toml}", "--out", "{out}"],
        ("lm_heads.toml", "not a multiple of head_dim = 3"),
    ),
    (["sweep", "{lm_k1.toml}", "--out", "{out}"], ("'model.block_depths' = [1]", "[2]")),
    (
        ["sweep", "{lm_layout.toml}", "--out", "{out}"],
        ("'model.head_layout' = 'grouped'", "fixed_heads"),
    ),
    (
        ["sweep", "{lm_corpus.toml}", "--out", "{out}"],
        ("'data.path' = 'no/such/corpus'", "existing text file"),
    ),
    (
        ["sweep", "{mlp_heads.toml}", "--out", "{out}"],
        ("'model.head_dim' = 4", "only with family = 'transformer'"),
    ),
    (
        ["sweep", "{mlp_seq.toml}", "--out", "{out}"],
        ("'data.seq_len' = 8", "only with name = 'text'"),
    ),
    (["sweep", "{lm_seq.toml}", "--out", "{out}"], ("'data.seq_len' = 1", "allowed")),
    (["sweep", "{sched_warmup.toml}", "--out", "{out}"], "'warmup_fraction' = 1.0"),
    (["sweep", "{sched_final.toml}", "--out", "{out}"], "'final_fraction' = 1.5"),
    (["sweep", "{sched_no_decay.toml}", "--out", "{out}"], "a decay of at least one step"),
    (["sweep", "{sched_sum.toml}", "--out", "{out}"], "'warmup_fraction' + 'decay_fraction'"),
    (["sweep", "{sched_kind.toml}", "--out", "{out}"], "'schedule.kind' = 'step'"),
    (["sweep", "{sched_field.toml}", "--out", "{out}"], "'schedule.decay_fraction'"),
    (
        ["sweep", "{float_data.toml}", "--out", "{out}"],
        "'data.num_samples' = 10000000000.0 is not allowed; allowed: an integer",
    ),
    (["sweep", "{comments_only.toml}", "--out", "{out}"], "empty config"),
    (
        ["sweep", "{settings_only.toml}", "--out", "{out}"],
        "settings only (steps, eval_every, data)",
    ),
    # sweep: the arguments
    (["sweep", "{good.toml}", "--out", "{a_file}"], "--out"),
    (["sweep", "{good.toml}", "--out", "{a_file}/sub"], "--out"),
    (["sweep", "{good.toml}"], "--out"),
    (["sweep", "{good.toml}", "--out", "{out}", "--max-replicas-per-chunk", "-1"], "--max-repl"),
    (["sweep", "{good.toml}", "--out", "{out}", "--max-replicas-per-chunk", "x"], "--max-repl"),
    (["sweep", "{good.toml}", "--out", "{out}", "--fresh", "--resume"], "--resume"),
    (["sweep", "{good.toml}", "--out", "{out}", "--fre"], "--fre"),
    (["sweep", "{good.toml}", "--out", "{out}", "--scheme-file", ":X"], "--scheme-file: ':X'"),
    (["sweep", "{good.toml}", "--out", "{out}", "--scheme-file", "no_such_xyz:S"], "no_such_xyz"),
    # run
    (["run", "--width", "-3"], "--width"),
    (["run", "--width", "abc"], "--width"),
    (["run", "--depth", "0"], "--depth"),
    (["run", "--block-depth", "1.5"], "--block-depth"),
    (["run", "--base-width", "0"], "--base-width"),
    (["run", "--base-depth", "-2"], "--base-depth"),
    (["run", "--optimizer", "adm"], "--optimizer"),
    (["run", "--momentum", "1.0"], "--momentum"),
    (["run", "--momentum", "-0.1"], "--momentum"),
    (["run", "--log2-lr", "inf"], "--log2-lr"),
    (["run", "--log2-lr", "nan"], "--log2-lr"),
    (["run", "--steps", "0"], "--steps"),
    (["run", "--batch-size", "-1"], "--batch-size"),
    (["run", "--samples", "5"], "--samples"),
    (["run", "--seed", "-1"], "--seed"),
    (["run", "--samples", "10000000000"], "--samples = 10000000000: building the mnist1d"),
    (["run", "--schemes", "mup", "mu_p"], "--schemes"),
    (["run", "--scheme-file", "{cycle.toml}"], "cycle"),
    (["run", "--optimizer", "adam", "--momentum", "0.9"], "--momentum 0.9: field 'momentum'"),
    (["run", "--widht", "8"], "--widht"),
    # schemes
    (["schemes", "--scheme-file", "{config_dir}"], "is a directory"),
    (["schemes", "--scheme-file", "{missing}.toml"], "does not exist"),
    (["schemes", "--scheme-file", "{bad_toml.toml}"], "not valid TOML"),
    (["schemes", "--scheme-file", "{cycle.toml}"], "a -> b -> a"),
    (["schemes", "--scheme-file", "{scheme_unknown_field.toml}"], "'hiden'"),
    (["schemes", "--scheme-file", "{scheme_clash.toml}"], "built in"),
    (["schemes", "--scheme-file", "no_such_module_xyz:SCHEMES"], "no_such_module_xyz"),
    (["schemes", "--scheme-file", "a..b:X"], "package.module:attribute"),
    # report
    (["report", "{missing}"], "does not exist"),
    (["report", "{a_file}"], "not a directory"),
    (["report", "{empty_run}"], "no results.parquet"),
    (["report", "{cut_parquet}"], "results.parquet"),
    (["report", "{cut_meta}"], "meta.json"),
    (["report", "{list_meta}"], "meta.json"),
    # check
    (["check", "{cut_parquet}", "--suite", "ci"], "results.parquet"),
    (["check", "{missing}"], "does not exist"),
    (["check", "{cut_meta}"], "meta.json"),
    (["check", "{cut_meta}", "--suite", "nope"], "'nope'"),
    # compare
    (["compare", "{cut_meta}", "{missing}"], "meta.json"),
    (["compare", "{empty_run}"], "no results.parquet"),
    (["compare", "{cut_parquet}", "--markdown", "{missing}/table.md"], "--markdown"),
    (["compare", "{cut_parquet}", "--markdown", "{config_dir}"], "--markdown"),
    (["compare"], "dirs"),
    # the top level
    ([], "COMMAND"),
    (["swep"], "'swep'"),
]


def _fill(argv: list[str], files: dict[str, str]) -> list[str]:
    out = []
    for arg in argv:
        for name, path in files.items():
            arg = arg.replace("{" + name + "}", path)
        assert "{" not in arg, arg
        out.append(arg)
    return out


def test_the_table_is_large_and_covers_every_command():
    assert len(CASES) >= 45
    commands = {argv[0] for argv, _ in CASES if argv}
    assert commands == {"sweep", "run", "schemes", "report", "check", "compare", "swep"}


@pytest.mark.parametrize(("argv", "word"), CASES, ids=[" ".join(a) or "<none>" for a, _ in CASES])
def test_a_user_error_is_one_line_and_exit_code_2(argv, word, files, capsys):
    code = main(_fill(argv, files))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("hptransfer: error: ")
    assert "Traceback" not in err
    for w in (word,) if isinstance(word, str) else word:
        assert w in lines[0], (w, lines[0])


def test_a_missing_out_is_created_only_after_the_config_is_valid(files, capsys):
    assert main(["sweep", files["bad_grid.toml"], "--out", files["out"]]) == 2
    assert not Path(files["out"]).exists()


def test_an_unwritable_out_is_refused_before_compute(files, capsys, monkeypatch):
    """A read-only --out (simulated: the probe file cannot be made, as for a non-root user)."""

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("hptransfer.cli.tempfile.TemporaryFile", read_only)
    assert main(["sweep", files["good.toml"], "--out", files["out"]]) == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith("hptransfer: error: argument --out:") and "not writable" in line


def test_ctrl_c_outside_a_sweep_exits_130_with_the_command_to_rerun(files, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("hptransfer.reports.report.write_report", interrupted)
    assert main(["report", files["empty_run"]]) == 130
    err = capsys.readouterr().err
    assert (
        err.strip()
        == f"hptransfer: interrupted; rerun with: hptransfer report {files['empty_run']}"
    )


def test_debug_shows_the_traceback(files, capsys):
    assert main(["--debug", "report", files["cut_meta"]]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "ResultsError" in err
    assert err.strip().splitlines()[-1].startswith("hptransfer: error: ")


def test_a_genuine_bug_keeps_its_traceback(files, monkeypatch):
    """Only this package's ValueErrors (and file OSErrors) are user errors."""

    def bug(*args, **kwargs):
        raise ValueError("a plain ValueError from a bug")

    monkeypatch.setattr("hptransfer.reports.report.write_report", bug)
    with pytest.raises(ValueError, match="from a bug"):
        main(["report", files["cut_meta"]])
    with pytest.raises(ComputeStarted):
        main(["run", "--steps", "3"])


# --------------------------------------------------------------------------------------------
# Help and version


def _option_help(text: str, option: str) -> str:
    """The help entry of ``option`` in a --help text (up to the next option)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(option))
    entry = [lines[start]]
    for line in lines[start + 1 :]:
        if line.strip().startswith("-") or not line.startswith(" " * 10):
            break
        entry.append(line)
    return " ".join(" ".join(entry).split())


def _subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


@pytest.mark.parametrize("command", sorted(_subparsers()))
def test_help_states_the_default_of_every_option(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    sub = _subparsers()[command]
    options = [
        a
        for a in sub._actions
        if a.option_strings and a.dest != "help" and a.default is not None and not a.required
    ]
    for action in options:
        entry = _option_help(text, action.option_strings[-1])
        assert "default" in entry, entry
    for action in sub._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, action.option_strings


def test_top_level_help_says_what_and_how_to_start(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "make bench" in text and "hptransfer sweep benchmarks/quick.toml --out DIR" in text
    assert "width and depth" in text


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"hptransfer {__version__}"


# --------------------------------------------------------------------------------------------
# Ctrl-C

SLOW_SECOND_CELL = GOOD_CONFIG.replace("depths = [2]", "depths = [2, 8]").replace(
    "steps = 20\neval_every = 10", "steps = 200\neval_every = 20"
)


@pytest.mark.slow  # two cells compiled twice: about 20 s on 2 busy cores
def test_ctrl_c_exits_130_with_the_resume_command_and_a_rerun_resumes(tmp_path, monkeypatch):
    """SIGINT to a sweep once its first cell is written; the printed command finishes it."""
    config = tmp_path / "sweep.toml"
    config.write_text(SLOW_SECOND_CELL)
    out = tmp_path / "out"
    argv = ["sweep", str(config), "--out", str(out), "--fresh", "--quiet"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "hptransfer.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not list((out / "cells").glob("*.parquet")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the first cell never finished"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    resume = lines[0].split("resume with: ", 1)[1]
    assert "last checkpoint" in lines[0]
    assert resume == f"hptransfer sweep {config} --out {out} --quiet"
    assert not (out / "results.parquet").exists()

    monkeypatch.undo()  # the real engine this time: the rerun trains the unfinished cell
    assert main(shlex.split(resume)[1:]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert [c.get("resumed", False) for c in meta["cells"]] == [True, False]


def test_ctrl_c_in_a_sweep_exits_130_with_the_resume_command_and_a_rerun_resumes(
    tmp_path, monkeypatch, capsys
):
    """The in-process form of the test above (no subprocess, no slow second cell): SIGINT
    arrives as the second cell starts training; the printed command finishes the sweep."""
    saved = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    monkeypatch.undo()  # the real engine
    real, calls = engine.run_cell, []

    def second_cell_interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            signal.raise_signal(signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "run_cell", second_cell_interrupted)
    config = tmp_path / "sweep.toml"
    config.write_text(GOOD_CONFIG.replace("depths = [2]", "depths = [2, 4]"))
    out = tmp_path / "out"
    argv = ["sweep", str(config), "--out", str(out), "--fresh", "--quiet"]
    try:
        assert main(argv) == 130
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and "Traceback" not in err, err
        assert lines[0].startswith("hptransfer: interrupted; ") and "last checkpoint" in lines[0]
        resume = lines[0].split("resume with: ", 1)[1]
        assert resume == f"hptransfer sweep {config} --out {out} --quiet"
        assert not (out / "results.parquet").exists()
        assert main(shlex.split(resume)[1:]) == 0
    finally:  # main() installed its handlers in this (pytest's) process: put them back
        interrupt.cancel_deadline()
        signal.signal(signal.SIGINT, saved[0])
        signal.signal(signal.SIGTERM, saved[1])
    meta = json.loads((out / "meta.json").read_text())
    assert [c.get("resumed", False) for c in meta["cells"]] == [True, False]
