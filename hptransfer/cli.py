"""The command line: ``hptransfer {run, sweep, schemes, report, compare, check}``.

On CPU, XLA runs these small matrix products on one thread per program; splitting the host
into one device per core and sharding the replica axis over them is what uses every core
(docs/design.md). So, before jax is imported, the host platform is split into
``os.cpu_count()`` devices unless XLA_FLAGS already says otherwise or HPTRANSFER_HOST_DEVICES
sets the count.

User errors end in one line ``hptransfer: error: ...`` naming the file or argument and what is
allowed, with exit code 2 and no traceback (``--debug`` shows it). Every argument is checked
before any compute. Ctrl-C ends with exit code 130 and the command that resumes.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import math
import os
import shlex
import signal
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

from hptransfer.sweeps import interrupt, supervise

DESCRIPTION = """\
Answers: is the learning rate tuned on a small ResNet still optimal at larger width and depth?
Start: `make bench`, or `hptransfer sweep benchmarks/quick.toml --out DIR`, then `hptransfer report DIR`."""


class UsageError(ValueError):
    """A command-line argument is not allowed; the message names it and what is allowed."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors raised as :class:`UsageError` (main prints them) and no
    abbreviated options (so the resume command printed on Ctrl-C is exact)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # argparse would print the usage and exit
        raise UsageError(f"{message} (see `{self.prog} --help`)")


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Append "(default: ...)" to every option that has a default and does not state it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            "default" in text
            or not action.option_strings
            or action.required
            or action.default in (None, argparse.SUPPRESS)
        ):
            return text
        default = action.default
        if isinstance(default, list | tuple):
            return f"{text} (default: {' '.join(map(str, default)) or 'none'})"
        return f"{text} (default: %(default)s)"


def _number(kind: type, lo: float | None = None, hi: float | None = None) -> Callable[[str], float]:
    """An argparse type: a finite ``kind`` (int or float) in [lo, hi), like a config field."""
    bounds = (f">= {lo:g}" if lo is not None else "", f"< {hi:g}" if hi is not None else "")
    what = "an integer" if kind is int else "a finite number"
    allowed = " ".join([what, " and ".join(b for b in bounds if b)]).strip()

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if (
            value is None
            or not math.isfinite(value)
            or (lo is not None and value < lo)
            or (hi is not None and value >= hi)
        ):
            raise argparse.ArgumentTypeError(f"{text!r} is not allowed; allowed: {allowed}")
        return value

    parse.__name__ = allowed
    return parse


def _scheme_source(text: str) -> str:
    """An argparse type: a .toml scheme file (or an existing path) or ``package.module:attr``."""
    from hptransfer.network.schemes import SOURCE_FORMS, is_python_source

    if text.endswith(".toml") or Path(text).exists() or is_python_source(text):
        return text
    raise argparse.ArgumentTypeError(f"{text!r} is not allowed; allowed: {SOURCE_FORMS}")


def _user_schemes(sources: list[str]) -> dict:
    """The scheme registry with the ``--scheme-file`` sources (Python ones are imported: the
    user asked for code on the command line); an error names the option."""
    from hptransfer.network.schemes import SchemeError, load_schemes

    try:
        return load_schemes(sources)
    except SchemeError as err:
        raise UsageError(f"argument --scheme-file: {err}") from None


def configure_host_devices() -> None:
    """Split the host into one XLA device per core (call before importing jax)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" in flags:
        return
    text = os.environ.get("HPTRANSFER_HOST_DEVICES", str(os.cpu_count() or 1))
    if not text.isdigit() or int(text) < 1:
        raise UsageError(
            f"environment variable HPTRANSFER_HOST_DEVICES = {text!r} is not allowed; "
            "allowed: an integer >= 1"
        )
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={text}".strip()


# --------------------------------------------------------------------------------------------
# Paths, checked before any compute


def _input_file(path: str, what: str) -> Path:
    """``path`` as an existing, readable UTF-8 file, else a :class:`UsageError` naming it."""
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{what} {path!r} does not exist; allowed: a TOML file")
    if not p.is_file():
        raise UsageError(f"{what} {path!r} is a directory; allowed: a TOML file")
    try:
        p.read_bytes().decode("utf-8")
    except OSError as err:
        raise UsageError(f"{what} {path!r} cannot be read: {err.strerror}") from err
    except UnicodeDecodeError as err:
        raise UsageError(f"{what} {path!r} is not a text (UTF-8 TOML) file: {err.reason}") from err
    return p


def _writable_dir(path: str | Path, what: str, *, create: bool) -> Path:
    """``path`` as a directory this process can write to (created when ``create``)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"{what} {str(path)!r} is a file; allowed: a directory")
    if create:
        try:
            p.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UsageError(
                f"{what} {str(path)!r} cannot be created ({err.strerror}); allowed: a directory "
                "whose parent is a writable directory"
            ) from err
    try:
        with tempfile.TemporaryFile(dir=p):
            pass
    except OSError as err:
        raise UsageError(
            f"{what} {str(path)!r} is not writable ({err.strerror}); allowed: a writable directory"
        ) from err
    return p


