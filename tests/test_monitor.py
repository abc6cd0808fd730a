import warnings

import pytest
import torch

from smitin.generate import generate
from smitin.monitor import confidence, next_gain
from smitin.steering import Steer, Steering

DUR = 0.5


def test_confidence_is_the_median_over_watched_heads():
    logits = torch.tensor([[[0.0, 10.0, -10.0, 2.0, 1.0]]])  # [B=1, T=1, heads=5]
    c = confidence(torch.sigmoid(logits)[..., [0, 3, 4]])
    assert c.item() == pytest.approx(torch.sigmoid(torch.tensor(1.0)).item())


def test_gain_modes():
    c = torch.tensor([[0.2, 0.9]])
    tau = torch.tensor([0.6, 0.6])
    add, on = torch.tensor([False, False]), torch.tensor([True, True])
    assert next_gain(c, tau, add, on).tolist() == [[1.0, 0.0]]
    assert next_gain(c, tau, torch.tensor([True, True]), on).tolist() == [[0.0, 1.0]]  # removal watches 1 - C
    assert next_gain(c, tau, add, torch.tensor([False, False])).tolist() == [[1.0, 1.0]]  # monitor off
    ramp = next_gain(c, tau, add, on, "ramp")
    assert ramp[0, 0].item() == pytest.approx(1 - 0.2 / 0.6) and ramp[0, 1] == 0


def run(tiny, probes, **steer):
    return generate(tiny, None, steer=[Steer(probes, **steer)], duration=DUR, seed=0, progress=False).trace


def test_monitor_stops_pushing_when_the_trait_reads_present(tiny, probes_for):
    present = probes_for(tiny.layout, bias=20.0)  # every head reads "trait present"
    tr = run(tiny, present, alpha=5.0, threshold=0.6)
    assert tr.c.min() > 0.99
    assert tr.applied[:, 0, 0].nonzero().flatten().tolist() == [0]  # g(0) = 1, then off
    absent = probes_for(tiny.layout, bias=-20.0)
    tr = run(tiny, absent, alpha=5.0, threshold=0.6)
    assert tr.applied[:, 0, 0].tolist() == tr.edited.tolist() and tr.edited.sum() >= 5
    # removal watches 1 - C: pushes while the trait is present, stops once it reads absent
    assert run(tiny, present, alpha=-5.0, threshold=0.6).applied.sum() == tr.edited.sum()
    assert run(tiny, absent, alpha=-5.0, threshold=0.6).applied.sum() == 1
    # monitor off: plain ITI pushes on every scheduled step
    assert run(tiny, present, alpha=5.0, monitor=False).applied.sum() == tr.edited.sum()


def test_monitor_switches_off_and_back_on_from_previous_step_readings(tiny, probes_for):
    """Drive the hook by hand: C(t) decides g(t+1); readings come before the head's own edit."""
    p = probes_for(tiny.layout)
    p.weight.zero_()
    p.weight[..., 0] = 1.0  # every probe reads coordinate 0 of its head
    p.direction.zero_()
    p.direction[..., 0] = 1.0
    st = Steering(
        tiny, [Steer(p, alpha=100.0, threshold=0.6, heads="soft")], every=1, cfg=False, max_steps=10
    )
    lay = tiny.layout
    levels = [-5.0, 5.0, 5.0, -5.0, -5.0]  # absent, present, present, absent, absent
    for step, level in enumerate(levels):
        st.past = step
        for layer in range(lay.layers):
            x = torch.full((1, 1, lay.width), level)
            st.on_heads(layer, x)
            if st.g[step, 0, 0] > 0:
                assert x[0, 0, 0] > level  # edited after being read
    tr = st.trace()
    assert tr.c[:, 0, 0].round().tolist() == [0.0, 1.0, 1.0, 0.0, 0.0]  # pre-edit readings
    assert tr.g[:, 0, 0].tolist() == [1.0, 1.0, 0.0, 0.0, 1.0]  # g(t) from C(t-1): off, then back on


def test_each_trait_reads_the_median_of_its_own_watched_heads(tiny, probes_for):
    """Traits may watch different numbers of heads; C is each one's own median, pre-edit."""
    a = Steer(probes_for(tiny.layout, "drums", seed=1), alpha=3.0, monitor_heads=3)
    b = Steer(probes_for(tiny.layout, "bass", seed=2), alpha=-3.0, monitor_heads=6)
    st = Steering(tiny, [a, b], every=1, cfg=False, max_steps=4)
    lay = tiny.layout
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(2, 1, lay.width, generator=g) for _ in range(lay.layers)]
    st.past = 0
    for layer, x in enumerate(xs):
        st.on_heads(layer, x.clone())
    z = torch.stack([x[:, 0].unflatten(-1, (lay.heads, lay.head_dim)) for x in xs], 1)  # [B, L, H, D]
    for t, s in enumerate((a, b)):
        p = s.probes.probability(z).flatten(1)[:, s.probes.top(s.monitor_heads)]  # [B, k]
        assert torch.allclose(st.c[0, :, t], p.median(dim=1).values, atol=1e-6)


