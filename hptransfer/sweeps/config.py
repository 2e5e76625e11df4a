"""Sweep configuration: a TOML file, validated completely before any compute starts.

Every error names the file, the field, the bad value and what is allowed; unknown fields are
errors. A config must name its suite (``name``) or state its cells (``schemes``, ``[model]``
widths/depths/path/block_depths): an empty file is refused, never run as the default grid.
Scheme files named by a config are .toml only (data); Python schemes come from the command
line's ``--scheme-file`` or the Python API. Layout (see benchmarks/*.toml)::

    name = "quick"                # used in reports
    steps = 1000                  # optimizer steps per replica (a multiple of eval_every)
    eval_every = 100              # steps per lax.scan segment; evaluation + checkpoint between
    batch_size = 128
    seeds = [0, 1]
    schemes = ["sp", "mup", "depth_mup", "nfd"]
    scheme_files = []             # extra schemes: .toml paths only (code: --scheme-file)
    divergence_factor = 10.0      # a loss above factor x its initial loss counts as diverged
    probe_size = 256              # probe batch for feature movement
    max_replicas_per_chunk = 0    # 0 = from the memory estimate
    max_replicas = 4096           # refuse a cell with more replicas (schemes x lrs x seeds)
    precision = "f32"             # "f32" | "tf32" (matmuls) | "bf16_state" (optimizer state)
    [data]      name = "mnist1d", num_samples = 20000, seed = 42   (cifar10: path, md5)
    [model]     family, widths, depths, block_depths, base_width, base_depth, bias
    [optimizer] name = "sgd" | "adam" | "adamw", momentum, nesterov, b1, b2, eps, weight_decay
    [schedule]  kind = "constant" | "warmup" | "cosine" | "linear" | "wsd", warmup_fraction,
                decay_fraction (wsd), final_fraction   (hptransfer.network.schedules; default constant)
    [lr]        start, stop, step           (log2 of the learning rate; stop inclusive;
                                             at most MAX_LR_POINTS = 256 points per grid)
    [lr.by_scheme.NAME]  start, stop, step  (optional per-scheme grid)
    [lr]        adaptive = false            (true: extend a cell's grid past an edge optimum
                max_extra_octaves = 2.0      by up to this many octaves beyond start/stop;
                refine = false               true: then add half-steps around the optimum)
    [lr]        default                     (log2 lr of groups that do not sweep lr; also
                                             per scheme under [lr.by_scheme.NAME])
    [elimination] enabled = false, margin = 0.05, window = 3, min_fraction = 0.25
                                            (stop rates that cannot change the report:
                                             hptransfer.sweeps.elimination)
    [model]     path = [[32, 2], [64, 4]]   (instead of widths x depths: these (n, L) shapes)
    [axes.NAME] start, stop, step | values, default   (network.hyperparameters.SPECS:
                                             init_scale, output_multiplier, momentum, ...)
    [axes]      groups = [["lr", "init_scale"], ["output_multiplier"]]
                                            (crossed within a group, union over groups;
                                             default: each axis crossed with lr)
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from hptransfer.network.architecture import (
    FAMILIES,
    HEAD_LAYOUTS,
    Architecture,
    ArchitectureError,
)
from hptransfer.network.data import DATASET_SHAPES, DATASETS
from hptransfer.network.hyperparameters import SPECS, Axis
from hptransfer.network.optim import OPTIMIZERS, OptimizerConfig
from hptransfer.network.schedules import FIELDS as SCHEDULE_FIELDS
from hptransfer.network.schedules import KINDS as SCHEDULE_KINDS
from hptransfer.network.schedules import TRACED as SCHEDULE_AXES
from hptransfer.network.schedules import ScheduleConfig, ScheduleError, check_schedule
from hptransfer.network.schemes import SchemeError, load_schemes
from hptransfer.stats.rules import TRANSFER_REGRET
from hptransfer.sweeps import axes as axes_mod
from hptransfer.sweeps.elimination import EliminationConfig

MAX_LR_POINTS = 256  # learning rates per grid: far above any useful sweep, far below a typo's

PRECISIONS = ("f32", "tf32", "bf16_state")
"""f32: float32 everywhere (exact); tf32: matmuls at TensorFloat-32 (GPUs; CPUs ignore it);
bf16_state: optimizer state (momentum, Adam moments) stored in bfloat16 between steps."""


SCHEME_FILES_ALLOWED = (
    "a path to a .toml scheme file (relative to this config); a config file is data and never "
    "names code: Python schemes ('module:attribute') are accepted only from the command line "
    "(--scheme-file) or the Python API (hptransfer.network.schemes.load_schemes)"
)


TRANSFORMER_FIELDS = ("head_layout", "head_dim", "heads", "mlp_ratio")
"""[model] fields only the transformer family reads."""
TEXT_FIELDS = ("seq_len", "eval_sequences")
"""[data] fields only the text dataset reads."""


class ConfigError(ValueError):
    """The sweep configuration is invalid (the message names file, field, value and allowed)."""


@dataclasses.dataclass(frozen=True)
class LrGrid:
    """log2 learning rates start, start + step, ..., up to stop inclusive."""

    start: float
    stop: float
    step: float

    def count(self) -> int:
        """Number of points: floor((stop - start) / step) + 1 (computed, not enumerated)."""
        return int(np.floor((self.stop - self.start) / self.step + 1e-9)) + 1

    def log2_values(self) -> tuple[float, ...]:
        return tuple(float(round(self.start + i * self.step, 6)) for i in range(self.count()))


@dataclasses.dataclass(frozen=True)
class DataConfig:
    name: str = "mnist1d"
    num_samples: int = 20_000
    seed: int = 42
    path: str | None = None
    md5: str | None = None
    seq_len: int = 64  # text: tokens (bytes) per sequence
    eval_sequences: int = 256  # text: validation sequences evaluated

    def example_shape(self) -> tuple[int, ...]:
        """One example's input shape, known before the data is loaded."""
        return (self.seq_len,) if self.name == "text" else DATASET_SHAPES[self.name]

    def load_kwargs(self) -> dict[str, Any]:
        if self.name in ("mnist1d", "teacher", "teacher_images"):
            return {"num_samples": self.num_samples, "seed": self.seed}
        if self.name == "text":
            return {"path": self.path, "seq_len": self.seq_len,
                    "eval_sequences": self.eval_sequences}  # fmt: skip
        kwargs: dict[str, Any] = {"path": self.path}
        if self.md5 is not None:
            kwargs["md5"] = self.md5 or None
        return kwargs


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    family: str = "mlp"
    widths: tuple[int, ...] = (64,)
    depths: tuple[int, ...] = (2, 4, 8, 16, 32)
    block_depths: tuple[int, ...] = (1,)
    base_width: int = 64
    base_depth: int = 2
    bias: bool = False
    path: tuple[tuple[int, int], ...] | None = None  # (width, depth) shapes instead of the product
    # The transformer's head layout and MLP ratio (hptransfer.network.architecture).
    head_layout: str = "fixed_head_dim"
    head_dim: int = 16
    heads: int = 4
    mlp_ratio: int = 4

    def architecture(
        self, width: int, depth: int, block_depth: int, in_shape: tuple[int, ...],
        num_classes: int,
    ) -> Architecture:  # fmt: skip
        """The network of one cell: this model at (width, depth, block depth) on inputs of
        ``in_shape`` with ``num_classes`` outputs (raises ArchitectureError when it cannot be
        built, e.g. a width that does not split into heads)."""
        return Architecture(
            width, depth, block_depth, in_shape, num_classes, family=self.family,
            base_width=self.base_width, base_depth=self.base_depth, bias=self.bias,
            **{key: getattr(self, key) for key in TRANSFORMER_FIELDS},
        )  # fmt: skip

    def shapes(self) -> list[tuple[int, int]]:
        """(width, depth) of every cell of one block depth: the path, or widths x depths."""
        if self.path is not None:
            return list(self.path)
        return [(n, L) for n in self.widths for L in self.depths]


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    name: str = "sweep"
    steps: int = 1000
    eval_every: int = 100
    batch_size: int = 128
    seeds: tuple[int, ...] = (0,)
    schemes: tuple[str, ...] = ("sp", "mup", "depth_mup", "nfd")
    scheme_files: tuple[str, ...] = ()
    divergence_factor: float = 10.0
    probe_size: int = 256
    max_replicas_per_chunk: int = 0
    max_replicas: int = 4096
    precision: str = "f32"
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    lr: LrGrid = LrGrid(-6.0, 0.0, 0.5)
    lr_by_scheme: tuple[tuple[str, LrGrid], ...] = ()
    lr_adaptive: bool = False
    lr_max_extra_octaves: float = 2.0
    lr_refine: bool = False
    lr_default: float | None = None
    lr_default_by_scheme: tuple[tuple[str, float], ...] = ()
    axes: tuple[Axis, ...] = ()
    axis_groups: tuple[tuple[str, ...], ...] = ()  # () = hptransfer.sweeps.axes.default_groups
    elimination: EliminationConfig = (
        EliminationConfig()
    )  # [elimination] (hptransfer.sweeps.elimination)

    def lr_grid(self, scheme: str) -> tuple[float, ...]:
        """log2 learning rates swept for ``scheme``."""
        return dict(self.lr_by_scheme).get(scheme, self.lr).log2_values()

    def lr_default_of(self, scheme: str) -> float | None:
        """log2 learning rate of ``scheme`` in groups that do not sweep lr."""
        return dict(self.lr_default_by_scheme).get(scheme, self.lr_default)

    def groups(self) -> tuple[tuple[str, ...], ...]:
        return self.axis_groups or axes_mod.default_groups(self.axes)

    def points(self, scheme: str) -> list[tuple[float, axes_mod.Point]]:
        """(log2 lr, traced point) of every replica of ``scheme`` at one seed."""
        if not self.axes:
            return [(lr, ()) for lr in self.lr_grid(scheme)]
        return axes_mod.points(
            self.axes, self.groups(), self.lr_grid(scheme), self.lr_default_of(scheme)
        )

    def shape_points(self) -> list[axes_mod.ShapePoint]:
        """(batch_size, steps) of each set of cells (shape axes; the defaults first)."""
        return axes_mod.shape_points(
            self.axes, self.batch_size, self.steps, self.optimizer.schedule.kind
        )

    def replicas_per_cell(self) -> int:
        """sum over schemes of (lr grid points) x len(seeds), computed without enumerating
        (with axes: the points of every scheme's groups x len(seeds))."""
        if self.axes:
            return sum(len(self.points(s)) for s in self.schemes) * len(self.seeds)
        grids = dict(self.lr_by_scheme)
        return sum(grids.get(s, self.lr).count() for s in self.schemes) * len(self.seeds)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (meta.json). Fields added for axes and paths appear only when set, so a
        config without them has the same dict (and identity hash) as before they existed."""
        out = dataclasses.asdict(self)
        out["lr_by_scheme"] = {k: dataclasses.asdict(v) for k, v in self.lr_by_scheme}
        for key in ("lr_default", "lr_default_by_scheme", "axes", "axis_groups"):
            del out[key]
        if self.model.family != "transformer":  # the dict of a ResNet config before them
            for key in TRANSFORMER_FIELDS:
                del out["model"][key]
        if self.data.name != "text":
            for key in TEXT_FIELDS:
                del out["data"][key]
        if self.model.path is None:
            del out["model"]["path"]
        else:
            out["model"]["path"] = [list(p) for p in self.model.path]
        if self.lr_default is not None:
            out["lr_default"] = self.lr_default
        if self.lr_default_by_scheme:
            out["lr_default_by_scheme"] = dict(self.lr_default_by_scheme)
        if self.axes:
            out["axes"] = {a.name: a.to_dict() for a in self.axes}
            out["axis_groups"] = [list(g) for g in self.groups()]
        if not self.elimination.enabled:  # off: the dict (and hash) of a config before it
            del out["elimination"]
        schedule = out["optimizer"].pop("schedule")
        if not self.optimizer.schedule.constant:
            out["schedule"] = {"kind": schedule["kind"], **self.optimizer.schedule.values()}
        return out


# --------------------------------------------------------------------------------------------
# Validation helpers


def _fail(source: str, field: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"{source}: field '{field}' = {value!r} is not allowed; allowed: {allowed}")


def _check_keys(source: str, prefix: str, table: dict, allowed: tuple[str, ...]) -> None:
    for key in table:
        if key not in allowed:
            where = f"{prefix}.{key}" if prefix else key
            raise ConfigError(
                f"{source}: unknown field '{where}'; allowed in "
                f"{'[' + prefix + ']' if prefix else 'the top level'}: {list(allowed)}"
            )


def _int(source, field, value, lo=1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < lo:
        raise _fail(source, field, value, f"an integer >= {lo}")
    return value


def _float(source, field, value, lo=None, hi=None, lo_open=False) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not np.isfinite(value):
        raise _fail(source, field, value, "a finite number")
    bad = (lo is not None and (value <= lo if lo_open else value < lo)) or (
        hi is not None and value >= hi
    )
    if bad:
        lo_s = f"{'>' if lo_open else '>='} {lo}" if lo is not None else ""
        hi_s = f"< {hi}" if hi is not None else ""
        raise _fail(source, field, value, "a number " + " and ".join(s for s in (lo_s, hi_s) if s))
    return float(value)


def _int_list(source, field, value, lo=1) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise _fail(source, field, value, f"a non-empty list of integers >= {lo}")
    items = tuple(_int(source, f"{field}[{i}]", v, lo) for i, v in enumerate(value))
    if len(set(items)) != len(items):
        raise _fail(source, field, value, "a list without repeats")
    return items


def _lr_grid(source: str, field: str, table: Any) -> LrGrid:
    if not isinstance(table, dict):
        raise _fail(source, field, table, "a table {start, stop, step} of log2 learning rates")
    _check_keys(source, field, table, ("start", "stop", "step"))
    for key in ("start", "stop", "step"):
        if key not in table:
            raise ConfigError(f"{source}: field '{field}.{key}' is missing (log2 learning rate)")
    start = _float(source, f"{field}.start", table["start"])
    stop = _float(source, f"{field}.stop", table["stop"])
    step = _float(source, f"{field}.step", table["step"], lo=0, lo_open=True)
    if stop < start:
        raise _fail(source, f"{field}.stop", stop, f"a number >= start ({start})")
    grid = LrGrid(start, stop, step)
    if grid.count() > MAX_LR_POINTS:
        raise _fail(
            source, f"{field}.step", step,
            f"a step giving at most {MAX_LR_POINTS} points from {start} to {stop} "
            f"(this one gives {grid.count()}): step >= {(stop - start) / (MAX_LR_POINTS - 1):.3g}",
        )  # fmt: skip
    return grid


def check_limits(config: SweepConfig, source: str = "<config>") -> None:
    """Refuse a grid whose cells hold more than ``config.max_replicas`` replicas, an lr grid
    of more than :data:`MAX_LR_POINTS` points, or a schedule that does not fit the run
    (:func:`check_schedules`), also for configs built in code, not from TOML."""
    check_schedules(config, source)
    grids = [("lr", config.lr), *((f"lr.by_scheme.{s}", g) for s, g in config.lr_by_scheme)]
    for field, grid in grids:
        if grid.step <= 0 or grid.count() > MAX_LR_POINTS:
            raise _fail(source, f"{field}.step", grid.step, f"at most {MAX_LR_POINTS} points")
    n = config.replicas_per_cell()
    if n > config.max_replicas:
        raise _fail(
            source, "max_replicas", config.max_replicas,
            f"at least the replicas per cell of this grid: {n} = sum over schemes of lr points "
            f"x {len(config.seeds)} seeds (raise max_replicas, or sweep fewer learning rates, "
            "seeds or schemes)",
        )  # fmt: skip


# Every SweepConfig field is a TOML key, except the lr_* fields, which live under [lr].
_TOP = tuple(
    f.name
    for f in dataclasses.fields(SweepConfig)
    if not f.name.startswith("lr_") and f.name != "axis_groups"
)


def config_from_dict(
    raw: dict[str, Any], source: str = "<config>", *, scheme_sources: tuple[str, ...] = ()
) -> SweepConfig:
    """Validate a parsed TOML table and build a :class:`SweepConfig`.

    ``raw`` is data: its ``scheme_files`` must be .toml paths. ``scheme_sources`` are scheme
    sources the caller asks for explicitly (the command line's ``--scheme-file``, or code),
    which may be ``module:attribute`` (imported, so code runs); they are appended to the
    config's ``scheme_files`` so that the engine loads them too.
    """
    _check_keys(source, "", raw, (*_TOP, "schedule"))
    top = _top_fields(source, raw, scheme_sources)
    data = _data_section(source, raw)
    config = dataclasses.replace(
        SweepConfig(), **top, data=data, model=_model_section(source, raw, data),
        optimizer=_optimizer_section(source, raw),
        **_lr_section(source, raw, top.get("schemes", SweepConfig().schemes)),
    )  # fmt: skip
    if "axes" in raw:
        config = _axes(source, raw["axes"], config)
    if "elimination" in raw:
        config = dataclasses.replace(config, elimination=_elimination(source, raw, config))
    check_stated(raw, source)
    check_limits(config, source)
    return config


def _top_fields(
    source: str, raw: dict[str, Any], scheme_sources: tuple[str, ...]
) -> dict[str, Any]:
    """The top-level fields (name, steps, seeds, schemes, scheme files, ...), checked; the
    scheme names against the registry the config's scheme files and ``scheme_sources`` make."""
    top: dict[str, Any] = {}
    if "name" in raw:
        if not isinstance(raw["name"], str) or not raw["name"]:
            raise _fail(source, "name", raw["name"], "a non-empty string")
        top["name"] = raw["name"]
    for key in ("steps", "eval_every", "batch_size", "probe_size"):
        if key in raw:
            top[key] = _int(source, key, raw[key])
    if "max_replicas" in raw:
        top["max_replicas"] = _int(source, "max_replicas", raw["max_replicas"])
    if "max_replicas_per_chunk" in raw:
        top["max_replicas_per_chunk"] = _int(
            source, "max_replicas_per_chunk", raw["max_replicas_per_chunk"], lo=0
        )
    if "divergence_factor" in raw:
        top["divergence_factor"] = _float(
            source, "divergence_factor", raw["divergence_factor"], lo=1
        )
    if "precision" in raw:
        if raw["precision"] not in PRECISIONS:
            raise _fail(source, "precision", raw["precision"], f"one of {list(PRECISIONS)}")
        top["precision"] = raw["precision"]
    if "seeds" in raw:
        top["seeds"] = _int_list(source, "seeds", raw["seeds"], lo=0)
    config_files: tuple[str, ...] = ()
    if "scheme_files" in raw:
        files = raw["scheme_files"]
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise _fail(source, "scheme_files", files, "a list of paths to .toml scheme files")
        for i, f in enumerate(files):
            if not f.endswith(".toml"):
                raise _fail(source, f"scheme_files[{i}]", f, SCHEME_FILES_ALLOWED)
        base = Path(source).parent if source != "<config>" else Path(".")
        config_files = tuple(f if Path(f).is_absolute() else str(base / f) for f in files)
    try:
        load_schemes(config_files)
    except SchemeError as err:
        raise ConfigError(f"{source}: field 'scheme_files': {err}") from None
    if config_files or scheme_sources:
        top["scheme_files"] = config_files + tuple(scheme_sources)
    try:
        registry = load_schemes(top.get("scheme_files", ()))
    except SchemeError as err:
        raise ConfigError(f"{source}: scheme sources given with the config: {err}") from None
    if "schemes" in raw:
        schemes = raw["schemes"]
        if (
            not isinstance(schemes, list)
            or not schemes
            or not all(isinstance(s, str) for s in schemes)
        ):
            raise _fail(
                source, "schemes", schemes, f"a non-empty list of names from {sorted(registry)}"
            )
        for i, s in enumerate(schemes):
            if s not in registry:
                raise _fail(source, f"schemes[{i}]", s, f"one of {sorted(registry)}")
        if len(set(schemes)) != len(schemes):
            raise _fail(source, "schemes", schemes, "a list without repeats")
        top["schemes"] = tuple(schemes)

    defaults = SweepConfig()
    steps = top.get("steps", defaults.steps)
    every = top.get("eval_every", defaults.eval_every)
    if steps % every:
        raise _fail(source, "eval_every", every, f"a divisor of steps ({steps})")
    return top


def _data_section(source: str, raw: dict[str, Any]) -> DataConfig:
    """``[data]``: the dataset's name, size, seed and (cifar10) archive."""
    data_raw = raw.get("data", {})
    if not isinstance(data_raw, dict):
        raise _fail(source, "data", data_raw, "a table")
    _check_keys(
        source, "data", data_raw, ("name", "num_samples", "seed", "path", "md5", *TEXT_FIELDS)
    )
    data_kw: dict[str, Any] = {}
    if "name" in data_raw:
        if data_raw["name"] not in DATASETS:
            raise _fail(source, "data.name", data_raw["name"], f"one of {list(DATASETS)}")
        data_kw["name"] = data_raw["name"]
    if "num_samples" in data_raw:
        data_kw["num_samples"] = _int(source, "data.num_samples", data_raw["num_samples"], lo=10)
    if "seed" in data_raw:
        data_kw["seed"] = _int(source, "data.seed", data_raw["seed"], lo=0)
    for key in ("path", "md5"):
        if key in data_raw:
            if not isinstance(data_raw[key], str):
                raise _fail(source, f"data.{key}", data_raw[key], "a string")
            data_kw[key] = data_raw[key]
    for key in TEXT_FIELDS:
        if key in data_raw:
            data_kw[key] = _int(
                source, f"data.{key}", data_raw[key], lo=2 if key == "seq_len" else 1
            )
    data = DataConfig(**data_kw)
    if data.name != "text" and any(key in data_raw for key in TEXT_FIELDS):
        key = next(key for key in TEXT_FIELDS if key in data_raw)
        raise _fail(source, f"data.{key}", data_raw[key], "only with name = 'text'")
    if data.name == "text" and data.path is not None and not Path(data.path).exists():
        raise _fail(
            source, "data.path", data.path,
            "an existing text file or folder (or no path: the Python standard library's sources)",
        )  # fmt: skip
    if data.name == "cifar10" and not data.path:
        raise ConfigError(
            f"{source}: field 'data.path' is missing; cifar10 needs the archive "
            "cifar-10-python.tar.gz or its extracted folder"
        )
    return data


def _model_section(source: str, raw: dict[str, Any], data: DataConfig) -> ModelConfig:
    """``[model]``: family, widths, depths, block depths, base shape, bias or a path; the family
    must fit the data (mlp for vectors, conv for images)."""
    model_raw = raw.get("model", {})
    if not isinstance(model_raw, dict):
        raise _fail(source, "model", model_raw, "a table")
    _check_keys(
        source, "model", model_raw,
        ("family", "widths", "depths", "block_depths", "base_width", "base_depth", "bias", "path",
         *TRANSFORMER_FIELDS),
    )  # fmt: skip
    model_kw: dict[str, Any] = {}
    if "path" in model_raw:
        model_kw |= _path(source, model_raw)
    if "family" in model_raw:
        if model_raw["family"] not in FAMILIES:
            raise _fail(source, "model.family", model_raw["family"], f"one of {list(FAMILIES)}")
        model_kw["family"] = model_raw["family"]
    for key in ("widths", "depths", "block_depths"):
        if key in model_raw:
            model_kw[key] = _int_list(source, f"model.{key}", model_raw[key])
    for key in ("base_width", "base_depth"):
        if key in model_raw:
            model_kw[key] = _int(source, f"model.{key}", model_raw[key])
    if "bias" in model_raw:
        if not isinstance(model_raw["bias"], bool):
            raise _fail(source, "model.bias", model_raw["bias"], "true or false")
        model_kw["bias"] = model_raw["bias"]
    model_kw |= _transformer_fields(source, model_raw, model_kw.get("family", "mlp"))
    model = ModelConfig(**model_kw)
    if model.family == "transformer":
        for width, depth in model.shapes():
            try:
                model.architecture(width, depth, 2, data.example_shape(), 256)
            except ArchitectureError as err:
                raise ConfigError(f"{source}: [model] {err}") from None
    if (model.family == "transformer") != (data.name == "text"):
        raise _fail(
            source, "model.family", model.family,
            "'transformer' with the text dataset and only with it (data.name = 'text')",
        )  # fmt: skip
    if model.family == "conv" and data.name in ("mnist1d", "teacher"):
        raise _fail(
            source, "model.family", "conv",
            f"'mlp' for the 1-D dataset {data.name!r} (conv needs images: cifar10, teacher_images)",
        )  # fmt: skip
    if model.family == "mlp" and data.name in ("cifar10", "teacher_images"):
        raise _fail(source, "model.family", "mlp", f"'conv' for the image dataset {data.name!r}")
    return model


def _transformer_fields(source: str, model_raw: dict[str, Any], family: str) -> dict[str, Any]:
    """The transformer's [model] fields: head layout, head dim or heads, MLP ratio; its block
    depth is 2 (the MLP branch). Each is refused for the ResNet families, and every width must
    split into heads before any compute (the architecture's own check, one line)."""
    given = [key for key in TRANSFORMER_FIELDS if key in model_raw]
    if family != "transformer":
        if given:
            raise _fail(
                source, f"model.{given[0]}", model_raw[given[0]], "only with family = 'transformer'"
            )
        return {}
    out: dict[str, Any] = {"block_depths": (2,)}
    if "block_depths" in model_raw and list(model_raw["block_depths"]) != [2]:
        raise _fail(
            source, "model.block_depths", model_raw["block_depths"],
            "[2] for the transformer (its MLP branch W_2 phi(W_1 .) is a two-layer block)",
        )  # fmt: skip
    if "head_layout" in model_raw:
        if model_raw["head_layout"] not in HEAD_LAYOUTS:
            raise _fail(
                source,
                "model.head_layout",
                model_raw["head_layout"],
                f"one of {list(HEAD_LAYOUTS)}",
            )
        out["head_layout"] = model_raw["head_layout"]
    for key in ("head_dim", "heads", "mlp_ratio"):
        if key in model_raw:
            out[key] = _int(source, f"model.{key}", model_raw[key])
    return out


def _optimizer_section(source: str, raw: dict[str, Any]) -> OptimizerConfig:
    """``[optimizer]`` and ``[schedule]``: the optimizer's name and settings, and the learning-rate
    schedule it carries."""
    opt_raw = raw.get("optimizer", {})
    if not isinstance(opt_raw, dict):
        raise _fail(source, "optimizer", opt_raw, "a table")
    opt_fields = tuple(f.name for f in dataclasses.fields(OptimizerConfig) if f.name != "schedule")
    _check_keys(source, "optimizer", opt_raw, opt_fields)
    if "name" in opt_raw and opt_raw["name"] not in OPTIMIZERS:
        raise _fail(source, "optimizer.name", opt_raw["name"], f"one of {list(OPTIMIZERS)}")
    for key, value in opt_raw.items():
        if key == "name":
            continue
        if key == "nesterov":
            if not isinstance(value, bool):
                raise _fail(source, "optimizer.nesterov", value, "true or false")
            continue
        _float(source, f"optimizer.{key}", value, lo=0)
    try:
        optimizer = OptimizerConfig(**opt_raw)
    except ValueError as err:
        raise ConfigError(f"{source}: [optimizer] {err}") from None
    if "schedule" in raw:
        optimizer = dataclasses.replace(optimizer, schedule=_schedule(source, raw["schedule"]))
    return optimizer


def _lr_section(source: str, raw: dict[str, Any], schemes: tuple[str, ...]) -> dict[str, Any]:
    """``[lr]``: the log2 grid, per-scheme grids and defaults, adaptive rounds; the
    :class:`SweepConfig` fields they set."""
    defaults = SweepConfig()
    lr_raw = raw.get("lr", {})
    if not isinstance(lr_raw, dict):
        raise _fail(source, "lr", lr_raw, "a table {start, stop, step, by_scheme}")
    extra = ("by_scheme", "adaptive", "max_extra_octaves", "refine", "default")
    if "default" in lr_raw:
        adapt_default = _float(source, "lr.default", lr_raw["default"])
    else:
        adapt_default = None
    _check_keys(source, "lr", lr_raw, ("start", "stop", "step", *extra))
    grid_raw = {k: v for k, v in lr_raw.items() if k not in extra}
    adapt: dict[str, Any] = {}
    for key in ("adaptive", "refine"):
        if key in lr_raw:
            if not isinstance(lr_raw[key], bool):
                raise _fail(source, f"lr.{key}", lr_raw[key], "true or false")
            adapt[f"lr_{key}"] = lr_raw[key]
    if adapt.get("lr_refine") and not adapt.get("lr_adaptive"):
        raise _fail(source, "lr.refine", True, "false unless lr.adaptive = true")
    if "max_extra_octaves" in lr_raw:
        adapt["lr_max_extra_octaves"] = _float(
            source, "lr.max_extra_octaves", lr_raw["max_extra_octaves"], lo=0, hi=64
        )
    lr = _lr_grid(source, "lr", grid_raw) if grid_raw else defaults.lr
    by_scheme_raw = lr_raw.get("by_scheme", {})
    if not isinstance(by_scheme_raw, dict):
        raise _fail(
            source, "lr.by_scheme", by_scheme_raw, "a table of {scheme = {start, stop, step}}"
        )
    by_scheme, lr_defaults = [], []
    for name, table in by_scheme_raw.items():
        if name not in schemes:
            raise _fail(
                source, f"lr.by_scheme.{name}", name, f"a scheme of this sweep: {list(schemes)}"
            )
        if isinstance(table, dict) and "default" in table:
            table = dict(table)
            default = table.pop("default")
            lr_defaults.append((name, _float(source, f"lr.by_scheme.{name}.default", default)))
        by_scheme.append((name, _lr_grid(source, f"lr.by_scheme.{name}", table)))
    return dict(
        lr=lr, lr_by_scheme=tuple(by_scheme), **adapt, lr_default=adapt_default,
        lr_default_by_scheme=tuple(lr_defaults),
    )  # fmt: skip


STATING_FIELDS = ("name", "schemes", "model.widths", "model.depths", "model.path",
                  "model.block_depths")  # fmt: skip
"""A config must set one of these: its suite's name or its cells. Everything else has a
default, and a config of defaults only (an empty file) would start the default grid unasked."""


def check_stated(raw: dict[str, Any], source: str = "<config>") -> None:
    """Refuse a config that sets none of :data:`STATING_FIELDS` (an empty file, or one of
    settings only): nothing runs that the user did not ask for."""
    model = raw.get("model") if isinstance(raw.get("model"), dict) else {}
    stated = [f for f in STATING_FIELDS if f.split(".")[-1] in (model if "." in f else raw)]
    if not stated:
        what = "empty config" if not raw else f"config of settings only ({', '.join(raw)})"
        raise ConfigError(
            f'{source}: {what}: name the suite (name = "...") or state its cells ([model] '
            "widths/depths/path, schemes); a config never falls back to the default grid"
        )


def _path(source: str, model_raw: dict[str, Any]) -> dict[str, Any]:
    """[model] path: (width, depth) pairs instead of widths x depths; base = the first pair."""
    path = model_raw["path"]
    ok = isinstance(path, list) and len(path) >= 2 and all(
        isinstance(p, list) and len(p) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in p
        ) for p in path
    )  # fmt: skip
    if not ok:
        raise _fail(source, "model.path", path, "a list of at least 2 [width, depth] pairs of "
                    "integers >= 1, e.g. [[32, 2], [64, 4], [128, 8]]")  # fmt: skip
    pairs = tuple((int(n), int(L)) for n, L in path)
    if len(set(pairs)) != len(pairs):
        raise _fail(source, "model.path", path, "a list without repeats")
    for key in ("widths", "depths"):
        if key in model_raw:
            raise _fail(source, f"model.{key}", model_raw[key], "nothing when model.path is set")
    return {
        "path": pairs,
        "widths": tuple(sorted({n for n, _ in pairs})),
        "depths": tuple(sorted({L for _, L in pairs})),
        "base_width": model_raw.get("base_width", pairs[0][0]),
        "base_depth": model_raw.get("base_depth", pairs[0][1]),
    }


