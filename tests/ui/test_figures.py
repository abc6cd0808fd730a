"""The studio's figures: live trace with its unsteered reference, probe heatmaps, spectrograms."""

from __future__ import annotations

from helpers import make_probes
from smitin.options import GenerationOptions
from smitin.steering import Steer
from smitin.ui import figures, live, session


def test_figures(tiny):
    probes = make_probes(tiny.layout)
    r = live.run_generation(
        tiny, [Steer(probes, alpha=4)], live.Request(options=GenerationOptions(duration=0.3)), lambda _s: None
    )
    ref = live.run_generation(
        tiny,
        session.unsteered([Steer(probes)]),
        live.Request(options=GenerationOptions(duration=0.3)),
        lambda _s: None,
    )
    fig = figures.trace_figure(r.trace, ref.trace, total_seconds=0.5)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "drums C(t)" in labels and "drums C(t) unsteered" in labels
    assert fig.axes[0].get_xlim() == (0, 0.5)
    assert figures.trace_figure(None).axes[0].get_title().startswith("monitor: waiting")
    assert len(figures.heatmap_figure([probes, probes]).axes) == 4  # two maps, two colour bars
    assert figures.heatmap_figure([]) is None
    named = [("a", r.audio[0]), ("b", ref.audio[0])]
    assert len(figures.spectrogram_figure(named, tiny.sample_rate).axes) == 2