def _writable_file(path: str, what: str) -> Path:
    """``path`` as a file that can be written (its folder exists and is writable)."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{what} {path!r} is a directory; allowed: a file path")
    if not p.parent.is_dir():
        raise UsageError(f"{what} {path!r}: folder {str(p.parent)!r} does not exist")
    _writable_dir(p.parent, f"{what} {path!r}: folder", create=False)
    return p


# --------------------------------------------------------------------------------------------
# Commands
def _cmd_schemes(args) -> int:
    from hptransfer.network.schemes import BUILTIN_SCHEMES, QUANTITIES

    registry = _user_schemes(args.scheme_file)
    for name, scheme in registry.items():
        origin = "built-in" if name in BUILTIN_SCHEMES else "user"
        print(f"{name} ({origin}): {scheme.description}")
        print(f"  branch multiplier beta = r^-{scheme.branch_exponent:g}")
        header = f"  {'role':<10}" + "".join(f"{q:>14}" for q in QUANTITIES)
        print(header)
        rows = [(role, rule, "") for role, rule in scheme.roles.items()]
        for role in scheme.overrides:
            rule = scheme.rule(role, block_depth=max(int(role.split("_")[1]), 8))
            min_k = scheme.overrides[role].get("min_block_depth", 1)
            rows.append((role, rule, f"  (when k >= {min_k})"))
        for role, rule, note in rows:
            cells = "".join(
                f"{f'm^{getattr(rule, q).m:g} r^{getattr(rule, q).r:g}':>14}" for q in QUANTITIES
            )
            print(f"  {role:<10}{cells}{note}")
        print()
    return 0


def _cmd_run(args) -> int:
    from hptransfer.network.data import load_dataset
    from hptransfer.network.model import Architecture
    from hptransfer.network.optim import OptimizerConfig, OptimizerError
    from hptransfer.network.train import train_run

    registry = _user_schemes(args.scheme_file)
    unknown = [name for name in args.schemes if name not in registry]
    if unknown:
        raise UsageError(
            f"argument --schemes: {unknown} not allowed; allowed: names from {sorted(registry)} "
            "(add others with --scheme-file)"
        )
    try:
        opt = OptimizerConfig(args.optimizer, momentum=args.momentum)
    except OptimizerError as err:
        raise UsageError(
            f"arguments --optimizer {args.optimizer} --momentum {args.momentum:g}: {err}"
        ) from err
    from hptransfer.sweeps.limits import check_dataset

    check_dataset("argument --samples", "mnist1d", args.samples)
    data = load_dataset("mnist1d", num_samples=args.samples)
    arch = Architecture(
        args.width, args.depth, args.block_depth, data.in_shape, data.num_classes,
        base_width=args.base_width, base_depth=args.base_depth,
    )  # fmt: skip
    for name in args.schemes:
        result = train_run(
            registry[name], arch, opt, 2.0**args.log2_lr,
            args.seed, data, args.steps, args.batch_size,
        )  # fmt: skip
        move = result.movement
        print(
            f"{name:>10}  n={arch.width} L={arch.depth} k={arch.block_depth} "
            f"lr=2^{args.log2_lr:g}  final train loss {result.losses[-50:].mean():.4f}  "
            f"test loss {result.test_loss:.4f}  test acc {result.test_accuracy:.3f}  "
            f"own movement hidden_1 {move['own_movement/hidden_1']:.3f}"
        )
    return 0


def _cmd_sweep(args) -> int:
    from hptransfer.stats.results import read_meta
    from hptransfer.sweeps import engine
    from hptransfer.sweeps.config import load_config

    _user_schemes(args.scheme_file)  # a bad --scheme-file is named as such
    config = load_config(_input_file(args.config, "config file"), tuple(args.scheme_file))
    if args.distributed:  # a missing process group is refused before --out is touched
        from hptransfer.sweeps.engine import initialize_distributed

        initialize_distributed()
    if args.max_replicas_per_chunk is not None:
        import dataclasses

        config = dataclasses.replace(config, max_replicas_per_chunk=args.max_replicas_per_chunk)
    # Memory for the dataset and the results table, disk for the checkpoints: before --out is
    # made and anything is built or compiled.
    engine.check_resources(config, args.out, source=args.config)
    _writable_dir(args.out, "argument --out:", create=True)
    with contextlib.ExitStack() as stack:
        if args.distributed:  # a dead peer ends this process with one line, not a SIGABRT
            from hptransfer.sweeps.hosts import watch_peers

            stack.enter_context(watch_peers(kept_line(args, args.argv)))
        # Test hooks, read here at the boundary and handed down as data: a death after N
        # segments (engine.Faults) and a checkpoint every HPTRANSFER_CHECKPOINT_SECONDS.
        every = os.environ.get("HPTRANSFER_CHECKPOINT_SECONDS")
        engine.run_sweep(
            config, args.out, fresh=args.fresh, progress=not args.quiet,
            checkpoint_seconds=float(every) if every else 30.0,
            faults=engine.Faults.from_environment(os.environ),
        )  # fmt: skip
    if args.distributed:
        import jax

        if jax.process_index() != 0:
            return 0  # process 0 wrote the results and prints the summary
    meta = read_meta(args.out)
    print(
        f"{config.name}: {meta['replica_steps']} replica-steps in {meta['wall_seconds']:.1f} s "
        f"({meta['replica_steps_per_second_excluding_compile']:.0f} replica-steps/s excluding "
        f"{meta['compiles']} compiles of {meta['compile_seconds']:.1f} s) on {meta['devices']} "
        f"{meta['device']} device(s); results in {args.out}"
    )
    return 0


def _cmd_report(args) -> int:
    from hptransfer.reports.report import write_report

    if Path(args.dir).is_dir():  # a missing DIR is reported by the reader, naming the file
        _writable_dir(args.dir, "DIR", create=False)
    path = write_report(args.dir)
    print(f"wrote {path}")
    return 0


def _cmd_compare(args) -> int:
    from hptransfer.reports.report import compare_markdown

    if args.markdown:
        _writable_file(args.markdown, "argument --markdown:")
    text = compare_markdown(args.dirs)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    return 0


def _cmd_check(args) -> int:
    from hptransfer.tools.check import run_check

    return run_check(
        args.dir, args.suite, expectations=args.expectations, baseline=args.baseline,
        update_baseline=args.update_baseline, force=args.force,
    )  # fmt: skip


def _cmd_mutate(args) -> int:
    from hptransfer.tools.mutation import UNMUTATED, format_kill_table, mutation_test

    table = mutation_test(
        _input_file(args.config, "config file"), _input_file(args.mutants, "argument --mutants"),
        args.out, args.suite, expectations=args.expectations, baseline=args.baseline,
        progress=not args.quiet,
    )  # fmt: skip
    print(format_kill_table(table))
    clean = table[table["mutant"] == UNMUTATED]
    mutants = table[table["mutant"] != UNMUTATED]
    survived = mutants[~mutants["failed"]]
    ok = not clean["failed"].any() and survived.empty
    print(
        f"\nmutation test: the unmutated gate {'passes' if not clean['failed'].any() else 'FAILS'}; "
        f"{len(mutants) - len(survived)} of {len(mutants)} mutants caught"
        + (f"; survived: {', '.join(survived['mutant'])}" if len(survived) else "")
    )
    return 0 if ok else 1


def _cmd_coordcheck(args) -> int:
    from hptransfer.network.data import load_dataset
    from hptransfer.network.schemes import get_scheme
    from hptransfer.tools import coord_defaults as cd
    from hptransfer.tools import coordcheck as cc
    from hptransfer.tools.ladder import ladder

    registry = _user_schemes(args.scheme_file)
    scheme = get_scheme(args.scheme, registry)
    start = get_scheme(args.ladder_from, registry) if args.ladder else None
    if args.tolerance <= 0:
        raise cc.CoordCheckError(f"--tolerance = {args.tolerance:g}; allowed: a number > 0")
    if args.seeds < 1:
        raise cc.CoordCheckError(f"--seeds = {args.seeds}; allowed: an integer >= 1")
    log2_lr = args.log2_lr if args.log2_lr is not None else cd.DEFAULT_LOG2_LR[args.optimizer]
    lm = args.family == "transformer"
    if lm and args.ladder:
        raise cc.CoordCheckError("--ladder with --family transformer; allowed: --family mlp")
    values = args.widths if args.axis == "width" else args.depths
    defaults = cd.TRANSFORMER if lm else {"widths": cd.DEFAULT_WIDTHS, "depths": cd.DEFAULT_DEPTHS}
    batch = args.batch_size or (cd.TRANSFORMER["batch_size"] if lm else cd.DEFAULT_BATCH_SIZE)
    setting = cc.CoordSetting(
        axis=args.axis, values=tuple(values or defaults[f"{args.axis}s"]), width=args.width,
        depth=args.depth, block_depth=2 if lm else args.block_depth, base_width=args.base_width,
        base_depth=args.base_depth, optimizer=args.optimizer, lr=2.0**log2_lr, steps=args.steps,
        seeds=tuple(range(args.seeds)), batch_size=batch, family=args.family,
        head_dim=int(cd.TRANSFORMER["head_dim"]), mlp_ratio=int(cd.TRANSFORMER["mlp_ratio"]),
    )  # fmt: skip
    from hptransfer.sweeps.limits import check_dataset

    if lm:  # byte-level text: the default corpus, sequences of seq_len bytes
        data = load_dataset("text", seq_len=int(cd.TRANSFORMER["seq_len"]), eval_sequences=1)
    else:
        check_dataset("argument --batch-size", args.data, max(batch, 1000))
        data = load_dataset(args.data, num_samples=max(batch, 1000))
    held = f"depth {setting.depth}" if args.axis == "width" else f"width {setting.width}"
    where = (
        f"{args.family} {args.axis}s {list(setting.values)} at {held}, k={setting.block_depth}, "
        f"{args.optimizer} lr=2^{log2_lr:g}, {setting.steps} steps, {args.seeds} seeds"
    )
    rule = f"pass: |slope of log size vs log {args.axis}| <= {args.tolerance:g} at every step"
    if start is not None:
        table = cc.check_ladder(
            ladder(start, scheme, setting.block_depth, args.optimizer, bias=False), setting, data,
            args.tolerance,
        )  # fmt: skip
        print(f"ladder {start.name} -> {scheme.name}: {where}\n{rule}")
        shown = table.assign(passed=table["passed"].map({True: "pass", False: "FAIL"}))
        print(shown.to_string(index=False))
        flip = cc.first_flip(table)
        if flip is None:
            state = "passes" if table["passed"].iloc[0] else "fails"
            print(f"no rung changes the outcome: the check {state} from start to end")
        else:
            row = table[table["rung"] == flip].iloc[0]
            what = (
                "makes the check pass" if row["passed"] else f"breaks the check ({row['failing']})"
            )
            print(f"rung {flip} ({row['change']}) first {what}")
        return 0 if table["passed"].iloc[-1] else 1
    frame = cc.measure(scheme, setting, data)
    table = cc.verdict(frame, args.axis, args.tolerance)
    out = args.out or f"coordcheck_{scheme.name}_{args.axis}.png"
    cc.plot_coord_check(frame, args.axis, out, f"Coordinate check of {scheme.name}: {where}")
    own = cc.own_movement_slopes(frame, args.axis)
    table["own_slope"] = table["role"].map(own)
    print(f"coordinate check of {scheme.name} across {where}")
    print(f"{rule}\n(checked: RMS(a_t) and RMS(a_t - a_0); readout: RMS(a_t - a_0) only)")
    shown = table.assign(
        slope=table["slope"].map(lambda v: f"{v:+.2f}"),
        own_slope=table["own_slope"].map(lambda v: f"{v:+.2f}"),
        passed=table["passed"].map({True: "pass", False: "FAIL"}),
    )[["role", "stat", "step", "slope", "passed", "reason", "own_slope"]]
    print(shown.to_string(index=False))
    print(f"figure: {out}")
    note = cc.collapse_note(frame, args.axis)
    if note:
        print(f"note: {note}")
    failing = table.loc[~table["passed"], "role"].tolist()
    if failing:
        print(f"{scheme.name}: FAILED across {args.axis}: {', '.join(failing)}")
        return 1
    print(f"{scheme.name}: every role flat across {args.axis}")
    return 0


def _add_shape_args(
    p: argparse.ArgumentParser, *, depth: int, block_depth: int, held: bool = False
) -> None:
    """--width, --depth, --block-depth, --base-width, --base-depth (``held``: the width and
    depth are the ones held fixed while the coordinate check varies the other)."""
    count = _number(int, lo=1)
    p.add_argument("--width", type=count, default=64,
                   help="width held for --axis depth" if held else "hidden width n")  # fmt: skip
    p.add_argument("--depth", type=count, default=depth,
                   help="depth held for --axis width" if held else "residual blocks L")  # fmt: skip
    p.add_argument("--block-depth", type=count, default=block_depth, help="layers per block k")
    p.add_argument("--base-width", type=count, default=64, help="base width n0 (m = n / n0)")
    p.add_argument("--base-depth", type=count, default=2, help="base depth L0 (r = L / L0)")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: the program's options, then one ``_add_<command>`` per command."""
    parser = _Parser(
        prog="hptransfer",
        description=DESCRIPTION,
        epilog="Put --debug before the command to see the traceback of an error.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {importlib.metadata.version('hptransfer')}",
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_schemes, _add_run, _add_sweep, _add_report, _add_compare, _add_check,
                _add_mutate, _add_coordcheck):  # fmt: skip
        add(sub)
    return parser


