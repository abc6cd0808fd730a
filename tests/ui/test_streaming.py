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
