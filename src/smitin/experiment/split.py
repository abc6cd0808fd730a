"""The experiment's data: songs split by track, segment sets per trait, prompts and captions.

Songs are split by track into three disjoint parts: probe training, classifier training, and
evaluation (prompts, captions, reference music, judge accuracy).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import REFERENCE_TRAITS, SPLIT, Config

if TYPE_CHECKING:
    from ..data import SegmentSet


@dataclass
class TraitData:
    """One trait's segment sets, split by track."""

    probe: SegmentSet  # 3 s, probe tracks
    judge: SegmentSet  # duration, classifier tracks
    judge_eval: SegmentSet  # duration, evaluation tracks: judge accuracy
    prompts: SegmentSet  # prompt_seconds, evaluation tracks: continuation prompts


@dataclass
class PreparedData:
    """What `prepare_data` gives the runner."""

    root: Path  # the stem collection
    traits: dict[str, TraitData]  # per trait of the run
    split: dict[str, set[str]]  # "probe" / "judge" / "eval" -> track names
    reference: dict[str, SegmentSet]  # FAD reference sets (evaluation tracks) per REFERENCE_TRAITS trait


def split_tracks(names: Iterable[str], seed: int, shares: tuple[float, float] = SPLIT) -> dict[str, set[str]]:
    """Tracks -> probe / judge / eval sets, disjoint, the same for every trait.

    From 20 tracks on, each track's side depends on a seeded hash of its name alone, so a run on
    some traits and a run on others (sharing one output folder) agree; fewer tracks are ranked by
    that hash and cut in proportion so that no side is empty.
    """
    names = sorted(set(names))
    u = {n: int(hashlib.sha256(f"{seed}:{n}".encode()).hexdigest()[:12], 16) / 16**12 for n in names}
    if len(names) >= 20:
        a, b = shares[0], shares[0] + shares[1]
        return {
            "probe": {n for n in names if u[n] < a},
            "judge": {n for n in names if a <= u[n] < b},
            "eval": {n for n in names if u[n] >= b},
        }
    ranked = sorted(names, key=u.__getitem__)
    n = len(ranked)
    a = max(2, round(shares[0] * n)) if n >= 4 else max(1, n - 2)
    b = max(1, round(shares[1] * n))
    return {"probe": set(ranked[:a]), "judge": set(ranked[a : a + b]), "eval": set(ranked[a + b :])}


def prepare_data(cfg: Config, sample_rate: int) -> PreparedData:
    """Render (if needed) and segment the data; the split, and the FAD reference sets, by track."""
    from ..data import DataError, stem_segments

    root = cfg.data
    if root is None:
        from ..synth import render_dataset

        root = cfg.out / "data"
        print(f"rendering {cfg.songs} songs (seed {cfg.data_seed}) into {root} ...", file=sys.stderr)
        render_dataset(root, songs=cfg.songs, seed=cfg.data_seed, sample_rate=16000, progress=cfg.progress)
    opts: dict[str, Any] = dict(sample_rate=sample_rate, max_segments_per_track=cfg.per_track)
    sets: dict[str, dict[str, SegmentSet]] = {}
    for trait in dict.fromkeys([*cfg.traits, *REFERENCE_TRAITS]):
        if trait not in cfg.traits:  # only for the FAD reference, which must not depend on --traits
            try:
                sets[trait] = {"long": stem_segments(root, trait, seconds=cfg.duration, **opts)}
            except DataError:
                pass
            continue
        sets[trait] = {
            "probe": stem_segments(root, trait, seconds=3.0, **opts),
            "long": stem_segments(root, trait, seconds=cfg.duration, **opts),
            "prompt": stem_segments(root, trait, seconds=cfg.prompt_seconds, **opts),
        }
    names = {s.track for v in sets.values() for seg in v.values() for s in seg.segments}
    split = split_tracks(names, cfg.data_seed)
    reference = {t: v["long"].subset(split["eval"]) for t, v in sets.items() if t in REFERENCE_TRAITS}
    traits = {
        t: TraitData(
            v["probe"].subset(split["probe"]),
            v["long"].subset(split["judge"]),
            v["long"].subset(split["eval"]),
            v["prompt"].subset(split["eval"]),
        )
        for t, v in sets.items()
        if t in cfg.traits
    }
    return PreparedData(Path(root), traits, split, reference)


def track_meta(root: Path, track: str) -> dict[str, Any]:
    """A track's meta.json (the renderer writes its style there); {} when there is none."""
    path = root / track / "meta.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _words(names: list[str]) -> str:
    names = [n.replace("_", " ") for n in names]
    if not names:
        return "music"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def caption(style: str, present: list[str], absent: str | None = None) -> str:
    """A text prompt: 'a <style> groove with <stems>[, without <absent>]'."""
    art = "an" if style[:1] in "aeiou" else "a"
    text = f"{art} {style} groove with {_words(present)}"
    return text + (f", without {absent.replace('_', ' ')}" if absent else "")


def pick_prompts(segs: Any, label: int, n: int) -> list[int]:
    """n segment indices with the given label, spread over tracks (round robin, cycling if short)."""
    by_track: dict[str, list[int]] = {}
    for i, s in enumerate(segs.segments):
        if s.label == label:
            by_track.setdefault(s.track, []).append(i)
    if not by_track:
        return []
    order: list[int] = []
    tracks, depth = sorted(by_track), 0
    while len(order) < n and depth < 1000:
        for t in tracks:
            if depth < len(by_track[t]):
                order.append(by_track[t][depth])
        depth += 1
    return [order[i % len(order)] for i in range(n)]
