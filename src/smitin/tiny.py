"""Build and train smitin's bundled tiny MusicGen (real transformers classes, offline, CPU-sized).

The model is a stock `MusicgenForConditionalGeneration`: a small `MusicgenForCausalLM` decoder
(delay pattern, classifier-free guidance, cross-attention), a small `T5EncoderModel` text encoder
trained jointly from scratch, a word-level tokenizer, and `smitin.codec.MelCodecModel` in place of
EnCodec. Saved with `save_pretrained` + a `MusicgenProcessor`, the folder loads like a hub
checkpoint once `smitin` (which registers the codec) is imported.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import (
    EncodecFeatureExtractor,
    MusicgenDecoderConfig,
    MusicgenForConditionalGeneration,
    MusicgenProcessor,
    PreTrainedTokenizerFast,
    T5Config,
    T5EncoderModel,
)

from smitin import audio as audio_io
from smitin.activity import block_activity, block_energy, track_level
from smitin.audio import normalise_loudness
from smitin.codec import MelCodecConfig, MelCodecModel
from smitin.defaults import cache_dir

BUNDLED_DIR = Path(__file__).resolve().parent / "assets" / "tiny-musicgen"

SPECIAL_TOKENS = ["<pad>", "</s>", "<unk>"]
# Always in the vocabulary, so prompts the lead / users write work even if no caption used them.
BASE_WORDS = """a an the and or with without no of in on for to by at as is are this that song track
music piece loop instrumental band solo duet trio quartet ensemble groove beat rhythm melody chords
harmony bassline riff drums drum kit percussion bass guitar piano keys organ strings violin cello
synth pad lead brass horn trumpet sax saxophone flute clarinet choir vocals electric acoustic
distorted clean electric_piano rock pop jazz funk blues swing latin bossa reggae country folk
ballad metal disco soul hiphop electronic ambient classical fast slow medium tempo bpm upbeat calm
happy sad energetic relaxed dark bright soft loud major minor key in featuring playing only add
remove more less some""".split()


def words_of(text: str) -> list[str]:
    """Lower-case word/punctuation split used to build the vocabulary (mirrors the tokenizer)."""
    return re.findall(r"\w+|[^\w\s]+", text.lower())


def build_tokenizer(corpus: Iterable[str] = (), max_length: int = 64) -> PreTrainedTokenizerFast:
    """Word-level tokenizer (lower-cased, T5-like special ids: pad 0, eos 1, unk 2), offline."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    vocab: dict[str, int] = {t: i for i, t in enumerate(SPECIAL_TOKENS)}
    for w in [*BASE_WORDS, *(w for text in corpus for w in words_of(text))]:
        if w not in vocab:
            vocab[w] = len(vocab)
    for d in range(10):  # digits, for tempos like "120 bpm" split as written
        vocab.setdefault(str(d), len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=max_length,
        padding_side="right",
    )


@dataclass
class TinySizes:
    """Architecture of the tiny model (defaults: 4 layers x 8 heads x 32 dims; 4 x 1024 codes)."""

    layers: int = 4
    heads: int = 8
    hidden: int = 256
    ffn: int = 1024
    text_layers: int = 2
    text_hidden: int = 128
    text_heads: int = 4
    text_ffn: int = 512
    codebook_size: int = 1024
    num_codebooks: int = 4
    sampling_rate: int = 16000
    dropout: float = 0.1