def _schedule(source: str, table: Any) -> ScheduleConfig:
    """The [schedule] table: its kind and the fractions that kind reads (others are errors)."""
    allowed = f"a table {{kind, {', '.join(SCHEDULE_AXES)}}}"
    if not isinstance(table, dict):
        raise _fail(source, "schedule", table, allowed)
    _check_keys(source, "schedule", table, ("kind", *SCHEDULE_AXES))
    kind = table.get("kind", "constant")
    if kind not in SCHEDULE_KINDS:
        raise _fail(source, "schedule.kind", kind, f"one of {list(SCHEDULE_KINDS)}")
    for key in SCHEDULE_AXES:
        if key in table and key not in SCHEDULE_FIELDS[kind]:
            raise _fail(source, f"schedule.{key}", table[key],
                        f"nothing with kind = {kind!r} (its fields: "
                        f"{['kind', *SCHEDULE_FIELDS[kind]]})")  # fmt: skip
    values = {k: _float(source, f"schedule.{k}", v) for k, v in table.items() if k != "kind"}
    try:
        return ScheduleConfig(kind, **values)
    except ScheduleError as err:
        raise ConfigError(f"{source}: [schedule] {err}") from None


def check_schedules(config: SweepConfig, source: str = "<config>") -> None:
    """Refuse a schedule that does not fit a run: for every run length (``steps`` and each value
    of the steps axis) and every schedule fraction a replica trains with (the traced points of
    every scheme), :func:`hptransfer.network.schedules.check_schedule`; one error line before compute."""
    schedule = config.optimizer.schedule
    if all(kind == "constant" for _, _, kind in config.shape_points()):
        return
    defaults = schedule.values()
    fractions = {tuple(sorted(defaults.items()))}
    if any(a.name in SCHEDULE_AXES for a in config.axes):
        for scheme in config.schemes:
            for _, point in config.points(scheme):
                p = dict(point)
                fractions.add(tuple(sorted({k: p.get(k, v) for k, v in defaults.items()}.items())))
    for _, steps, kind in config.shape_points():
        for values in sorted(fractions):
            v = dataclasses.replace(schedule, **dict(values)).as_kind(kind).values()
            try:
                check_schedule(kind, steps, v.get("warmup_fraction", 0.0),
                               v.get("decay_fraction", 0.0), v.get("final_fraction", 0.0))  # fmt: skip
            except ScheduleError as err:
                axes = [k for k in v if any(a.name == k for a in config.axes)]
                where = f" (axes {axes} at {v}, steps = {steps})" if axes else ""
                if kind != schedule.kind:
                    where += (f" (kind {kind!r} of axes.schedule reads the fractions of "
                              f"[schedule], whose kind is {schedule.kind!r})")  # fmt: skip
                raise ConfigError(f"{source}: [schedule] {err}{where}") from None


