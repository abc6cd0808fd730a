"""The studio's figures, drawn with matplotlib's object API (pyplot's global state is not thread-safe).

matplotlib loads only when a figure is drawn, not when the studio's modules are imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..monitor import Trace
    from ..probes import ProbeSet


def trace_figure(
    steered_trace: Trace | None, reference: Trace | None = None, total_seconds: float | None = None
) -> Figure:
    """C(t) per trait, threshold, edit ticks; the unsteered run's C(t) dotted for comparison."""
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
    if total_seconds:
        ax.set_xlim(0, total_seconds)
    fig.tight_layout()
    return fig


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
