"""Two-folder traits: one segment per clip from a folder with the trait and one without it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from .errors import DataError, Report
from .layouts import AUDIO_EXTENSIONS, audio_files
from .segments import Segment, SegmentSet, describe

__all__ = ["folder_segments"]


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
    report = Report()
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
        files = audio_files(folder, recursive=True)
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