SCHEME_FILE_HELP = (
    "extra schemes: a .toml file or package.module:attribute, which is imported (repeatable)"
)


def _add_schemes(sub) -> None:
    """``hptransfer schemes``: the scheme tables."""
    p = sub.add_parser("schemes", help="list built-in and user schemes with their tables")
    p.add_argument("--scheme-file", action="append", default=[], metavar="FILE",
                   type=_scheme_source, help=SCHEME_FILE_HELP)  # fmt: skip
    p.set_defaults(func=_cmd_schemes)


def _add_run(sub) -> None:
    """``hptransfer run``: one training run per scheme."""
    from hptransfer.network.optim import OPTIMIZERS
    from hptransfer.network.schemes import BUILTIN_SCHEMES

    p = sub.add_parser("run", help="one training run per scheme on MNIST-1D (a quick look)")
    p.add_argument("--schemes", nargs="+", default=list(BUILTIN_SCHEMES),
                   metavar="NAME", help="schemes to train, one run each")  # fmt: skip
    p.add_argument("--scheme-file", action="append", default=[], metavar="FILE",
                   type=_scheme_source, help=SCHEME_FILE_HELP)  # fmt: skip
    _add_shape_args(p, depth=8, block_depth=2)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd", help="optimizer")
    p.add_argument("--momentum", type=_number(float, lo=0, hi=1), default=0.0,
                   help="SGD momentum")  # fmt: skip
    p.add_argument("--log2-lr", type=_number(float), default=-2.0,
                   help="log2 of the base learning rate eta")  # fmt: skip
    p.add_argument("--steps", type=_number(int, lo=1), default=500, help="optimizer steps")
    p.add_argument("--batch-size", type=_number(int, lo=1), default=128, help="minibatch size")
    p.add_argument("--samples", type=_number(int, lo=10), default=20_000,
                   help="MNIST-1D examples (train + test)")  # fmt: skip
    p.add_argument("--seed", type=_number(int, lo=0), default=0, help="init and batch seed")
    p.set_defaults(func=_cmd_run)


