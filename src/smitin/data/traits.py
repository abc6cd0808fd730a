"""Trait names: which stem names carry a trait, and General MIDI program families.

Names are compared after :func:`normalise_name` (lower case, spaces and hyphens to "_", a
trailing index such as "_2" dropped). Slakh's inst_class values and MoisesDB's stem categories
are included; General MIDI family names double as Slakh classes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = ["DEFAULT_STEM_MAP", "GM_FAMILIES", "known_traits", "normalise_name", "playing", "trait_names"]

# Trait -> stem names that carry it.
DEFAULT_STEM_MAP: dict[str, tuple[str, ...]] = {
    "drums": ("drums", "drum", "drum_kit", "kit", "percussion", "percussive", "kick", "snare", "hihat"),
    "bass": ("bass", "bass_guitar", "electric_bass", "synth_bass", "double_bass", "contrabass", "bassline"),
    "guitar": (
        "guitar",
        "guitars",
        "electric_guitar",
        "acoustic_guitar",
        "clean_electric_guitar",
        "distorted_electric_guitar",
        "gtr",
    ),
    "piano": ("piano", "electric_piano", "grand_piano", "keys", "rhodes", "epiano"),
    "vocals": ("vocals", "vocal", "voice", "vox", "lead_vocals", "backing_vocals", "singing"),
    "strings": ("strings", "bowed_strings", "violin", "viola", "cello", "string_ensemble", "orchestra"),
    "organ": ("organ", "hammond", "church_organ"),
    "synth_lead": ("synth_lead", "synth", "lead_synth", "synth_leads"),
    "synth_pad": ("synth_pad", "pad"),
    "brass": ("brass", "trumpet", "trombone", "horn", "horns", "tuba"),
    "reed": ("reed", "sax", "saxophone", "clarinet", "oboe", "bassoon"),
    "wind": ("wind", "winds", "woodwind", "flute", "pipe"),
    "chromatic_percussion": ("chromatic_percussion", "mallets", "vibraphone", "marimba", "xylophone"),
    "other": ("other",),
}

# General MIDI program // 8 -> family name (used for Slakh stems without inst_class).
GM_FAMILIES = (
    "piano",
    "chromatic_percussion",
    "organ",
    "guitar",
    "bass",
    "strings",
    "strings",
    "brass",
    "reed",
    "pipe",
    "synth_lead",
    "synth_pad",
    "synth_effects",
    "ethnic",
    "percussive",
    "sound_effects",
)


def normalise_name(name: str) -> str:
    """'Electric Guitar 2' -> 'electric_guitar' ; 'Strings (continued)' -> 'strings'."""
    s = re.sub(r"\(.*?\)", "", name.lower())
    s = re.sub(r"[^a-z0-9]+", "_", s).strip("_")
    s = re.sub(r"(_?\d+)+$", "", s) if not s.isdigit() else s
    return s


def _merged_map(stem_map: Mapping[str, Iterable[str]] | None) -> dict[str, set[str]]:
    merged = {k: {normalise_name(n) for n in v} | {k} for k, v in DEFAULT_STEM_MAP.items()}
    for trait, names in (stem_map or {}).items():
        merged.setdefault(normalise_name(trait), {normalise_name(trait)}).update(
            normalise_name(n) for n in names
        )
    return merged


def known_traits(stem_map: Mapping[str, Iterable[str]] | None = None) -> list[str]:
    """Every trait name the default map (plus ``stem_map``) knows, sorted."""
    return sorted(_merged_map(stem_map))


def playing(stems: Iterable[str], traits: Iterable[str]) -> list[str]:
    """The `traits` (in their order) that some stem name in `stems` carries, e.g. a prompt's stem
    files ("grand-piano", "bass") -> ["bass", "piano"] of ["drums", "bass", "piano"]."""
    names = {normalise_name(s) for s in stems}
    return [t for t in traits if names & trait_names(t)]


def trait_names(trait: str, stem_map: Mapping[str, Iterable[str]] | None = None) -> set[str]:
    """The normalised stem names that carry ``trait`` (the trait's own name if it is unknown)."""
    merged = _merged_map(stem_map)
    key = normalise_name(trait)
    return merged.get(key, {key})
