"""The command line: ``hptransfer {run, sweep, schemes, report, compare, check}``.

On CPU, XLA runs these small matrix products on one thread per program; splitting the host
into one device per core and sharding the replica axis over them is what uses every core
(DESIGN.md section 7). So, before jax is imported, the host platform is split into
``os.cpu_count()`` devices unless XLA_FLAGS already says otherwise or HPTRANSFER_HOST_DEVICES
sets the count.
"""

from __future__ import annotations

import argparse
import os
import sys


def configure_host_devices() -> None:
    """Split the host into one XLA device per core (call before importing jax)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" in flags:
        return
    count = int(os.environ.get("HPTRANSFER_HOST_DEVICES", os.cpu_count() or 1))
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()


def _cmd_schemes(args) -> int:
    from hptransfer.schemes import BUILTIN_SCHEMES, QUANTITIES, load_schemes

    registry = load_schemes(args.scheme_file)
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
    from hptransfer.data import load_dataset
    from hptransfer.model import Architecture
    from hptransfer.optim import OptimizerConfig
    from hptransfer.schemes import load_schemes
    from hptransfer.train import train_run

    registry = load_schemes(args.scheme_file)
    data = load_dataset("mnist1d", num_samples=args.samples)
    arch = Architecture(
        args.width, args.depth, args.block_depth, data.in_shape, data.num_classes,
        base_width=args.base_width, base_depth=args.base_depth,
    )  # fmt: skip
    opt = OptimizerConfig(args.optimizer, momentum=args.momentum)
    for name in args.schemes:
        result = train_run(
            registry[name] if name in registry else name, arch, opt, 2.0**args.log2_lr,
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
    from hptransfer.config import load_config
    from hptransfer.engine import run_sweep
    from hptransfer.results import read_meta

    config = load_config(args.config)
    if args.max_replicas_per_chunk is not None:
        import dataclasses

        config = dataclasses.replace(config, max_replicas_per_chunk=args.max_replicas_per_chunk)
    if args.distributed:
        from hptransfer.engine import initialize_distributed

        initialize_distributed()
    run_sweep(config, args.out, fresh=args.fresh, progress=not args.quiet)
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
    from hptransfer.report import write_report

    path = write_report(args.dir)
    print(f"wrote {path}")
    return 0


def _cmd_compare(args) -> int:
    from hptransfer.report import compare_markdown

    text = compare_markdown(args.dirs)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    return 0


def _cmd_check(args) -> int:
    from hptransfer.check import run_check

    return run_check(args.dir, args.suite, update_baseline=args.update_baseline)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hptransfer", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("schemes", help="list built-in and user schemes with their tables")
    p.add_argument("--scheme-file", action="append", default=[], help=".toml or module:attr")
    p.set_defaults(func=_cmd_schemes)

    p = sub.add_parser("run", help="one training run per scheme on MNIST-1D")
    p.add_argument("--schemes", nargs="+", default=["sp", "mup", "depth_mup", "nfd", "completep"])
    p.add_argument("--scheme-file", action="append", default=[])
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--depth", type=int, default=8)
    p.add_argument("--block-depth", type=int, default=2)
    p.add_argument("--base-width", type=int, default=64)
    p.add_argument("--base-depth", type=int, default=2)
    p.add_argument("--optimizer", default="sgd")
    p.add_argument("--momentum", type=float, default=0.0)
    p.add_argument("--log2-lr", type=float, default=-2.0)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--samples", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("sweep", help="train a sweep config's whole grid (resumable)")
    p.add_argument("config")
    p.add_argument("--out", required=True)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--resume", dest="fresh", action="store_false", help="(default)")
    group.add_argument("--fresh", dest="fresh", action="store_true", help="discard earlier work")
    p.add_argument("--max-replicas-per-chunk", type=int, default=None)
    p.add_argument("--distributed", action="store_true", help="call jax.distributed.initialize()")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_sweep, fresh=False)

    p = sub.add_parser("report", help="write DIR/report.md and report.html")
    p.add_argument("dir")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("compare", help="scorecards of several runs side by side")
    p.add_argument("dirs", nargs="+")
    p.add_argument("--markdown", help="also write the table to this file")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("check", help="check a run against the suite's expectations and baseline")
    p.add_argument("dir")
    p.add_argument("--suite", default="ci")
    p.add_argument("--update-baseline", action="store_true")
    p.set_defaults(func=_cmd_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    configure_host_devices()
    args = build_parser().parse_args(argv)
    from hptransfer.check import CheckError
    from hptransfer.config import ConfigError
    from hptransfer.data import DataError
    from hptransfer.engine import DistributedError
    from hptransfer.model import ArchitectureError
    from hptransfer.rundir import RunDirError
    from hptransfer.schemes import SchemeError

    errors = (ConfigError, SchemeError, DataError, ArchitectureError, CheckError, FileNotFoundError)
    errors += (RunDirError, DistributedError)
    try:
        return args.func(args)
    except errors as err:
        print(f"hptransfer: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
