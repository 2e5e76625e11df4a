"""The hyperparameters a sweep may vary besides the learning rate, as data: each axis name's
unit, kind (traced: one compiled program for every value; shape: a program per value), the
optimizers it applies to and its range (:data:`SPECS`), and a declared axis (:class:`Axis`: its
grid and default). The grids built from them and how a point reaches the network are
:mod:`hptransfer.sweeps.axes`'s; the statistics read the same :class:`Axis` from meta.json."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class AxisSpec:
    """What an axis name means: its unit, kind, the optimizers it applies to and its range."""

    name: str
    unit: str  # "log2" (a multiplier 2**v), "linear", "count" (a shape axis) or "kind" (names)
    kind: str  # "traced" | "shape"
    doc: str
    optimizers: tuple[str, ...] = ("sgd", "adam", "adamw")
    lo: float | None = None  # inclusive
    hi: float | None = None  # exclusive


SPECS: dict[str, AxisSpec] = {
    s.name: s
    for s in (
        AxisSpec("init_scale", "log2", "traced", "log2 multiplier of every init std"),
        AxisSpec("init_scale_input", "log2", "traced", "log2 multiplier of the input layer's init std"),
        AxisSpec("init_scale_hidden", "log2", "traced", "log2 multiplier of every hidden layer's init std"),
        AxisSpec("init_scale_readout", "log2", "traced", "log2 multiplier of the readout's init std"),
        AxisSpec("output_multiplier", "log2", "traced", "log2 multiplier of the readout's forward multiplier"),
        AxisSpec("branch_constant", "log2", "traced", "log2 constant on the residual branch (times r^-alpha)"),
        AxisSpec("momentum", "linear", "traced", "SGD momentum", ("sgd",), 0.0, 1.0),
        AxisSpec("b2", "linear", "traced", "Adam's second-moment decay", ("adam", "adamw"), 0.0, 1.0),
        AxisSpec("eps", "log2", "traced", "log2 multiplier of Adam's epsilon", ("adam", "adamw")),
        AxisSpec("weight_decay", "linear", "traced", "decoupled weight decay", ("adamw",), 0.0),
        AxisSpec("warmup_fraction", "linear", "traced", "warm-up steps / steps ([schedule])", lo=0.0, hi=1.0),
        AxisSpec("decay_fraction", "linear", "traced", "decay steps / steps (schedule wsd)", lo=0.0),
        AxisSpec("final_fraction", "linear", "traced", "final lr / peak lr ([schedule])", lo=0.0),
        AxisSpec("batch_size", "count", "shape", "minibatch size (one set of cells per value)", lo=1),
        AxisSpec("steps", "count", "shape", "training steps (one set of cells per value)", lo=1),
        AxisSpec("schedule", "kind", "shape", "the [schedule] kind (one set of cells per kind)"),
    )
}  # fmt: skip
"""Every axis a config may declare (besides ``lr``, the learning rate, which has its table)."""

OPTIMIZER_AXES = (
    "momentum", "b2", "weight_decay", "warmup_fraction", "decay_fraction", "final_fraction",
)  # fmt: skip
"""Traced axes that replace an optimizer or schedule setting (traced scalars per replica)."""


@dataclasses.dataclass(frozen=True)
class Axis:
    """One declared axis: its grid (sorted values, in the axis's unit) and its default; the
    values of an axis of unit "kind" (``schedule``) are names, in the config's order."""

    name: str
    values: tuple[float, ...] | tuple[str, ...]
    default: float | str

    @property
    def spec(self) -> AxisSpec:
        return SPECS[self.name]

    @property
    def unit(self) -> str:
        return self.spec.unit

    @property
    def kind(self) -> str:
        return self.spec.kind

    def to_dict(self) -> dict:
        return {"values": list(self.values), "default": self.default, "unit": self.spec.unit,
                "kind": self.spec.kind}  # fmt: skip
