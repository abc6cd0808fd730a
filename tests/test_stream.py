"""The streaming engine: what it plays, what a hand on the controls does, Stop, and endless windows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import make_probes
from smitin import architectures
from smitin.controls import Controls
from smitin.generate import generate, max_seconds
from smitin.steering import Steer
from smitin.stream import stream

pytestmark = pytest.mark.filterwarnings("ignore:.*monitor threshold.*:UserWarning")


def _steer(tiny, **kw) -> Steer:
    return Steer(make_probes(tiny.layout, "drums"), **{"alpha": 4.0, "heads": 4, **kw})


def test_a_stream_plays_what_generate_makes(tiny):
    steers = [_steer(tiny, threshold=0.9)]
    s = stream(tiny, None, steers, duration=1.5, seed=3)
    chunks = list(s)
    result = s.result()
    alone = generate(tiny, None, steer=steers, duration=1.5, seed=3, progress=False)
    assert torch.equal(result.codes, alone.codes)  # the same engine: same seed, same codes
    assert torch.equal(result.trace.c, alone.trace.c[: result.codes.shape[-1]])
    hop = tiny.sample_rate // round(tiny.frame_rate)
    assert len(chunks) >= 5 and sum(len(c.audio) for c in chunks) == result.codes.shape[-1] * hop
    assert [c.start for c in chunks] == pytest.approx([0.0, *[c.end for c in chunks[:-1]]])  # no gap
    whole = tiny.decode(result.codes)[0].numpy()  # the chunks are the whole-clip decode (EnCodec)
    assert np.abs(result.audio[0] - whole).max() <= 1e-4 * np.abs(whole).max()


@pytest.mark.parametrize(
    ("monitor", "new", "engine"),
    [(False, 1.5, "eager"), (False, -2.0, "eager"), (True, 7.0, "eager"), (True, -3.0, "captured")],
    ids=["weaker", "remove-instead", "monitored-stronger", "captured-monitored-remove"],
)
def test_a_change_mid_run_makes_the_codes_of_the_same_change_laid_out_from_the_start(
    tiny, monitor, new, engine
):
    """Change the strength while it plays; then schedule the same change, at the step the trace
    says it took effect, as a lane from the start: same seed, the same codes (also on the captured
    step, whose graph reads the changed per-step buffers)."""
    steer = _steer(tiny, monitor=monitor, threshold=0.6)
    # paced: the change lands mid-run
    s = stream(tiny, None, [steer], duration=2.0, seed=5, ahead_s=0.2, engine=engine)
    for i, _chunk in enumerate(s):
        if i == 2:
            s.controls.set_strength("drums", new)
    result = s.result()
    (change,) = result.trace.changes
    assert change["trait"] == "drums" and change["what"] == "alpha"
    assert (change["old"], change["new"]) == (4.0, new)
    step = change["step"]
    assert 0 < step < result.codes.shape[-1] - 10 and change["time"] == pytest.approx(step / tiny.frame_rate)
    at = step / tiny.frame_rate
    want = "add" if new > 0 else "remove"
    lane = [(0, at, "add"), (at, 2.0, want, abs(new))]
    laid = generate(
        tiny,
        None,
        steer=[_steer(tiny, monitor=monitor, threshold=0.6, lane=lane)],
        duration=2.0,
        seed=5,
        progress=False,
        engine=engine,
    )
    assert result.trace.settings["engine"] == laid.trace.settings["engine"] == engine
    assert torch.equal(result.codes, laid.codes)
    assert torch.equal(result.trace.g, laid.trace.g[: len(result.trace.g)])
    unchanged = generate(tiny, None, steer=[steer], duration=2.0, seed=5, progress=False, engine=engine)
    assert not torch.equal(result.codes, unchanged.codes)  # the change did change the music
    assert result.trace.wanted("drums")[step] == want


def test_monitor_and_lane_change_while_it_plays_and_are_recorded(tiny):
    s = stream(tiny, None, [_steer(tiny, threshold=0.6)], duration=2.0, seed=1, ahead_s=0.2)
    for i, _chunk in enumerate(s):
        if i == 1:
            s.controls.set_monitor("drums", False)
        if i == 3:
            s.controls.set_lane("drums", "0-1.6:remove")
    trace = s.result().trace
    monitor, lane = trace.changes
    assert (monitor["what"], monitor["old"], monitor["new"]) == ("monitor", True, False)
    assert (lane["what"], lane["old"], lane["new"]) == ("lane", None, "0-1.6:remove")
    assert monitor["step"] < lane["step"]
    assert bool((trace.g[monitor["step"] : lane["step"], 0, 0] == 1).all())  # monitor off: plain ITI
    wants = trace.wanted("drums")
    assert wants[lane["step"] - 1] == "add" and wants[lane["step"]] == "remove"
    assert trace.to_dict()["changes"][0]["what"] == "monitor"


def test_controls_refuse_a_trait_the_run_does_not_have(tiny):
    s = stream(tiny, None, [_steer(tiny)], duration=0.5, seed=0)
    with pytest.raises(ValueError, match="no trait 'bass' in this run"):
        s.controls.set_strength("bass", 2)
    list(s)


def test_stop_ends_cleanly_and_keeps_what_was_made(tiny):
    s = stream(tiny, None, [_steer(tiny)], endless=True, seed=2, ahead_s=0.3)
    got = []
    for chunk in s:
        got.append(chunk)
        if len(got) == 4:
            s.stop()
    result = s.result()
    hop = tiny.sample_rate // round(tiny.frame_rate)
    frames = result.codes.shape[-1]
    assert 4 <= len(got) and 0 < frames < 200  # stopped long before its window's end
    assert result.audio.shape == (1, frames * hop) and len(result.trace.c) == frames
    assert result.trace.settings["stream"]["stopped"] is True


def test_endless_goes_on_past_the_positions_in_windows(tmp_path):
    """A model with 120 positions makes at most 2.3 s at once; an endless stream goes on from its last 0.5 s."""
    model = architectures.build("tiny", seed=0)
    model.model.config.decoder.max_position_embeddings = 120
    window = max_seconds(model, 0.5)
    controls = Controls(["drums"])
    s = stream(model, None, [_steer(model)], endless=True, context_s=0.5, seed=4, controls=controls)
    made = 0.0
    for chunk in s:
        made = chunk.end
        if made > 1.0 and not controls.applied and controls.pending == 0:
            controls.set_strength("drums", -3.0)
        if made >= 3 * window:
            s.stop()
    result = s.result()
    seconds = result.codes.shape[-1] / model.frame_rate
    assert seconds >= 3 * window > max_seconds(model)  # past what one call can make
    assert result.trace.settings["stream"]["windows"] >= 3
    assert len(result.trace.c) == result.codes.shape[-1]
    # the change made in the first window holds in the later ones
    (change,) = result.trace.changes
    assert change["new"] == -3.0
    assert set(result.trace.wanted("drums")[change["step"] :]) == {"remove"}