def _add_sweep(sub) -> None:
    """``hptransfer sweep``: a sweep config's whole grid."""
    p = sub.add_parser("sweep", help="train a sweep config's whole grid (resumable)")
    p.add_argument("config", help="sweep TOML file, e.g. benchmarks/quick.toml")
    p.add_argument(
        "--out", required=True, metavar="DIR", help="results directory (created; required)"
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument("--resume", dest="fresh", action="store_false",
                       help="keep finished cells and the last checkpoint in --out (default)")  # fmt: skip
    group.add_argument("--fresh", dest="fresh", action="store_true",
                       help="discard earlier cells and checkpoints in --out (default: resume)")  # fmt: skip
    p.add_argument("--max-replicas-per-chunk", type=_number(int, lo=0), default=None, metavar="N",
                   help="replicas per compiled chunk, 0 = from memory "
                   "(default: the config's max_replicas_per_chunk)")  # fmt: skip
    p.add_argument("--scheme-file", action="append", default=[], metavar="FILE",
                   type=_scheme_source, help=SCHEME_FILE_HELP + "; a config's own scheme_files "
                   "take .toml files only")  # fmt: skip
    p.add_argument("--distributed", action="store_true", help="call jax.distributed.initialize()")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_sweep, fresh=False)


def _add_report(sub) -> None:
    """``hptransfer report``."""
    p = sub.add_parser("report", help="write DIR/report.md and report.html")
    p.add_argument("dir", help="a directory written by `hptransfer sweep`")
    p.set_defaults(func=_cmd_report)


