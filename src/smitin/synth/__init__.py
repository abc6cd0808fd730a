"""Offline multitrack renderer: General MIDI songs (mma grooves + procedural parts) -> exact stems.

``render_dataset`` writes the plain layout that :func:`smitin.data.stem_segments` reads:
``out/<song>/<family>.wav`` (drums, bass, guitar, piano, organ, strings, synth_lead), ``mix.wav``
(the exact sum of the stems) and ``out/songs.jsonl`` with a caption per song.
"""

from .render import SynthError, find_soundfont, render_dataset, render_song, run_synth
from .theory import FAMILIES

__all__ = [
    "FAMILIES",
    "SynthError",
    "find_soundfont",
    "render_dataset",
    "render_song",
    "run_synth",
]
