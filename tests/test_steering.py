import numpy as np
import pytest
import torch

from smitin.generate import generate, max_new_tokens
from smitin.plots import laned_traits
from smitin.steering import Steer, Steering, apply

DUR = 0.5  # seconds: 25 frames, 28 steps


def plain(tiny, seed=0, guidance=3.0):
    torch.manual_seed(seed)
    n = max_new_tokens(tiny, DUR)
    return tiny.model.generate(
        **tiny.null_condition(1), do_sample=True, max_new_tokens=n, guidance_scale=guidance
    )


def test_no_traits_is_plain_generate(tiny):
    r = generate(tiny, None, duration=DUR, seed=0, progress=False)
    assert torch.equal(torch.from_numpy(r.audio), plain(tiny)[:, 0])


def test_alpha_zero_gives_identical_tokens_and_audio(tiny, probes_for):
    ref = generate(tiny, None, duration=DUR, seed=0, progress=False)
    zero = generate(
        tiny, None, steer=[Steer(probes_for(tiny.layout), alpha=0.0)], duration=DUR, seed=0, progress=False
    )
    assert torch.equal(ref.codes, zero.codes) and np.array_equal(ref.audio, zero.audio)
    assert np.array_equal(zero.audio[0], plain(tiny)[0, 0].numpy())
    pushed = generate(  # unmonitored: every step pushes (one step's push need not change a sample)
        tiny,
        None,
        steer=[Steer(probes_for(tiny.layout), alpha=50.0, monitor=False)],
        duration=DUR,
        seed=0,
        progress=False,
    )
    assert not torch.equal(ref.codes, pushed.codes)


def edits(tiny, steers, **options):
    """Per step: the change the steering hook made to the last position, per layer (rows x width)."""
    before, after = {}, {}
    with tiny.head_hooks(lambda layer, x: before.__setitem__(layer, x[:, -1].clone())):
        with apply(tiny, steers, cfg=True, max_steps=40, **options) as state:

            def record(layer, x):
                step = state.past + x.shape[1] - 1 - state.first
                after[(step, layer)] = x[:, -1] - before[layer]

            with tiny.head_hooks(record):
                torch.manual_seed(0)
                tiny.model.generate(
                    **tiny.null_condition(2),
                    do_sample=True,
                    max_new_tokens=max_new_tokens(tiny, DUR),
                    guidance_scale=3.0,
                )
    return after, state


@pytest.mark.parametrize("every", [1, 3, 5])
def test_edits_only_on_scheduled_steps(tiny, probes_for, every):
    delta, _ = edits(tiny, [Steer(probes_for(tiny.layout), alpha=3.0, monitor=False)], every=every)
    steps = sorted({s for s, _ in delta})
    assert steps == list(range(len(steps))) and len(steps) >= 20
    for (step, _layer), d in delta.items():
        assert bool(d.abs().sum() > 0) == (step % every == 0), step


def test_edits_only_the_rows_asked_for(tiny, probes_for):
    both, _ = edits(tiny, [Steer(probes_for(tiny.layout), alpha=3.0, monitor=False)], rows="both")
    cond, _ = edits(tiny, [Steer(probes_for(tiny.layout), alpha=3.0, monitor=False)], rows="cond")
    assert (both[(0, 0)].abs().sum(1) > 0).all()  # 2 conditional + 2 unconditional rows
    assert (cond[(0, 0)][:2].abs().sum(1) > 0).all() and (cond[(0, 0)][2:] == 0).all()


def test_shift_is_alpha_weight_sigma_direction_and_traits_add(tiny, probes_for):
    paper = {"heads": "soft", "direction": "probe", "monitor": False}  # the paper's soft weights
    a = Steer(probes_for(tiny.layout, "drums", seed=1), alpha=4.0, **paper)
    b = Steer(probes_for(tiny.layout, "bass", seed=2), alpha=-2.0, **paper)
    delta, _ = edits(tiny, [a, b])
    for layer in range(tiny.layout.layers):
        want = a.shift()[layer] + b.shift()[layer]
        assert torch.allclose(delta[(0, layer)], want.expand_as(delta[(0, layer)]), atol=1e-5)
    p = a.probes
    acc = p.accuracy
    w = ((acc - acc.min()) / (acc.max() - acc.min())) ** 3
    manual = 4.0 * (w * p.sigma)[..., None] * p.direction
    assert torch.allclose(a.shift(), manual.flatten(1), atol=1e-6)


