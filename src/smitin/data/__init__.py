"""Stem collections -> labelled audio segments for probe training.

A positive segment is the mix of ALL stems of a track over a window where the trait's stem is
active; its paired negative is the same window mixed from every stem EXCEPT the trait's stems
(SMITIN, Koo et al. 2025). Pairs differ only by the trait, so a probe cannot learn the song.
The train/validation split must be made by ``Segment.track`` (segments of one song leak).

Layouts: MUSDB18(-HQ), MoisesDB, Slakh2100 and a plain ``<track>/<stem>.wav|flac`` layout (what
``smitin.synth`` writes). Bad input is skipped with a counted reason in ``SegmentSet.summary`` or
raises :class:`DataError` naming the file and the fix, never a bare traceback.

Modules: ``traits`` (trait and stem names), ``layouts`` (reading each dataset layout),
``segments`` (Segment, SegmentSet, describe), ``stems`` (paired segments from stem collections),
``folders`` (two-folder traits), ``errors`` (DataError and the skip report).
"""

from ..activity import BLOCK_S, block_activity, block_energy, track_level
from .errors import DataError
from .folders import folder_segments
from .layouts import AUDIO_EXTENSIONS, LAYOUTS, MIX_NAMES, MUSDB_STEMS, detect_layout
from .segments import Segment, SegmentSet, describe
from .stems import stem_segments
from .traits import DEFAULT_STEM_MAP, GM_FAMILIES, known_traits, normalise_name

__all__ = [
    "AUDIO_EXTENSIONS",
    "BLOCK_S",
    "DEFAULT_STEM_MAP",
    "GM_FAMILIES",
    "LAYOUTS",
    "MIX_NAMES",
    "MUSDB_STEMS",
    "DataError",
    "Segment",
    "SegmentSet",
    "block_activity",
    "block_energy",
    "describe",
    "detect_layout",
    "folder_segments",
    "known_traits",
    "normalise_name",
    "stem_segments",
    "track_level",
]