def _add_compare(sub) -> None:
    """``hptransfer compare``."""
    p = sub.add_parser("compare", help="scorecards of several runs side by side")
    p.add_argument("dirs", nargs="+", help="directories written by `hptransfer sweep`")
    p.add_argument(
        "--markdown", metavar="FILE", help="also write the table to this file (default: print only)"
    )
    p.set_defaults(func=_cmd_compare)


def _add_check(sub) -> None:
    """``hptransfer check``: expectations and baseline."""
    p = sub.add_parser("check", help="check a run against the suite's expectations and baseline")
    p.add_argument("dir", help="a directory written by `hptransfer sweep`")
    p.add_argument(
        "--suite",
        default=None,
        help="suite (table) of the expectations file (default: the file's only table, "
        "else the one named like the run's config)",
    )
    p.add_argument(
        "--expectations",
        default=None,
        help="your own expectations TOML (default: the built-in suites)",
    )
    p.add_argument(
        "--baseline",
        default=None,
        help="baseline JSON (default: the built-in suite's; none with --expectations)",
    )
    p.add_argument(
        "--update-baseline",
        action="store_true",
        help="write the baseline from this run (default: off; refused when the config "
        "is not the suite's or an expectation fails)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="check or write the baseline despite those refusals (default: off)",
    )
    p.set_defaults(func=_cmd_check)