def test_top_k_heads_weight(tiny, probes_for):
    s = Steer(probes_for(tiny.layout), heads=3)
    w = s.head_weights()
    assert w.sum() == 3 and set(w.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(w.flatten().nonzero().flatten().sort().values, s.probes.top(3).sort().values)


def test_probes_for_another_model_are_refused(tiny, probes_for):
    from smitin.backbone import HeadLayout
    from smitin.probes import ProbeFileError

    wrong = probes_for(HeadLayout(3, 4, 8))
    with pytest.raises(ProbeFileError, match="L3xH4xD8"):
        Steering(tiny, [Steer(wrong)])


def test_melody_prefix_is_handled(probes_for):
    """MusicGen-Melody prepends chroma + text to the decoder input; step 0 is still the prefill's end."""
    from smitin import architectures

    melody = architectures.build("tiny-melody")
    assert melody.is_melody
    torch.manual_seed(0)
    ref = melody.model.generate(
        **melody.null_condition(1),
        do_sample=True,
        max_new_tokens=max_new_tokens(melody, DUR),
        guidance_scale=3.0,
    )
    zero = generate(
        melody, None, steer=[Steer(probes_for(melody.layout), alpha=0.0)], duration=DUR, progress=False
    )
    assert np.array_equal(zero.audio[0], ref[0, 0].numpy())
    r = generate(
        melody,
        None,
        steer=[Steer(probes_for(melody.layout), alpha=3.0)],
        duration=DUR,
        every=5,
        progress=False,
    )
    assert len(r.trace.c) == max_new_tokens(melody, DUR) and r.trace.edited[:6].tolist() == [True] + [
        False
    ] * 4 + [True]


def test_the_direction_is_a_steering_choice():
    from helpers import make_probes
    from smitin.backbone import HeadLayout

    p = make_probes(HeadLayout(2, 4, 8))
    mm = torch.randn(2, 4, 8)
    mm = mm / mm.norm(dim=-1, keepdim=True)
    p.directions = {"probe": (p.direction, p.sigma), "mass_mean": (mm, 2 * p.sigma)}
    along_probe = Steer(p, alpha=1.0, heads=8, direction="probe").shift().reshape(2, 4, 8)
    along_mm = Steer(p, alpha=1.0, heads=8, direction="mass_mean").shift().reshape(2, 4, 8)
    assert torch.allclose(along_probe, p.direction * p.sigma[..., None])
    assert torch.allclose(along_mm, 2 * mm * p.sigma[..., None])
    assert Steer(p, direction="mass_mean").settings()["direction"] == "mass_mean"


# -- lanes -------------------------------------------------------------------------------------


def test_a_lane_with_the_traits_own_sign_over_the_whole_clip_is_bit_identical_to_none(tiny, probes_for):
    for alpha, want in ((5.0, "add"), (-5.0, "remove")):
        for monitor in (True, False):
            p = probes_for(tiny.layout)
            steer = dict(alpha=alpha, monitor=monitor, threshold=0.6)
            ref = generate(tiny, None, steer=[Steer(p, **steer)], duration=DUR, seed=0, progress=False)
            laned = Steer(p, **steer, lane=[(0, DUR, want)])
            got = generate(tiny, None, steer=[laned], duration=DUR, seed=0, progress=False)
            assert torch.equal(ref.codes, got.codes) and np.array_equal(ref.audio, got.audio)
            assert torch.equal(ref.trace.g, got.trace.g) and torch.equal(ref.trace.c, got.trace.c)


def test_a_remove_span_edits_with_the_opposite_sign_and_free_edits_nothing(tiny, probes_for):
    p = probes_for(tiny.layout)
    lane = "0-0.1:remove,0.1-0.2:free,0.2-0.3:add"  # steps 0-4, 5-9, 10-14; after: constant (add)
    s = Steer(p, alpha=3.0, monitor=False, lane=lane)
    delta, state = edits(tiny, [s], duration=DUR)
    shift = s.shift()
    for (step, layer), d in delta.items():
        sign = -1 if step < 5 else 0 if step < 10 else 1
        assert torch.allclose(d, sign * shift[layer].expand_as(d), atol=1e-5), (step, layer)
    tr = state.trace()
    assert tr.wanted("drums")[:16] == ["remove"] * 5 + ["free"] * 5 + ["add"] * 6
    assert tr.applied[:, 0, 0].tolist()[:15] == [True] * 5 + [False] * 5 + [True] * 5
    assert s.settings()["lane"] == lane


def test_several_traits_follow_their_own_lanes(tiny, probes_for):
    a = Steer(probes_for(tiny.layout, "drums", seed=1), alpha=4.0, monitor=False, lane="0-0.1:remove")
    b = Steer(
        probes_for(tiny.layout, "bass", seed=2), alpha=-2.0, monitor=False, lane="0-0.1:add,0.1-0.2:free"
    )
    delta, state = edits(tiny, [a, b], duration=DUR)
    for (step, layer), d in delta.items():
        sa = -1 if step < 5 else 1  # drums: removed, then the constant add
        sb = -1 if step < 5 else 0 if step < 10 else 1  # bass (alpha < 0): added, left alone, then removed
        want = sa * a.shift()[layer] + sb * b.shift()[layer]
        assert torch.allclose(d, want.expand_as(d), atol=1e-5), (step, layer)
    tr = state.trace()
    assert tr.wanted("bass")[:11] == ["add"] * 5 + ["free"] * 5 + ["remove"]
    assert tr.wanted(0)[:6] == ["remove"] * 5 + ["add"]


def test_a_lane_past_the_clip_is_refused_before_generating(tiny, probes_for):
    from smitin.lanes import LaneError

    s = Steer(probes_for(tiny.layout), lane="0-0.2:add,0.2-1:remove")
    with pytest.raises(LaneError, match=r"drums: span '0.2-1:remove' ends at 1 s, past the end of the clip"):
        generate(tiny, None, steer=[s], duration=DUR, progress=False)
    with pytest.raises(LaneError, match="unknown word"):
        Steer(probes_for(tiny.layout), lane="0-1:loud")


def test_the_monitor_can_watch_the_heads_it_does_not_push(tiny, probes_for):
    probes = probes_for(tiny.layout)
    best = Steer(probes, heads=3, monitor_heads=2)
    unpushed = Steer(probes, heads=3, monitor_heads=2, watch="unpushed")
    pushed = set(probes.top(3).tolist())
    assert set(best.watched().tolist()) <= pushed  # today's: the monitor reads its own push
    assert set(unpushed.watched().tolist()) == set(probes.top(5).tolist()) - pushed
    with pytest.raises(ValueError, match="soft weights push every head"):
        Steer(probes, heads="soft", watch="unpushed")
    with pytest.raises(ValueError, match="watch must be one of"):
        Steer(probes, watch="all")
    state = Steering(tiny, [unpushed])
    assert sum(hi - lo for lo, hi in state.read_rows.values()) == 2  # reads its 2 watched heads
    assert unpushed.settings()["watch"] == "unpushed"


def test_a_threshold_at_the_positive_class_mean(tiny, probes_for):
    from smitin.recipes import check_threshold

    probes = probes_for(tiny.layout)
    steer = Steer(probes, heads=3, threshold="positive")
    assert steer.tau == pytest.approx(probes.class_reading(steer.watched()))
    w, b = probes.weight.flatten(0, 1), probes.bias.flatten()
    by_hand = torch.sigmoid((w * probes.mean_pos.flatten(0, 1)).sum(-1) + b)[steer.watched()].median()
    assert steer.tau == pytest.approx(float(by_hand))
    assert check_threshold("positive") == "positive" and check_threshold("paper") == "paper"
    assert check_threshold("0.6") == 0.6
    with pytest.raises(ValueError, match="'paper' or 'positive'"):
        check_threshold("high")
    trace = generate(tiny, None, steer=[steer], duration=0.3, progress=False).trace
    assert trace.settings["traits"][0]["threshold"] == pytest.approx(steer.tau)


# -- keep and bounded edits ---------------------------------------------------------------------


def test_keep_never_pushes_while_the_trait_reads_present(tiny, probes_for):
    """A kept trait the probes read as present is never edited: not at step 0 (no reading yet),
    not later; the same probes with "add" push at step 0 and change the music."""
    present = probes_for(tiny.layout, bias=20.0)
    ref = generate(tiny, None, duration=DUR, seed=0, progress=False)
    kept = generate(
        tiny,
        None,
        steer=[Steer(present, alpha=50.0, threshold=0.6, keep=True)],
        duration=DUR,
        seed=0,
        progress=False,
    )
    assert kept.trace.c.min() > 0.99 and kept.trace.applied.sum() == 0 and (kept.trace.g == 0).all()
    assert torch.equal(ref.codes, kept.codes) and np.array_equal(ref.audio, kept.audio)
    added = generate(  # (along the class mean: on this random model its one push changes the sample)
        tiny,
        None,
        steer=[Steer(present, alpha=50.0, threshold=0.6, direction="mass_mean")],
        duration=DUR,
        seed=0,
        progress=False,
    )
    assert added.trace.applied[:, 0, 0].nonzero().flatten().tolist() == [0]
    assert not torch.equal(ref.codes, added.codes)
    delta, _ = edits(tiny, [Steer(present, alpha=50.0, threshold=0.6, keep=True)])
    assert all((d == 0).all() for d in delta.values())  # every layer's edit at every step is zero


def test_keep_pushes_back_after_a_reading_below_the_threshold(tiny, probes_for):
    absent = probes_for(tiny.layout, bias=-20.0)
    for monitor in (True, False):  # a kept trait is always watched
        s = Steer(absent, alpha=3.0, threshold=0.6, keep=True, monitor=monitor)
        delta, state = edits(tiny, [s])
        tr = state.trace()
        assert tr.applied[:, 0, 0].tolist() == [False] + [True] * (len(tr.edited) - 1)
        assert tr.wanted("drums") == ["keep"] * len(tr.edited) and s.settings()["keep"] is True
        assert laned_traits(tr) == [0]  # the plot shades a kept trait's wishes, as a lane's
        for (step, layer), d in delta.items():  # +alpha's shift, as adding, from step 1 on
            assert torch.allclose(d, (step > 0) * s.shift()[layer].expand_as(d), atol=1e-5), (step, layer)
    with pytest.raises(ValueError, match="strength must be positive"):
        Steer(absent, alpha=-3.0, keep=True)


def test_a_keep_span_in_a_lane(tiny, probes_for):
    present = probes_for(tiny.layout, bias=20.0)
    s = Steer(present, alpha=3.0, threshold=0.6, monitor=False, lane="0-0.1:add,0.1-0.3:keep")
    _, state = edits(tiny, [s], duration=DUR)
    tr = state.trace()
    assert tr.wanted(0)[:16] == ["add"] * 5 + ["keep"] * 10 + ["add"]
    # monitor off: add pushes throughout; the keep span is watched and the trait reads present
    assert tr.applied[:16, 0, 0].tolist() == [True] * 5 + [False] * 10 + [True]


def test_bounded_edits_push_to_the_class_mean_and_no_further(tiny, probes_for):
    p = probes_for(tiny.layout)
    s = Steer(p, alpha=3.0, monitor=False, edit="bounded", direction="probe", heads=5)
    unit, pos, _neg, size = s.bounds()
    assert (size.flatten() > 0).sum() == 5  # only the pushed heads have a cap
    delta, _ = edits(tiny, [s])  # (test_edits checks the class mean is never passed, on tensors)
    lay = tiny.layout
    moved_any = False
    for (_step, layer), d in delta.items():
        amount = (d.reshape(-1, lay.heads, lay.head_dim) * unit[layer]).sum(-1)  # [rows, H]
        assert torch.allclose(
            d.reshape(-1, lay.heads, lay.head_dim), amount[..., None] * unit[layer], atol=1e-5
        )
        assert (amount >= -1e-5).all() and (amount <= size[layer] + 1e-5).all()
        moved_any |= bool((amount > 1e-3).any())
    assert moved_any
    # a target below every reading: nothing to do, so the music is the unsteered music
    low = probes_for(tiny.layout)
    low.mean_pos.fill_(0.0)
    low.mean_pos[..., :] = -1e3 * low.direction  # the positive class mean far on the negative side
    ref = generate(tiny, None, duration=DUR, seed=0, progress=False)
    got = generate(
        tiny,
        None,
        steer=[Steer(low, alpha=50.0, monitor=False, edit="bounded", direction="probe")],
        duration=DUR,
        seed=0,
        progress=False,
    )
    assert torch.equal(ref.codes, got.codes)
    shifted = generate(
        tiny,
        None,
        steer=[Steer(low, alpha=50.0, monitor=False, direction="probe")],
        duration=DUR,
        seed=0,
        progress=False,
    )
    assert not torch.equal(ref.codes, shifted.codes)
    with pytest.raises(ValueError, match="edit must be one of"):
        Steer(p, edit="clamp")
