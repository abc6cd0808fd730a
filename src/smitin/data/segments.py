"""Labelled segments: what a probe trains on, loaded lazily and frame-exact from disk, and their summary.

The train/validation split must be made by ``Segment.track`` (segments of one song leak).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import soundfile as sf
import soxr

from ..audio import normalise_loudness, to_mono
from .errors import DataError

__all__ = ["Segment", "SegmentSet", "describe"]


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
