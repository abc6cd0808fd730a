"""Dataset layouts: find the tracks of a stem collection and the names each stem answers to.

Layouts: MUSDB18(-HQ), MoisesDB, Slakh2100 and a plain ``<track>/<stem>.wav|flac`` layout (what
``smitin.synth`` writes). :func:`read_tracks` gives every track with its stems; bad files are
counted in the :class:`~smitin.data.errors.Report`, never raised as a bare traceback.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError, Report
from .traits import GM_FAMILIES, normalise_name

__all__ = [
    "AUDIO_EXTENSIONS",
    "LAYOUTS",
    "MIX_NAMES",
    "MUSDB_STEMS",
    "Stem",
    "Track",
    "audio_files",
    "detect_layout",
    "read_tracks",
]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3")
MIX_NAMES = frozenset({"mix", "mixture", "master", "full_mix"})
MUSDB_STEMS = ("drums", "bass", "other", "vocals")
LAYOUTS = ("auto", "plain", "musdb", "moisesdb", "slakh")


@dataclass
class Stem:
    path: Path
    names: tuple[str, ...]  # normalised names this stem answers to (file/folder/class/...)


@dataclass
class Track:
    name: str
    stems: list[Stem]


def audio_files(folder: Path, recursive: bool = False) -> list[Path]:
    """Audio files (by extension) directly in ``folder``, or anywhere below it, sorted."""
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _musdb_track_dirs(root: Path) -> list[Path]:
    splits = [root / s for s in ("train", "test") if (root / s).is_dir()]
    return [t for s in splits for t in _subdirs(s)] if splits else _subdirs(root)


def detect_layout(root: str | os.PathLike) -> str:
    """Guess the layout of a collection: 'slakh', 'moisesdb', 'musdb' or 'plain'."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist or is not a folder; pass the collection's root.")
    dirs = _subdirs(root)
    level2 = [d2 for d in dirs for d2 in _subdirs(d)]
    for cand in (dirs, level2):
        if any((d / "metadata.yaml").is_file() and (d / "stems").is_dir() for d in cand):
            return "slakh"
    if any((d / "data.json").is_file() for d in dirs):
        return "moisesdb"
    tracks = _musdb_track_dirs(root)
    musdb_names = set(MUSDB_STEMS) | {"mixture"}
    stem_sets = [{p.stem.lower() for p in audio_files(t)} for t in tracks]
    stem_sets = [s for s in stem_sets if s]
    if stem_sets and all(s <= musdb_names and "mixture" in s and len(s) >= 3 for s in stem_sets):
        return "musdb"
    return "plain"


def _plain_tracks(root: Path, report: Report) -> list[Track]:
    tracks = []
    for d in _subdirs(root):
        stems = []
        for p in audio_files(d):
            name = normalise_name(p.stem)
            if name in MIX_NAMES:
                continue  # the mix is what we build from stems, never a source
            stems.append(Stem(p, (name,)))
        if stems:
            tracks.append(Track(d.name, stems))
        elif any(p.is_file() for p in d.iterdir()):
            report.skip(d, "no stems: folder has no audio stems besides a mix (expected <track>/<stem>.wav)")
    return tracks


def _musdb_tracks(root: Path, report: Report) -> list[Track]:
    tracks = []
    for d in _musdb_track_dirs(root):
        stems = [Stem(p, (p.stem.lower(),)) for p in audio_files(d) if p.stem.lower() in MUSDB_STEMS]
        missing = set(MUSDB_STEMS) - {s.names[0] for s in stems}
        if missing:
            report.warn(f"{d}: MUSDB stems missing: {', '.join(sorted(missing))} (mix built from the rest)")
        if stems:
            split = d.parent.name if d.parent != root else ""
            tracks.append(Track(f"{split}/{d.name}" if split else d.name, stems))
    return tracks


def _moises_tracks(root: Path, report: Report) -> list[Track]:
    tracks = []
    for d in _subdirs(root):
        types: dict[str, str] = {}
        meta = d / "data.json"
        if meta.is_file():
            try:
                data = json.loads(meta.read_text())
                for stem in data.get("stems", []):
                    for tr in stem.get("tracks", []):
                        if "id" in tr and tr.get("trackType"):
                            types[str(tr["id"])] = normalise_name(str(tr["trackType"]))
            except (OSError, ValueError, AttributeError) as exc:
                report.warn(f"{meta}: unreadable data.json ({exc}); using folder names only")
        stems = []
        for cat in _subdirs(d):
            for p in audio_files(cat):
                names = (normalise_name(cat.name),) + ((types[p.stem],) if p.stem in types else ())
                stems.append(Stem(p, names))
        if stems:
            tracks.append(Track(d.name, stems))
    return tracks


def _slakh_tracks(root: Path, report: Report) -> list[Track]:
    import yaml

    metas = sorted(root.glob("*/metadata.yaml")) + sorted(root.glob("*/*/metadata.yaml"))
    tracks = []
    for meta in metas:
        d = meta.parent
        try:
            data = yaml.safe_load(meta.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            report.skip(meta, f"bad metadata: {exc}; fix or delete the file")
            continue
        stem_dir = d / str(data.get("audio_dir") or "stems")
        stems = []
        for sid, info in sorted((data.get("stems") or {}).items()):
            info = info or {}
            files = [stem_dir / f"{sid}{ext}" for ext in (".flac", ".wav")]
            path = next((f for f in files if f.is_file()), None)
            if path is None:
                if info.get("audio_rendered", True):
                    report.skip(files[0], "missing: stem listed in metadata.yaml but no audio file")
                continue
            names = []
            if info.get("is_drum"):
                names.append("drums")
            if info.get("inst_class"):
                names.append(normalise_name(str(info["inst_class"])))
            prog = info.get("program_num")
            if isinstance(prog, int) and 0 <= prog < 128 and not info.get("is_drum"):
                names.append(GM_FAMILIES[prog // 8])
            if info.get("midi_program_name"):
                names.append(normalise_name(str(info["midi_program_name"])))
            stems.append(Stem(path, tuple(dict.fromkeys(names)) or (sid.lower(),)))
        if stems:
            rel = d.relative_to(root)
            tracks.append(Track(str(rel), stems))
    return tracks


_READERS = {
    "plain": _plain_tracks,
    "musdb": _musdb_tracks,
    "moisesdb": _moises_tracks,
    "slakh": _slakh_tracks,
}


def read_tracks(root: Path, layout: str, report: Report) -> list[Track]:
    """The tracks of ``root`` read as ``layout`` (one of :data:`LAYOUTS` but 'auto')."""
    return _READERS[layout](root, report)
