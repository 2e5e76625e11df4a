"""Limits on what would exhaust the machine before compute starts (docs/design.md, "Limits").

A sweep config that asks for more than the machine has is refused, before any data is built or
any program compiled, in one line that names the field, what is needed and what is available:

- the dataset: the bytes building it takes at its peak (:func:`dataset_bytes`) against the
  available memory (:func:`available_memory`);
- the results table: rows (cells x replicas x evaluations) x columns x 8 bytes, twice (the cells'
  tables and their concatenation are held together at the end), against the available memory;
- the checkpoint of the largest chunk (parameters, initial parameters and optimizer slots of each
  replica, twice while Orbax replaces the previous step) against the free disk under ``--out``;
  chunks are sized as the engine plans them from its memory estimate (XLA's measured count,
  known only after compiling, may change them).

The estimates are pure functions of the config; the checks take the available amounts as
arguments (tests give small ones) and read the machine's only when none is given. Device memory
for one replica is checked by the engine's own preflight (:func:`hptransfer.sweeps.engine.preflight`).
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from hptransfer.network.data import DATASET_SHAPES
from hptransfer.network.model import Architecture
from hptransfer.network.movement import STATS
from hptransfer.sweeps.config import SweepConfig
from hptransfer.sweeps.costmodel import optimizer_slots, parameters

Fit = Callable[[Architecture], int]
"""Replicas of an architecture that fit in device memory (the engine's estimate)."""


class LimitError(ValueError):
    """A config asks for more memory or disk than the machine has; the message names the field,
    the need and the available amount."""


NUM_CLASSES = 10
TEXT_VOCABULARY = 256  # byte-level text: one class per byte value
CIFAR10_SAMPLES = 60_000
TEACHER_WIDTH = 256  # the hidden width of the teacher network (hptransfer.network.data.teacher)

TABLE_COLUMNS = 18
"""Columns of a cell's result table besides the axes and the feature-movement statistics
(scheme ... cell: hptransfer.sweeps.engine._chunk_table)."""


def _size(n: float) -> str:
    return f"{n / 2**30:.3g} GiB ({int(n)} bytes)"


def available_memory() -> int:
    """Bytes of memory available to a new allocation: MemAvailable of /proc/meminfo (Linux),
    else the physical memory (SC_PHYS_PAGES x SC_PAGE_SIZE)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def free_disk(path: str | Path) -> int:
    """Free bytes on the filesystem that holds ``path`` (or would: its nearest existing parent)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def check_fits(need: int, available: int, message: str) -> None:
    """Raise :class:`LimitError` with ``message`` (which states ``need`` and ``available``)
    when ``need`` is more than ``available``."""
    if need > available:
        raise LimitError(message)


# --------------------------------------------------------------------------------------------
# Estimates


def dataset_bytes_per_sample(name: str) -> int:
    """Peak bytes per example while the dataset is built and standardised (an estimate with room):

    mnist1d: 40 float64 features as a per-sample array in a list (with its object header), then
    stacked, shuffled and centred copies, then float32 copies (the generator, mnist1d.data);
    teacher: float64 inputs and their float32 copy, two float64 hidden layers of the 256-wide
    teacher network and its logits; cifar10: the raw batch bytes, the parsed and concatenated
    uint8 images, the float64 image / 255 and two float32 standardised copies.
    """
    if name == "text":  # per corpus byte: the byte, and its int32 input and target windows
        return 1 + 4 + 4
    d = math.prod(DATASET_SHAPES[name])
    if name == "mnist1d":
        return 5 * d * 8 + 128 + 2 * d * 4
    if name in ("teacher", "teacher_images"):
        return 12 * d + 2 * 8 * TEACHER_WIDTH + 8 * NUM_CLASSES
    return d * (3 + 8 + 4 + 4)


STDLIB_CORPUS_BYTES = 4 << 20  # above the default text corpus (the stdlib selection, ~2 MB)


def corpus_bytes(path: str | None) -> int:
    """The size of a text corpus from its files' sizes, without reading them (the default
    corpus: :data:`STDLIB_CORPUS_BYTES`)."""
    if path is None:
        return STDLIB_CORPUS_BYTES
    root = Path(path)
    if root.is_file():
        return root.stat().st_size
    return sum(
        f.stat().st_size
        for f in root.rglob("*")
        if f.is_file() and not f.is_symlink()
        and not any(part.startswith(".") for part in f.relative_to(root).parts)
    )  # fmt: skip


def dataset_bytes(name: str, num_samples: int) -> int:
    """Peak bytes of building dataset ``name`` (cifar10 has a fixed size: ``num_samples`` is
    not used)."""
    samples = CIFAR10_SAMPLES if name == "cifar10" else num_samples
    return samples * dataset_bytes_per_sample(name)


def architectures(config: SweepConfig) -> list[Architecture]:
    """Every shape of the sweep, without loading its data (inputs from
    ``DataConfig.example_shape``; the text dataset's 256 bytes or :data:`NUM_CLASSES`)."""
    m, data = config.model, config.data
    classes = TEXT_VOCABULARY if data.name == "text" else NUM_CLASSES
    return [
        m.architecture(n, L, k, data.example_shape(), classes)
        for k in m.block_depths
        for n, L in m.shapes()
    ]


def max_replicas_per_cell(config: SweepConfig) -> int:
    """Replicas of one cell, plus, with lr.adaptive, the most its extra rounds can add per
    scheme (grid steps within lr.max_extra_octaves on each side, and two refining half-steps)."""
    n = config.replicas_per_cell()
    if config.lr_adaptive:
        for s in config.schemes:
            step = dict(config.lr_by_scheme).get(s, config.lr).step
            extra = 2 * math.ceil(config.lr_max_extra_octaves / step) + 2 * config.lr_refine
            n += extra * len(config.seeds)
    return n


def results_shape(config: SweepConfig) -> tuple[int, int]:
    """(rows, columns) of the sweep's results table: over the cells, replicas x evaluations
    rows; the fixed columns, one per axis and the movement statistics of every role."""
    per_cell = max_replicas_per_cell(config)
    shapes = len(config.model.block_depths) * len(config.model.shapes())
    rows = sum(
        shapes * per_cell * (steps // config.eval_every) for _, steps, _ in config.shape_points()
    )
    roles = max(config.model.block_depths) + 2  # input, hidden_1..k, readout
    return rows, TABLE_COLUMNS + len(config.axes) + len(STATS) * roles


def results_bytes(config: SweepConfig) -> int:
    """Memory of the results table: rows x columns x 8 bytes, twice (the cells' tables and
    their concatenation are both held when the sweep ends)."""
    rows, cols = results_shape(config)
    return 2 * rows * cols * 8


def checkpoint_bytes_per_replica(config: SweepConfig, arch: Architecture) -> int:
    """Bytes one replica's checkpoint holds: its parameters, initial parameters and optimizer
    slots (float32; bfloat16 slots with precision = "bf16_state") and its metric history."""
    slot_bytes = 2 if config.precision == "bf16_state" else 4
    state = parameters(arch) * (2 * 4 + optimizer_slots(config.optimizer) * slot_bytes)
    _, cols = results_shape(config)
    evals = max(steps for _, steps, _ in config.shape_points()) // config.eval_every
    return state + evals * cols * 4


def chunk_replicas(
    config: SweepConfig, arch: Architecture, devices: int = 1, fit: Fit | None = None
) -> int:
    """The most replicas of ``arch`` one chunk holds, as the engine plans it
    (:func:`hptransfer.sweeps.engine.chunk_size`): max_replicas_per_chunk when set, else a cell's
    replicas up to ``fit(arch)``, the replicas that fit in device memory (None: no cap);
    padded to a multiple of the devices."""
    n = max_replicas_per_cell(config)
    if config.max_replicas_per_chunk > 0:
        n = min(n, config.max_replicas_per_chunk)
    elif fit is not None:
        n = min(n, max(1, fit(arch)))
    return max(devices, math.ceil(n / devices) * devices)


def checkpoint_bytes(
    config: SweepConfig, devices: int = 1, fit: Fit | None = None
) -> tuple[int, Architecture, int]:
    """Disk the largest chunk's checkpoint needs (twice its size: Orbax writes a step before
    it deletes the previous one), that chunk's architecture and its replicas."""
    sizes = [
        (2 * checkpoint_bytes_per_replica(config, a) * chunk_replicas(config, a, devices, fit),
         a, chunk_replicas(config, a, devices, fit))
        for a in architectures(config)
    ]  # fmt: skip
    need, arch, n = max(sizes, key=lambda size: size[0])
    return need, arch, n


# --------------------------------------------------------------------------------------------
# Checks


def check_dataset(
    field: str, name: str, num_samples: int, memory: int | None = None, source: str = ""
) -> None:
    """Refuse a dataset whose building needs more than ``memory`` bytes (default: available)."""
    memory = available_memory() if memory is None else memory
    need = dataset_bytes(name, num_samples)
    where = f"{source}: " if source else ""
    if name == "cifar10":
        value, allowed = f"{name!r}", "a smaller dataset, or a machine with more free memory"
    else:
        per = dataset_bytes_per_sample(name)
        value = str(num_samples)
        allowed = f"at most {max(memory // per, 0)} samples ({per} bytes each)"
    check_fits(need, memory, (
        f"{where}{field} = {value}: building the {name} dataset needs about {_size(need)} of "
        f"memory, but {_size(memory)} are available; allowed: {allowed}"
    ))  # fmt: skip


def check_sweep(
    config: SweepConfig,
    out: str | Path,
    *,
    source: str = "<config>",
    devices: int = 1,
    fit: Fit | None = None,
    memory: int | None = None,
    disk: int | None = None,
) -> None:
    """Refuse, before any compute, a sweep whose dataset or results table needs more than
    ``memory`` bytes or whose largest checkpoint needs more than ``disk`` bytes (defaults: the
    machine's available memory and the free disk under ``out``). ``devices`` and ``fit`` size
    the chunks as the engine will (:func:`chunk_replicas`)."""
    memory = available_memory() if memory is None else memory
    field = {"cifar10": "data.name", "text": "data.path"}.get(config.data.name, "data.num_samples")
    samples = (
        corpus_bytes(config.data.path) if config.data.name == "text" else config.data.num_samples
    )
    check_dataset(f"field '{field}'", config.data.name, samples, memory, source)

    rows, cols = results_shape(config)
    need = results_bytes(config)
    evals = config.steps // config.eval_every
    check_fits(need, memory, (
        f"{source}: field 'eval_every' = {config.eval_every}: the results table of this grid "
        f"({rows} rows: cells x up to {max_replicas_per_cell(config)} replicas x {evals} "
        f"evaluations, {cols} columns) needs about {_size(need)} of memory, but {_size(memory)} "
        "are available; allowed: fewer evaluations (a larger eval_every), cells, learning "
        "rates, seeds or schemes"
    ))  # fmt: skip

    disk = free_disk(out) if disk is None else disk
    need, arch, n = checkpoint_bytes(config, devices, fit)
    per = 2 * checkpoint_bytes_per_replica(config, arch)
    fewer = (
        f"max_replicas_per_chunk <= {disk // per} (or --max-replicas-per-chunk), or "
        if disk >= per * devices
        else "a smaller model, or "
    )
    check_fits(need, disk, (
        f"{source}: field 'max_replicas_per_chunk' = {config.max_replicas_per_chunk}: the "
        f"checkpoint of the largest chunk ({n} replicas of width {arch.width}, depth "
        f"{arch.depth}, block depth {arch.block_depth}) needs about {_size(need)} of disk, but "
        f"{_size(disk)} are free under --out {str(out)!r}; allowed: {fewer}an --out with more "
        "free space"
    ))  # fmt: skip
