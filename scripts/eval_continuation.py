"""Continuation quality of tiny MusicGens: do unsteered continuations keep the prompt's beat, harmony and clarity?

    python scripts/eval_continuation.py --models OLD NEW --data /work/data/tiny16k_eval --out cont.json

For each held-out rendered song: a `--prompt` s excerpt of its full mix is the prompt; the next
`--seconds` s of the same song, through the model's codec, is the true continuation (the ceiling);
each model continues the prompt (unsteered, the model's own sampling settings, one seed per song).
Measures (`smitin.experiment.keep`): pulse clarity, tempo agreement with the prompt, harmonic
continuity (pitch-class profile of the continuation against the prompt's) and spectral flatness,
each as a mean with a 95 % bootstrap interval over songs, and paired against the true continuation.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from smitin import audio as audio_io
from smitin.audio import normalise_loudness
from smitin.backbone import load
from smitin.experiment.keep import flatness, harmonic_continuity, pulse_clarity, rhythm, same_tempo
from smitin.generate import continue_audio
from smitin.tiny.clips import read_songs


def interval(x: np.ndarray, rng: np.random.Generator, n: int = 2000) -> tuple[float, float, float]:
    """Mean and 95 % bootstrap interval over songs."""
    means = x[rng.integers(0, len(x), (n, len(x)))].mean(1)
    return float(x.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def measures(prompts: np.ndarray, clips: np.ndarray, sr: int) -> dict[str, np.ndarray]:
    _, tempo_p = rhythm(prompts, sr)
    _, tempo_c = rhythm(clips, sr)
    return {
        "pulse_clarity": pulse_clarity(clips, sr),
        "tempo_kept": same_tempo(tempo_p, tempo_c).astype(float),
        "harmonic_continuity": harmonic_continuity(prompts, clips, sr),
        "flatness": flatness(clips, sr),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", required=True)
    p.add_argument("--data", required=True, help="rendered songs the models did not train on")
    p.add_argument("--songs", type=int, default=24)
    p.add_argument("--prompt", type=float, default=3.0)
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--sampling",
        action="append",
        default=[],
        help="extra sampling settings to try on every model, e.g. top_k=50,temperature=0.8 (repeatable)",
    )
    p.add_argument("--out", required=True)
    args = p.parse_args()
    torch.set_num_threads(1)
    songs = read_songs(args.data)[: args.songs]
    results: dict = {"settings": vars(args), "models": {}}
    rng = np.random.default_rng(args.seed)
    true_rows = None
    for path in args.models:
        backbone = load(path)
        sr = backbone.sample_rate
        n_p, n_c = int(args.prompt * sr), int(args.seconds * sr)
        prompts, truth = [], []
        for meta in songs:
            mix = sum(audio_io.read(f, sr) for f in meta["stem_paths"].values())
            start = max(0, (len(mix) - n_p - n_c) // 2)
            excerpt = normalise_loudness(np.asarray(mix[start : start + n_p + n_c], dtype=np.float32))
            prompts.append(excerpt[:n_p])
            truth.append(excerpt[n_p:])
        prompts_a = np.stack(prompts)
        if true_rows is None:  # the ceiling: the song's own continuation through the codec
            true_audio = backbone.round_trip(np.stack(truth))[:, :n_c]
            true_rows = measures(prompts_a, true_audio, sr)
            results["true continuation (codec)"] = {k: interval(v, rng) for k, v in true_rows.items()}
        for setting in ["", *args.sampling]:  # the model's own sampling, then each --sampling
            extra = {
                k: float(v) if "." in v else int(v)
                for k, v in (kv.split("=") for kv in setting.split(",") if kv)
            }
            outs = []
            for i in range(0, len(prompts), args.batch):
                res = continue_audio(
                    backbone,
                    prompts[i : i + args.batch],
                    sr,
                    duration=args.seconds,
                    seed=args.seed + i,
                    progress=False,
                    **extra,
                )
                outs.append(np.asarray(res.new_audio)[:, :n_c])
            rows = measures(prompts_a, np.concatenate(outs), sr)
            name = f"{path} {setting}".strip()
            results["models"][name] = {
                "absolute": {k: interval(v, rng) for k, v in rows.items()},
                "minus true": {k: interval(v - true_rows[k], rng) for k, v in rows.items()},
            }
            print(name, json.dumps(results["models"][name]), flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(json.dumps(results["true continuation (codec)"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
