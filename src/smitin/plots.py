"""Figures people would rather look at than read: head accuracy map, monitor trace, spectrogram."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .monitor import WANT_WORDS, Trace  # noqa: E402
from .probes import ProbeSet  # noqa: E402


def heatmap(probes: ProbeSet, ax=None):
    """Layer x head validation accuracy, the monitored heads marked."""
    ax = ax or plt.figure(figsize=(6, 4)).gca()
    acc = probes.accuracy.float().numpy()
    im = ax.imshow(acc, aspect="auto", origin="lower", cmap="viridis", vmin=min(0.5, acc.min()), vmax=1)
    top = probes.top(16).numpy()
    heads = acc.shape[1]
    ax.scatter(
        top % heads, top // heads, marker="s", facecolors="none", edgecolors="red", s=30, label="monitored"
    )
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title(f"{probes.trait}: probe accuracy (best {acc.max():.2f})")
    ax.figure.colorbar(im, ax=ax, label="validation accuracy")
    ax.legend(loc="upper right", fontsize=7)
    return ax


LANE_COLORS = {"add": "tab:green", "remove": "tab:red", "free": "0.55", "keep": "tab:blue"}  # shaded wishes


def laned_traits(tr: Trace) -> list[int]:
    """Indices of the traits that followed a lane or were kept, and whose wishes were recorded."""
    if tr.want is None:
        return []
    settings = tr.settings.get("traits", [])
    return [i for i, s in enumerate(settings[: len(tr.traits)]) if s.get("lane") or s.get("keep")]


def shade_lanes(ax, tr: Trace) -> list:
    """Shade each laned trait's wishes behind the curves (add green, remove red, free grey, keep blue).

    Several laned traits share the height in strips, bottom to top in trait order, each named at
    its right edge. Returns legend handles for the wishes ([] when no trait had a lane).
    """
    from matplotlib.patches import Patch

    laned = laned_traits(tr)
    if not laned or tr.want is None or len(tr.want) == 0:
        return []
    edges = np.arange(len(tr.want) + 1) / tr.frame_rate
    n = len(laned)
    for k, i in enumerate(laned):
        words = tr.wanted(i)
        start = 0
        for s in range(1, len(words) + 1):
            if s == len(words) or words[s] != words[start]:
                ax.axvspan(
                    edges[start],
                    edges[s],
                    ymin=k / n,
                    ymax=(k + 1) / n,
                    color=LANE_COLORS[words[start]],
                    alpha=0.15,
                    lw=0,
                    zorder=0,
                )
                start = s
        if n > 1:
            ax.text(
                0.995,
                (k + 0.5) / n,
                tr.traits[i],
                transform=ax.transAxes,
                ha="right",
                va="center",
                fontsize=7,
                alpha=0.7,
            )
    return [Patch(color=LANE_COLORS[w], alpha=0.3, label=f"lane: {w}") for w in WANT_WORDS.values()]


def trace(tr: Trace, ax=None, sample: int = 0):
    """C(t) per trait with its threshold, the steps where the edit was applied, and any lanes shaded."""
    ax = ax or plt.figure(figsize=(7, 3)).gca()
    if len(tr.c) == 0:
        ax.set_title("no steering trace")
        return ax
    lanes = shade_lanes(ax, tr)
    t = np.arange(len(tr.c)) / tr.frame_rate
    applied = tr.applied.numpy()
    for i, name in enumerate(tr.traits):
        (line,) = ax.plot(t, tr.c[:, sample, i].numpy(), label=f"{name} C(t)")
        tau = tr.settings.get("traits", [{}] * len(tr.traits))[i].get("threshold")
        if tau is not None:
            ax.axhline(tau, color=line.get_color(), ls="--", lw=0.8)
        on = applied[:, sample, i]
        ax.scatter(t[on], np.full(on.sum(), -0.04 - 0.04 * i), marker="|", color=line.get_color(), s=40)
    ax.set_ylim(-0.1 - 0.04 * len(tr.traits), 1.02)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("probe value C")
    ax.set_title("monitor: C(t), threshold (dashed), edits (ticks)" + (", lanes (shaded)" if lanes else ""))
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(handles=handles + lanes, loc="upper right", fontsize=7)
    return ax


def spectrogram(audio: np.ndarray, sample_rate: int, ax=None, title: str = ""):
    ax = ax or plt.figure(figsize=(7, 3)).gca()
    ax.specgram(
        np.asarray(audio, dtype=np.float32) + 1e-9, NFFT=1024, Fs=sample_rate, noverlap=768, cmap="magma"
    )
    ax.set_xlabel("time (s)")
    ax.set_ylabel("Hz")
    ax.set_title(title)
    return ax


def report(
    path: str | Path,
    *,
    probes: Sequence[ProbeSet] = (),
    traces: Sequence[tuple[str, Trace]] = (),
    audio: Sequence[tuple[str, np.ndarray, int]] = (),
    notes: Mapping[str, str] | None = None,
) -> Path:
    """One PNG: heatmaps, traces and spectrograms stacked; `notes` (by clip name) go under each
    spectrogram's title (e.g. what the clip kept of the music)."""
    rows = len(probes) + len(traces) + len(audio)
    fig, axes = plt.subplots(max(rows, 1), 1, figsize=(8, 2.8 * max(rows, 1)), squeeze=False)
    slots = list(axes[:, 0])
    for p in probes:
        heatmap(p, slots.pop(0))
    for name, tr in traces:
        ax = slots.pop(0)
        trace(tr, ax)
        ax.set_title(f"{name}: {ax.get_title()}")
    for name, a, sr in audio:
        note = (notes or {}).get(name)
        spectrogram(a, sr, slots.pop(0), title=f"{name}\n{note}" if note else name)
    return save(fig, path)


def save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
