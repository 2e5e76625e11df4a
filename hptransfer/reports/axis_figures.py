"""Figures of the axes beyond the learning rate (:mod:`hptransfer.stats.hparams`), one PNG each.

    axis_loss_<group>_<axis>  final training loss against one axis's value, a line per depth
                              (per width at one depth, per point of a model path), the optimum
                              marked; for an axis crossed with another, the value at each point
                              is the best over the other axis (a profile of the surface)
    axis_heatmap_<group>      seed-mean final loss over the two axes of a group, one panel per
                              (scheme, shape), the optimum marked, diverged points blank

Drawn like :mod:`hptransfer.reports.figures` (stand-alone figures, seaborn style contexts, the same
palette and file writer); only the rows where every shape axis is at its default are drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from hptransfer.network.schemes import scheme_label
from hptransfer.reports.figures import (
    _facet_rows,
    _figure,
    _log_y,
    _mask,
    _optimum_marker,
    _save,
    _sequential,
    _style,
    _suptitle,
)
from hptransfer.stats.frames import wide_mean
from hptransfer.stats.hparams import (
    LR,
    HparamsAnalysis,
    at_default_conditions,
    coordinate,
    group_label,
    mean_losses,
)
from hptransfer.stats.tables import held_value, scheme_order

UNIT_LABEL = {"log2": "log2 multiplier", "linear": "value", "count": "count"}


def axis_label(h: HparamsAnalysis, name: str) -> str:
    """x-axis label of an axis: its name and unit."""
    if name == LR:
        return "log2 learning rate (octaves)"
    axis = h.axes.get(name)
    return f"{name} ({UNIT_LABEL.get(axis.unit, axis.unit) if axis else 'value'})"


def _lines(h: HparamsAnalysis, opt: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The shapes drawn as lines, as a frame (width, depth, label), and what they vary over:
    the path's points; else the depths at the held width; else the widths at the held depth."""
    shapes = opt[["width", "depth"]].drop_duplicates().sort_values(["width", "depth"])
    if h.path:
        on = shapes[[(int(w), int(d)) in set(h.path) for w, d in shapes.to_numpy()]]
        labels = [f"n={int(w)}, L={int(d)}" for w, d in on.to_numpy()]
        return on.assign(label=labels), "path point"
    held = held_value(opt, "depth")
    if held is not None:
        on = shapes[shapes["width"] == held]
        return on.assign(label=[f"L = {int(d)}" for d in on["depth"]]), f"depth (n = {held})"
    held = held_value(opt, "width")
    if held is not None:
        on = shapes[shapes["depth"] == held]
        return on.assign(label=[f"n = {int(w)}" for w in on["width"]]), f"width (L = {held})"
    return shapes.assign(label=[f"n={int(w)}, L={int(d)}" for w, d in shapes.to_numpy()]), "shape"


def profile(mean: pd.DataFrame, group: Sequence[str], name: str) -> pd.DataFrame:
    """The seed-mean loss against one axis of a group, minimised over the group's other axis
    (:func:`hptransfer.stats.hparams.mean_losses` with loss_mean renamed loss; +inf where every
    point diverged)."""
    others = [coordinate(n) for n in group if n != name]
    prof = mean.rename(columns={"loss_mean": "loss"}).drop(columns="n_seeds")
    if not others:
        return prof
    keys = [c for c in prof.columns if c not in (*others, "loss")]
    return prof.groupby(keys, sort=True)["loss"].min().reset_index()