def test_weak_probes_warn_that_the_monitor_will_stop_at_once(tiny, probes_for):
    weak = probes_for(tiny.layout)
    weak.accuracy = 0.45 + 0.1 * torch.rand(weak.accuracy.shape, generator=torch.Generator().manual_seed(0))
    assert weak.threshold() <= 0.5
    with pytest.warns(UserWarning, match="monitor threshold .* <= 0.5"):
        Steering(tiny, [Steer(weak)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Steering(tiny, [Steer(weak, threshold=0.7)])
        Steering(tiny, [Steer(weak, monitor=False)])


def test_trace_reports_scheduled_steps_and_what_the_monitor_let_through(tiny, probes_for):
    present = probes_for(tiny.layout, bias=20.0)  # monitored: off after step 0
    steer = Steer(present, alpha=5.0, threshold=0.6)
    mon = generate(tiny, None, steer=[steer], duration=DUR, seed=0, every=2, progress=False).trace
    iti = Steer(present, alpha=5.0, threshold=0.6, monitor=False)
    plain = generate(tiny, None, steer=[iti], duration=DUR, seed=0, every=2, progress=False).trace
    n = len(mon.edited)
    assert mon.share_scheduled() == plain.share_scheduled() == pytest.approx(((n + 1) // 2) / n)
    assert plain.share_let_through()[present.trait] == 1.0
    assert mon.share_let_through()[present.trait] == pytest.approx(1 / ((n + 1) // 2))
    assert "let through" in mon.describe() and mon.to_dict()["summary"]["share_scheduled"] > 0


def test_the_monitor_follows_the_lane(tiny, probes_for):
    """Trait read present all along: an add span stops pushing at once, a remove span keeps pushing."""
    present = probes_for(tiny.layout, bias=20.0)
    tr = run(tiny, present, alpha=5.0, threshold=0.6, lane="0-0.2:add,0.2-0.4:remove,0.4-0.5:free")
    on = tr.applied[:, 0, 0].tolist()
    assert on[:10] == [True] + [False] * 9  # g(0) = 1, then read present: off
    assert on[10:20] == [True] * 10  # wanted absent, reads present: pushes (against alpha's sign)
    assert not any(on[20:])  # free: no edit
    assert tr.wanted("drums")[:21] == ["add"] * 10 + ["remove"] * 10 + ["free"]
    steps = tr.to_dict()["steps"]
    assert steps[12]["traits"]["drums"]["want"] == "remove" and steps[12]["traits"]["drums"]["gain"] == [1.0]
    absent = probes_for(tiny.layout, bias=-20.0)
    tr = run(tiny, absent, alpha=5.0, threshold=0.6, lane="0-0.2:add,0.2-0.5:remove")
    on = tr.applied[:, 0, 0].tolist()
    assert on[:10] == [True] * 10 and not any(on[10:])  # g(10), read at step 9, already watches 1 - C


def test_a_trace_without_a_lane_record_still_reads():
    from smitin.monitor import Trace

    tr = Trace(["drums"], 50.0, torch.zeros(2, 1, 1), torch.ones(2, 1, 1), torch.ones(2, dtype=torch.bool))
    assert tr.wanted("drums") == [] and "want" not in tr.to_dict()["steps"][0]["traits"]["drums"]


@pytest.mark.slow
def test_keep_holds_a_trait_on_the_bundled_model(probes_for):
    """Against no control, a kept trait's probe reading is at or above the threshold more often.

    The threshold is the median of the unsteered readings, so no control is there half the time.
    """
    from smitin.backbone import load

    bundled = load("bundled")
    probes = probes_for(bundled.layout)
    held, free = 0.0, 0.0
    for seed in (0, 1):
        watch = Steer(probes, alpha=0.0, direction="probe", threshold=0.9)  # alpha 0: reads, never edits
        base = generate(bundled, None, steer=[watch], duration=2.0, seed=seed, progress=False).trace.c[
            :, 0, 0
        ]
        tau = float(base.median())
        keep = Steer(probes, alpha=5.0, direction="probe", threshold=tau, keep=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tau under 0.5 warns; here it is the unsteered median
            kept = generate(bundled, None, steer=[keep], duration=2.0, seed=seed, progress=False).trace
        free += float((base >= tau).float().mean())
        held += float((kept.c[:, 0, 0] >= tau).float().mean())
        assert kept.applied[:, 0, 0][1:].any() and not kept.applied[0, 0, 0]  # it pushed, after a reading
    assert held > free + 0.2, (held, free)
