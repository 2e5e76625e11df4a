"""Figures of a sweep's analysis, one PNG each (seaborn on matplotlib's Agg canvas).

Every figure is drawn on a stand-alone :class:`matplotlib.figure.Figure` (no pyplot state, so no
global backend switch and nothing left open), inside seaborn style contexts (no global theme).
Panels: one column per scheme (or per block depth), one row per (optimizer, block depth); legends
sit outside the axes, on the right or under each panel.

    loss_vs_lr_<axis>  final training loss vs log2 learning rate, a line per depth (width)
    eta_star_<axis>    log2 eta* vs depth (width) for every scheme, seed intervals, brackets
    movement_depth     own movement and relative weight change per layer role vs depth, log-log
    training_curves    training loss vs step at each depth's eta*
    horizon_<axis>     drift of eta* per doubling vs training steps, seed-interval bands
    loss_vs_lr_path    final training loss vs log2 learning rate, a line per model-path point
    eta_star_path      log2 eta* vs log2(n / n0) along the model path, drift slope in the legend

The figures of axes beyond the learning rate are in :mod:`hptransfer.reports.axis_figures`.
"""

from __future__ import annotations

import dataclasses
import io
import math
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
from matplotlib.transforms import blended_transform_factory
from PIL import Image

from hptransfer.network.schemes import scheme_label
from hptransfer.stats.analysis import (
    AXES,
    OTHER_AXIS,
    Analysis,
    held_value,
    role_order,
    scheme_order,
    training_curves,
)
from hptransfer.stats.intervals import MIN_SEEDS_T
from hptransfer.stats.rules import drift_band

DPI = 110
PANEL = (3.1, 2.5)  # inches per panel
AXIS_LABEL = {"depth": "depth L (blocks)", "width": "width n"}
AXIS_SYMBOL = {"depth": "L", "width": "n"}
STAT_LABEL = {
    "own_movement": "own movement\nRMS(dW x) / RMS(W0 x)",
    "weight_change": "weight change\n|W - W0| / |W0|",
    "total_movement": "total movement\nRMS(a - a0) / RMS(a0)",
}


def _style():
    return sns.axes_style("whitegrid"), sns.plotting_context("paper", font_scale=1.05)


def _figure(nrows: int, ncols: int, extra_width: float = 2.0, panel=PANEL):
    fig = Figure(
        figsize=(panel[0] * ncols + extra_width, panel[1] * nrows + 0.6),
        dpi=DPI,
        layout="constrained",
    )
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _suptitle(fig: Figure, text: str) -> None:
    """A figure title wrapped to the figure's width (about 10 characters per inch)."""
    width = max(int(fig.get_figwidth() * 10), 40)
    fig.suptitle("\n".join(textwrap.wrap(text, width)))


