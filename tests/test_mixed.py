"""Mixed batches: each request's codes and trace equal the same request run alone."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from helpers import make_probes
from smitin.backbone import load
from smitin.generate import continue_audio, generate
from smitin.mixed import Request, generate_mixed
from smitin.steering import Steer


@pytest.fixture(scope="module")
def bundled():
    return load("bundled")


def requests_for(model, text: bool) -> list[Request]:
    drums, bass = make_probes(model.layout, "drums", seed=0), make_probes(model.layout, "bass", seed=1)
    # tau pinned to the paper's: on the trajectory "positive" gives, the lane request's sampled codes
    # (bundled, own seeds) part from its solo run at step 18. C differs by ~1e-7 from the first step on
    # (batched rows round differently) and one draw lands on that; a number tau of 0.12 does the same,
    # greedy decoding stays equal. Bit-equality of sampled batches holds only away from such ties.
    t = "paper"
    return [
        Request("a rock song" if text else None, [Steer(drums, alpha=5, threshold=t)], seed=1),
        Request(
            "a bass line" if text else None,
            [Steer(bass, alpha=-3, heads="soft", threshold=t), Steer(drums, alpha=2, monitor=False)],
            seed=2,
        ),
        Request(None, [], seed=3),  # unconditional and unsteered, next to text prompts
        Request(None, [Steer(drums, alpha=5, lane="0-0.2:remove,0.2-0.4:add", threshold=t)], seed=1),
    ]


@pytest.mark.parametrize("sampling", [{"do_sample": False}, {}], ids=["greedy", "own seeds"])
@pytest.mark.parametrize("which", ["tiny", "bundled"])
def test_each_request_in_a_mixed_batch_equals_it_alone(tiny, bundled, which, sampling):
    model = tiny if which == "tiny" else bundled
    reqs = requests_for(model, text=which == "bundled")
    mixed = generate_mixed(model, reqs, duration=0.4, progress=False, **sampling)
    assert [r.trace.traits for r in mixed] == [["drums"], ["bass", "drums"], [], ["drums"]]
    for req, got in zip(reqs, mixed, strict=True):
        alone = generate_mixed(model, [req], duration=0.4, progress=False, **sampling)[0]
        assert torch.equal(alone.codes, got.codes)
        assert got.audio.shape == alone.audio.shape == (1, round(0.4 * model.sample_rate))
        if req.steer:
            assert torch.allclose(alone.trace.c, got.trace.c, atol=1e-5)
            assert torch.equal(alone.trace.applied, got.trace.applied)
    assert mixed[3].trace.wanted("drums")[0] == "remove" and mixed[3].trace.wanted("drums")[15] == "add"
    # same seed, different steering: the heads read differently (the lane removes, then adds);
    # sampled codes differ too (greedy decoding of the 8-layer bundled model settles on the same
    # codes for 0.4 s, steered either way)
    assert not torch.allclose(mixed[0].trace.c, mixed[3].trace.c, atol=1e-4)
    if sampling.get("do_sample", True):
        assert not torch.equal(mixed[0].codes, mixed[3].codes)


def test_a_single_request_is_what_generate_makes(bundled):
    drums = make_probes(bundled.layout, "drums")
    plain = generate(
        bundled, "a rock song", steer=[Steer(drums)], duration=0.4, progress=False, do_sample=False
    )
    (mixed,) = generate_mixed(
        bundled, [Request("a rock song", [Steer(drums)])], duration=0.4, progress=False, do_sample=False
    )
    assert torch.equal(plain.codes, mixed.codes)
    assert torch.equal(plain.trace.c, mixed.trace.c)


def test_own_seeds_make_a_request_independent_of_its_neighbours(tiny):
    one = Request(None, [], seed=7)
    a = generate_mixed(tiny, [one, Request(None, [], seed=1)], duration=0.3, progress=False)[0]
    b = generate_mixed(
        tiny, [Request(None, [], seed=2), Request(None, [], seed=3), one], duration=0.3, progress=False
    )[2]
    assert torch.equal(a.codes, b.codes)
    alone = generate_mixed(tiny, [one], duration=0.3, progress=False, own_seeds=False)[0]
    behind = generate_mixed(
        tiny, [Request(None, [], seed=1), one], duration=0.3, progress=False, own_seeds=False
    )
    assert not torch.equal(
        alone.codes, behind[1].codes
    )  # one torch RNG for the batch: it depends on the batch


@pytest.mark.parametrize("sampling", [{"do_sample": False}, {}], ids=["greedy", "own seeds"])
def test_continuations_in_a_mixed_batch_equal_each_alone(tiny, sampling):
    rng = np.random.default_rng(0)
    waves = [(0.2 * rng.standard_normal(n)).astype(np.float32) for n in (8000, 8400)]
    drums = make_probes(tiny.layout, "drums")
    reqs = [
        Request(None, [Steer(drums, alpha=5)], seed=1, audio=waves[0]),
        Request(None, [], seed=2, audio=waves[1]),
    ]
    mixed = generate_mixed(tiny, reqs, duration=0.3, progress=False, **sampling)
    for req, got in zip(reqs, mixed, strict=True):
        alone = generate_mixed(
            tiny, [replace(req, audio=req.audio[:8000])], duration=0.3, progress=False, **sampling
        )[0]
        assert torch.equal(alone.codes, got.codes) and got.prompt_seconds == pytest.approx(1.0)
        assert got.new_audio.shape == (1, round(0.3 * tiny.sample_rate))
    plain = continue_audio(tiny, waves[0], tiny.sample_rate, steer=[Steer(drums, alpha=5)], duration=0.3,
                           progress=False, do_sample=False)  # fmt: skip
    assert torch.equal(
        plain.codes, generate_mixed(tiny, reqs[:1], duration=0.3, progress=False, do_sample=False)[0].codes
    )
    with pytest.raises(ValueError, match="for every request or for none"):
        generate_mixed(tiny, [reqs[0], Request(None, [], seed=3)], duration=0.3, progress=False)


def overflowing(layout, scale: float = 1e30):
    """Probes whose push overflows a step (in memory: a file like it is refused when loaded)."""
    bad = make_probes(layout, "drums")
    unit, sigma = bad.directions["probe"]  # the default recipe's direction
    bad.directions = {**bad.directions, "probe": (unit * scale, sigma)}
    return bad


def test_a_push_that_could_overflow_is_refused_before_generating(tiny):
    for scale in (1e30, 1e38):  # 1e38 x 5: inf in float32
        with pytest.raises(
            ValueError, match=r"drums: steering at strength 5 would add up to .* \(at most 10000\)"
        ):
            generate_mixed(
                tiny, [Request(None, [Steer(overflowing(tiny.layout, scale), alpha=5)])], duration=0.2
            )
        with pytest.raises(ValueError, match=r"would add up to"):
            generate(tiny, steer=[Steer(overflowing(tiny.layout, scale), alpha=5)], duration=0.2)


@pytest.mark.parametrize("cfg", [3.0, 1.0], ids=["cfg", "no-cfg"])
def test_a_request_that_goes_non_finite_fails_alone(tiny, cfg, monkeypatch):
    """A step that still goes NaN (past the checks: here they are switched off) spoils only its request."""
    import smitin.mixed

    monkeypatch.setattr(smitin.mixed, "check_request", lambda *a, **k: None)
    good = Request(None, [Steer(make_probes(tiny.layout, "bass", seed=1), alpha=3)], seed=2)
    bad = Request(None, [Steer(overflowing(tiny.layout), alpha=5, monitor=False)], seed=1)
    plain = Request(None, [], seed=3)
    kw = {"duration": 0.3, "progress": False, "guidance_scale": cfg}
    results = generate_mixed(tiny, [good, bad, plain], isolate=True, **kw)
    assert [r.failure is not None for r in results] == [False, True, False]
    assert "went NaN or infinite" in results[1].failure
    for req, got in ((good, results[0]), (plain, results[2])):  # the others: as if run alone
        (alone,) = generate_mixed(tiny, [req], **kw)
        assert torch.equal(alone.codes, got.codes) and alone.failure is None
    with pytest.raises(ValueError, match=r"requests 1: the model's output went NaN or infinite"):
        generate_mixed(tiny, [good, bad], **kw)