def plot_axis_loss(
    h: HparamsAnalysis, path: str | Path, group: Sequence[str], name: str
) -> Path | None:
    """Final training loss against the value of axis ``name`` of ``group``: one line per shape
    (:func:`_lines`), one panel per scheme, one row per (optimizer, block depth); the optimum
    of :func:`hptransfer.stats.hparams.axis_optima` is a star (a hollow diamond when censored).
    None when the group has no rows."""
    mean = at_default_conditions(mean_losses(h.finals, h.design, group), h.design)
    label = group_label(group)
    opt = at_default_conditions(h.optima, h.design)
    opt = opt[(opt["group"] == label) & (opt["hparam"] == name)]
    if mean.empty or opt.empty:
        return None
    col = coordinate(name)
    prof = profile(mean, group, name)
    lines, over = _lines(h, opt)
    colors = _sequential(list(lines["label"]))
    rows, schemes = _facet_rows(opt), scheme_order(opt["scheme"].unique())
    crossed = [n for n in group if n != name]
    with _style()[0], _style()[1]:
        fig, axes = _figure(len(rows), len(schemes))
        for r, (sel, row_label) in enumerate(rows):
            for c, scheme in enumerate(schemes):
                ax = axes[r, c]
                s = sel | {"scheme": scheme}
                p, o = prof[_mask(prof, s)], opt[_mask(opt, s)]
                for w, d, text in lines[["width", "depth", "label"]].itertuples(index=False):
                    line = p[(p["width"] == w) & (p["depth"] == d)].sort_values(col)
                    ok = np.isfinite(line["loss"].to_numpy(float))
                    ax.plot(line[col][ok], line["loss"][ok], marker="o", ms=3, lw=1.2,
                            color=colors[text])  # fmt: skip
                    for _, q in o[(o["width"] == w) & (o["depth"] == d)].iterrows():
                        if not (np.isfinite(q["optimum"]) and np.isfinite(q["best_loss"])):
                            continue
                        marker, filled = _optimum_marker(q["edge"])
                        ax.plot(q["optimum"], q["best_loss"], ls="", marker=marker,
                                ms=11 if filled else 8, mfc=colors[text] if filled else "white",
                                mec="k" if filled else colors[text], zorder=5)  # fmt: skip
                if len(p) and np.isfinite(p["loss"]).any():
                    _log_y(ax)
                ax.set_xlabel(axis_label(h, name) if r == len(rows) - 1 else "")
                ax.set_ylabel(f"{row_label}\nfinal train loss (nats)" if c == 0 else "")
                if r == 0:
                    ax.set_title(scheme_label(scheme))
        handles = [Line2D([], [], color=colors[t], lw=2, label=t) for t in lines["label"]]
        handles += [
            Line2D([], [], ls="", marker="*", ms=11, mfc="0.3", mec="k", label="optimum"),
            Line2D([], [], ls="", marker="D", ms=6, mfc="white", mec="0.3",
                   label="censored optimum\n(grid edge or divergence)"),
        ]  # fmt: skip
        fig.legend(handles=handles, loc="outside right center", frameon=False)
        best_over = f"; each point is the best over {', '.join(crossed)}" if crossed else ""
        _suptitle(fig, f"Final training loss (seed mean) vs {name}, one line per {over}"
                       f"{best_over}")  # fmt: skip
        return _save(fig, Path(path))


def _edges(values: np.ndarray) -> np.ndarray:
    """Cell edges around sorted grid values (midpoints; half a step past each end)."""
    v = np.asarray(values, float)
    if v.size == 1:
        return np.array([v[0] - 0.5, v[0] + 0.5])
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]])


