"""The trace plot: C(t), threshold and edits, with the lanes shaded behind them."""

import matplotlib.colors as mcolors
import pytest

from smitin import plots
from smitin.generate import generate
from smitin.steering import Steer

DUR = 0.5


def shaded(ax):
    """(x0, x1, y0, y1, colour name) of the vertical spans drawn on an axes."""
    names = {mcolors.to_hex(mcolors.to_rgb(c)): w for w, c in plots.LANE_COLORS.items()}
    out = []
    for p in ax.patches:
        box = p.get_path().get_extents(p.get_patch_transform())
        out.append((box.x0, box.x1, box.y0, box.y1, names.get(mcolors.to_hex(p.get_facecolor()[:3]))))
    return out


def test_the_trace_plot_shades_each_lane(tiny, probes_for, tmp_path):
    a = Steer(probes_for(tiny.layout, "drums", seed=1), alpha=4.0, lane="0-0.2:remove,0.2-0.5:add")
    b = Steer(probes_for(tiny.layout, "bass", seed=2), alpha=4.0, lane="0-0.3:free")
    c = Steer(probes_for(tiny.layout, "piano", seed=3), alpha=4.0)  # no lane: nothing shaded for it
    tr = generate(tiny, None, steer=[a, b, c], duration=DUR, seed=0, progress=False).trace
    ax = plots.trace(tr)
    spans = shaded(ax)
    drums = [s for s in spans if s[3] <= 0.5 + 1e-9]  # bottom strip: the first laned trait
    bass = [s for s in spans if s[2] >= 0.5 - 1e-9]
    assert [(round(x0, 2), round(x1, 2), w) for x0, x1, _, _, w in drums] == [
        (0.0, 0.2, "remove"),
        (0.2, 0.56, "add"),  # the lane's last span covers the delay pattern's last steps
    ]
    assert [w for *_, w in bass] == ["free", "add"]  # after its span: its constant behaviour
    assert {t.get_text() for t in ax.texts} == {"drums", "bass"}
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"lane: add", "lane: remove", "lane: free"} <= set(labels) and "drums C(t)" in labels
    assert "lanes (shaded)" in ax.get_title()
    assert plots.report(tmp_path / "t.png", traces=[("steered", tr)]).stat().st_size > 0


def test_no_lane_no_shading(tiny, probes_for):
    tr = generate(
        tiny, None, steer=[Steer(probes_for(tiny.layout), alpha=4.0)], duration=DUR, progress=False
    ).trace
    ax = plots.trace(tr)
    assert shaded(ax) == [] and "lane" not in ax.get_title()
    tr.want = None  # a trace from before lanes
    assert plots.shade_lanes(plots.trace(tr), tr) == []


@pytest.mark.parametrize("want", ["add", "remove", "free"])
def test_lane_colours_are_distinct(want):
    others = {c for w, c in plots.LANE_COLORS.items() if w != want}
    assert plots.LANE_COLORS[want] not in others
