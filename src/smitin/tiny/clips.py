"""Training clips of the tiny MusicGen: rendered songs, their stem submixes as codes, captions, activity.

A clip is a song's full mix or a submix of some of its stems, encoded by the codec (`Example`);
`make_caption` varies its text so the model learns instrument words; `clip_activity` says where
each stem plays (the tagging loss's targets).
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from .. import audio as audio_io
from ..activity import block_activity, block_energy, track_level
from ..audio import normalise_loudness
from ..codec import MelCodecEncoderOutput, MelCodecModel


@dataclass
class Example:
    """One training clip: a song's full mix or a submix of some of its stems, as codec codes."""

    song: str  # the training run's unique song name (uid), else the renderer's id
    present: list[str]  # instrument families audible in this clip
    absent: list[str]  # families the song has but this submix leaves out, plus families it never had
    words: dict[str, str]  # family -> instrument word used in the song's caption ("electric piano")
    style: str
    tempo: int
    key: str
    caption: str  # the renderer's caption (only for the full mix; "" for submixes)
    codes: torch.Tensor  # [K, T] int16
    activity: torch.Tensor | None = None  # [families, T] bool, only when training with the tagging loss


def read_songs(data_dir: str | os.PathLike) -> list[dict]:
    """Read the renderer's per-song meta.json files (plus stem paths) from a rendered folder."""
    root = Path(data_dir)
    songs = []
    for meta_path in sorted(root.glob("*/meta.json")):
        meta = json.loads(meta_path.read_text())
        stems = {p.stem: p for p in sorted(meta_path.parent.glob("*.wav")) if p.stem != "mix"}
        if not stems:
            continue
        meta["stem_paths"] = {k: str(v) for k, v in stems.items()}
        meta["words"] = _caption_words(meta)
        songs.append(meta)
    if not songs:
        raise FileNotFoundError(f"no rendered songs (<song>/meta.json + stems) under {root}")
    return songs


def _caption_words(meta: dict) -> dict[str, str]:
    """Family -> the instrument word the renderer put in the caption; family name as the fallback."""
    fams = list(meta.get("instruments", []))
    words = {f: f.replace("_", " ") for f in fams}
    tail = meta.get("caption", "").split(" with ", 1)
    if len(tail) == 2:
        parts = re.split(r", | and ", tail[1])
        if len(parts) == len(fams):
            words.update(zip(fams, parts, strict=True))
    return words


def song_variants(meta: dict, n_submixes: int, rng: random.Random) -> list[list[str]]:
    """Stem subsets to render: the full mix, then up to `n_submixes` distinct non-empty subsets.

    Dropping stems from the same song gives pairs that differ only by instruments, which is what
    the text conditioning and the lead's probes need to see.
    """
    fams = list(meta["stem_paths"])
    subsets = [fams]
    tries = 0
    while len(subsets) < 1 + n_submixes and len(fams) > 1 and tries < 50:
        tries += 1
        keep = [f for f in fams if rng.random() < 0.5]
        if keep and len(keep) < len(fams) and keep not in subsets:
            subsets.append(keep)
    return subsets


def encode_songs(
    songs: list[dict],
    codec: MelCodecModel,
    n_submixes: int,
    seed: int,
    all_families: Sequence[str],
    log: Any = print,
) -> list[Example]:
    """Mix, RMS-normalise and encode every (song, stem subset) clip."""
    rng = random.Random(seed)
    sr = codec.config.sampling_rate
    out: list[Example] = []
    t0 = time.time()
    for i, meta in enumerate(songs):
        stems = {f: audio_io.read(p, sr) for f, p in meta["stem_paths"].items()}
        n = min(len(x) for x in stems.values())
        for subset in song_variants(meta, n_submixes, rng):
            # subsets are never empty, so the sum is an array (never the start value 0)
            mix = normalise_loudness(cast(np.ndarray, sum(stems[f][:n] for f in subset)))
            with torch.no_grad():
                enc = codec.encode(torch.from_numpy(mix)[None, None])
                # return_dict is not False, so this is the output object
                assert isinstance(enc, MelCodecEncoderOutput) and enc.audio_codes is not None
                codes = enc.audio_codes[0, 0]
            out.append(
                Example(
                    song=meta.get("uid", meta["id"]),  # renders reuse ids: the run's uid is unique
                    present=list(subset),
                    absent=[f for f in all_families if f not in subset],
                    words=meta["words"],
                    style=meta.get("style", "music"),
                    tempo=int(meta.get("tempo", 120)),
                    key=meta.get("key", ""),
                    caption=meta.get("caption", "") if len(subset) == len(stems) else "",
                    codes=codes.to(torch.int16),
                )
            )
        if (i + 1) % 25 == 0:
            log(f"encoded {i + 1}/{len(songs)} songs ({len(out)} clips, {time.time() - t0:.0f} s)")
    return out