def plot_axis_heatmap(h: HparamsAnalysis, path: str | Path, group: Sequence[str]) -> Path | None:
    """Seed-mean final training loss over the two axes of ``group`` (log colour scale), one
    panel per shape (columns: the shapes of :func:`_lines`) and per (scheme, optimizer, block
    depth) (rows); blank = a seed diverged or the point was not run; star = the group's
    optimum (hollow diamond when censored). None for a one-axis group or no rows."""
    if len(group) != 2:
        return None
    a, b = group
    ca, cb = coordinate(a), coordinate(b)
    mean = at_default_conditions(mean_losses(h.finals, h.design, group), h.design)
    label = group_label(group)
    opt = at_default_conditions(h.optima, h.design)
    opt = opt[opt["group"] == label]
    if mean.empty or opt.empty:
        return None
    lines, over = _lines(h, opt)
    panels = []
    for scheme in scheme_order(opt["scheme"].unique()):
        for sel, row_label in _facet_rows(opt[opt["scheme"] == scheme]):
            panels.append((sel | {"scheme": scheme}, f"{scheme_label(scheme)}, {row_label}"))
    finite = mean["loss_mean"][np.isfinite(mean["loss_mean"])]
    if finite.empty:
        return None
    norm = LogNorm(vmin=max(float(finite.min()), 1e-12), vmax=max(float(finite.max()), 1e-11))
    mesh = None
    with _style()[0], _style()[1]:
        fig, axes = _figure(len(panels), len(lines), extra_width=1.5)
        for r, (sel, row_label) in enumerate(panels):
            m, o = mean[_mask(mean, sel)], opt[_mask(opt, sel)]
            for c, (w, d, text) in enumerate(lines[["width", "depth", "label"]].to_numpy()):
                ax = axes[r, c]
                cell = m[(m["width"] == w) & (m["depth"] == d)]
                if len(cell):
                    grid = wide_mean(cell, cb, ca, "loss_mean")
                    z = grid.to_numpy(float)
                    z = np.ma.masked_where(~np.isfinite(z), z)
                    mesh = ax.pcolormesh(_edges(grid.columns.to_numpy(float)),
                                         _edges(grid.index.to_numpy(float)), z, norm=norm,
                                         cmap="viridis", shading="flat")  # fmt: skip
                here = o[(o["width"] == w) & (o["depth"] == d)].set_index("hparam")
                if {a, b} <= set(here.index) and np.isfinite(here.loc[[a, b], "optimum"]).all():
                    marker, filled = _optimum_marker(
                        here.loc[a, "edge"]
                        if pd.notna(here.loc[a, "edge"])
                        else here.loc[b, "edge"]
                    )
                    ax.plot(here.loc[a, "optimum"], here.loc[b, "optimum"], ls="", marker=marker,
                            ms=13 if filled else 9, mfc="white" if filled else "none",
                            mec="k" if filled else "white", mew=1.2, zorder=5)  # fmt: skip
                ax.grid(False)
                ax.set_xlabel(axis_label(h, a) if r == len(panels) - 1 else "")
                ax.set_ylabel(f"{row_label}\n{axis_label(h, b)}" if c == 0 else "")
                if r == 0:
                    ax.set_title(text)
        if mesh is not None:
            bar = fig.colorbar(
                mesh, ax=axes, label="final train loss (seed mean, nats)", shrink=0.8
            )
            plain = FuncFormatter(lambda v, _: f"{v:g}")
            bar.ax.yaxis.set_major_formatter(plain)
            bar.ax.yaxis.set_minor_formatter(plain)
        _suptitle(fig, f"Final training loss over {a} and {b}, one panel per {over}; "
                       "blank = diverged, star = optimum")  # fmt: skip
        return _save(fig, Path(path))


def axis_figure_names(h: HparamsAnalysis) -> dict[str, tuple[str, str]]:
    """{figure name: (title, kind)} of every axis figure a run allows (before drawing); kind is
    "axis_loss" (loss against one axis) or "axis_heatmap" (loss over a two-axis group)."""
    names = {}
    for group in h.groups:
        label = group_label(group)
        for name in group:
            if name != LR:
                names[f"axis_loss_{label}_{name}"] = (
                    f"Final training loss vs {name} ({label})",
                    "axis_loss",
                )
        if len(group) == 2:
            names[f"axis_heatmap_{label}"] = (
                f"Final training loss over {' and '.join(group)}",
                "axis_heatmap",
            )
    return names


def make_axis_figures(h: HparamsAnalysis | None, out_dir: str | Path) -> dict[str, Path]:
    """Draw every axis figure into ``out_dir``: {name: PNG path} (names of
    :func:`axis_figure_names`); empty for a run without axes."""
    if h is None:
        return {}
    out_dir = Path(out_dir)
    drawn: dict[str, Path | None] = {}
    for group in h.groups:
        label = group_label(group)
        for name in group:
            if name != LR:
                key = f"axis_loss_{label}_{name}"
                drawn[key] = plot_axis_loss(h, out_dir / f"{key}.png", group, name)
        if len(group) == 2:
            key = f"axis_heatmap_{label}"
            drawn[key] = plot_axis_heatmap(h, out_dir / f"{key}.png", group)
    return {name: p for name, p in drawn.items() if p is not None}
