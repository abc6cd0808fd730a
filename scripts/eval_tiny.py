"""Measure a tiny MusicGen (default: the bundled one) and optionally write the numbers into its model card.

    python scripts/eval_tiny.py                       # bundled model; renders under ~/.cache/smitin/renders
    python scripts/eval_tiny.py --model RUN/model --json RUN/eval.json --card

The eval songs (smitin.synth, seed 5, 40 songs, 16 kHz) and the instrument classifiers' training
songs (seed 1, 150 songs, 16 kHz) are rendered if their folders are missing.
"""

import argparse
import json
import re
import sys
from pathlib import Path

import torch

from smitin.defaults import cache_dir
from smitin.tiny import BUNDLED_DIR, evaluate, results_markdown

BEGIN, END = "<!-- eval:begin -->", "<!-- eval:end -->"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(BUNDLED_DIR))
    renders = cache_dir() / "renders"
    p.add_argument("--data", default=str(renders / "tiny16k_eval"), help="eval songs (rendered if missing)")
    p.add_argument(
        "--classifier-data",
        default=str(renders / "synth150_16k"),
        help="render the instrument classifiers are trained on (rendered: 150 songs, seed 1, if missing)",
    )
    p.add_argument("--n-gen", type=int, default=16, help="generations per prompt kind and instrument")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="1 is fastest for generation on a busy CPU")
    p.add_argument("--json", help="write the raw results here")
    p.add_argument("--card", action="store_true", help="replace the numbers section of MODEL/README.md")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    for folder, songs, seed in ((args.data, 40, 5), (args.classifier_data, 150, 1)):
        if not Path(folder).exists():
            from smitin.synth import render_dataset

            render_dataset(folder, songs=songs, seed=seed, sample_rate=16000, workers=1)
    res = evaluate(
        args.model, args.data, args.classifier_data, n_gen=args.n_gen, seconds=args.seconds, seed=args.seed
    )
    table = results_markdown(res)
    print(table)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    if args.card:
        card = Path(args.model) / "README.md"
        text = card.read_text() if card.exists() else f"{BEGIN}\n{END}\n"
        block = f"{BEGIN}\n{table}{END}"
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
        card.write_text(text)
        print(f"updated {card}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