def _axis(source: str, name: str, table: Any, config: SweepConfig) -> Axis:
    """One [axes.NAME] table: a grid (start, stop, step) or values, and a default."""
    field = f"axes.{name}"
    spec = SPECS[name]
    if not isinstance(table, dict):
        raise _fail(source, field, table, "a table {start, stop, step} or {values}, and default")
    keys = ("values",) if spec.kind == "shape" else ("start", "stop", "step", "values", "default")
    _check_keys(source, field, table, keys)
    if config.optimizer.name not in spec.optimizers:
        raise _fail(source, field, name, f"an axis of optimizer.name = {config.optimizer.name!r} "
                    f"(axis '{name}' applies to {list(spec.optimizers)})")  # fmt: skip
    kind = config.optimizer.schedule.kind
    if name in SCHEDULE_AXES and name not in SCHEDULE_FIELDS[kind]:
        raise _fail(source, field, name, f"an axis of the schedule kind = {kind!r}: "
                    f"{list(SCHEDULE_FIELDS[kind])} ([schedule] kind decides which)")  # fmt: skip
    if name == "schedule":
        return _schedule_axis(source, table, config)
    if "values" in table:
        if any(k in table for k in ("start", "stop", "step")):
            raise _fail(source, field, table, "either values or start/stop/step, not both")
        raw = table["values"]
        if not isinstance(raw, list) or not raw:
            raise _fail(source, f"{field}.values", raw, "a non-empty list of numbers")
        if spec.kind == "shape":
            values = _int_list(source, f"{field}.values", raw)
        else:
            values = tuple(_float(source, f"{field}.values[{i}]", v) for i, v in enumerate(raw))
            if len(set(values)) != len(values):
                raise _fail(source, f"{field}.values", raw, "a list without repeats")
        if len(values) > MAX_LR_POINTS:
            raise _fail(source, f"{field}.values", f"{len(values)} values",
                        f"at most {MAX_LR_POINTS} values")  # fmt: skip
    else:
        values = _lr_grid(source, field, {k: v for k, v in table.items() if k != "default"})
        values = values.log2_values()
    values = tuple(sorted(float(v) for v in values))
    for v in values:
        if (spec.lo is not None and v < spec.lo) or (spec.hi is not None and v >= spec.hi):
            hi = f" and < {spec.hi}" if spec.hi is not None else ""
            raise _fail(source, field, v, f"values >= {spec.lo}{hi} ({spec.doc})")
    if name == "steps":
        for v in values:
            if int(v) % config.eval_every:
                raise _fail(source, f"{field}.values", int(v),
                            f"multiples of eval_every ({config.eval_every})")  # fmt: skip
    natural = {
        "momentum": config.optimizer.momentum, "b2": config.optimizer.b2,
        "weight_decay": config.optimizer.weight_decay, "batch_size": config.batch_size,
        "steps": config.steps, **config.optimizer.schedule.values(),
    }.get(name, 0.0)  # fmt: skip
    default = natural
    if "default" in table:
        lo, hi = spec.lo, spec.hi
        default = _float(source, f"{field}.default", table["default"], lo=lo, hi=hi)
    return Axis(name, values, float(default))


