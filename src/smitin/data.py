"""Stem collections -> labelled audio segments for probe training.

A positive segment is the mix of ALL stems of a track over a window where the trait's stem is
active; its paired negative is the same window mixed from every stem EXCEPT the trait's stems
(SMITIN, Koo et al. 2025). Pairs differ only by the trait, so a probe cannot learn the song.
The train/validation split must be made by ``Segment.track`` (segments of one song leak).

Layouts: MUSDB18(-HQ), MoisesDB, Slakh2100 and a plain ``<track>/<stem>.wav|flac`` layout (what
``smitin.synth`` writes). Bad input is skipped with a counted reason in ``SegmentSet.summary`` or
raises :class:`DataError` naming the file and the fix, never a bare traceback.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .activity import BLOCK_S, block_activity, block_energy, track_level
from .audio import normalise_loudness, to_mono

__all__ = [
    "AUDIO_EXTENSIONS",
    "DEFAULT_STEM_MAP",
    "MUSDB_STEMS",
    "LAYOUTS",
    "DataError",
    "Segment",
    "SegmentSet",
    "describe",
    "detect_layout",
    "folder_segments",
    "known_traits",
    "stem_segments",
]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3")
MIX_NAMES = frozenset({"mix", "mixture", "master", "full_mix"})
MUSDB_STEMS = ("drums", "bass", "other", "vocals")
LAYOUTS = ("auto", "plain", "musdb", "moisesdb", "slakh")

# Trait -> stem names that carry it. Names are compared after normalisation (lower case, spaces and
# hyphens to "_", a trailing index such as "_2" dropped). Slakh's inst_class values and MoisesDB's
# stem categories are included; General MIDI family names double as Slakh classes.
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


class DataError(ValueError):
    """Unusable input; the message names the offending file or folder and the fix."""


@dataclass(frozen=True)
class Segment:
    """One labelled window: the sum of ``sources`` from ``start`` for the set's ``seconds``."""

    track: str
    label: int
    sources: tuple[str, ...]
    start: float
    key: str


@dataclass
class SegmentSet:
    """Labelled segments plus what is needed to load them lazily, frame-exact, from disk."""

    segments: list[Segment]
    trait: str
    sample_rate: int
    seconds: float
    summary: dict
    _info: dict = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.segments)

    def labels(self) -> np.ndarray:
        return np.array([s.label for s in self.segments], dtype=np.int64)

    def groups(self) -> list[str]:
        return [s.track for s in self.segments]

    def subset(self, tracks: Iterable[str]) -> SegmentSet:
        """The segments of these tracks only (same trait, length and file cache)."""
        keep = set(tracks)
        return replace(self, segments=[s for s in self.segments if s.track in keep])

    @property
    def n_samples(self) -> int:
        return int(round(self.seconds * self.sample_rate))

    def _file_info(self, path: str) -> tuple[int, int]:
        if path not in self._info:
            try:
                info = sf.info(path)
            except Exception as exc:  # libsndfile raises several types
                raise DataError(f"cannot read {path}: {exc}. Re-create the file or remove it.") from exc
            self._info[path] = (int(info.samplerate), int(info.frames))
        return self._info[path]

    def load_one(self, segment: Segment) -> np.ndarray:
        """Mono float32 mix of the segment's sources at ``sample_rate``, RMS-normalised."""
        n = self.n_samples
        by_rate: dict[int, np.ndarray] = {}
        for path in segment.sources:
            sr, _ = self._file_info(path)
            want = int(round(self.seconds * sr))
            try:
                x, _ = sf.read(
                    path, start=int(round(segment.start * sr)), frames=want, dtype="float32", always_2d=True
                )
            except Exception as exc:
                raise DataError(f"cannot read {path}: {exc}. Re-create the file or remove it.") from exc
            mono = to_mono(x)
            acc = by_rate.setdefault(sr, np.zeros(want, dtype=np.float32))
            acc[: len(mono)] += mono
        out = np.zeros(n, dtype=np.float32)
        for sr, y in by_rate.items():
            if sr != self.sample_rate:
                y = soxr.resample(y, sr, self.sample_rate).astype(np.float32)
            m = min(n, len(y))
            out[:m] += y[:m]
        return normalise_loudness(out)

    def load(self, indices: Sequence[int]) -> np.ndarray:
        """float32 [len(indices), round(seconds * sample_rate)]; reads only the needed frames."""
        idx = list(indices)
        out = np.zeros((len(idx), self.n_samples), dtype=np.float32)
        for row, i in enumerate(idx):
            out[row] = self.load_one(self.segments[i])
        return out

    def fingerprint(self) -> str:
        """Hash of the segment keys, source sizes/mtimes, rate and length: changes with the data."""
        h = hashlib.sha256()
        h.update(json.dumps([self.trait, self.sample_rate, float(self.seconds)]).encode())
        files: set[str] = set()
        for s in self.segments:
            h.update(s.key.encode())
            h.update(b"\0")
            files.update(s.sources)
        for path in sorted(files):
            try:
                st = os.stat(path)
                h.update(f"{path}|{st.st_size}|{st.st_mtime_ns}\n".encode())
            except OSError:
                h.update(f"{path}|missing\n".encode())
        return h.hexdigest()[:16]


