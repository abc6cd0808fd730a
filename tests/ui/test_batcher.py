"""Many users, one model: the Batcher runs what arrives together as one mixed batch."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
import torch

from helpers import make_probes
from smitin.mixed import Request as MixedRequest
from smitin.mixed import generate_mixed
from smitin.options import GenerationOptions
from smitin.steering import Steer
from smitin.ui import batcher as batching
from smitin.ui import live


def _alone(model, steers, options):
    """The request run by itself: what its row of any batch must equal."""
    (result,) = generate_mixed(
        model, [MixedRequest(None, steers, seed=options.seed)], options=options, progress=False
    )
    return result


def test_a_batcher_runs_what_arrives_together_as_one_batch(tiny):
    drums, bass = make_probes(tiny.layout, "drums"), make_probes(tiny.layout, "bass", seed=1)
    batcher = batching.Batcher(window_s=0.5)
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
    join = batching.Submission(batcher, tiny, live.Request(options=replace(short, seed=9)), [])
    assert a.joins(join) and not a.joins(c)
    assert not a.joins(
        batching.Submission(batcher, tiny, live.Request(audio_prompt="x.wav", options=short), [])
    )


def test_a_stopped_user_leaves_the_batch_to_the_others(tiny):
    batcher = batching.Batcher(window_s=0.3)
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


def test_a_request_that_goes_non_finite_fails_alone_in_the_batch(tiny, monkeypatch):
    """One user's overflowing steering (past the checks, switched off here) spoils only their run."""
    import smitin.mixed

    monkeypatch.setattr(smitin.mixed, "check_request", lambda *a, **k: None)
    bad = make_probes(tiny.layout, "drums")
    unit, sigma = bad.directions["probe"]  # the default recipe's direction
    bad.directions = {**bad.directions, "probe": (unit * 1e30, sigma)}
    batcher = batching.Batcher(window_s=0.5)
    short = GenerationOptions(duration=0.3, seed=1)
    a = batcher.submit(tiny, live.Request(options=short), [("steered", [Steer(bad, alpha=5, monitor=False)])])
    b = batcher.submit(tiny, live.Request(options=replace(short, seed=2)), [("steered", [])])
    for s in (a, b):
        s.tickets[0].wait()
    assert batcher.sizes == [2]
    with pytest.raises(ValueError, match="steered: the model's output went NaN or infinite"):
        a.tickets[0].result()
    got = b.tickets[0].result()
    assert torch.equal(got.codes, _alone(tiny, [], replace(short, seed=2)).codes)


def test_a_batch_holds_no_more_requests_than_the_free_memory(tiny, monkeypatch):
    from smitin import budget

    short = GenerationOptions(duration=0.3, seed=1)
    steps = batching.max_new_tokens(tiny, short.duration)
    one = budget.estimate(tiny, 1, steps, short.duration, short.cfg).per_row
    monkeypatch.setattr(budget, "free_bytes", lambda _device: int(2.5 * one / budget.USABLE))  # 2 fit
    batcher = batching.Batcher(window_s=0.5)
    subs = [
        batcher.submit(tiny, live.Request(options=replace(short, seed=i)), [("steered", [])])
        for i in range(5)
    ]
    for s in subs:
        s.tickets[0].wait()
    assert batcher.sizes == [2, 2, 1] and all(s.tickets[0].result() for s in subs)
    monkeypatch.setattr(budget, "free_bytes", lambda _device: one // 2)  # not even one fits
    lone = batcher.submit(tiny, live.Request(options=short), [("steered", [])])
    lone.tickets[0].wait()
    with pytest.raises(
        ValueError, match=r"generating 1 clip at once needs about .* generate at most 0 at once"
    ):
        lone.tickets[0].result()