def build_model(
    tokenizer: PreTrainedTokenizerFast,
    sizes: TinySizes | None = None,
    codec: MelCodecModel | None = None,
    attn_implementation: str = "sdpa",
) -> MusicgenForConditionalGeneration:
    """A randomly initialised MusicGen of the given sizes around `codec` (a fresh unfitted one if None)."""
    s = sizes or TinySizes()
    if codec is None:
        codec = MelCodecModel(
            MelCodecConfig(
                sampling_rate=s.sampling_rate, codebook_size=s.codebook_size, num_codebooks=s.num_codebooks
            )
        )
    text_cfg = T5Config(
        vocab_size=len(tokenizer),
        d_model=s.text_hidden,
        d_kv=s.text_hidden // s.text_heads,
        d_ff=s.text_ffn,
        num_layers=s.text_layers,
        num_heads=s.text_heads,
        feed_forward_proj="relu",
        dropout_rate=s.dropout,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    text_encoder = T5EncoderModel(text_cfg)
    dec_cfg = MusicgenDecoderConfig(
        vocab_size=codec.config.codebook_size,
        max_position_embeddings=2048,
        num_hidden_layers=s.layers,
        ffn_dim=s.ffn,
        num_attention_heads=s.heads,
        hidden_size=s.hidden,
        dropout=s.dropout,
        num_codebooks=codec.config.num_codebooks,
        audio_channels=1,
        pad_token_id=codec.config.codebook_size,
        bos_token_id=codec.config.codebook_size,
        decoder_start_token_id=codec.config.codebook_size,
    )
    from transformers import MusicgenForCausalLM

    decoder = MusicgenForCausalLM(dec_cfg)
    model = MusicgenForConditionalGeneration(text_encoder=text_encoder, audio_encoder=codec, decoder=decoder)
    model.set_attn_implementation(attn_implementation)
    gc = model.generation_config
    gc.do_sample = True
    gc.guidance_scale = 3.0
    gc.max_length = 1500
    gc.top_k = 250
    gc.decoder_start_token_id = codec.config.codebook_size
    gc.pad_token_id = codec.config.codebook_size
    gc.bos_token_id = codec.config.codebook_size
    return model


def build_processor(tokenizer: PreTrainedTokenizerFast, sampling_rate: int = 16000) -> MusicgenProcessor:
    fe = EncodecFeatureExtractor(feature_size=1, sampling_rate=sampling_rate, padding_value=0.0)
    return MusicgenProcessor(feature_extractor=fe, tokenizer=tokenizer)


def save_bundle(
    model: MusicgenForConditionalGeneration, processor: MusicgenProcessor, folder: str | os.PathLike
) -> None:
    """save_pretrained the model (fp32 safetensors) and its processor into one hub-like folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # A tokenizer that has padded a batch keeps that padding state in tokenizer.json; the processor then
    # forwards `pad_to_multiple_of` to EncodecFeatureExtractor, which rejects it. Save a clean one.
    backend = processor.tokenizer.backend_tokenizer
    backend.no_padding()
    backend.no_truncation()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


# ============================================================================ data


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
            mix = normalise_loudness(sum(stems[f][:n] for f in subset))
            with torch.no_grad():
                codes = codec.encode(torch.from_numpy(mix)[None, None]).audio_codes[0, 0]
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


def delay_pattern(codes: torch.Tensor, pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """codes [B, K, S] -> (decoder input, labels), both [B, K, S + K - 1], MusicGen's delay pattern.

    Label position t holds codebook k of frame t - k (pad where out of range; -100 in labels);
    the input at position t is the label column t - 1 (all pad at t = 0), exactly what `generate`
    feeds the decoder.
    """
    b, k, s = codes.shape
    length = s + k - 1
    delayed = torch.full((b, k, length), pad, dtype=torch.long)
    for q in range(k):
        delayed[:, q, q : q + s] = codes[:, q]
    inputs = torch.cat([torch.full((b, k, 1), pad, dtype=torch.long), delayed[..., :-1]], dim=-1)
    labels = delayed.masked_fill(delayed == pad, -100)
    return inputs, labels


# ============================================================================ training


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
    checkpoint_every: int = 100
    eval_every: int = 200
    log_every: int = 20


class _Logger:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, msg: str, **record: Any) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        with open(self.path, "a") as f:
            f.write(json.dumps({"time": time.time(), "msg": msg, **record}) + "\n")


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
            mix = normalise_loudness(sum(stems[f][:n] for f in subset))
            lm = codec.log_mel(torch.from_numpy(mix)[None])[0]
            idx = rng.choice(lm.shape[0], size=min(per_song // 2, lm.shape[0]), replace=False)
            frames.append(lm[torch.from_numpy(np.sort(idx))])
    frames_t = torch.cat(frames)
    t0 = time.time()
    errors = codec.fit(frames_t, iters=cfg.codec_iters, seed=cfg.seed)
    log(f"codec fitted on {len(frames_t)} frames in {time.time() - t0:.0f} s; residual mse {errors}")
    return codec


def _batch(
    examples: list[Example],
    cfg: TrainConfig,
    tokenizer: PreTrainedTokenizerFast,
    rng: random.Random,
    pad: int,
    empty_prob: float,
    frames: int | None = None,
    caption_rng: random.Random | None = None,
) -> dict[str, torch.Tensor]:
    """Random crops + sampled captions; `null` rows mimic generate's CFG null condition.

    `caption_rng` draws the captions apart from the crops, so that an evaluation with and without
    captions scores the same crops (training uses one generator for both).
    """
    crng = caption_rng or rng
    weights = [ex.codes.shape[1] for ex in examples]
    chosen = rng.choices(examples, weights=weights, k=cfg.batch_size)
    s = frames or cfg.segment_frames
    k = chosen[0].codes.shape[0]
    codes = torch.full((len(chosen), k, s), pad, dtype=torch.long)
    texts, null, starts = [], [], []
    for i, ex in enumerate(chosen):
        t = ex.codes.shape[1]
        start = rng.randrange(0, max(1, t - s + 1))
        starts.append(start)
        crop = ex.codes[:, start : start + s].long()
        codes[i, :, : crop.shape[1]] = crop
        is_null = crng.random() < empty_prob
        null.append(is_null)
        texts.append("" if is_null else make_caption(ex, crng, cfg.caption_details))
    inputs, labels = delay_pattern(codes, pad)
    tok = tokenizer(texts, padding=True, return_tensors="pt")
    batch = {
        "input_ids": tok["input_ids"],
        "text_mask": tok["attention_mask"],
        "cond_mask": tok["attention_mask"] * (~torch.tensor(null))[:, None].long(),
        "decoder_input_ids": inputs,
        "labels": labels,
    }
    if all(ex.activity is not None for ex in chosen):
        tags = torch.zeros(len(chosen), chosen[0].activity.shape[0], s)
        valid = torch.zeros(len(chosen), s, dtype=torch.bool)
        for i, (ex, start) in enumerate(zip(chosen, starts, strict=True)):
            a = ex.activity[:, start : start + s]
            tags[i, :, : a.shape[1]] = a.float()
            valid[i, : a.shape[1]] = cfg.tag_rows == "all" or null[i]
        batch["tags"], batch["tags_valid"] = tags, valid
    return batch


def lm_loss(
    model: MusicgenForConditionalGeneration, batch: dict[str, torch.Tensor], *, hidden: bool = False
) -> Any:
    """Mean over codebooks of the token cross-entropy (pads ignored), under teacher forcing.

    With `hidden`, also the decoder's hidden states (embeddings, then after each layer) for `TagHead`.
    """
    enc = model.text_encoder(
        input_ids=batch["input_ids"], attention_mask=batch["text_mask"]
    ).last_hidden_state
    b, k, length = batch["decoder_input_ids"].shape
    out = model(
        encoder_outputs=(enc,),
        attention_mask=batch["cond_mask"],
        decoder_input_ids=batch["decoder_input_ids"].reshape(b * k, length),
        output_hidden_states=hidden,
    )
    logits = out.logits.reshape(b, k, length, -1)
    ce = torch.nn.functional.cross_entropy(
        logits.permute(0, 3, 1, 2), batch["labels"], ignore_index=-100, reduction="mean"
    )
    return (ce, out.decoder_hidden_states) if hidden else ce


def tag_targets(tags: torch.Tensor, valid: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame activity [B, F, S] -> per-position targets [B, T, F] and mask [B, T] in the delay layout.

    Position t's newest input is codebook 0 of frame t - 1, so its target is frame t - 1's activity;
    position 0 has heard nothing and is masked, as are positions past the crop.
    """
    s = tags.shape[-1]
    frame = (torch.arange(length) - 1).clamp(0, s - 1)
    return tags[:, :, frame].transpose(1, 2), valid[:, frame] & (torch.arange(length) >= 1)


class TagHead(torch.nn.Module):
    """Training-only instrument tagger: which families play so far, read linearly from decoder states.

    MusicGen-large learns from 20k hours that instruments matter, and SMITIN's probes find them in
    its heads (94% drums, 89% bass). At 6M parameters and a CPU budget the LM loss alone left bass
    and piano barely readable (best head 0.66-0.69), so training may add this auxiliary loss: a
    linear read-out at the middle and last decoder layers, per position, of the families heard up
    to that frame. It is not part of the saved model (stock MusicGen classes, unchanged).
    """

    def __init__(self, hidden: int, families: Sequence[str], layers: Sequence[int]) -> None:
        super().__init__()
        self.families = list(families)
        self.layers = list(layers)
        self.read = torch.nn.ModuleList(torch.nn.Linear(hidden, len(families)) for _ in self.layers)

    def forward(self, hidden_states: Sequence[torch.Tensor], batch: dict[str, torch.Tensor]) -> tuple:
        """(mean binary cross-entropy, accuracy) over valid positions, families and read-out layers."""
        target, mask = tag_targets(batch["tags"], batch["tags_valid"], hidden_states[0].shape[1])
        n = mask.sum().clamp(min=1)  # a batch may have no tagged row (tag_rows="null")
        losses, hits = [], []
        for read, layer in zip(self.read, self.layers, strict=True):
            logit = read(hidden_states[layer])  # [B, T, F]
            bce = torch.nn.functional.binary_cross_entropy_with_logits(logit, target, reduction="none")
            losses.append((bce.mean(-1) * mask).sum() / n)
            hits.append((((logit.detach() > 0) == (target > 0.5)).float().mean(-1) * mask).sum() / n)
        return torch.stack(losses).mean(), torch.stack(hits).mean()


def _save_state(tensors: dict[str, torch.Tensor], info: dict, path: Path) -> None:
    """Write `path`.safetensors + `path`.json atomically (JSON last: it marks a complete pair)."""
    from safetensors.torch import save_file

    st, js = path.with_suffix(".safetensors"), path.with_suffix(".json")
    unshared = {k: v.detach().cpu().clone(memory_format=torch.contiguous_format) for k, v in tensors.items()}
    save_file(unshared, str(st) + ".tmp")
    os.replace(str(st) + ".tmp", st)
    js.with_suffix(".tmp").write_text(json.dumps(info))
    os.replace(js.with_suffix(".tmp"), js)


def _load_state(path: Path) -> tuple[dict[str, torch.Tensor], dict] | None:
    """The pair written by `_save_state`, or None if it is missing or incomplete (no pickle anywhere)."""
    from safetensors.torch import load_file

    st, js = path.with_suffix(".safetensors"), path.with_suffix(".json")
    if not (st.exists() and js.exists()):
        return None
    return load_file(st), json.loads(js.read_text())


def _save_examples(blob: dict, path: Path) -> None:
    tensors, info = {}, {k: blob[k] for k in ("families", "heldout_songs")}
    for part in ("train", "heldout"):
        info[part] = []
        for i, ex in enumerate(blob[part]):
            tensors[f"{part}/{i}"] = ex.codes
            info[part].append({k: v for k, v in asdict(ex).items() if k not in ("codes", "activity")})
    _save_state(tensors, info, path)


def _load_examples(path: Path) -> dict | None:
    state = _load_state(path)
    if state is None:
        return None
    tensors, info = state
    for part in ("train", "heldout"):
        info[part] = [Example(**meta, codes=tensors[f"{part}/{i}"]) for i, meta in enumerate(info[part])]
    return info


def _save_checkpoint(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    extra: dict,
    path: Path,
    tagger: torch.nn.Module | None = None,
) -> None:
    """Model (+ tagger) + AdamW state + RNG states as safetensors + JSON (resumable, and no pickle)."""
    tensors = {f"model/{k}": v for k, v in model.state_dict().items()}
    if tagger is not None:
        tensors.update({f"tagger/{k}": v for k, v in tagger.state_dict().items()})
    opt_state = opt.state_dict()
    for idx, st in opt_state["state"].items():
        for name, value in st.items():
            tensors[f"opt/{idx}/{name}"] = torch.as_tensor(value)
    tensors["torch_rng"] = torch.get_rng_state()
    info = {**extra, "param_groups": opt_state["param_groups"]}
    _save_state(tensors, info, path)


def _load_checkpoint(
    model: torch.nn.Module, opt: torch.optim.Optimizer, path: Path, tagger: torch.nn.Module | None = None
) -> dict | None:
    state = _load_state(path)
    if state is None:
        return None
    tensors, info = state
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model/")})
    if tagger is not None:
        tagger.load_state_dict({k[7:]: v for k, v in tensors.items() if k.startswith("tagger/")})
    per_param: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("opt/"):
            _, idx, name = key.split("/", 2)
            per_param.setdefault(int(idx), {})[name] = value
    opt.load_state_dict({"state": per_param, "param_groups": info.pop("param_groups")})
    torch.set_rng_state(tensors["torch_rng"])
    return info


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


def clip_activities(
    songs: list[dict],
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
    state = _load_state(path)
    if state is not None and state[1] == json.loads(json.dumps(key)):
        tensors, _ = state
        return {k: [tensors[f"{k}/{i}"].bool() for i in range(len(v))] for k, v in parts.items()}
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
    _save_state(tensors, key, path)
    log(f"instrument activity of {sum(map(len, out.values()))} clips in {time.time() - t0:.0f} s")
    return out


def prepare(
    cfg: TrainConfig, log: Any = print
) -> tuple[MelCodecModel, list[Example], list[Example], list[str]]:
    """Stage 1 (cached on disk): split songs, fit the codec, encode every clip."""
    out = Path(cfg.out)
    songs = [s for d in cfg.data for s in read_songs(d)]
    rng = random.Random(cfg.seed)
    ids = sorted(s["id"] + "@" + str(i) for i, s in enumerate(songs))
    rng.shuffle(ids)
    held = set(ids[: cfg.heldout_songs])
    for i, s in enumerate(songs):
        s["uid"] = s["id"] + "@" + str(i)
    train_songs = [s for s in songs if s["uid"] not in held]
    held_songs = [s for s in songs if s["uid"] in held]
    families = sorted({f for s in songs for f in s["stem_paths"]})
    codec_dir = out / "codec"
    if (codec_dir / "config.json").exists():
        codec = MelCodecModel.from_pretrained(codec_dir)
        log(f"codec loaded from {codec_dir}")
    else:
        t0 = time.time()
        codec = fit_codec(train_songs, cfg, log)
        codec.save_pretrained(codec_dir)
        log(f"codec stage done in {time.time() - t0:.0f} s", stage="codec", seconds=time.time() - t0)
    codes_path = out / "codes"
    blob = _load_examples(codes_path)
    if blob is not None:
        log(f"clips loaded from {codes_path}.safetensors")
    else:
        t0 = time.time()
        blob = {
            "train": encode_songs(train_songs, codec, cfg.submixes, cfg.seed, families, log),
            "heldout": encode_songs(held_songs, codec, cfg.submixes, cfg.seed + 1, families, log),
            "families": families,
            "heldout_songs": sorted(s["uid"] for s in held_songs),
        }
        _save_examples(blob, codes_path)
        log(f"encode stage done in {time.time() - t0:.0f} s", stage="encode", seconds=time.time() - t0)
    if cfg.tag_weight > 0:
        parts = {"train": blob["train"], "heldout": blob["heldout"]}
        acts = clip_activities(songs, parts, blob["families"], cfg, out / "activity", log)
        for k, examples in parts.items():
            for ex, a in zip(examples, acts[k], strict=True):
                ex.activity = a
    return codec, blob["train"], blob["heldout"], blob["families"]


def caption_corpus(examples: list[Example]) -> list[str]:
    """Every word any sampled caption can contain (for the tokenizer's vocabulary)."""
    texts = set()
    for ex in examples:
        texts.update([ex.caption, ex.style, ex.key, *ex.words.values(), *ex.present, *ex.absent])
    return sorted(t.replace("_", " ") for t in texts if t)


@torch.no_grad()
def heldout_ce(
    model: MusicgenForConditionalGeneration,
    examples: list[Example],
    tokenizer: PreTrainedTokenizerFast,
    cfg: TrainConfig,
    n_batches: int = 4,
    empty: bool = False,
) -> float:
    """Mean held-out token cross-entropy (nats) on fixed-seed crops, with captions or null text."""
    was_training = model.training
    model.eval()
    rng, captions = random.Random(1234), random.Random(4321)  # same crops with or without captions
    pad = model.config.decoder.pad_token_id
    total = 0.0
    for _ in range(n_batches):
        batch = _batch(examples, cfg, tokenizer, rng, pad, 1.0 if empty else 0.0, caption_rng=captions)
        total += float(lm_loss(model, batch))
    model.train(was_training)
    return total / n_batches


def train(cfg: TrainConfig) -> Path:
    """Train the tiny MusicGen end to end; resumable: rerun the same command after a stop.

    Stages (each cached in `cfg.out`): codec fit -> clip encoding -> LM training with checkpoints
    every `checkpoint_every` steps -> `out/model` (a save_pretrained folder with the processor).
    Returns the model folder.
    """
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log = _Logger(out / "train_log.jsonl")
    torch.set_num_threads(cfg.threads)
    cfg_path = out / "train_config.json"
    cfg_dict = asdict(cfg)
    if cfg_path.exists() and json.loads(cfg_path.read_text()) != json.loads(json.dumps(cfg_dict)):
        log("warning: train_config.json differs from this run's config; resuming with the new one")
    cfg_path.write_text(json.dumps(cfg_dict, indent=1))
    t_start = time.time()
    codec, train_ex, held_ex, families = prepare(cfg, log)
    tok_dir = out / "tokenizer"
    if (tok_dir / "tokenizer.json").exists():
        tokenizer = PreTrainedTokenizerFast.from_pretrained(tok_dir)
    else:
        tokenizer = build_tokenizer(caption_corpus(train_ex + held_ex))
        tokenizer.save_pretrained(tok_dir)
    torch.manual_seed(cfg.seed)
    model = build_model(tokenizer, cfg.sizes, codec=codec)
    # transformers initialises the code embeddings with std 0.02, so the sinusoidal positions (norm ~11)
    # swamp the token identity and a short run cannot even learn "repeat the previous frame";
    # audiocraft's MusicGen uses nn.Embedding's default N(0, 1), which we restore here.
    for emb in model.decoder.model.decoder.embed_tokens:
        torch.nn.init.normal_(emb.weight, std=cfg.embed_init_std)
    ckpt_path = out / "ckpt"
    if cfg.init_from and not ckpt_path.with_suffix(".json").exists():
        start = MusicgenForConditionalGeneration.from_pretrained(cfg.init_from)
        model.load_state_dict(start.state_dict())
        log(f"starting from the weights of {cfg.init_from}")
    model.train()
    params = [p for n, p in model.named_parameters() if not n.startswith("audio_encoder")]
    n_params = sum(p.numel() for p in params)
    tagger = None
    if cfg.tag_weight > 0:
        layers = cfg.sizes.layers
        tagger = TagHead(cfg.sizes.hidden, families, (layers // 2, layers))
        params += list(tagger.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.01)
    step, elapsed = 0, 0.0
    rng = random.Random(cfg.seed)
    ck = _load_checkpoint(model, opt, ckpt_path, tagger)
    if ck is not None:
        step, elapsed = ck["step"], ck["elapsed"]
        version, internal, gauss = ck["rng"]
        rng.setstate((version, tuple(internal), gauss))
        log(f"resumed at step {step} ({elapsed / 60:.1f} min trained)")
    log(
        f"{len(train_ex)} train clips, {len(held_ex)} held-out clips, {n_params / 1e6:.2f}M trainable params",
        params=n_params,
    )
    pad = model.config.decoder.pad_token_id

    def lr_at(i: int) -> float:
        if i < cfg.warmup:
            return cfg.lr * (i + 1) / cfg.warmup
        frac = (i - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))

    def save_ckpt() -> None:
        _save_checkpoint(
            model, opt, {"step": step, "elapsed": elapsed, "rng": rng.getstate()}, ckpt_path, tagger
        )

    t_seg = time.time()
    run_loss, run_tag, run_hit = 0.0, 0.0, 0.0
    while step < cfg.steps:
        if elapsed + (time.time() - t_seg) > cfg.max_minutes * 60:
            log(f"wall-time cap of {cfg.max_minutes} min reached at step {step}; stopping early")
            break
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        short = cfg.short_prob > 0 and rng.random() < cfg.short_prob
        frames = cfg.short_frames if short else cfg.segment_frames
        batch = _batch(train_ex, cfg, tokenizer, rng, pad, cfg.empty_caption_prob, frames)
        if tagger is None:
            loss = ce = lm_loss(model, batch)
        else:
            ce, hidden = lm_loss(model, batch, hidden=True)
            tag, hit = tagger(hidden, batch)
            loss = ce + cfg.tag_weight * tag
            run_tag += tag.item()
            run_hit += hit.item()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        run_loss += ce.item()
        if step % cfg.log_every == 0:
            now = elapsed + time.time() - t_seg
            n = cfg.log_every
            tags = f" tag {run_tag / n:.3f} (acc {run_hit / n:.3f})" if tagger is not None else ""
            log(
                f"step {step} loss {run_loss / n:.3f}{tags} lr {lr_at(step):.2e} {now / 60:.1f} min",
                step=step,
                loss=run_loss / n,
                **({"tag_loss": run_tag / n, "tag_acc": run_hit / n} if tagger is not None else {}),
                minutes=now / 60,
            )
            run_loss, run_tag, run_hit = 0.0, 0.0, 0.0
        if step % cfg.eval_every == 0 or step == cfg.steps:
            ce = heldout_ce(model, held_ex, tokenizer, cfg)
            log(f"step {step} held-out CE {ce:.3f}", step=step, heldout_ce=ce)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            elapsed += time.time() - t_seg
            t_seg = time.time()
            save_ckpt()
    elapsed += time.time() - t_seg
    t_seg = time.time()
    save_ckpt()
    model.eval()
    model_dir = out / "model"
    save_bundle(model, build_processor(tokenizer, codec.config.sampling_rate), model_dir)
    summary = {
        "steps": step,
        "lm_train_minutes": elapsed / 60,
        "total_wall_minutes_this_call": (time.time() - t_start) / 60,
        "trainable_params": n_params,
        "train_clips": len(train_ex),
        "heldout_clips": len(held_ex),
        "heldout_songs": len({e.song for e in held_ex}),
        "families": families,
        "threads": cfg.threads,
    }
    (out / "train_summary.json").write_text(json.dumps(summary, indent=1))
    log(f"saved {model_dir}: {json.dumps(summary)}")
    return model_dir


# ============================================================================ command line


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
    parser.add_argument("--layers", type=int, default=d.sizes.layers)
    parser.add_argument("--heads", type=int, default=d.sizes.heads)
    parser.add_argument("--hidden", type=int, default=d.sizes.hidden)
    parser.add_argument("--install", action="store_true", help=f"copy the trained model into {BUNDLED_DIR}")


def config_from_args(args: Any) -> TrainConfig:
    sizes = TinySizes(
        layers=args.layers, heads=args.heads, hidden=args.hidden, ffn=4 * args.hidden, dropout=0.0
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
    )


def install(model_dir: str | os.PathLike, dest: str | os.PathLike = BUNDLED_DIR) -> Path:
    """Copy a trained model folder's files over the bundled one (keeps the destination's README.md)."""
    import shutil

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for f in Path(model_dir).iterdir():
        if f.is_file() and f.name != "README.md":
            shutil.copy2(f, dest / f.name)
    return dest


def train_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `train-tiny`: train (resuming if the run folder has a checkpoint), optionally install."""
    import argparse

    parser = argparse.ArgumentParser(description="Train smitin's bundled tiny MusicGen on rendered songs.")
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    if cfg.data == TrainConfig().data and not Path(cfg.data[0]).exists():
        from smitin.synth import render_dataset

        # the shipped model's training songs (see the model card); ~2 min on 2 cores
        render_dataset(cfg.data[0], songs=240, seed=4, sample_rate=cfg.sizes.sampling_rate)
    model_dir = train(cfg)
    if args.install:
        print(f"installed into {install(model_dir)}")
    return 0
