"""Keys, chords, progressions and the instrument families the renderer writes as stems."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NOTE_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")

# Stem families (one file each) and the General MIDI programs a song may draw for them.
FAMILY_PROGRAMS: dict[str, tuple[int, ...]] = {
    "bass": (32, 33, 34, 35, 36, 38, 39),
    "guitar": (24, 25, 26, 27, 28, 29, 30),
    "piano": (0, 1, 2, 4, 5),
    "organ": (16, 17, 18, 19),
    "strings": (48, 49, 50, 40, 42),
    "synth_lead": (80, 81, 82, 84),
}
FAMILIES: tuple[str, ...] = ("drums", *FAMILY_PROGRAMS)
PITCHED: tuple[str, ...] = tuple(FAMILY_PROGRAMS)
HARMONIC: tuple[str, ...] = ("guitar", "piano", "organ", "strings")

# Probability that a family plays in a song: every family is missing from a good share of songs,
# so "with / without X" pairs and whole songs without X both exist.
PRESENCE: dict[str, float] = {
    "drums": 0.65,
    "bass": 0.65,
    "guitar": 0.55,
    "piano": 0.55,
    "organ": 0.5,
    "strings": 0.5,
    "synth_lead": 0.5,
}

PROGRAM_WORDS: dict[int, str] = {
    0: "piano",
    1: "bright piano",
    2: "electric grand piano",
    3: "honky-tonk piano",
    4: "electric piano",
    5: "electric piano",
    16: "organ",
    17: "percussive organ",
    18: "rock organ",
    19: "church organ",
    24: "nylon guitar",
    25: "acoustic guitar",
    26: "jazz guitar",
    27: "clean electric guitar",
    28: "muted guitar",
    29: "overdriven guitar",
    30: "distorted guitar",
    31: "guitar harmonics",
    32: "acoustic bass",
    33: "electric bass",
    34: "picked bass",
    35: "fretless bass",
    36: "slap bass",
    37: "slap bass",
    38: "synth bass",
    39: "synth bass",
    40: "violin",
    41: "viola",
    42: "cello",
    48: "strings",
    49: "slow strings",
    50: "synth strings",
    51: "synth strings",
    80: "square lead",
    81: "saw lead",
    82: "calliope lead",
    83: "chiff lead",
    84: "charang lead",
    85: "voice lead",
    86: "fifths lead",
    87: "bass-and-lead synth",
}


def family_of_program(program: int, is_drum: bool = False) -> str | None:
    """The stem family of a GM program, or None for programs the renderer has no stem for."""
    if is_drum:
        return "drums"
    for fam, progs in (
        ("piano", range(0, 8)),
        ("organ", range(16, 24)),
        ("guitar", range(24, 32)),
        ("bass", range(32, 40)),
        ("strings", (40, 41, 42, 43, 44, 45, 48, 49, 50, 51)),
        ("synth_lead", range(80, 88)),
    ):
        if program in progs:
            return fam
    return None


QUALITY_INTERVALS: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "7": (0, 4, 7, 10),
    "m7": (0, 3, 7, 10),
    "maj7": (0, 4, 7, 11),
    "dim": (0, 3, 6),
}
QUALITY_SUFFIX = {"maj": "", "min": "m", "7": "7", "m7": "m7", "maj7": "maj7", "dim": "dim"}

MAJOR_STEPS = (0, 2, 4, 5, 7, 9, 11)
MINOR_STEPS = (0, 2, 3, 5, 7, 8, 10)
MAJOR_QUALITIES = ("maj", "min", "min", "maj", "maj", "min", "dim")
MINOR_QUALITIES = ("min", "dim", "maj", "min", "min", "maj", "maj")
SEVENTHS = {"maj": "maj7", "min": "m7"}

# Degree templates (0-based scale degrees), one chord per bar.
MAJOR_PROGRESSIONS = (
    (0, 4, 5, 3),
    (0, 3, 4, 3),
    (1, 4, 0, 0),
    (0, 5, 3, 4),
    (0, 3, 0, 4),
    (5, 3, 0, 4),
    (0, 0, 3, 4),
    (0, 2, 3, 4),
)
MINOR_PROGRESSIONS = ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 3, 6, 2), (0, 5, 3, 4), (0, 0, 3, 3))


@dataclass(frozen=True)
class Chord:
    root: int  # pitch class 0-11
    quality: str

    @property
    def name(self) -> str:
        """Chord symbol as mma reads it (C, Am, Bb7, Ebmaj7)."""
        return NOTE_NAMES[self.root] + QUALITY_SUFFIX[self.quality]

    @property
    def pitch_classes(self) -> list[int]:
        return [(self.root + i) % 12 for i in QUALITY_INTERVALS[self.quality]]


@dataclass(frozen=True)
class Key:
    tonic: int
    minor: bool

    @property
    def name(self) -> str:
        return f"{NOTE_NAMES[self.tonic]} {'minor' if self.minor else 'major'}"

    @property
    def scale(self) -> list[int]:
        return [(self.tonic + s) % 12 for s in (MINOR_STEPS if self.minor else MAJOR_STEPS)]

    def chord(self, degree: int, seventh: bool = False) -> Chord:
        steps = MINOR_STEPS if self.minor else MAJOR_STEPS
        quality = (MINOR_QUALITIES if self.minor else MAJOR_QUALITIES)[degree]
        if seventh:
            quality = "7" if degree == 4 and quality in ("maj", "min") else SEVENTHS.get(quality, quality)
        return Chord((self.tonic + steps[degree]) % 12, quality)


def progression(key: Key, rng: np.random.Generator, bars: int, jazzy: bool = False) -> list[Chord]:
    """One chord per bar: an A section and a B section of 8 bars each, repeated to fill ``bars``."""
    templates = MINOR_PROGRESSIONS if key.minor else MAJOR_PROGRESSIONS
    sections = []
    for _ in range(2):
        t = templates[int(rng.integers(len(templates)))]
        slow = rng.random() < 0.3  # half the harmonic rhythm: each chord for two bars
        degrees = [d for d in t for _ in range(2)] if slow else list(t) * 2
        sections.append([key.chord(d, seventh=jazzy and rng.random() < 0.6) for d in degrees])
    chords: list[Chord] = []
    while len(chords) < bars:
        chords.extend(sections[(len(chords) // 8) % 2])
    return chords[:bars]


def caption_list(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]