def make_caption(ex: Example, rng: random.Random, details: float = 1.0) -> str:
    """A caption for one clip, varied so the model learns instrument words rather than one template.

    Half the time instruments are named by their program word ("jazz guitar"), else by family
    ("guitar"); absent families are sometimes named with "without"/"no" so negation means something.
    `details` scales how often song details (the renderer's caption, tempo, key) appear; 0 names
    style and instruments only (what the evaluation prompts say).
    """
    if ex.caption and rng.random() < 0.3 * details:
        return ex.caption
    fam_words = rng.random() < 0.5
    names = [f.replace("_", " ") if fam_words else ex.words.get(f, f.replace("_", " ")) for f in ex.present]
    if rng.random() < 0.3:
        rng.shuffle(names)
    art = "an" if ex.style[:1] in "aeiou8" else "a"
    plain = [f"{art} {ex.style} groove", f"{ex.style}", "music"]
    detailed = [f"{art} {ex.style} groove at {ex.tempo} bpm in {ex.key}", f"{ex.style} at {ex.tempo} bpm"]
    if details >= 1.0:  # the shipped recipe's exact draw sequence
        lead = rng.choice([detailed[0], plain[0], plain[1], detailed[1], plain[2]])
    else:
        lead = rng.choice(plain + detailed if rng.random() < details else plain)
    text = f"{lead} with {_join(names)}" if rng.random() < 0.85 else f"{_join(names)}, {lead}"
    if ex.absent and rng.random() < 0.4:
        gone = rng.sample(ex.absent, k=min(len(ex.absent), rng.choice([1, 1, 2])))
        text += rng.choice([", without ", ", no "]) + _join([g.replace("_", " ") for g in gone])
    return text


def _join(words: Sequence[str]) -> str:
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def caption_corpus(examples: list[Example]) -> list[str]:
    """Every word any sampled caption can contain (for the tokenizer's vocabulary)."""
    texts = set()
    for ex in examples:
        texts.update([ex.caption, ex.style, ex.key, *ex.words.values(), *ex.present, *ex.absent])
    return sorted(t.replace("_", " ") for t in texts if t)


def clip_activity(
    meta: dict,
    present: Sequence[str],
    families: Sequence[str],
    frames: int,
    *,
    sample_rate: int,
    frame_rate: float,
    gate_db: float,
) -> torch.Tensor:
    """[families, frames] bool: where each family's stem plays in this clip (smitin.data's gate).

    The gate is relative to the clip's own mix level, like the probe data's, so "bass plays here"
    means the same thing to the tagging loss and to the probes.
    """
    sr, block_s = sample_rate, 0.1
    energies = {f: block_energy(audio_io.read(meta["stem_paths"][f], sr), sr, block_s) for f in present}
    n = min(len(e) for e in energies.values())
    level = track_level([e[:n] for e in energies.values()])
    out = torch.zeros(len(families), frames, dtype=torch.bool)
    # energy blocks -> codec frames (frame i covers [i, i + 1) / frame_rate seconds)
    block = np.minimum((np.arange(frames) / frame_rate / block_s).astype(int), n - 1)
    for f, e in energies.items():
        out[list(families).index(f)] = torch.from_numpy(block_activity(e[:n], level, gate_db)[block])
    return out
