"""Procedural General MIDI parts (drums, bass, comping, lead) on a 16th-note grid.

The second source of songs beside mma, and the fallback when mma is missing. Patterns are small
tables per style; the random generator varies velocity, timing, voicing and the lead melody.
"""

from __future__ import annotations

import numpy as np
import pretty_midi

from .theory import Chord, Key

# style -> (tempo range in bpm, beats per bar)
STYLES: dict[str, tuple[tuple[int, int], int]] = {
    "rock": ((100, 140), 4),
    "pop": ((90, 124), 4),
    "funk": ((92, 116), 4),
    "disco": ((112, 128), 4),
    "ballad": ((62, 84), 4),
    "bossa nova": ((118, 146), 4),
    "reggae": ((70, 92), 4),
    "waltz": ((96, 150), 3),
}

KICK, SNARE, RIM, CLOSED_HAT, OPEN_HAT, RIDE, CRASH = 36, 38, 37, 42, 46, 51, 49
TOMS = (50, 48, 47, 45)

DRUMS: dict[str, dict[int, tuple[int, ...]]] = {
    "rock": {KICK: (0, 8, 10), SNARE: (4, 12), CLOSED_HAT: tuple(range(0, 16, 2))},
    "pop": {KICK: (0, 6, 8), SNARE: (4, 12), CLOSED_HAT: tuple(range(0, 16, 2))},
    "funk": {KICK: (0, 3, 10), SNARE: (4, 12), RIM: (7, 9, 15), CLOSED_HAT: tuple(range(16))},
    "disco": {KICK: (0, 4, 8, 12), SNARE: (4, 12), OPEN_HAT: (2, 6, 10, 14), CLOSED_HAT: (0, 4, 8, 12)},
    "ballad": {KICK: (0, 10), RIM: (4, 12), CLOSED_HAT: tuple(range(0, 16, 2))},
    "bossa nova": {
        KICK: (0, 3, 4, 7, 8, 11, 12, 15),
        RIM: (0, 3, 6, 10, 13),
        CLOSED_HAT: tuple(range(0, 16, 2)),
    },
    "reggae": {KICK: (8,), RIM: (8,), CLOSED_HAT: (2, 6, 10, 14)},
    "waltz": {KICK: (0,), SNARE: (4, 8), CLOSED_HAT: tuple(range(0, 12, 2))},
}

# (step, length in steps, tone): r root, 5 fifth, o octave, a approach to the next root
BASS: dict[str, tuple[tuple[int, int, str], ...]] = {
    "rock": tuple((s, 2, "r") for s in range(0, 16, 2)),
    "pop": ((0, 3, "r"), (3, 3, "r"), (6, 2, "5"), (8, 4, "r"), (12, 2, "5"), (14, 2, "a")),
    "funk": ((0, 2, "r"), (3, 1, "o"), (6, 1, "r"), (8, 2, "r"), (10, 1, "5"), (11, 1, "o"), (14, 2, "r")),
    "disco": tuple((s, 2, "r" if s % 4 == 0 else "o") for s in range(0, 16, 2)),
    "ballad": ((0, 8, "r"), (8, 8, "5")),
    "bossa nova": ((0, 6, "r"), (6, 2, "5"), (8, 6, "5"), (14, 2, "r")),
    "reggae": ((0, 3, "r"), (4, 2, "r"), (6, 2, "5"), (10, 2, "o"), (12, 4, "5")),
    "waltz": ((0, 4, "r"), (4, 4, "5"), (8, 4, "5")),
}

COMP: dict[str, tuple[tuple[int, int], ...]] = {
    "rock": ((0, 8), (8, 8)),
    "pop": ((0, 6), (6, 4), (10, 6)),
    "funk": ((2, 1), (6, 2), (10, 1), (14, 2)),
    "disco": ((2, 2), (6, 2), (10, 2), (14, 2)),
    "ballad": ((0, 16),),
    "bossa nova": ((0, 3), (3, 3), (6, 4), (10, 3), (13, 3)),
    "reggae": ((4, 2), (12, 2)),
    "waltz": ((4, 3), (8, 3)),
}
GUITAR_STRUM = {
    "rock": tuple((s, 2) for s in range(0, 16, 2)),
    "funk": ((0, 1), (2, 1), (6, 1), (7, 1), (10, 1), (14, 1)),
}
ORGAN_SKANK = ((2, 1), (6, 1), (10, 1), (14, 1))
LEAD_RHYTHMS = (
    ((0, 4), (4, 2), (6, 2), (8, 6)),
    ((0, 2), (2, 2), (4, 4), (10, 2), (12, 4)),
    ((0, 6), (6, 2), (8, 8)),
    ((2, 2), (4, 2), (6, 2), (8, 4), (12, 2), (14, 2)),
    ((0, 3), (3, 3), (6, 2), (8, 3), (11, 3), (14, 2)),
)


class Grid:
    """Maps (bar, 16th step) to seconds and adds humanised notes to an instrument."""

    def __init__(self, tempo: float, beats_per_bar: int, rng: np.random.Generator) -> None:
        self.step = 60.0 / tempo / 4.0
        self.steps_per_bar = beats_per_bar * 4
        self.rng = rng

    def t(self, bar: int, step: float) -> float:
        return (bar * self.steps_per_bar + step) * self.step

    def note(
        self, inst: pretty_midi.Instrument, pitch: int, bar: int, step: float, length: float, vel: int
    ) -> None:
        jitter = float(self.rng.normal(0.0, 0.004))
        start = max(0.0, self.t(bar, step) + jitter)
        end = max(start + 0.03, self.t(bar, step + length) - 0.01)
        v = int(np.clip(vel + self.rng.integers(-8, 9), 20, 127))
        inst.notes.append(pretty_midi.Note(velocity=v, pitch=int(pitch), start=start, end=end))


