"""The studio's live desk: each browser session's running generation, and the hand on its controls.

The Generate handler opens the session's `Controls` here while its run plays; the strength
sliders, the monitor box, the lane field and Stop reach the run through the session's key (Gradio's
session hash), so one user's controls never reach another user's run. `wav_bytes` packs an audio
chunk for Gradio's streaming player (which encodes the chunks as one gapless AAC stream with
ffmpeg).
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import soundfile as sf

from ..controls import Controls
from ..lanes import Lane, LaneError
from .session import parse_lanes

AHEAD_S = 1.0  # the studio's model stays this far ahead of the listener: a change is heard about this late


class LiveDesk:
    """The controls of every session's running generation, by session key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, tuple[Controls, list[str]]] = {}

    def open(self, key: str, controls: Controls, traits: Sequence[str]) -> None:
        """`key`'s run plays now; a run it had before is stopped (one run per session)."""
        with self._lock:
            old = self._runs.get(key)
            self._runs[key] = (controls, list(traits))
        if old is not None:
            old[0].stop()

    def close(self, key: str, controls: Controls) -> None:
        with self._lock:
            if self._runs.get(key, (None,))[0] is controls:
                del self._runs[key]

    def _get(self, key: str | None) -> tuple[Controls, list[str]] | None:
        with self._lock:
            return self._runs.get(key) if key is not None else None

    def strength(self, key: str | None, slot: int, alpha: Any) -> bool:
        """Slider `slot` moved to `alpha`: the session's run takes it at its next step (False: no run;
        a ValueError, the run unchanged, for a strength out of bounds)."""
        run = self._get(key)
        if run is None or not 0 <= slot < len(run[1]):
            return False
        run[0].set_strength(run[1][slot], alpha)
        return True

    def monitor(self, key: str | None, on: bool) -> bool:
        """The monitor box changed: every trait of the session's run, from its next step."""
        run = self._get(key)
        if run is None:
            return False
        for trait in run[1]:
            run[0].set_monitor(trait, bool(on))
        return True

    def lanes(self, key: str | None, text: str | None, duration: Any) -> str:
        """The lane field applied to the running generation now; what the page says about it."""
        run = self._get(key)
        if run is None:
            return "no generation is running: the lanes apply to the next one"
        try:  # a length that is not a positive number (endless, or an API client's value): no end
            end = float(duration) if duration else math.inf
        except (TypeError, ValueError):
            end = math.inf
        end = end if end > 0 else math.inf
        try:
            lanes: dict[str, Lane] = parse_lanes(text, run[1], end)
        except LaneError as err:
            return f"**lanes:** {err}; the running generation keeps its lanes"
        for trait in run[1]:
            run[0].set_lane(trait, lanes.get(trait))
        return "lanes applied to the running generation: " + (
            "; ".join(f"{t} {lane}" for t, lane in lanes.items()) or "none"
        )

    def stop(self, key: str | None) -> bool:
        """Stop the session's run at its next step; what was made is kept (False: nothing running)."""
        run = self._get(key)
        if run is None:
            return False
        run[0].stop()
        return True


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """One chunk as a 16-bit WAV file in memory: what Gradio's streaming player takes."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(audio, -1, 1), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()
