"""A training run's data stages, cached in its folder: codec fit, clip encoding, clip activity."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from .. import audio as audio_io
from ..audio import normalise_loudness
from ..codec import MelCodecConfig, MelCodecModel
from .checkpoints import load_examples, load_state, save_examples, save_state
from .clips import Example, clip_activity, encode_songs, read_songs
from .config import TrainConfig


def fit_codec(songs: list[dict], cfg: TrainConfig, log: Any = print) -> MelCodecModel:
    """Fit the k-means codebooks on log-mel frames sampled from the training songs' full mixes."""
    s = cfg.sizes
    codec = MelCodecModel(
        MelCodecConfig(
            sampling_rate=s.sampling_rate, codebook_size=s.codebook_size, num_codebooks=s.num_codebooks
        )
    )
    rng = np.random.default_rng(cfg.seed)
    per_song = max(1, cfg.codec_frames // len(songs))
    frames = []
    for meta in songs:
        stems = {f: audio_io.read(p, s.sampling_rate) for f, p in meta["stem_paths"].items()}
        n = min(len(x) for x in stems.values())
        # alternate full mixes and single-stem/partial mixes so sparse textures get codewords too
        keep = [f for f in stems if rng.random() < 0.5] or list(stems)
        for subset in (list(stems), keep):
            # subsets are never empty, so the sum is an array (never the start value 0)
            mix = normalise_loudness(cast(np.ndarray, sum(stems[f][:n] for f in subset)))
            lm = codec.log_mel(torch.from_numpy(mix)[None])[0]
            idx = rng.choice(lm.shape[0], size=min(per_song // 2, lm.shape[0]), replace=False)
            frames.append(lm[torch.from_numpy(np.sort(idx))])
    frames_t = torch.cat(frames)
    t0 = time.time()
    errors = codec.fit(frames_t, iters=cfg.codec_iters, seed=cfg.seed)
    log(f"codec fitted on {len(frames_t)} frames in {time.time() - t0:.0f} s; residual mse {errors}")
    return codec


def clip_activities(
    songs: list[dict] | Callable[[], list[dict]],
    parts: dict[str, list[Example]],
    families: list[str],
    cfg: TrainConfig,
    path: Path,
    log: Any,
) -> dict[str, list[torch.Tensor]]:
    """Per-clip activity of every family (cached as `path`.safetensors + .json, like the codes).

    The cache names the clips and gate it was made for; other clips (re-encoded data) recompute it.
    """
    key = {
        "families": families,
        "gate_db": cfg.tag_gate_db,
        "clips": {k: [[ex.song, ex.present, int(ex.codes.shape[1])] for ex in v] for k, v in parts.items()},
    }
    state = load_state(path)
    if state is not None and state[1] == json.loads(json.dumps(key)):
        tensors, _ = state
        return {k: [tensors[f"{k}/{i}"].bool() for i in range(len(v))] for k, v in parts.items()}
    if callable(songs):  # read the songs only when the cache cannot serve
        songs = songs()
    by_id = {s.get("uid", s["id"]): s for s in songs}
    counts = Counter(s["id"] for s in songs)
    # clips cached before songs carried their uid name the song by id: fine where ids are unique
    by_id.update({s["id"]: s for s in songs if counts[s["id"]] == 1})
    t0 = time.time()
    out = {
        k: [
            clip_activity(
                by_id[ex.song],
                ex.present,
                families,
                ex.codes.shape[1],
                sample_rate=cfg.sizes.sampling_rate,
                frame_rate=cfg.sizes.sampling_rate / 320,
                gate_db=cfg.tag_gate_db,
            )
            for ex in v
        ]
        for k, v in parts.items()
    }
    tensors = {f"{k}/{i}": a.to(torch.uint8) for k, v in out.items() for i, a in enumerate(v)}
    save_state(tensors, key, path)
    log(f"instrument activity of {sum(map(len, out.values()))} clips in {time.time() - t0:.0f} s")
    return out


def prepare(
    cfg: TrainConfig, log: Any = print
) -> tuple[MelCodecModel, list[Example], list[Example], list[str]]:
    """Stage 1 (cached on disk): split songs, fit the codec, encode every clip."""
    out = Path(cfg.out)
    split: dict[str, list[dict]] = {}

    def songs_split() -> dict[str, list[dict]]:
        # read only when a stage needs the audio: a run folder with every cache in it (codes, activity)
        # trains on a machine without the rendered songs (a lent GPU)
        if not split:
            songs = [s for d in cfg.data for s in read_songs(d)]
            rng = random.Random(cfg.seed)
            ids = sorted(s["id"] + "@" + str(i) for i, s in enumerate(songs))
            rng.shuffle(ids)
            held = set(ids[: cfg.heldout_songs])
            for i, s in enumerate(songs):
                s["uid"] = s["id"] + "@" + str(i)
            split["all"] = songs
            split["train"] = [s for s in songs if s["uid"] not in held]
            split["heldout"] = [s for s in songs if s["uid"] in held]
        return split

    codec_dir = out / "codec"
    if (codec_dir / "config.json").exists():
        codec = MelCodecModel.from_pretrained(codec_dir)
        log(f"codec loaded from {codec_dir}")
    else:
        t0 = time.time()
        codec = fit_codec(songs_split()["train"], cfg, log)
        codec.save_pretrained(codec_dir)
        log(f"codec stage done in {time.time() - t0:.0f} s", stage="codec", seconds=time.time() - t0)
    codes_path = out / "codes"
    blob = load_examples(codes_path)
    if blob is not None:
        log(f"clips loaded from {codes_path}.safetensors")
    else:
        t0 = time.time()
        sp = songs_split()
        families = sorted({f for s in sp["all"] for f in s["stem_paths"]})
        blob = {
            "train": encode_songs(sp["train"], codec, cfg.submixes, cfg.seed, families, log),
            "heldout": encode_songs(sp["heldout"], codec, cfg.submixes, cfg.seed + 1, families, log),
            "families": families,
            "heldout_songs": sorted(s["uid"] for s in sp["heldout"]),
        }
        save_examples(blob, codes_path)
        log(f"encode stage done in {time.time() - t0:.0f} s", stage="encode", seconds=time.time() - t0)
    if cfg.tag_weight > 0:
        parts = {"train": blob["train"], "heldout": blob["heldout"]}
        acts = clip_activities(
            lambda: songs_split()["all"], parts, blob["families"], cfg, out / "activity", log
        )
        for k, examples in parts.items():
            for ex, a in zip(examples, acts[k], strict=True):
                ex.activity = a
    return codec, blob["train"], blob["heldout"], blob["families"]