def _add_mutate(sub) -> None:
    """``hptransfer mutate``: the mutation test of a gate."""
    p = sub.add_parser(
        "mutate",
        help="mutation test of a gate: the check must fail on every mutant of the schemes",
    )
    p.add_argument("config", help="the gate's sweep config (TOML)")
    p.add_argument(
        "--mutants", required=True, help="mutants TOML (benchmarks/mutants.toml for the built-ins)"
    )
    p.add_argument("--out", required=True, help="directory for the gate's and the mutants' sweeps")
    p.add_argument("--suite", default=None, help="suite of the expectations (as for check)")
    p.add_argument("--expectations", default=None, help="your own expectations TOML")
    p.add_argument("--baseline", default=None, help="baseline JSON (as for check)")
    p.add_argument("--quiet", action="store_true", help="no progress bars (default: shown)")
    p.set_defaults(func=_cmd_mutate)


def _spaced(values) -> str:
    return " ".join(str(v) for v in values)


def _add_coordcheck(sub) -> None:
    """The ``coordcheck`` command: its defaults are :mod:`hptransfer.tools.coord_defaults`."""
    from hptransfer.tools import coord_defaults as cd

    p = sub.add_parser(
        "coordcheck",
        help="coordinate check of a scheme across width or depth (exit 1 naming failing roles)",
        description="Train a few steps on one fixed batch at every width (or depth) and check, "
        "per layer role, that the per-coordinate sizes RMS(a_t) and RMS(a_t - a_0) are flat: "
        "a role passes when the least-squares slope of log size against log width (depth) is "
        "within +-TOLERANCE at every step (the readout is judged by its change only: under muP "
        "its initial size shrinks like 1/sqrt(m) by design). Writes a figure in microsoft/mup's "
        "coord-check layout. Exit 0: every role flat; 1: the failing roles are named.",
    )
    p.add_argument("--scheme", default="mup", help="scheme to check (default: mup)")
    p.add_argument(
        "--scheme-file",
        action="append",
        default=[],
        type=_scheme_source,
        help="user schemes, .toml or module:attr (imported; repeatable; default: none)",
    )
    p.add_argument("--axis", choices=cd.AXES, default="width", help="axis to vary (default: width)")
    p.add_argument(
        "--widths",
        type=_number(int, lo=1),
        nargs="+",
        help=f"widths for --axis width (default: {_spaced(cd.DEFAULT_WIDTHS)})",
    )
    p.add_argument(
        "--depths",
        type=_number(int, lo=1),
        nargs="+",
        help=f"depths for --axis depth (default: {_spaced(cd.DEFAULT_DEPTHS)})",
    )
    _add_shape_args(p, depth=2, block_depth=1, held=True)
    p.add_argument(
        "--optimizer", choices=cd.OPTIMIZER_FAMILIES, default="sgd", help="optimizer (default: sgd)"
    )
    p.add_argument(
        "--log2-lr",
        type=_number(float),
        default=None,
        help="log2 of the base learning rate (default: "
        + ", ".join(f"{v:g} for {k}" for k, v in cd.DEFAULT_LOG2_LR.items())
        + ")",
    )
    p.add_argument(
        "--steps",
        type=_number(int, lo=1),
        default=cd.DEFAULT_STEPS,
        help=f"steps on the fixed batch (default: {cd.DEFAULT_STEPS})",
    )
    p.add_argument(
        "--seeds",
        type=_number(int, lo=1),
        default=cd.DEFAULT_SEEDS,
        help=f"number of seeds (default: {cd.DEFAULT_SEEDS})",
    )
    p.add_argument(
        "--batch-size",
        type=_number(int, lo=1),
        default=None,
        help=f"fixed batch size (default: {cd.DEFAULT_BATCH_SIZE}; transformer: "
        f"{cd.TRANSFORMER['batch_size']} sequences)",
    )
    p.add_argument(
        "--family",
        choices=cd.FAMILIES,
        default="mlp",
        help="model family (default: mlp); transformer: a pre-LN decoder on byte-level text "
        "(the Python standard library's sources; sequences of {seq_len}, heads of dimension "
        "{head_dim}, MLP ratio {mlp_ratio}; default widths {widths}, depths {depths})".format(
            **{k: _spaced(v) if isinstance(v, tuple) else v for k, v in cd.TRANSFORMER.items()}
        ),
    )
    p.add_argument(
        "--data",
        choices=cd.DATASETS,
        default="mnist1d",
        help="dataset the batch comes from (default: mnist1d)",
    )
    p.add_argument(
        "--tolerance",
        type=_number(float, lo=0),
        default=cd.DEFAULT_TOLERANCE,
        help=f"largest allowed |log-log slope| (default: {cd.DEFAULT_TOLERANCE:g})",
    )
    p.add_argument("--out", help="figure path (default: coordcheck_SCHEME_AXIS.png)")
    p.add_argument(
        "--ladder",
        action="store_true",
        help="check every rung from --ladder-from to --scheme, one rule at a time (default: off)",
    )
    p.add_argument("--ladder-from", default="sp", help="start scheme of the ladder (default: sp)")
    p.set_defaults(func=_cmd_coordcheck)