def _fit(steps: tuple, steps_per_bar: int) -> tuple:
    return tuple(e for e in steps if e[0] < steps_per_bar)


def drum_part(style: str, bars: int, grid: Grid) -> pretty_midi.Instrument:
    inst = pretty_midi.Instrument(program=0, is_drum=True, name="drums")
    pattern = dict(DRUMS[style])
    if CLOSED_HAT in pattern and grid.rng.random() < 0.3:
        pattern[RIDE] = pattern.pop(CLOSED_HAT)
    spb = grid.steps_per_bar
    for bar in range(bars):
        fill = bar % 8 == 7 and spb == 16
        if bar % 8 == 0:
            grid.note(inst, CRASH, bar, 0, 4, 100)
        for pitch, steps in pattern.items():
            for s in steps:
                if s >= spb or (fill and s >= 12):
                    continue
                accent = 105 if pitch in (KICK, SNARE) else (80 if s % 4 == 0 else 62)
                grid.note(inst, pitch, bar, s, 1, accent)
        if fill:
            for i, tom in enumerate(TOMS):
                grid.note(inst, tom, bar, 12 + i, 1, 95)
    return inst


def _bass_pitch(pc: int) -> int:
    return 28 + (pc - 4) % 12  # E1..D#2


def bass_part(style: str, chords: list[Chord], grid: Grid, program: int) -> pretty_midi.Instrument:
    inst = pretty_midi.Instrument(program=program, name="bass")
    pattern = _fit(BASS[style], grid.steps_per_bar)
    for bar, chord in enumerate(chords):
        root = _bass_pitch(chord.root)
        nxt = _bass_pitch(chords[(bar + 1) % len(chords)].root)
        for step, length, tone in pattern:
            pitch = {"r": root, "5": root + 7, "o": root + 12, "a": nxt + (1 if nxt < root else -1)}[tone]
            grid.note(inst, pitch, bar, step, length, 92 if step % 8 == 0 else 80)
    return inst


def voicing(chord: Chord, center: int) -> list[int]:
    """Chord tones placed closest to ``center`` (a crude voice leading that keeps the register)."""
    return sorted(center - 6 + (pc - (center - 6)) % 12 for pc in chord.pitch_classes)


def comp_part(
    family: str, style: str, chords: list[Chord], grid: Grid, program: int
) -> pretty_midi.Instrument:
    """Chordal accompaniment whose rhythm depends on the family: pads sustain, guitars strum."""
    inst = pretty_midi.Instrument(program=program, name=family)
    spb = grid.steps_per_bar
    rng = grid.rng
    arpeggio = family in ("piano", "guitar") and rng.random() < 0.3
    pattern: tuple[tuple[int, int], ...]
    if family == "strings" or (family == "organ" and style != "reggae" and rng.random() < 0.6):
        pattern = ((0, spb),)
    elif family == "organ" and style == "reggae":
        pattern = ORGAN_SKANK
    elif family == "guitar":
        pattern = GUITAR_STRUM.get(style, COMP[style])
    else:
        pattern = COMP[style]
    pattern = _fit(pattern, spb)
    center = {"strings": 70, "organ": 64, "guitar": 60, "piano": 64}.get(family, 64)
    vel = {"strings": 68, "organ": 72}.get(family, 84)
    for bar, chord in enumerate(chords):
        notes = voicing(chord, center)
        if family == "guitar":
            notes = [notes[0] - 12, *notes]
        if family == "piano" and not arpeggio:
            notes = [_bass_pitch(chord.root) + 12, *notes]
        if arpeggio:
            cycle = notes + notes[1:-1][::-1]
            for i, s in enumerate(range(0, spb, 2)):
                grid.note(inst, cycle[i % len(cycle)], bar, s, 2, vel - 6)
            continue
        for step, length in pattern:
            for j, p in enumerate(notes):
                strum = 0.04 * j if family == "guitar" else 0.0  # in steps: a few ms per string
                grid.note(inst, p, bar, step + strum, length, vel)
    return inst


def lead_part(key: Key, chords: list[Chord], grid: Grid, program: int) -> pretty_midi.Instrument:
    """A melody that lands on chord tones on strong steps and moves by scale steps between."""
    inst = pretty_midi.Instrument(program=program, name="synth_lead")
    rng = grid.rng
    spb = grid.steps_per_bar
    scale = sorted({p for p in range(60, 90) if p % 12 in key.scale})
    prev = 72
    rhythm = LEAD_RHYTHMS[int(rng.integers(len(LEAD_RHYTHMS)))]
    for bar, chord in enumerate(chords):
        if bar % 4 == 0:
            rhythm = LEAD_RHYTHMS[int(rng.integers(len(LEAD_RHYTHMS)))]
        if bar % 4 == 3 and rng.random() < 0.5:
            continue  # breathe at the end of a phrase
        for step, length in _fit(rhythm, spb):
            if step % 8 == 0:
                cands = [p for p in range(62, 88) if p % 12 in chord.pitch_classes]
            else:
                i = int(np.searchsorted(scale, prev))
                moves = [i + d for d in (-2, -1, 1, 2) if 0 <= i + d < len(scale)]
                cands = [scale[m] for m in moves]
            weights = np.exp(-np.abs(np.array(cands) - prev) / 3.0)
            prev = int(rng.choice(cands, p=weights / weights.sum()))
            prev = int(np.clip(prev, 62, 88))
            grid.note(inst, prev, bar, step, min(length, spb - step), 90)
    return inst
