"""Paired segments from a multitrack collection: the trait's stems in the mix, or left out of it.

A positive segment is the mix of ALL stems of a track over a window where the trait's stem is
active; its paired negative is the same window mixed from every stem EXCEPT the trait's stems
(SMITIN, Koo et al. 2025). Pairs differ only by the trait, so a probe cannot learn the song.
Bad input is skipped with a counted reason in ``SegmentSet.summary`` or raises
:class:`~smitin.data.DataError` naming the file and the fix, never a bare traceback.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import soundfile as sf

from ..activity import BLOCK_S, block_activity, block_energy, track_level
from ..audio import to_mono
from .errors import DataError, Report
from .layouts import AUDIO_EXTENSIONS, LAYOUTS, MUSDB_STEMS, Stem, detect_layout, read_tracks
from .segments import Segment, SegmentSet, describe
from .traits import known_traits, normalise_name, trait_names

__all__ = ["stem_segments"]


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


def _summed(energies: list[np.ndarray], idx: list[int], n_blocks: int) -> np.ndarray:
    """The first ``n_blocks`` block energies of these stems, added up (``idx`` is not empty)."""
    total = energies[idx[0]][:n_blocks]
    for i in idx[1:]:
        total = total + energies[i][:n_blocks]
    return total


def _window_fraction(active: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    c = np.concatenate([[0], np.cumsum(active, dtype=np.int64)])
    return (c[starts + width] - c[starts]) / float(width)


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
        names = trait_names(trait, stem_map) & set(MUSDB_STEMS)
        if not names:
            raise DataError(
                f"MUSDB18 at {root} has only drums/bass/vocals/other stems, so trait {trait!r} cannot be "
                "isolated (e.g. piano and guitar are mixed inside 'other'); use drums, bass, vocals "
                "or other, or a collection with finer stems (MoisesDB, Slakh2100, `smitin data synth`)."
            )
    names = trait_names(trait, stem_map)
    report = Report()
    tracks = read_tracks(root, layout, report)
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
        usable: list[Stem] = []
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
        t_act = block_activity(_summed(energies, t_stems, n_blocks), level, gate_db)
        r_act = block_activity(_summed(energies, r_stems, n_blocks), level, gate_db)
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