def _schedule_axis(source: str, table: dict[str, Any], config: SweepConfig) -> Axis:
    """[axes.schedule] values = [kind, ...]: a set of cells per schedule kind; the default is
    [schedule]'s kind, and every kind reads the fractions [schedule] sets (a kind that needs
    one the default kind does not read fails :func:`check_schedules`: declare [schedule] with
    the kind that reads the most, e.g. wsd)."""
    raw = table.get("values")
    allowed = f"a non-empty list of schedule kinds without repeats, from {list(SCHEDULE_KINDS)}"
    if not isinstance(raw, list) or not raw or len(set(map(str, raw))) != len(raw):
        raise _fail(source, "axes.schedule.values", raw, allowed)
    for i, kind in enumerate(raw):
        if kind not in SCHEDULE_KINDS:
            raise _fail(source, f"axes.schedule.values[{i}]", kind, allowed)
    return Axis("schedule", tuple(str(k) for k in raw), config.optimizer.schedule.kind)


def _axes(source: str, raw: Any, config: SweepConfig) -> SweepConfig:
    """The [axes] table: one [axes.NAME] per axis (:data:`hptransfer.network.hyperparameters.SPECS`) and
    ``groups``, lists of traced axes (and "lr") crossed within the list."""
    if not isinstance(raw, dict) or not raw:
        raise _fail(source, "axes", raw, "a table of [axes.NAME] tables and groups")
    _check_keys(source, "axes", raw, (*SPECS, "groups"))
    axes = tuple(_axis(source, k, v, config) for k, v in raw.items() if k != "groups")
    if not axes:
        raise _fail(source, "axes", raw, f"at least one [axes.NAME] table, NAME in {list(SPECS)}")
    fractions = [a.name for a in axes if a.name in SCHEDULE_AXES]
    if fractions and any(a.name == "schedule" for a in axes):
        raise _fail(source, f"axes.{fractions[0]}", fractions[0],
                    "no axis of a schedule fraction together with axes.schedule (a fraction "
                    "means something else, or nothing, under each kind)")  # fmt: skip
    if config.lr_adaptive:
        raise _fail(source, "lr.adaptive", True, "false when the sweep has [axes]")
    names = [a.name for a in axes_mod.traced(axes)]
    groups: tuple[tuple[str, ...], ...] = ()
    if "groups" in raw:
        groups_raw = raw["groups"]
        allowed = f"a list of lists of 1 or 2 names from {['lr', *names]}"
        if not isinstance(groups_raw, list) or not groups_raw:
            raise _fail(source, "axes.groups", groups_raw, allowed)
        for i, g in enumerate(groups_raw):
            bad = (
                not isinstance(g, list) or not 1 <= len(g) <= 2 or len(set(g)) != len(g)
                or any(n not in ("lr", *names) for n in g)
            )  # fmt: skip
            if bad:
                raise _fail(source, f"axes.groups[{i}]", g, allowed + ", without repeats")
        groups = tuple(tuple(g) for g in groups_raw)
        if len(set(groups)) != len(groups):
            raise _fail(source, "axes.groups", groups_raw, "groups without repeats")
        swept = {n for g in groups for n in g}
        for n in names:
            if n not in swept:
                raise _fail(source, "axes.groups", groups_raw,
                            f"groups that sweep every declared traced axis ('{n}' is missing)")  # fmt: skip
        if any("lr" not in g for g in groups):
            for s in config.schemes:
                if config.lr_default_of(s) is None:
                    raise ConfigError(
                        f"{source}: field 'lr.default' is missing; a group without 'lr' trains "
                        f"scheme {s!r} at its default log2 learning rate (set lr.default, or "
                        f"lr.by_scheme.{s}.default)"
                    )
    return dataclasses.replace(config, axes=axes, axis_groups=groups)


