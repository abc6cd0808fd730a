"""Musical MIDI Accompaniment (Debian ``mma``): a chord chart plus a groove -> multitrack GM MIDI.

mma supplies real accompaniment grooves (rock, swing, bossa, funk, ballad ...). The groove list is
read from the installed library so no name is guessed; grooves outside 4/4 and 3/4 and the
intro/ending/fill variants are left out.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pretty_midi

from .theory import Chord

MMA_LIB = Path("/usr/share/mma/lib/stdlib")
_SKIP_FILES = {"metronome", "metronome3", "metronome6", "metronome68", "none", "jazz-54"}
_SKIP_WORDS = ("intro", "end", "fill", "break")

STYLE_WORDS = {
    "50srock": "50s rock",
    "60srock": "60s rock",
    "8beat": "8-beat pop",
    "bvfunk": "funk",
    "dsoul": "soul",
    "rb": "r&b",
    "rb-ballad": "r&b ballad",
    "lfusion": "latin fusion",
    "boggiewoggie": "boogie-woogie",
    "shuffleboggie": "shuffle boogie",
    "boneym": "disco",
    "bossanova": "bossa nova",
    "basicrock": "rock",
    "bubblerock": "bubblegum rock",
    "popballad": "pop ballad",
    "rockballad": "rock ballad",
    "pianoballad": "piano ballad",
    "stringballad": "string ballad",
    "guitarballad": "guitar ballad",
    "folkballad": "folk ballad",
    "folkrock": "folk rock",
    "softrock": "soft rock",
    "jazzrock": "jazz rock",
    "countryblues": "country blues",
    "countryswing": "country swing",
    "westernswing": "western swing",
    "easyswing": "easy swing",
    "modernjazz": "modern jazz",
    "mellowjazz": "mellow jazz",
    "nitejazz": "late-night jazz",
    "jazzcombo": "jazz combo",
    "jazzguitar": "jazz guitar",
    "jazzrhumba": "jazz rhumba",
    "cubanguitar": "cuban guitar",
    "afro-cuban": "afro-cuban",
    "descendingjazz": "jazz",
    "hillcountry": "hill country",
    "lighttango": "light tango",
    "popspiritual": "pop spiritual",
    "softshoe": "soft shoe",
    "showtune": "show tune",
    "dixiemarch": "dixieland march",
    "bwmarch": "march",
    "slowbolero": "slow bolero",
    "slowbroadway": "slow broadway",
    "slowcountry": "slow country",
    "slowjazz": "slow jazz",
    "slowblues": "slow blues",
    "slowspiritual": "slow spiritual",
    "fastblues": "fast blues",
    "fastswing": "fast swing",
    "fastwaltz": "fast waltz",
    "fastjazzwaltz": "fast jazz waltz",
    "jazzwaltz": "jazz waltz",
    "modernjazzwaltz": "modern jazz waltz",
    "countrywaltz": "country waltz",
    "rockwaltz": "rock waltz",
    "latinwaltz": "latin waltz",
    "frenchwaltz": "french waltz",
    "vienesewaltz": "viennese waltz",
    "broadwaywaltz": "broadway waltz",
    "arpeggiowaltz": "arpeggio waltz",
    "arpeggio44": "arpeggio",
}


def mma_path() -> str | None:
    return shutil.which("mma")


def style_words(file_stem: str) -> str:
    if file_stem in STYLE_WORDS:
        return STYLE_WORDS[file_stem]
    return re.sub(r"\d+$", "", file_stem).replace("-", " ").strip() or file_stem


def tempo_range(style: str) -> tuple[int, int]:
    """A plausible tempo range for a style, from words in its name."""
    if "fast" in style:
        return (160, 200)
    if "slow" in style or "ballad" in style or "lullaby" in style or "hymn" in style:
        return (60, 84)
    if "waltz" in style:
        return (96, 160)
    if any(w in style for w in ("bossa", "samba", "salsa", "mambo", "merengue")):
        return (110, 150)
    if any(
        w in style for w in ("swing", "bebop", "dixie", "charleston", "quickstep", "ragtime", "bluegrass")
    ):
        return (120, 180)
    return (84, 140)


@functools.lru_cache(maxsize=4)
def list_grooves(lib: str = str(MMA_LIB)) -> tuple[tuple[str, str, int], ...]:
    """(groove, style words, beats per bar) for every usable groove in the installed mma library."""
    out = []
    for f in sorted(Path(lib).glob("*.mma")):
        if f.stem in _SKIP_FILES:
            continue
        try:
            text = f.read_text(errors="replace")
        except OSError:
            continue
        times = {int(m) for m in re.findall(r"(?im)^\s*Time\s+(\d+)", text)}
        if len(times) != 1 or times - {3, 4}:
            continue
        beats = next(iter(times))
        for name in re.findall(r"(?im)^\s*DefGroove\s+(\S+)", text):
            if any(w in name.lower() for w in _SKIP_WORDS):
                continue
            out.append((name, style_words(f.stem), beats))
    return tuple(out)


def chart(groove: str, tempo: int, chords: list[Chord], seed: int) -> str:
    lines = [f"RndSeed {seed}", f"Tempo {tempo}", f"Groove {groove}"]
    lines += [f"{i + 1} {c.name}" for i, c in enumerate(chords)]
    return "\n".join(lines) + "\n"


class MmaError(RuntimeError):
    pass


def run_mma(groove: str, tempo: int, chords: list[Chord], seed: int) -> pretty_midi.PrettyMIDI:
    """Compile a chart with mma into a PrettyMIDI (one instrument per mma track)."""
    exe = mma_path()
    if exe is None:
        raise MmaError("mma is not installed (apt-get install mma)")
    with tempfile.TemporaryDirectory(prefix="smitin-mma-") as tmp:
        src = Path(tmp) / "song.mma"
        src.write_text(chart(groove, tempo, chords, seed))
        res = subprocess.run([exe, str(src)], cwd=tmp, capture_output=True, text=True, timeout=120)
        mid = Path(tmp) / "song.mid"
        if res.returncode != 0 or not mid.is_file():
            raise MmaError(f"mma failed on groove {groove}: {(res.stdout + res.stderr).strip()[-400:]}")
        return pretty_midi.PrettyMIDI(str(mid))
