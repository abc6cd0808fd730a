"""Held-out cross-entropy of several tiny MusicGens on the same crops of a training run's held-out clips.

    python scripts/compare_ce.py --run RUN --models OLD_MODEL_DIR NEW_MODEL_DIR [--frames 250 750]

RUN is a `train-tiny` run folder (its `codes` cache and tokenizer); every model is scored on the same
crops and captions (fixed seeds), with a caption and with the null condition.
"""

import argparse
import json
import sys
from pathlib import Path

import torch
from transformers import MusicgenForConditionalGeneration, PreTrainedTokenizerFast

import smitin.codec  # noqa: F401  (registers the codec's model type)
from smitin.tiny.checkpoints import load_examples
from smitin.tiny.config import TrainConfig
from smitin.tiny.training import heldout_ce


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True)
    p.add_argument("--models", nargs="+", required=True)
    p.add_argument("--frames", nargs="+", type=int, default=[250, 750])
    p.add_argument("--batches", type=int, default=4)
    args = p.parse_args()
    torch.set_num_threads(1)
    blob = load_examples(Path(args.run) / "codes")
    if blob is None:
        p.error(f"{args.run}/codes.safetensors + codes.json not found: run train-tiny --steps 0 first")
    tok = PreTrainedTokenizerFast.from_pretrained(Path(args.run) / "tokenizer")
    out: dict[str, float] = {}
    for path in args.models:
        model = MusicgenForConditionalGeneration.from_pretrained(path).eval()
        for frames in args.frames:
            cfg = TrainConfig(segment_frames=frames, batch_size=16)
            for empty in (False, True):
                ce = heldout_ce(model, blob["heldout"], tok, cfg, n_batches=args.batches, empty=empty)
                out[f"{path} {frames} frames {'null' if empty else 'caption'}"] = round(ce, 3)
                print(f"{path}  {frames} frames  {'null' if empty else 'caption'}  {ce:.3f}", flush=True)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