# ----------------------------------------------------------------------------- names and traits


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
    return sorted(_merged_map(stem_map))


def _trait_names(trait: str, stem_map: Mapping[str, Iterable[str]] | None) -> set[str]:
    merged = _merged_map(stem_map)
    key = normalise_name(trait)
    return merged.get(key, {key})


# ----------------------------------------------------------------------------- tracks per layout


@dataclass
class _Stem:
    path: Path
    names: tuple[str, ...]  # normalised names this stem answers to (file/folder/class/...)


@dataclass
class _Track:
    name: str
    stems: list[_Stem]


class _Report:
    """Collects skipped files and warnings for the summary."""

    def __init__(self) -> None:
        self.skipped: list[dict] = []
        self.warnings: list[str] = []
        self.reasons: dict[str, int] = {}

    def skip(self, path: Path | str, reason: str) -> None:
        self.skipped.append({"path": str(path), "reason": reason})
        kind = reason.split(":")[0]
        self.reasons[kind] = self.reasons.get(kind, 0) + 1

    def warn(self, msg: str) -> None:
        self.warnings.append(msg)


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)


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
    stem_sets = [{p.stem.lower() for p in _audio_files(t)} for t in tracks]
    stem_sets = [s for s in stem_sets if s]
    if stem_sets and all(s <= musdb_names and "mixture" in s and len(s) >= 3 for s in stem_sets):
        return "musdb"
    return "plain"


def _plain_tracks(root: Path, report: _Report) -> list[_Track]:
    tracks = []
    for d in _subdirs(root):
        stems = []
        for p in _audio_files(d):
            name = normalise_name(p.stem)
            if name in MIX_NAMES:
                continue  # the mix is what we build from stems, never a source
            stems.append(_Stem(p, (name,)))
        if stems:
            tracks.append(_Track(d.name, stems))
        elif any(p.is_file() for p in d.iterdir()):
            report.skip(d, "no stems: folder has no audio stems besides a mix (expected <track>/<stem>.wav)")
    return tracks


def _musdb_tracks(root: Path, report: _Report) -> list[_Track]:
    tracks = []
    for d in _musdb_track_dirs(root):
        stems = [_Stem(p, (p.stem.lower(),)) for p in _audio_files(d) if p.stem.lower() in MUSDB_STEMS]
        missing = set(MUSDB_STEMS) - {s.names[0] for s in stems}
        if missing:
            report.warn(f"{d}: MUSDB stems missing: {', '.join(sorted(missing))} (mix built from the rest)")
        if stems:
            split = d.parent.name if d.parent != root else ""
            tracks.append(_Track(f"{split}/{d.name}" if split else d.name, stems))
    return tracks


def _moises_tracks(root: Path, report: _Report) -> list[_Track]:
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
            for p in _audio_files(cat):
                names = (normalise_name(cat.name),) + ((types[p.stem],) if p.stem in types else ())
                stems.append(_Stem(p, names))
        if stems:
            tracks.append(_Track(d.name, stems))
    return tracks


def _slakh_tracks(root: Path, report: _Report) -> list[_Track]:
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
            stems.append(_Stem(path, tuple(dict.fromkeys(names)) or (sid.lower(),)))
        if stems:
            rel = d.relative_to(root)
            tracks.append(_Track(str(rel), stems))
    return tracks


_READERS = {
    "plain": _plain_tracks,
    "musdb": _musdb_tracks,
    "moisesdb": _moises_tracks,
    "slakh": _slakh_tracks,
}


# ----------------------------------------------------------------------------- energy gate


