"""The studio's figures, drawn with matplotlib's object API (pyplot's global state is not thread-safe).

matplotlib loads only when a figure is drawn, not when the studio's modules are imported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..lanes import Lane
    from ..monitor import Trace
    from ..probes import ProbeSet


def trace_figure(
    steered_trace: Trace | None,
    reference: Trace | None = None,
    total_seconds: float | None = None,
    lanes: Mapping[str, Lane] | None = None,
) -> Figure:
    """C(t) per trait, threshold, edit ticks; the unsteered run's C(t) dotted for comparison.

    `lanes` are drawn whole from the first step (a strip per laned trait along the bottom), so
    the page shows where the music is heading while the steps fill in.
    """
    from matplotlib.figure import Figure

    from .. import plots

    fig = Figure(figsize=(8, 3.2))
    ax = fig.add_subplot()
    if steered_trace is not None and len(steered_trace.c):
        plots.trace(steered_trace, ax)
    else:
        ax.set_title("monitor: waiting for the first step")
        ax.set_ylim(-0.2, 1.02)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("probe value C")
    if reference is not None and len(reference.c):
        t = np.arange(len(reference.c)) / reference.frame_rate
        for i, name in enumerate(reference.traits):
            ax.plot(t, reference.c[:, 0, i].numpy(), ls=":", color=f"C{i}", label=f"{name} C(t) unsteered")
        ax.legend(loc="upper right", fontsize=7)
    if lanes:
        _lane_strips(ax, lanes)
    if steered_trace is not None:
        _change_marks(ax, steered_trace)
    if total_seconds:
        ax.set_xlim(0, total_seconds)
    fig.tight_layout()
    return fig


def _change_marks(ax, trace: Trace) -> None:
    """A dashed line where each live change took effect, labelled with what changed (old -> new)."""
    for change in trace.changes:
        i = trace.traits.index(change["trait"]) if change["trait"] in trace.traits else 0
        ax.axvline(change["time"], color=f"C{i}", ls="--", lw=1)
        old, new = change["old"], change["new"]
        word = {"alpha": "", "monitor": "monitor ", "lane": "lane "}.get(change["what"], "")
        ax.annotate(
            f"{change['trait']} {word}{old if old is not None else '-'} -> {new if new is not None else '-'}",
            (change["time"], 1.0),
            xycoords=("data", "axes fraction"),
            fontsize=7,
            rotation=90,
            va="top",
            ha="right",
            color=f"C{i}",
        )


def _lane_strips(ax, lanes: Mapping[str, Lane]) -> None:
    """Each lane's spans as coloured strips along the bottom of the axes, one strip per trait."""
    from ..plots import LANE_COLORS

    height = 0.05
    for k, (trait, lane) in enumerate(lanes.items()):
        lo = k * height
        for span in lane.spans:
            ax.axvspan(
                span.start,
                span.end,
                ymin=lo,
                ymax=lo + height * 0.9,
                color=LANE_COLORS[span.want],
                alpha=0.7,
                lw=0,
            )
        ax.text(0.005, lo + height * 0.45, f"{trait} lane", transform=ax.transAxes, fontsize=6, va="center")


def heatmap_figure(probes: Sequence[ProbeSet]) -> Figure | None:
    """The layer x head accuracy map of each probe file, stacked."""
    if not probes:
        return None
    from matplotlib.figure import Figure

    from .. import plots

    fig = Figure(figsize=(7, 3.2 * len(probes)))
    for i, p in enumerate(probes):
        plots.heatmap(p, fig.add_subplot(len(probes), 1, i + 1))
    fig.tight_layout()
    return fig


def spectrogram_figure(named_audio: Sequence[tuple[str, np.ndarray]], sample_rate: int) -> Figure:
    """One spectrogram per (name, audio) pair, stacked."""
    from matplotlib.figure import Figure

    from .. import plots

    fig = Figure(figsize=(8, 2.6 * len(named_audio)))
    for i, (name, audio) in enumerate(named_audio):
        plots.spectrogram(audio, sample_rate, fig.add_subplot(len(named_audio), 1, i + 1), title=name)
    fig.tight_layout()
    return fig
