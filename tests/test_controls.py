"""Live controls: the mailbox, and what applying a change does to a live Steering."""

from __future__ import annotations

import pytest

from helpers import make_probes
from smitin.controls import Controls
from smitin.lanes import Lane
from smitin.steering import Steer, Steering


def test_changes_wait_in_order_until_taken():
    box = Controls(["drums", "bass"])
    box.set_strength("drums", 2)
    box.set_monitor("bass", False)
    box.set_lane("drums", "0-1:remove")
    assert box.pending == 3
    first, second, third = box.take()
    assert (first.trait, first.alpha) == ("drums", 2.0) and (second.trait, second.monitor) == ("bass", False)
    assert third.lane == Lane.of("0-1:remove") and box.pending == 0 and box.take() == []
    with pytest.raises(ValueError, match="no trait 'piano'"):
        box.set_strength("piano", 1)
    assert not box.stopped
    box.stop()
    assert box.stopped


def test_applying_changes_lays_the_trait_out_again_from_that_step(tiny):
    steers = [
        Steer(make_probes(tiny.layout, "drums"), alpha=4.0, heads=4),
        Steer(make_probes(tiny.layout, "bass", seed=1), alpha=0.0, heads=4),
    ]
    state = Steering(tiny, steers, max_steps=20, duration=0.3)
    with pytest.raises(RuntimeError, match="go_live"):
        state.change(3, 0, alpha=1.0)
    state.go_live()
    assert (
        state.lane_scale[:, 1].eq(0).all() and state.shifts[0][1].abs().sum() > 0
    )  # alpha 0: unit shift, no push
    box = Controls(["drums", "bass"])
    box.set_strength("bass", -2.0)
    box.set_strength("drums", 4.0)  # no change: not recorded
    (record,) = box.apply(state, 5, {"drums": 0, "bass": 1})
    assert (record["step"], record["trait"], record["old"], record["new"]) == (5, "bass", 0.0, -2.0)
    assert state.lane_scale[:5, 1].eq(0).all() and state.lane_scale[5:, 1].eq(2.0).all()
    assert state.lane_sign[5:, 1].eq(-1).all() and state.lane_remove[5:, 1].all()
    assert state.want[4, 1] == 1 and state.want[5, 1] == -1  # alpha 0: an add at strength 0, then a removal
    assert box.applied == [record] and state.changes == [record]