def _block_energy(path: Path, block_s: float = BLOCK_S) -> tuple[np.ndarray, int, int]:
    """Block energies of a file's mono mixdown, read in chunks so memory stays flat."""
    info = sf.info(str(path))
    sr = int(info.samplerate)
    b = max(1, int(round(block_s * sr)))
    parts = []
    for x in sf.blocks(str(path), blocksize=b * 300, dtype="float32", always_2d=True):
        mono = to_mono(x)
        parts.append(block_energy(mono, sr, block_s))
    energy = np.concatenate(parts) if parts else np.zeros(0)
    return energy, sr, int(info.frames)


def _window_fraction(active: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    c = np.concatenate([[0], np.cumsum(active, dtype=np.int64)])
    return (c[starts + width] - c[starts]) / float(width)


# ----------------------------------------------------------------------------- public builders


def stem_segments(
    root: str | os.PathLike,
    trait: str,
    *,
    sample_rate: int,
    seconds: float = 3.0,
    layout: str = "auto",
    gate_db: float = -35.0,
    hop: float | None = None,
    stem_map: Mapping[str, Iterable[str]] | None = None,
    max_segments_per_track: int | None = None,
    min_active: float = 0.5,
) -> SegmentSet:
    """Paired positive/negative segments for ``trait`` from a multitrack collection.

    A stem "plays" in a 100 ms block when its energy, averaged over 0.5 s, is within ``gate_db``
    dB of the track's mix level (see :func:`block_activity`). A window (length ``seconds``, step
    ``hop``, default ``seconds``) yields a pair when the trait's stems play in at least
    ``min_active`` of its blocks, both over the whole window and over its last second (probes
    read the last step), and the other stems play by the same rule (a silent negative would teach
    the probe loudness). Windows are thinned evenly to ``max_segments_per_track`` pairs.
    """
    root = Path(root).expanduser().resolve()
    if seconds <= 0 or sample_rate <= 0:
        raise DataError(f"seconds ({seconds}) and sample_rate ({sample_rate}) must be positive.")
    if layout not in LAYOUTS:
        raise DataError(f"unknown layout {layout!r} for {root}; use one of {', '.join(LAYOUTS)}.")
    if not root.is_dir():
        raise DataError(
            f"data folder {root} does not exist; pass the folder that holds one folder per track."
        )
    if not any(root.iterdir()):
        raise DataError(f"data folder {root} is empty; put one folder per track with its stems inside.")
    if layout == "auto":
        layout = detect_layout(root)
    trait_key = normalise_name(trait)
    if layout == "musdb":
        names = _trait_names(trait, stem_map) & set(MUSDB_STEMS)
        if not names:
            raise DataError(
                f"MUSDB18 at {root} has only drums/bass/vocals/other stems, so trait {trait!r} cannot be "
                "isolated (e.g. piano and guitar are mixed inside 'other'); use drums, bass, vocals "
                "or other, or a collection with finer stems (MoisesDB, Slakh2100, `smitin data synth`)."
            )
    names = _trait_names(trait, stem_map)
    report = _Report()
    tracks = _READERS[layout](root, report)
    if not tracks and next(root.rglob("*.stem.mp4"), None) is not None:
        raise DataError(
            f"{root} holds MUSDB18 .stem.mp4 files, which cannot be read here; use MUSDB18-HQ (WAV stems) "
            "or decode them first (musdb's `musdbconvert` writes <track>/<stem>.wav)."
        )
    if not tracks:
        raise DataError(
            f"no tracks found in {root} (layout {layout}); expected one folder per track with stem files "
            f"({', '.join(AUDIO_EXTENSIONS)}), e.g. {root}/song1/drums.wav."
        )
    hop = seconds if hop is None else hop
    if hop <= 0:
        raise DataError(f"hop must be positive, got {hop}.")
    width = max(1, int(round(seconds / BLOCK_S)))
    step = max(1, int(round(hop / BLOCK_S)))
    tail = min(width, int(round(1.0 / BLOCK_S)))

    segments: list[Segment] = []
    per_track: dict[str, dict[str, int]] = {}
    info_cache: dict[str, tuple[int, int]] = {}
    without_trait: list[str] = []
    resampled = 0
    seen_names: set[str] = set()
    for tr in tracks:
        for s in tr.stems:
            seen_names.update(s.names)
        trait_stems = [s for s in tr.stems if set(s.names) & names]
        if not trait_stems:
            without_trait.append(tr.name)
            continue
        energies: list[np.ndarray] = []
        usable: list[_Stem] = []
        durations: list[float] = []
        for s in tr.stems:
            try:
                e, sr, frames = _block_energy(s.path)
            except Exception as exc:  # corrupt/unsupported files raise many types
                report.skip(s.path, f"unreadable: {exc}; re-export the file as WAV/FLAC or remove it")
                continue
            if frames == 0:
                report.skip(s.path, "empty: file has no audio frames; remove it")
                continue
            info_cache[str(s.path)] = (sr, frames)
            resampled += sr != sample_rate
            usable.append(s)
            energies.append(e)
            durations.append(frames / sr)
        level = track_level(energies)
        keep = []
        for i, (s, e) in enumerate(zip(usable, energies, strict=True)):
            if block_activity(e, level, gate_db).any():
                keep.append(i)
            else:
                report.skip(
                    s.path,
                    f"silent: never within {-gate_db:g} dB of the track's mix level; lower gate_db or remove it",
                )
        usable = [usable[i] for i in keep]
        energies = [energies[i] for i in keep]
        durations = [durations[i] for i in keep]
        t_stems = [i for i, s in enumerate(usable) if set(s.names) & names]
        r_stems = [i for i, s in enumerate(usable) if not set(s.names) & names]
        if not t_stems:
            report.skip(tr.name, f"no usable stem: the {trait} stems were silent or unreadable")
            continue
        if not r_stems:
            report.skip(
                tr.name, f"no other stems: a negative needs stems besides {trait}; add the other stems"
            )
            continue
        dur = min(durations)
        if max(durations) - dur > 0.01:
            report.warn(
                f"{tr.name}: stem lengths differ ({dur:.2f}-{max(durations):.2f} s); using the shortest"
            )
        n_blocks = min(min(len(e) for e in energies), int(math.floor(dur / BLOCK_S + 1e-9)))
        if n_blocks < width:
            report.skip(tr.name, f"too short: {dur:.2f} s is shorter than one {seconds} s segment")
            continue
        t_act = block_activity(sum(energies[i][:n_blocks] for i in t_stems), level, gate_db)
        r_act = block_activity(sum(energies[i][:n_blocks] for i in r_stems), level, gate_db)
        starts = np.arange(0, n_blocks - width + 1, step)
        ok = (
            (_window_fraction(t_act, starts, width) >= min_active)
            & (_window_fraction(t_act, starts + width - tail, tail) >= min_active)
            & (_window_fraction(r_act, starts, width) >= min_active)
        )
        chosen = starts[ok]
        if max_segments_per_track is not None and len(chosen) > max_segments_per_track:
            pick = np.linspace(0, len(chosen) - 1, max_segments_per_track).round().astype(int)
            chosen = chosen[np.unique(pick)]
        if len(chosen) == 0:
            report.warn(f"{tr.name}: no window with the {trait} stem active (gate {gate_db} dB)")
        all_src = tuple(str(usable[i].path) for i in sorted(t_stems + r_stems))
        rest_src = tuple(str(usable[i].path) for i in r_stems)
        for b in chosen:
            start = round(float(b) * BLOCK_S, 3)
            for label, src in ((1, all_src), (0, rest_src)):
                segments.append(Segment(tr.name, label, src, start, f"{tr.name}/{label}/{start:.3f}"))
        per_track[tr.name] = {"positive": int(len(chosen)), "negative": int(len(chosen))}

    if not any(names & set(s.names) for tr in tracks for s in tr.stems):
        raise DataError(
            f"trait {trait!r} matches no stem in {root} (layout {layout}); stems found: "
            f"{', '.join(sorted(seen_names)) or 'none'}. Name stems after the trait, or pass "
            f"stem_map={{{trait_key!r}: [<stem names>]}}. Known traits: {', '.join(known_traits(stem_map))}."
        )
    summary = {
        "trait": trait,
        "layout": layout,
        "root": str(root),
        "seconds": seconds,
        "sample_rate": sample_rate,
        "gate_db": gate_db,
        "stems_matched": sorted(names),
        "tracks_scanned": len(tracks),
        "tracks_used": len(per_track),
        "segments": {
            "positive": sum(v["positive"] for v in per_track.values()),
            "negative": sum(v["negative"] for v in per_track.values()),
        },
        "per_track": per_track,
        "tracks_without_trait": without_trait,
        "files_resampled": int(resampled),
        "skipped": report.skipped,
        "skip_reasons": report.reasons,
        "warnings": report.warnings,
    }
    if not segments:
        raise DataError(
            f"no segments for trait {trait!r} in {root}:\n{describe(summary)}\n"
            "Fix: lower gate_db, use shorter seconds, or add tracks where the stem plays."
        )
    return SegmentSet(segments, trait, int(sample_rate), float(seconds), summary, info_cache)


def _collect_audio(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)


def folder_segments(
    positive: str | os.PathLike,
    negative: str | os.PathLike,
    *,
    sample_rate: int,
    seconds: float = 3.0,
    trait: str = "trait",
) -> SegmentSet:
    """One segment per file (its middle ``seconds``) from a with-trait and a without-trait folder.

    Each file is its own group, since unpaired clips cannot leak through a shared song.
    """
    report = _Report()
    segments: list[Segment] = []
    info_cache: dict[str, tuple[int, int]] = {}
    counts = {"positive": 0, "negative": 0}
    for label, folder in (
        (1, Path(positive).expanduser().resolve()),
        (0, Path(negative).expanduser().resolve()),
    ):
        kind = "positive" if label else "negative"
        if not folder.is_dir():
            raise DataError(f"{kind} folder {folder} does not exist; pass a folder of audio clips.")
        files = _collect_audio(folder)
        if not files:
            raise DataError(
                f"{kind} folder {folder} has no audio files ({', '.join(AUDIO_EXTENSIONS)}); add clips to it."
            )
        for p in files:
            try:
                info = sf.info(str(p))
            except Exception as exc:
                report.skip(p, f"unreadable: {exc}; re-export the file as WAV/FLAC or remove it")
                continue
            sr, frames = int(info.samplerate), int(info.frames)
            dur = frames / sr if sr else 0.0
            if dur + 1e-9 < seconds:
                report.skip(p, f"too short: {dur:.2f} s is shorter than one {seconds} s segment")
                continue
            start = round(max(0.0, (dur - seconds) / 2.0), 3)
            x, _ = sf.read(
                str(p), start=int(start * sr), frames=int(seconds * sr), dtype="float32", always_2d=True
            )
            if float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) < 10 ** (-60 / 20):
                report.skip(p, "silent: the segment is below -60 dBFS; remove the file")
                continue
            info_cache[str(p)] = (sr, frames)
            track = f"{kind}/{p.relative_to(folder)}"
            segments.append(Segment(track, label, (str(p),), start, f"{track}/{label}/{start:.3f}"))
            counts[kind] += 1
    summary = {
        "trait": trait,
        "layout": "folders",
        "root": f"{positive} | {negative}",
        "seconds": seconds,
        "sample_rate": sample_rate,
        "tracks_used": len(segments),
        "segments": counts,
        "per_track": {s.track: {"positive": s.label, "negative": 1 - s.label} for s in segments},
        "skipped": report.skipped,
        "skip_reasons": report.reasons,
        "warnings": report.warnings,
    }
    if not counts["positive"] or not counts["negative"]:
        raise DataError(
            f"need clips in both classes, got {counts['positive']} positive ({positive}) and "
            f"{counts['negative']} negative ({negative}):\n{describe(summary)}"
        )
    return SegmentSet(segments, trait, int(sample_rate), float(seconds), summary, info_cache)


