"""smitin's bundled tiny MusicGen: build, train and measure it (offline, CPU-sized).

model.py        tokenizer, `TinySizes`, `build_model`, `build_processor`, `save_bundle`, `install`
clips.py        rendered songs -> encoded clips (`Example`), captions, stem activity
config.py       `TrainConfig`
checkpoints.py  a run's safetensors + JSON files (clips, checkpoints, caches)
prepare.py      a run's cached data stages: codec fit, clip encoding, clip activity
training.py     batches, losses, `TagHead`, the resumable `train` loop
evaluation.py   the model card's numbers (`evaluate`, `results_markdown`)
cli.py          the `train-tiny` command line (scripts/train_tiny.py)
"""

from .checkpoints import (
    load_checkpoint,
    load_examples,
    load_state,
    save_checkpoint,
    save_examples,
    save_state,
)
from .cli import add_train_arguments, config_from_args, train_main
from .clips import (
    Example,
    caption_corpus,
    clip_activity,
    encode_songs,
    make_caption,
    read_songs,
    song_variants,
)
from .config import TrainConfig
from .evaluation import codec_metrics, evaluate, generate_clips, reconstruct, results_markdown, unigram_ce
from .model import (
    BASE_WORDS,
    BUNDLED_DIR,
    SPECIAL_TOKENS,
    TinySizes,
    build_model,
    build_processor,
    build_tokenizer,
    install,
    save_bundle,
    words_of,
)
from .prepare import clip_activities, fit_codec, prepare
from .training import RunLog, TagHead, delay_pattern, heldout_ce, lm_loss, make_batch, tag_targets, train

__all__ = [
    "BASE_WORDS",
    "BUNDLED_DIR",
    "SPECIAL_TOKENS",
    "Example",
    "RunLog",
    "TagHead",
    "TinySizes",
    "TrainConfig",
    "add_train_arguments",
    "build_model",
    "build_processor",
    "build_tokenizer",
    "caption_corpus",
    "clip_activities",
    "clip_activity",
    "codec_metrics",
    "config_from_args",
    "delay_pattern",
    "encode_songs",
    "evaluate",
    "fit_codec",
    "generate_clips",
    "heldout_ce",
    "install",
    "lm_loss",
    "load_checkpoint",
    "load_examples",
    "load_state",
    "make_batch",
    "make_caption",
    "prepare",
    "read_songs",
    "reconstruct",
    "results_markdown",
    "save_bundle",
    "save_checkpoint",
    "save_examples",
    "save_state",
    "song_variants",
    "tag_targets",
    "train",
    "train_main",
    "unigram_ce",
    "words_of",
]