# --------------------------------------------------------------------------------------------
# Errors and Ctrl-C


def is_user_error(err: BaseException) -> bool:
    """A ValueError subclass of this package (ConfigError, SchemeError, ResultsError, ...) or an
    OSError about a named file. Anything else is a bug and keeps its traceback."""
    if isinstance(err, OSError):
        return err.filename is not None
    return isinstance(err, ValueError) and any(
        issubclass(cls, ValueError) and cls.__module__.split(".")[0] == "hptransfer"
        for cls in type(err).__mro__
    )


def error_line(err: BaseException) -> str:
    """The one line printed for a user error."""
    if isinstance(err, OSError) and err.strerror:
        text = f"{str(err.filename)!r}: {err.strerror}"
    else:
        text = str(err)
    return "hptransfer: error: " + " ".join(text.split())


TERM_GRACE_SECONDS = 20.0
"""How long a sweep may take after SIGTERM to reach its next check between segments (and save
there) before it ends anyway, keeping its last checkpoint. Schedulers wait 30 s (SLURM's
KillWait, Kubernetes' terminationGracePeriodSeconds) before SIGKILL."""


def resume_command(argv: list[str]) -> str:
    """The command that carries on a sweep: the same arguments without ``--fresh``."""
    return shlex.join(["hptransfer", *(a for a in argv if a != "--fresh")])


