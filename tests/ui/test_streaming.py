"""The studio's live desk: each session's controls reach only its own run."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf

from smitin.controls import Controls
from smitin.lanes import Lane
from smitin.ui.streaming import LiveDesk, wav_bytes


def test_each_session_reaches_only_its_own_run():
    desk, mine, theirs = LiveDesk(), Controls(["drums", "bass"]), Controls(["drums"])
    desk.open("me", mine, ["drums", "bass"])
    desk.open("them", theirs, ["drums"])
    assert desk.strength("me", 1, -3.0) and desk.monitor("me", False)
    assert not desk.strength("me", 2, 1.0) and not desk.strength("nobody", 0, 1.0)  # no such slot, session
    note = desk.lanes("me", "drums=0-2:remove", 8.0)
    assert note.startswith("lanes applied") and "drums 0-2:remove" in note
    assert "not steered" in desk.lanes("me", "piano=0-1:add", 8.0)  # refused, nothing changes
    changes = mine.take()
    assert [(c.trait, c.alpha) for c in changes[:1]] == [("bass", -3.0)]
    assert [(c.trait, c.monitor) for c in changes[1:3]] == [("drums", False), ("bass", False)]
    assert [(c.trait, c.lane) for c in changes[3:]] == [("drums", Lane.of("0-2:remove")), ("bass", None)]
    assert theirs.pending == 0 and not theirs.stopped  # the other session heard nothing
    assert desk.stop("me") and mine.stopped and not theirs.stopped
    desk.close("me", mine)
    assert not desk.stop("me") and desk.lanes("me", "", 8.0).startswith("no generation is running")


def test_a_new_run_of_a_session_stops_its_old_one():
    desk, old, new = LiveDesk(), Controls(["drums"]), Controls(["drums"])
    desk.open("me", old, ["drums"])
    desk.open("me", new, ["drums"])
    assert old.stopped and not new.stopped
    desk.close("me", old)  # the old run leaving does not take the new one off the desk
    assert desk.strength("me", 0, 2.0) and new.pending == 1


def test_wav_bytes_hold_the_chunk():
    chunk = np.sin(np.linspace(0, 20, 800)).astype(np.float32) * 0.5
    audio, rate = sf.read(io.BytesIO(wav_bytes(chunk, 8000)))
    assert rate == 8000 and np.allclose(audio, chunk, atol=1e-4)


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from helpers import any_value, bounded_examples  # noqa: E402

VALUE = any_value()


@bounded_examples(150)
@given(
    slot=st.integers(min_value=-3, max_value=4),
    alpha=VALUE,
    monitor=VALUE,
    text=st.one_of(st.text(max_size=60), st.sampled_from(["drums=0-1:add", "drums=0-1e308:add,ramp=1e308"])),
    duration=VALUE,
)
def test_any_hand_on_a_running_generation_is_taken_or_refused_with_a_message(
    slot, alpha, monitor, text, duration
):
    """What an API client can post to the live controls (the page's sliders bound it; a script does
    not): a strength is taken or refused with the bounds' message, lanes always get a note, and no
    value outside the bounds reaches the run."""
    desk, controls = LiveDesk(), Controls(["drums", "bass"])
    desk.open("me", controls, ["drums", "bass"])
    try:
        took = desk.strength("me", slot, alpha)
        assert took == (0 <= slot < 2)
    except ValueError as err:
        assert str(err).startswith("strength must be")
    assert desk.monitor("me", monitor) is True
    note = desk.lanes("me", text, duration)
    assert note.startswith(("lanes applied", "**lanes:**"))
    for change in controls.take():
        if change.alpha is not None:
            assert -100 <= change.alpha <= 100  # NaN fails this too