def _save(fig: Figure, path: Path) -> Path:
    """Write a PNG reduced to a 256-colour palette (a third of the size, same look for plots)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=DPI, format="png", bbox_inches="tight", pad_inches=0.15)
    buffer.seek(0)
    with Image.open(buffer) as image:
        image.convert("RGB").quantize(256, dither=Image.Dither.NONE).save(path, optimize=True)
    return path


def _facet_rows(df: pd.DataFrame, keys: Sequence[str] = ("family", "optimizer", "block_depth")):
    """[(selection dict, label)] for each combination of ``keys`` present, label naming only the
    keys that vary (block depth always)."""
    keys = [k for k in keys if k in df.columns]
    combos = df[keys].drop_duplicates().sort_values(keys)
    out = []
    for _, r in combos.iterrows():
        parts = []
        for k in keys:
            if k == "block_depth":
                parts.append(f"k={int(r[k])}")
            elif df[k].nunique() > 1:
                parts.append(str(r[k]))
        out.append(({k: r[k] for k in keys}, ", ".join(parts)))
    return out


def _mask(df: pd.DataFrame, sel: dict) -> pd.Series:
    m = pd.Series(True, index=df.index)
    for k, v in sel.items():
        m &= df[k] == v
    return m


def _sequential(values: Sequence) -> dict:
    colors = sns.color_palette("viridis", len(values) + 1)[: len(values)]
    return dict(zip(values, colors, strict=True))


def _scheme_colors(schemes: Sequence[str]) -> dict:
    return dict(zip(schemes, sns.color_palette("colorblind", len(schemes)), strict=True))


def _log2_axis(ax, values: Sequence[float], which: str = "x") -> None:
    """A log2 axis with ticks at the swept values, labelled as plain integers."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log", base=2)
    axis.set_major_locator(FixedLocator(sorted(values)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_locator(NullLocator())


def _log_y(ax) -> None:
    """Log y axis labelled with plain numbers; intermediate ticks labelled when the axis spans
    little more than a decade (so a loss range of 0.3 to 2 still gets several labels)."""
    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    decades = math.log10(hi / lo) if lo > 0 and hi > lo else 3.0
    subs = (2, 3, 4, 5, 6, 8) if decades < 0.6 else (2, 3, 5) if decades < 1.3 else ()

    def minor(v, _):
        digit = int(round(v / 10 ** math.floor(math.log10(v) + 1e-9)))
        return f"{v:g}" if digit in subs else ""

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(minor))


def _optimum_marker(edge) -> tuple[str, bool]:
    """(marker, filled): a filled star for a refined optimum, a hollow diamond at the best grid
    rate of a censored one (the optimum is only known to lie in its bracket)."""
    if pd.isna(edge):
        return "*", True
    return "D", False


# --------------------------------------------------------------------------------------------
# (a, c) loss vs learning rate


def plot_loss_vs_lr(a: Analysis, path: str | Path, axis: str = "depth") -> Path | None:
    """Final training loss (seed mean, band = min-max over seeds) vs log2 learning rate, one
    line per value of ``axis`` at the held value of the other axis; one panel per scheme, one
    row per (optimizer, block depth). eta* is marked (a hollow diamond with its bracket as a
    horizontal bar where it is censored);
    rates at which a seed diverged are marked x at the top. None when ``axis`` has one value."""
    held = held_value(a.optima, axis)
    if held is None:
        return None
    other = OTHER_AXIS[axis]
    opt = a.optima[a.optima[other] == held]
    cur = a.curves[a.curves[other] == held]
    fin = a.finals[(a.finals[other] == held) & ~a.finals["diverged"]]
    labels = {v: f"{AXIS_SYMBOL[axis]} = {v}" for v in sorted(opt[axis].unique())}
    title = (
        f"Final training loss (mean of last {a.last_evals} evaluations) vs learning rate, "
        f"one line per {axis}; {other} {AXIS_SYMBOL[other]} = {held}"
    )
    return _loss_vs_lr_figure(opt, cur, fin, axis, labels, title, path)


def _loss_vs_lr_figure(
    opt: pd.DataFrame,
    cur: pd.DataFrame,
    fin: pd.DataFrame,
    axis: str,
    labels: dict,
    title: str,
    path: str | Path,
) -> Path:
    """The panels of :func:`plot_loss_vs_lr` for the given optima, curves and finals (stable
    replicas), one line per value of column ``axis`` named by ``labels``."""
    rows, schemes = _facet_rows(opt), scheme_order(opt["scheme"].unique())
    values = sorted(opt[axis].unique())
    colors = _sequential(values)
    grids = cur.groupby("scheme")["log2_lr"].agg(["min", "max"])  # grids may differ by scheme
    with _style()[0], _style()[1]:
        fig, axes = _figure(len(rows), len(schemes))
        for r, (sel, row_label) in enumerate(rows):
            for c, scheme in enumerate(schemes):
                ax = axes[r, c]
                s = sel | {"scheme": scheme}
                cs = cur[_mask(cur, s)]
                stable = cs[(cs["frac_diverged"] == 0) & np.isfinite(cs["loss_mean"])]
                f = fin[_mask(fin, s)].merge(
                    stable[[*AXES, "log2_lr"]], on=[*AXES, "log2_lr"], how="inner"
                )
                if len(f):
                    sns.lineplot(
                        data=f,
                        x="log2_lr",
                        y="final_train_loss",
                        hue=axis,
                        palette=colors,
                        estimator="mean",
                        errorbar=("pi", 100),
                        marker="o",
                        markersize=3,
                        linewidth=1.2,
                        legend=False,
                        ax=ax,
                    )
                top = stable["loss_hi"].max() if len(stable) else 1.0
                bottom = stable["loss_lo"].min() if len(stable) else 0.1
                _draw_optima(ax, opt[_mask(opt, s)], axis, colors)
                _draw_diverged(ax, cs, axis, values, colors)
                ax.set_yscale("log")
                if np.isfinite(top) and np.isfinite(bottom) and top > 0 and bottom > 0:
                    ax.set_ylim(bottom / 1.15, top * 2.2)  # headroom for the divergence marks
                ax.set_xlim(grids.loc[scheme, "min"] - 0.4, grids.loc[scheme, "max"] + 0.4)
                _log_y(ax)
                ax.set_xlabel("log2 learning rate (octaves)" if r == len(rows) - 1 else "")
                ax.set_ylabel(f"{row_label}\nfinal train loss (nats)" if c == 0 else "")
                if r == 0:
                    ax.set_title(scheme_label(scheme))
        handles = [Line2D([], [], color=colors[v], lw=2, label=labels[v]) for v in values]
        handles += [
            Patch(color="0.6", alpha=0.35, label="band: min-max\nover seeds"),
            Line2D([], [], ls="", marker="*", ms=11, mfc="0.3", mec="k", label="eta* (parabola)"),
            Line2D(
                [],
                [],
                ls="-",
                marker="D",
                ms=6,
                mfc="white",
                mec="0.3",
                color="0.3",
                label="censored eta*\n(and its bracket)",
            ),
            Line2D([], [], ls="", marker="x", ms=6, color="0.3", label="a seed diverged"),
        ]
        fig.legend(handles=handles, loc="outside right center", frameon=False)
        _suptitle(fig, title)
        return _save(fig, Path(path))


def _path_rows(a: Analysis, df: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``df`` at a point of the model path."""
    opt = a.path_optima
    return df.merge(opt[["width", "depth"]].drop_duplicates(), on=["width", "depth"])


def plot_loss_vs_lr_path(a: Analysis, path: str | Path) -> Path | None:
    """:func:`plot_loss_vs_lr` along the model path: final training loss vs log2 learning
    rate, one line per path point (n_i, L_i). None without a path."""
    opt = a.path_optima
    if opt is None or opt.empty or opt["path_index"].nunique() < 2:
        return None
    labels = dict(zip(opt["width"], opt["point"], strict=True))
    fin = _path_rows(a, a.finals)
    title = (
        f"Final training loss (mean of last {a.last_evals} evaluations) vs learning rate, "
        "one line per point of the model path"
    )
    return _loss_vs_lr_figure(
        opt, _path_rows(a, a.curves), fin[~fin["diverged"]], "width", labels, title, path
    )


def _draw_optima(ax, opt: pd.DataFrame, axis: str, colors: dict) -> None:
    for _, o in opt.iterrows():
        if not (np.isfinite(o["log2_eta_star"]) and np.isfinite(o["best_loss"])):
            continue
        marker, filled = _optimum_marker(o["edge"])
        color = colors[o[axis]]
        if not filled:
            lo = max(o["bracket_lo"], o["grid_min"] - 0.4)
            hi = min(o["bracket_hi"], o["grid_max"] + 0.4)
            ax.plot([lo, hi], [o["best_loss"]] * 2, color=color, lw=1.6, alpha=0.8, zorder=5)
        ax.plot(
            o["log2_eta_star"],
            o["best_loss"],
            ls="",
            marker=marker,
            ms=11 if filled else 8,
            mfc=color if filled else "white",
            mec="k" if filled else color,
            mew=0.8 if filled else 1.6,
            zorder=5,
        )


def _draw_diverged(ax, cs: pd.DataFrame, axis: str, values: list, colors: dict) -> None:
    """x at the top of the panel for each rate where a seed diverged, one tier per line."""
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    for i, v in enumerate(values):
        d = cs[(cs[axis] == v) & (cs["frac_diverged"] > 0)]
        if len(d):
            y = 0.96 - 0.045 * i
            ax.scatter(
                d["log2_lr"],
                [y] * len(d),
                marker="x",
                s=14,
                color=colors[v],
                transform=trans,
                zorder=4,
            )


# --------------------------------------------------------------------------------------------
# (b, c) eta* vs depth / width


def plot_eta_star(a: Analysis, path: str | Path, axis: str = "depth") -> Path | None:
    """log2 eta* vs ``axis`` (log2 axis) for every scheme, one panel per block depth (row per
    optimizer), at the held value of the other axis. Bars: the seed interval of eta* (t, or the
    range of 2 seeds); a censored optimum is drawn as its bracket (:func:`_draw_eta_series`).
    Each panel's legend gives the drift slope per scheme. None when ``axis`` has one value."""
    held = held_value(a.optima, axis)
    if held is None:
        return None
    other = OTHER_AXIS[axis]
    opt = a.optima[a.optima[other] == held]
    drift = a.drift[(a.drift["axis"] == axis) & (a.drift[other] == held)] if len(a.drift) else None
    pct = round(100 * a.ci)
    return _eta_star_figure(
        opt,
        drift,
        axis,
        None,
        f"{AXIS_LABEL[axis]}, log2 axis",
        f"slope per doubling of {axis} [{_interval_words(opt, pct)}]",
        f"Optimal learning rate vs {axis} ({other} {AXIS_SYMBOL[other]} = {held}); "
        f"bars: {_interval_words(opt, pct)}",
        path,
    )


def plot_eta_star_path(a: Analysis, path: str | Path) -> Path | None:
    """:func:`plot_eta_star` along the model path: log2 eta* vs x = log2(n / n_0) (the depth
    grows with the width), seed-interval bars, each scheme's drift slope per doubling of the
    width in the legend (:func:`hptransfer.stats.hparams.path_drift`). None without a path."""
    opt = a.path_optima
    if opt is None or opt.empty or opt["path_index"].nunique() < 2:
        return None
    ticks = {
        float(x): f"{x:g} ({int(n)}, {int(L)})"
        for x, n, L in zip(opt["path_x"], opt["width"], opt["depth"], strict=True)
    }
    pct = round(100 * a.ci)
    return _eta_star_figure(
        opt,
        a.path_drift,
        "path_x",
        ticks,
        "log2(n / n0) along the model path (n, L)",
        f"slope per doubling of n along the path [{_interval_words(opt, pct)}]",
        f"Optimal learning rate along the model path; bars: {_interval_words(opt, pct)}",
        path,
    )


def _eta_star_figure(
    opt: pd.DataFrame,
    drift: pd.DataFrame | None,
    axis: str,
    ticks: dict | None,
    xlabel: str,
    legend_title: str,
    title: str,
    path: str | Path,
) -> Path:
    """The panels of :func:`plot_eta_star`: log2 eta* vs column ``axis`` per scheme, one panel
    per (family, optimizer, block depth). ticks = None: ``axis`` holds shape sizes drawn on a
    log2 axis; else it is already log2 and ticks = {value: label}."""
    panels = _facet_rows(opt)  # one panel per (family, optimizer, block depth)
    ncols = min(len(panels), 3)
    nrows = math.ceil(len(panels) / ncols)
    schemes = scheme_order(opt["scheme"].unique())
    colors = _scheme_colors(schemes)
    values = sorted(opt[axis].unique())
    span = math.log2(max(values) / min(values)) if ticks is None else max(values) - min(values)
    jitter = 0.03 * span  # octaves, so bars do not overlap
    offsets = dict(zip(schemes, np.linspace(-jitter, jitter, len(schemes)), strict=True))
    with _style()[0], _style()[1]:
        fig, axes = _figure(nrows, ncols, extra_width=0.4, panel=(4.2, 3.6))
        for ax in axes.flat[len(panels) :]:
            ax.set_visible(False)
        for ax, (sel, panel_label) in zip(axes.flat, panels, strict=False):
            _draw_grid_edges(ax, opt[_mask(opt, sel)], colors)
            for scheme in schemes:
                s = opt[_mask(opt, sel | {"scheme": scheme})].sort_values(axis)
                if s.empty:
                    continue
                label = f"{scheme_label(scheme)}: {_slope_text(drift, sel, scheme)}"
                _draw_eta_series(ax, s, axis, colors[scheme], offsets[scheme], label, ticks is None)
            if ticks is None:
                _log2_axis(ax, values)
            else:
                ax.set_xticks(list(ticks), list(ticks.values()), fontsize="small")
            ax.set_xlabel(xlabel)
            ax.set_ylabel("log2 eta* (octaves)")
            ax.set_title(panel_label.replace("k=", "block depth k = "))
            ax.legend(
                loc="upper center",
                bbox_to_anchor=(0.5, -0.25),
                frameon=False,
                fontsize="small",
                title=legend_title,
                title_fontsize="small",
            )
        handles = [
            Line2D([], [], ls="", marker="o", ms=6, mfc="0.3", mec="0.3", label="refined eta*"),
            Line2D(
                [],
                [],
                color="0.3",
                lw=2.2,
                alpha=0.6,
                marker="D",
                mfc="white",
                ms=5,
                label="censored: optimum\nin this bracket",
            ),  # fmt: skip
            Line2D([], [], ls="", marker="X", ms=7, color="0.3", label="every rate\ndiverged"),
            Line2D([], [], color="0.5", ls=":", label="grid edges\n(per scheme if they differ)"),
        ]
        fig.legend(
            handles=handles, loc="outside lower center", ncols=4 if ncols > 1 else 2, frameon=False
        )
        _suptitle(fig, title)
        return _save(fig, Path(path))


def _interval_words(opt: pd.DataFrame, pct: int) -> str:
    n = int(opt["n_seeds"].max())
    if n < 2:
        return "no interval: 1 seed"
    return f"{pct}% t-interval over {n} seeds" if n >= MIN_SEEDS_T else f"range of {n} seeds"


def _draw_grid_edges(ax, opt: pd.DataFrame, colors: dict) -> None:
    """Dotted lines at the ends of the learning-rate grid: grey when every scheme shares one
    grid, else one pair per scheme in its colour."""
    edges = opt.groupby("scheme")[["grid_min", "grid_max"]].agg(["min", "max"])
    lo, hi = edges[("grid_min", "min")], edges[("grid_max", "max")]
    if lo.nunique() == 1 and hi.nunique() == 1:
        for y in (lo.iloc[0], hi.iloc[0]):
            ax.axhline(y, color="0.5", ls=":", lw=1)
        return
    for scheme in edges.index:
        for y in (lo[scheme], hi[scheme]):
            ax.axhline(y, color=colors[scheme], ls=":", lw=1, alpha=0.8)


def _slope_text(drift: pd.DataFrame | None, sel: dict, scheme: str) -> str:
    if drift is None or drift.empty:
        return "no slope"
    d = drift[_mask(drift, sel | {"scheme": scheme})]
    if d.empty or not np.isfinite(d["slope"].iloc[0]):
        return "no slope"
    row = d.iloc[0]
    text = f"{row['slope']:+.2f}"
    if np.isfinite(row["slope_lo"]):
        kind = "" if row["interval"] == "t" else " range"
        text += f" [{row['slope_lo']:+.2f}, {row['slope_hi']:+.2f}]{kind}"
    if row["n_censored"]:
        text += f"; bracketed: {row['slope_min']:+.2f} to {row['slope_max']:+.2f}"
    return text


def _draw_eta_series(
    ax, s: pd.DataFrame, axis: str, color, offset: float, label: str, log_x: bool = True
) -> None:
    """A scheme's eta* along ``axis``: located optima as dots with their seed interval, censored
    ones as their bracket (a bar between the neighbouring grid rates, an arrow where it is open
    past the grid), shapes where every rate diverged as an "x" at the panel's top. ``offset``
    (octaves) shifts the points: x 2^offset on a log2 axis (log_x), x + offset on a linear one."""
    x = s[axis].to_numpy(float) * 2.0**offset if log_x else s[axis].to_numpy(float) + offset
    y = s["log2_eta_star"].to_numpy(float)
    censored = s["edge"].notna().to_numpy()
    ax.plot(x, np.where(np.isfinite(y), y, np.nan), color=color, lw=1.4, label=label)
    if "log2_eta_lo" in s:
        lo = np.clip(y - s["log2_eta_lo"].to_numpy(float), 0, None)
        hi = np.clip(s["log2_eta_hi"].to_numpy(float) - y, 0, None)
        err = np.nan_to_num(np.vstack([lo, hi]))
        ok = ~censored & np.isfinite(y)
        ax.errorbar(x[ok], y[ok], yerr=err[:, ok], fmt="none", ecolor=color, elinewidth=1.1,
                    capsize=2.5)  # fmt: skip
        ax.plot(x[ok], y[ok], ls="", marker="o", ms=5.5, mfc=color, mec=color, zorder=4)
    grid_lo, grid_hi = s["grid_min"].min(), s["grid_max"].max()
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    for _, (xi, yi, r) in enumerate(zip(x, y, s.to_dict("records"), strict=True)):
        if r["edge_cause"] == "all_diverged" or not np.isfinite(yi):
            ax.plot(xi, 0.97, ls="", marker="X", ms=8, color=color, transform=trans, zorder=5)
            continue
        if pd.isna(r["edge"]):
            continue
        lo, hi = r["bracket_lo"], r["bracket_hi"]
        top, bottom = min(hi, grid_hi + 1.0), max(lo, grid_lo - 1.0)
        ax.plot([xi, xi], [bottom, top], color=color, lw=2.2, alpha=0.6, solid_capstyle="butt")
        ax.plot(xi, yi, ls="", marker="D", ms=5, mfc="white", mec=color, mew=1.5, zorder=4)
        for end, open_, sign in ((top, np.isinf(hi), 1), (bottom, np.isinf(lo), -1)):
            if open_:
                ax.annotate("", xy=(xi, end + 0.6 * sign), xytext=(xi, end),
                            arrowprops=dict(arrowstyle="-|>", color=color, lw=1.5))  # fmt: skip


# --------------------------------------------------------------------------------------------
# (d) feature movement


def plot_movement(
    a: Analysis,
    path: str | Path,
    stats: Sequence[str] = ("own_movement", "weight_change"),
) -> Path | None:
    """Feature movement at each depth's eta* vs depth, log-log: one line per layer role, one
    panel per scheme, one row per (optimizer, block depth) and statistic; a dashed L^(-1/2)
    guide through hidden_1's first point (claim (c) of the report). None without a depth axis
    or movement columns."""
    held = held_value(a.optima, "depth")
    if held is None or a.movement.empty:
        return None
    mv = a.movement[(a.movement["width"] == held) & a.movement["stat"].isin(stats)]
    if mv.empty:
        return None
    facet = _facet_rows(mv)
    rows = [(sel, label, stat) for sel, label in facet for stat in stats]
    schemes = scheme_order(mv["scheme"].unique())
    roles = role_order(mv["role"].unique())
    colors = _role_colors(roles)
    depths = sorted(mv["depth"].unique())
    with _style()[0], _style()[1]:
        fig, axes = _figure(len(rows), len(schemes), extra_width=1.6, panel=(3.1, 2.3))
        for r, (sel, row_label, stat) in enumerate(rows):
            for c, scheme in enumerate(schemes):
                ax = axes[r, c]
                s = mv[_mask(mv, sel | {"scheme": scheme, "stat": stat})]
                s = s[s["value"] > 0]
                if len(s):
                    sns.lineplot(
                        data=s,
                        x="depth",
                        y="value",
                        hue="role",
                        palette=colors,
                        marker="o",
                        markersize=4,
                        legend=False,
                        ax=ax,
                    )
                    _half_guide(ax, s[s["role"] == "hidden_1"].sort_values("depth"))
                _log_y(ax)
                _log2_axis(ax, depths)
                ax.set_xlabel("depth L (blocks), log2 axis" if r == len(rows) - 1 else "")
                ax.set_ylabel(f"{row_label}: {STAT_LABEL.get(stat, stat)}" if c == 0 else "")
                if r == 0:
                    ax.set_title(scheme_label(scheme))
        handles = [
            Line2D([], [], color=colors[role], lw=2, marker="o", label=role) for role in roles
        ]
        handles.append(
            Line2D([], [], color="0.4", ls="--", label="slope -1/2 guide\n(through hidden_1)")
        )
        fig.legend(handles=handles, loc="outside right center", frameon=False, title="layer role")
        _suptitle(
            fig,
            f"Feature movement at each depth's eta* after training (final step, seed mean, "
            f"log-log); width n = {held}",
        )
        return _save(fig, Path(path))


def _role_colors(roles: Sequence[str]) -> dict:
    hidden = [r for r in roles if r.startswith("hidden_")]
    warm = sns.color_palette("flare", max(len(hidden), 1) + 1)
    colors = {r: warm[i] for i, r in enumerate(hidden)}
    colors |= {"input": (0.45, 0.45, 0.45), "readout": sns.color_palette("colorblind")[0]}
    others = [r for r in roles if r not in colors]
    colors |= dict(zip(others, sns.color_palette("dark", len(others)), strict=True))
    return {r: colors[r] for r in roles}


def _half_guide(ax, h1: pd.DataFrame) -> None:
    if len(h1) < 2:
        return
    d = h1["depth"].to_numpy(float)
    v0 = float(h1["value"].iloc[0])
    ax.plot(d, v0 * (d / d[0]) ** -0.5, color="0.4", ls="--", lw=1, zorder=1)


# --------------------------------------------------------------------------------------------
# (e) training curves


def plot_training_curves(a: Analysis, path: str | Path) -> Path | None:
    """Training loss vs step at each depth's eta* (the stable grid rate nearest it), one line
    per depth (band = min-max over seeds), one panel per scheme, one row per (optimizer, block
    depth); at the held width. With a single depth, one line per width at the held depth."""
    axis = "depth" if held_value(a.optima, "depth") is not None else "width"
    held = held_value(a.optima, axis)
    other = OTHER_AXIS[axis]
    opt = a.optima if held is None else a.optima[a.optima[other] == held]
    curves = training_curves(a.results, opt)
    curves = curves[np.isfinite(curves["train_loss"]) & (curves["step"] > 0)]
    if curves.empty:
        return None
    rows, schemes = _facet_rows(opt), scheme_order(opt["scheme"].unique())
    values = sorted(opt[axis].unique())
    colors = _sequential(values)
    sym = AXIS_SYMBOL[axis]
    with _style()[0], _style()[1]:
        fig, axes = _figure(len(rows), len(schemes))
        for r, (sel, row_label) in enumerate(rows):
            for c, scheme in enumerate(schemes):
                ax = axes[r, c]
                s = curves[_mask(curves, sel | {"scheme": scheme})]
                if len(s):
                    sns.lineplot(
                        data=s,
                        x="step",
                        y="train_loss",
                        hue=axis,
                        palette=colors,
                        errorbar=("pi", 100),
                        linewidth=1.2,
                        legend=False,
                        ax=ax,
                    )
                _log_y(ax)
                ax.set_xlabel("training step" if r == len(rows) - 1 else "")
                ax.set_ylabel(f"{row_label}\ntrain loss (nats)" if c == 0 else "")
                if r == 0:
                    ax.set_title(scheme_label(scheme))
        handles = [Line2D([], [], color=colors[v], lw=2, label=f"{sym} = {v}") for v in values]
        handles.append(Patch(color="0.6", alpha=0.35, label="band: min-max\nover seeds"))
        fig.legend(handles=handles, loc="outside right center", frameon=False)
        where = "" if held is None else f"; {other} {AXIS_SYMBOL[other]} = {held}"
        _suptitle(
            fig,
            f"Training loss (mean over each evaluation interval) at each {axis}'s eta* "
            f"(nearest stable grid rate){where}",
        )
        return _save(fig, Path(path))


# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# (e) the training horizon


def plot_horizon(a: Analysis, path: str | Path, axis: str = "depth") -> Path | None:
    """Drift of eta* per doubling of ``axis`` against training steps (each step's eta* from
    the losses up to it), one line per scheme with its seed interval as a band, one panel per
    (optimizer, block depth); the grey band is the rule's band for the measured range
    (:func:`hptransfer.stats.rules.drift_band`). None without a horizon table for ``axis``."""
    held = held_value(a.optima, axis)
    if held is None or a.horizon is None or a.horizon.empty:
        return None
    shapes = a.optima[a.optima[OTHER_AXIS[axis]] == held][axis]
    drift_limit = drift_band(shapes.min(), shapes.max())
    other = OTHER_AXIS[axis]
    h = a.horizon[(a.horizon["axis"] == axis) & (a.horizon[other] == held)]
    if h.empty or h["step"].nunique() < 2:
        return None
    panels = _facet_rows(h)
    ncols = min(len(panels), 3)
    nrows = math.ceil(len(panels) / ncols)
    schemes = scheme_order(h["scheme"].unique())
    colors = _scheme_colors(schemes)
    pct = round(100 * a.ci)
    with _style()[0], _style()[1]:
        fig, axes = _figure(nrows, ncols, extra_width=1.6, panel=(4.2, 3.0))
        for ax in axes.flat[len(panels) :]:
            ax.set_visible(False)
        for ax, (sel, panel_label) in zip(axes.flat, panels, strict=False):
            ax.axhspan(-drift_limit, drift_limit, color="0.9", zorder=0)
            ax.axhline(0.0, color="0.6", lw=0.8)
            for scheme in schemes:
                d = h[_mask(h, sel | {"scheme": scheme})].sort_values("step")
                if d.empty:
                    continue
                ax.plot(d["step"], d["slope"], color=colors[scheme], lw=1.5, marker="o", ms=3)
                ax.fill_between(d["step"], d["slope_lo"], d["slope_hi"], color=colors[scheme],
                                alpha=0.2, lw=0)  # fmt: skip
            lim = np.nanmax(np.abs(h[_mask(h, sel)][["slope", "slope_lo", "slope_hi"]].to_numpy()))
            if np.isfinite(lim):
                ax.set_ylim(-min(max(lim * 1.1, 0.5), 4.0), min(max(lim * 1.1, 0.5), 4.0))
            ax.set_xlabel("training steps")
            ax.set_ylabel(f"drift (octaves / doubling of {axis})")
            ax.set_title(panel_label.replace("k=", "block depth k = "))
        band = _interval_words(a.optima, pct)
        handles = [Line2D([], [], color=colors[s], lw=2, label=scheme_label(s)) for s in schemes]
        handles += [Patch(color="0.9", label=f"|drift| < {drift_limit:.2f}")]
        fig.legend(handles=handles, loc="outside right center", frameon=False)
        _suptitle(
            fig,
            f"Drift of eta* per doubling of {axis} vs training steps "
            f"({other} {AXIS_SYMBOL[other]} = {held}); bands: {band}",
        )
        return _save(fig, Path(path))


@dataclasses.dataclass(frozen=True)
class FigureKind:
    """One figure of a run: its title, how it is drawn (``draw(analysis, path)``, None when the
    run lacks what it needs) and what it needs, in words."""

    title: str
    draw: Callable[[Analysis, Path], Path | None]
    needs: str


FIGURES: dict[str, FigureKind] = {
    "loss_vs_lr_depth": FigureKind(
        "Final training loss vs learning rate across depth",
        lambda a, p: plot_loss_vs_lr(a, p, "depth"), "2 or more depths"),
    "eta_star_depth": FigureKind(
        "Optimal learning rate vs depth", lambda a, p: plot_eta_star(a, p, "depth"),
        "2 or more depths"),
    "loss_vs_lr_width": FigureKind(
        "Final training loss vs learning rate across width",
        lambda a, p: plot_loss_vs_lr(a, p, "width"), "2 or more widths"),
    "eta_star_width": FigureKind(
        "Optimal learning rate vs width", lambda a, p: plot_eta_star(a, p, "width"),
        "2 or more widths"),
    "movement_depth": FigureKind(
        "Feature movement per layer vs depth", plot_movement,
        "2 or more depths and feature-movement columns"),
    "training_curves": FigureKind(
        "Training curves at the optimal learning rate", plot_training_curves,
        "a finite training loss"),
    "horizon_depth": FigureKind(
        "Drift across depth vs training steps", lambda a, p: plot_horizon(a, p, "depth"),
        "2 or more depths and evaluations"),
    "horizon_width": FigureKind(
        "Drift across width vs training steps", lambda a, p: plot_horizon(a, p, "width"),
        "2 or more widths and evaluations"),
    "loss_vs_lr_path": FigureKind(
        "Final training loss vs learning rate along the model path", plot_loss_vs_lr_path,
        "a model path ([model] path)"),
    "eta_star_path": FigureKind(
        "Optimal learning rate along the model path", plot_eta_star_path,
        "a model path ([model] path)"),
}  # fmt: skip
"""The registry of a run's learning-rate figures (the axis figures are
:func:`hptransfer.reports.axis_figures.axis_figure_names`'), in report order."""


def make_figures(a: Analysis, out_dir: str | Path) -> dict[str, Path]:
    """Draw every figure of :data:`FIGURES` that the sweep's shapes allow into ``out_dir``:
    {name: PNG path}. The figures of axes beyond the learning rate are
    :func:`hptransfer.reports.axis_figures.make_axis_figures`'s (which draws with this module),
    called next to this one by the report."""
    out_dir = Path(out_dir)
    drawn = {name: kind.draw(a, out_dir / f"{name}.png") for name, kind in FIGURES.items()}
    return {name: p for name, p in drawn.items() if p is not None}