def kept_line(args: argparse.Namespace, argv: list[str]) -> str:
    """The end of a sweep's stop message: what is kept and the exact command that resumes."""
    return (
        f"; finished cells and the last checkpoint in {args.out} are kept; resume with: "
        f"{resume_command(argv)}"
    )


def interrupted_line(args: argparse.Namespace | None, argv: list[str]) -> str:
    """What Ctrl-C or SIGTERM prints: what is kept and the exact command that carries on."""
    signum = interrupt.signal_number()
    if signum == signal.SIGINT:
        what = "interrupted"
    else:
        name, by = signal.Signals(signum).name, interrupt.signalled_process()
        what = f"terminated ({name}{'' if by is None else f' to process {by}'})"
    if args is not None and args.command == "sweep":
        return f"hptransfer: {what}{kept_line(args, argv)}"
    return f"hptransfer: {what}; rerun with: {shlex.join(['hptransfer', *argv])}"


def _term_deadline(args: argparse.Namespace, argv: list[str]) -> None:
    """SIGTERM's watchdog (:func:`interrupt.defer_terminate`): the sweep reached no check within
    the grace period; say what is kept and end the process at once."""
    print(
        f"hptransfer: terminated (SIGTERM; no segment ended within {TERM_GRACE_SECONDS:g} s)"
        f"{kept_line(args, argv)}",
        file=sys.stderr,
        flush=True,
    )
    sys.stdout.flush()
    os._exit(128 + signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    """Run one command; 0 on success, 2 on a user error, 130 on Ctrl-C, 143 on SIGTERM."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = None
    interrupt.install()
    try:
        configure_host_devices()
        args = build_parser().parse_args(argv)
        args.argv = argv
        if args.command == "sweep":  # SIGTERM: save at the next check between segments
            interrupt.defer_terminate(TERM_GRACE_SECONDS, lambda: _term_deadline(args, argv))
        status = args.func(args)
        interrupt.check()  # a signal swallowed inside a callback still ends the run as one
        return status
    except KeyboardInterrupt:
        print(interrupted_line(args, argv), file=sys.stderr)
        return interrupt.exit_code()
    except Exception as err:
        if not is_user_error(err):
            raise
        if args.debug if args is not None else "--debug" in argv:
            traceback.print_exc()
        from hptransfer.stats.results import WriteError

        line = error_line(err)
        if args is not None and args.command == "sweep" and isinstance(err, WriteError):
            line += (
                f"; the last complete results and checkpoint are kept; {err.remedy}: "
                f"{resume_command(argv)}"
            )
        print(line, file=sys.stderr)
        return 2
    finally:
        interrupt.cancel_deadline()


def entry() -> None:
    """The ``hptransfer`` program: :func:`main`, then exit with its status. After Ctrl-C or
    SIGTERM the process ends at once (``os._exit``) once its message is printed: finished cells
    and checkpoints are already on disk, and tearing the interpreter down while XLA still has
    compilations or transfers in flight can crash it (SIGSEGV) and replace exit code 130."""
    argv = sys.argv[1:]
    if supervise.wanted(
        argv
    ):  # a multi-host sweep outlives JAX's abort (hptransfer.sweeps.supervise)
        sys.exit(supervise.run(argv))
    if supervise.is_supervised_child():
        supervise.die_with_parent()
    status = main(argv)
    if status in (128 + signal.SIGINT, 128 + signal.SIGTERM):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


if __name__ == "__main__":
    # `python -m hptransfer.cli` runs this file as __main__: call the imported module's entry so
    # that its error classes are hptransfer.cli's (is_user_error tells them by module).
    import importlib

    importlib.import_module("hptransfer.cli").entry()