def _elimination(source: str, raw: dict[str, Any], config: SweepConfig) -> EliminationConfig:
    """The [elimination] table (:mod:`hptransfer.sweeps.elimination`): enabled, margin, window,
    min_fraction; margin >= the regret rule's threshold, so a regret read at a stopped rate
    keeps its verdict."""
    table = raw["elimination"]
    if not isinstance(table, dict):
        raise _fail(source, "elimination", table, "a table {enabled, margin, window, min_fraction}")
    _check_keys(source, "elimination", table, ("enabled", "margin", "window", "min_fraction"))
    kw: dict[str, Any] = {}
    if "enabled" in table:
        if not isinstance(table["enabled"], bool):
            raise _fail(source, "elimination.enabled", table["enabled"], "true or false")
        kw["enabled"] = table["enabled"]
    if "margin" in table:
        kw["margin"] = _float(source, "elimination.margin", table["margin"], lo=TRANSFER_REGRET)
    if "window" in table:
        kw["window"] = _int(source, "elimination.window", table["window"])
    if "min_fraction" in table:
        kw["min_fraction"] = _float(
            source, "elimination.min_fraction", table["min_fraction"], lo=0, hi=1
        )
    out = EliminationConfig(**kw)
    n_seg = config.steps // config.eval_every
    if out.enabled and out.window >= n_seg:
        raise _fail(source, "elimination.window", out.window,
                    f"fewer segments than steps / eval_every = {n_seg}")  # fmt: skip
    return out


def load_config(path: str | Path, scheme_sources: tuple[str, ...] = ()) -> SweepConfig:
    """Read and validate a sweep TOML file (``scheme_sources``: see :func:`config_from_dict`)."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    return config_from_dict(raw, str(path), scheme_sources=tuple(scheme_sources))
