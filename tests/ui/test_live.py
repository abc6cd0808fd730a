"""Generation as the studio runs it: same result as the engine, watched live, stoppable, previewed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import make_probes
from smitin.generate import generate
from smitin.options import GenerationOptions
from smitin.steering import Steer
from smitin.ui import live


def test_ui_generation_matches_the_engine_and_is_live(tiny):
    probes = make_probes(tiny.layout)
    request = live.Request(options=GenerationOptions(duration=0.4, seed=3))
    states = []
    recorder = live.CodeRecorder(tiny, 64)
    with recorder.recording():
        got = live.run_generation(tiny, [Steer(probes, alpha=4)], request, states.append)
    want = generate(tiny, None, steer=[Steer(probes, alpha=4)], duration=0.4, seed=3, progress=False)
    assert np.array_equal(got.audio, want.audio)
    assert torch.equal(got.trace.c, want.trace.c) and torch.equal(got.trace.edited, want.trace.edited)
    assert got.trace.settings["seed"] == 3
    # the live state is the one that steered, and the recorder saw the codes (one step behind)
    assert len(states) == 1 and live.live_trace(states[0]).c.shape == got.trace.c.shape
    frames = recorder.frames()
    assert frames.shape[1] == got.codes.shape[2] - 1
    assert torch.equal(frames, got.codes[0, :, : frames.shape[1]])


def _counted(backbone, fn):
    """Generate under capture-only hooks; how often each fired: [head hook calls, decoder steps]."""
    calls = [0, 0]

    def heads(_layer, _x):
        calls[0] += 1

    def steps(_past, _ids):
        calls[1] += 1

    with backbone.head_hooks(heads), backbone.decoder_steps(steps):
        result = fn()
    return result, calls


def test_a_cancelled_run_leaves_no_hooks_behind(tiny):
    probes = make_probes(tiny.layout)
    plain = lambda: generate(tiny, None, duration=0.2, seed=1, progress=False)  # noqa: E731
    before, calls_before = _counted(tiny, plain)
    recorder = live.CodeRecorder(tiny, 64)
    with pytest.raises(live.Cancelled), recorder.recording():
        live.run_generation(
            tiny,
            [Steer(probes)],
            live.Request(options=GenerationOptions(duration=0.4)),
            lambda _s: recorder.cancel.set(),
        )
    # the steering edit, the engine's step hooks and the recorder (still cancelled: it would raise)
    # are all gone: a plain run afterwards is the run from before, with the same hook calls
    after, calls_after = _counted(tiny, plain)
    assert np.array_equal(after.audio, before.audio) and torch.equal(after.codes, before.codes)
    assert calls_after == calls_before
    codec = tiny.model.audio_encoder  # the engine's codes recorder is gone too: the class method shows
    assert codec.decode.__func__ is type(codec).decode


def test_a_live_run_is_watched_and_stopped(tiny):
    probes = make_probes(tiny.layout)
    request = live.Request(options=GenerationOptions(duration=0.4, seed=3))
    run = live.LiveRun(tiny, [Steer(probes, alpha=4)], request, "steered").start()
    run.wait()
    assert not run.alive and run.steps == run.total_steps
    want = generate(tiny, None, steer=[Steer(probes, alpha=4)], duration=0.4, seed=3, progress=False)
    got = run.result()
    assert np.array_equal(got.audio, want.audio) and torch.equal(run.trace().c, want.trace.c)
    assert torch.equal(run.frames(), got.codes[0, :, : run.frames().shape[1]])

    stopped = live.LiveRun(tiny, [Steer(probes)], live.Request(options=GenerationOptions(duration=20)))
    stopped.recorder.cancel.set()  # as Stop does, here before the first step
    stopped.start().stop()
    assert not stopped.alive
    with pytest.raises(live.Cancelled):
        stopped.result()
    again = generate(tiny, None, steer=[Steer(probes, alpha=4)], duration=0.4, seed=3, progress=False)
    assert np.array_equal(again.audio, want.audio)
