"""The `train-tiny` command line (scripts/train_tiny.py): its options, the config they make, its entry point."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import TrainConfig
from .model import BUNDLED_DIR, TinySizes, install
from .training import train


def add_train_arguments(parser: Any) -> None:
    """Options of `train-tiny` (shared by scripts/train_tiny.py and a future `smitin train-tiny`)."""
    d = TrainConfig()
    parser.add_argument(
        "--data",
        nargs="+",
        default=d.data,
        help="rendered folders (smitin.synth layout); default %(default)s, rendered (240 songs, seed 4) if missing",
    )
    parser.add_argument(
        "--out", default=d.out, help="run folder: codec, codes, checkpoints, log, model (default %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--steps", type=int, default=d.steps)
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--max-minutes", type=float, default=d.max_minutes)
    parser.add_argument("--threads", type=int, default=d.threads)
    parser.add_argument("--submixes", type=int, default=d.submixes)
    parser.add_argument("--warmup", type=int, default=d.warmup)
    parser.add_argument(
        "--caption-details",
        type=float,
        default=d.caption_details,
        help="how often captions name tempo/key (1 = as rendered; 0 = style and instruments only)",
    )
    parser.add_argument(
        "--short-frames", type=int, default=d.short_frames, help="length of the short crops (frames)"
    )
    parser.add_argument(
        "--short-prob",
        type=float,
        default=d.short_prob,
        help="share of batches of short crops (where the text matters most)",
    )
    parser.add_argument(
        "--init-from",
        default=None,
        help="saved model folder to fine-tune (codec and tokenizer "
        "are then read from the run folder: copy codec/, tokenizer/ and codes.safetensors + codes.json there)",
    )
    parser.add_argument(
        "--tag-weight",
        type=float,
        default=d.tag_weight,
        help="weight of the auxiliary instrument-tagging loss (0 = plain LM; the shipped stage 3 used 1)",
    )
    parser.add_argument(
        "--tag-rows",
        choices=("all", "null"),
        default=d.tag_rows,
        help="rows the tagging loss sees: all, or only those without a caption (instruments heard, not read)",
    )
    parser.add_argument(
        "--empty-caption-prob",
        type=float,
        default=d.empty_caption_prob,
        help="share of rows trained with CFG's null condition",
    )
    parser.add_argument(
        "--segment-frames",
        type=int,
        default=d.segment_frames,
        help="crop length in codec frames (50 per second); continuations need crops as long as they run",
    )
    parser.add_argument("--dropout", type=float, default=d.sizes.dropout)
    parser.add_argument("--eval-every", type=int, default=d.eval_every)
    parser.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    parser.add_argument("--log-every", type=int, default=d.log_every)
    parser.add_argument(
        "--device",
        default=d.device,
        help="cpu, or cuda (bf16 autocast) on a GPU machine (default %(default)s)",
    )
    parser.add_argument(
        "--time-schedule",
        action="store_true",
        help="end the lr cosine at --max-minutes when that comes before --steps (a fixed GPU lease)",
    )
    parser.add_argument(
        "--keep-best", action="store_true", help="save the weights of the best held-out CE seen, not the last"
    )
    parser.add_argument("--layers", type=int, default=d.sizes.layers)
    parser.add_argument("--heads", type=int, default=d.sizes.heads)
    parser.add_argument("--hidden", type=int, default=d.sizes.hidden)
    parser.add_argument("--install", action="store_true", help=f"copy the trained model into {BUNDLED_DIR}")


def config_from_args(args: Any) -> TrainConfig:
    """The `TrainConfig` that parsed `add_train_arguments` options describe."""
    sizes = TinySizes(
        layers=args.layers, heads=args.heads, hidden=args.hidden, ffn=4 * args.hidden, dropout=args.dropout
    )
    return TrainConfig(
        data=list(args.data),
        out=args.out,
        seed=args.seed,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        max_minutes=args.max_minutes,
        threads=args.threads,
        submixes=args.submixes,
        sizes=sizes,
        warmup=args.warmup,
        short_prob=args.short_prob,
        short_frames=args.short_frames,
        init_from=args.init_from,
        caption_details=args.caption_details,
        tag_weight=args.tag_weight,
        tag_rows=args.tag_rows,
        empty_caption_prob=args.empty_caption_prob,
        segment_frames=args.segment_frames,
        eval_every=args.eval_every,
        checkpoint_every=args.checkpoint_every,
        log_every=args.log_every,
        device=args.device,
        keep_best=args.keep_best,
        time_schedule=args.time_schedule,
    )


def train_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `train-tiny`: train (resuming if the run folder has a checkpoint), optionally install."""
    import argparse

    parser = argparse.ArgumentParser(description="Train smitin's bundled tiny MusicGen on rendered songs.")
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    if cfg.data == TrainConfig().data and not Path(cfg.data[0]).exists():
        from ..synth import render_dataset

        # the shipped model's training songs (see the model card); ~2 min on 2 cores
        render_dataset(cfg.data[0], songs=240, seed=4, sample_rate=cfg.sizes.sampling_rate)
    model_dir = train(cfg)
    if args.install:
        print(f"installed into {install(model_dir)}")
    return 0
