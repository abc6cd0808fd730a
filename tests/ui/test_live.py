"""Generation as the studio runs it: same result as the engine, watched live, stoppable, previewed."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest
import torch

from helpers import make_probes
from smitin.generate import generate
from smitin.mixed import Request as MixedRequest
from smitin.mixed import generate_mixed
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


def test_preview_decodes_in_chunks(tiny):
    codes = generate(tiny, None, duration=1.2, progress=False).codes[0]
    preview = live.Preview(tiny)
    assert preview.update(codes[:, :10]) is None  # too few new frames yet
    first = preview.update(codes[:, :50])
    assert first is not None and len(first) == 50 * preview.hop
    final = preview.update(codes, final=True)
    assert len(final) == codes.shape[1] * preview.hop


def test_pcm16_clips_and_scales():
    assert live.pcm16(np.array([0.0, 0.5, 2.0, -2.0])).tolist() == [0, 16383, 32767, -32767]


# -- many users, one model: the Batcher ---------------------------------------------------------


def _alone(model, steers, options):
    """The request run by itself: what its row of any batch must equal."""
    (result,) = generate_mixed(
        model, [MixedRequest(None, steers, seed=options.seed)], options=options, progress=False
    )
    return result


def test_a_batcher_runs_what_arrives_together_as_one_batch(tiny):
    drums, bass = make_probes(tiny.layout, "drums"), make_probes(tiny.layout, "bass", seed=1)
    batcher = live.Batcher(window_s=0.5)
    short = GenerationOptions(duration=0.3, seed=1)
    runs_a = [("unsteered", [Steer(drums, alpha=0)]), ("steered", [Steer(drums, alpha=4)])]
    runs_b = [("steered", [Steer(bass, alpha=-3, heads="soft"), Steer(drums, alpha=2, monitor=False)])]
    a = batcher.submit(tiny, live.Request(options=short), runs_a)
    b = batcher.submit(tiny, live.Request(options=replace(short, seed=2)), runs_b)
    c = batcher.submit(tiny, live.Request(options=replace(short, duration=0.2)), [("steered", [])])
    for s in (a, b, c):
        for t in s.tickets:
            t.wait()
    assert batcher.sizes == [3, 1]  # a and b share a batch; c (another duration) runs on its own
    for s in (a, b, c):
        for t in s.tickets:
            got = t.result()
            want = _alone(tiny, t.steers, t.request.options)
            assert torch.equal(got.codes, want.codes), (t.name, t.request.options)
            assert torch.allclose(got.trace.c, want.trace.c, atol=1e-5)
            assert got.trace.settings["batch_requests"] == (3 if s is not c else 1)
            assert got.trace.traits == [x.name for x in t.steers]
            if t.steers:  # the live view is this request's own row and traits
                assert torch.allclose(t.trace().c, got.trace.c, atol=1e-6)
            frames = t.frames()
            assert torch.equal(frames, got.codes[0, :, : frames.shape[1]]) and frames.shape[1] > 0
    assert not batcher.lock.locked()
    # what may share a batch: text to music with the same model and options, whatever the seed
    join = live.Submission(batcher, tiny, live.Request(options=replace(short, seed=9)), [])
    assert a.joins(join) and not a.joins(c)
    assert not a.joins(live.Submission(batcher, tiny, live.Request(audio_prompt="x.wav", options=short), []))


def test_a_stopped_user_leaves_the_batch_to_the_others(tiny):
    batcher = live.Batcher(window_s=0.3)
    options = GenerationOptions(duration=1.0, seed=1)
    a = batcher.submit(tiny, live.Request(options=options), [("steered", [])])
    b = batcher.submit(tiny, live.Request(options=replace(options, seed=2)), [("steered", [])])
    (ta,), (tb,) = a.tickets, b.tickets
    while ta.steps < 2 and ta.alive:
        time.sleep(0.02)
    a.stop()  # returns at once: b still waits, so the batch goes on
    assert tb.alive
    tb.wait()
    assert torch.equal(tb.result().codes, _alone(tiny, [], tb.request.options).codes)
    with pytest.raises(live.Cancelled):
        ta.result()
    # nobody waits any more: the batch is cancelled, and stop returns once the model is free
    long = batcher.submit(tiny, live.Request(options=GenerationOptions(duration=20)), [("steered", [])])
    while long.tickets[0].steps < 2:
        time.sleep(0.02)
    long.stop()
    assert not long.tickets[0].alive and not batcher.lock.locked()
    with pytest.raises(live.Cancelled):
        long.tickets[0].result()
    # stopped while still waiting for its batch: it never runs
    never = batcher.submit(tiny, live.Request(options=options), [("steered", [])])
    never.stop()
    assert batcher.sizes == [2, 1] and not never.tickets[0].alive