def describe(summary: dict) -> str:
    """Human-readable run summary: segments per class, tracks, skipped files with reasons."""
    seg = summary.get("segments", {})
    lines = [
        f"trait {summary.get('trait')!r}, layout {summary.get('layout')}, {summary.get('root')}",
        f"  segments: {seg.get('positive', 0)} positive, {seg.get('negative', 0)} negative "
        f"({summary.get('seconds')} s at {summary.get('sample_rate')} Hz)",
        f"  tracks used: {summary.get('tracks_used', 0)}"
        + (f" of {summary['tracks_scanned']} scanned" if "tracks_scanned" in summary else ""),
    ]
    if summary.get("tracks_without_trait"):
        lines.append(f"  tracks without the trait's stem: {len(summary['tracks_without_trait'])}")
    if summary.get("files_resampled"):
        lines.append(f"  files resampled on load: {summary['files_resampled']}")
    skipped = summary.get("skipped", [])
    if skipped:
        lines.append(
            f"  skipped: {len(skipped)} ({', '.join(f'{k} {v}' for k, v in summary['skip_reasons'].items())})"
        )
        lines += [f"    {s['path']}: {s['reason']}" for s in skipped[:20]]
        if len(skipped) > 20:
            lines.append(f"    ... and {len(skipped) - 20} more")
    warnings = summary.get("warnings", [])
    if warnings:
        lines.append(f"  warnings: {len(warnings)}")
        lines += [f"    {w}" for w in warnings[:20]]
        if len(warnings) > 20:
            lines.append(f"    ... and {len(warnings) - 20} more")
    return "\n".join(lines)
