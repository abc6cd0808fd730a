"""`TrainConfig`: everything that determines a trained tiny MusicGen (saved beside its checkpoint)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..defaults import cache_dir
from .model import TinySizes


@dataclass
class TrainConfig:
    """Everything that determines the trained model (saved beside the checkpoint)."""

    data: list[str] = field(default_factory=lambda: [str(cache_dir() / "renders" / "tiny16k")])
    out: str = str(cache_dir() / "runs" / "tiny")
    seed: int = 0
    sizes: TinySizes = field(default_factory=lambda: TinySizes(dropout=0.0))
    codec_frames: int = 60000
    codec_iters: int = 20
    submixes: int = 3  # stem subsets per song besides the full mix
    heldout_songs: int = 12  # songs kept out of LM training for the held-out cross-entropy
    segment_frames: int = 250  # 5 s crops
    short_frames: int = 50  # length of the short crops (1 s), where the caption is most of what is known
    short_prob: float = 0.0  # share of batches made of short crops (makes the text matter; 0 = off)
    init_from: str | None = None  # a saved model folder to start from (a fine-tuning stage)
    tag_weight: float = 0.0  # weight of the instrument-tagging auxiliary loss (0 = plain LM; see TagHead)
    tag_gate_db: float = -35.0  # a stem "plays" in a frame when within this many dB of the clip's mix
    tag_rows: str = "all"  # "null": tag only rows without a caption, so instruments must be heard, not read
    caption_details: float = 1.0  # how often captions carry song details (tempo, key); see make_caption
    batch_size: int = 16
    lr: float = 1e-3
    warmup: int = 50
    steps: int = 450
    embed_init_std: float = 1.0
    max_minutes: float = 45.0  # hard wall-time cap (the run stops and saves early if hit)
    empty_caption_prob: float = 0.15
    threads: int = 2
    device: str = "cpu"  # "cuda" trains in bf16 autocast (a lent GPU: minutes there are days here)
    time_schedule: bool = False  # the lr cosine follows the wall-time cap when it ends before `steps`
    keep_best: bool = False  # save the weights of the best held-out cross-entropy seen, not the last
    checkpoint_every: int = 100
    eval_every: int = 200
    log_every: int = 20
