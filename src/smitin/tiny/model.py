"""The bundled tiny MusicGen's architecture: tokenizer, sizes, model, processor, saved folder.

The model is a stock `MusicgenForConditionalGeneration`: a small `MusicgenForCausalLM` decoder
(delay pattern, classifier-free guidance, cross-attention), a small `T5EncoderModel` text encoder
trained jointly from scratch, a word-level tokenizer, and `smitin.codec.MelCodecModel` in place of
EnCodec. Saved with `save_pretrained` + a `MusicgenProcessor`, the folder loads like a hub
checkpoint once `smitin` (which registers the codec) is imported.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from transformers import (
    EncodecFeatureExtractor,
    MusicgenDecoderConfig,
    MusicgenForConditionalGeneration,
    MusicgenProcessor,
    PreTrainedTokenizerFast,
    T5Config,
    T5EncoderModel,
)

from ..codec import MelCodecConfig, MelCodecModel

# the package data folder smitin/assets/tiny-musicgen (this file is smitin/tiny/model.py)
BUNDLED_DIR = Path(__file__).resolve().parent.parent / "assets" / "tiny-musicgen"

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
        # the config accepts extra keyword fields at runtime (kept as attributes); its typed signature omits them
        decoder_start_token_id=0,  # type: ignore[call-arg]
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
        decoder_start_token_id=codec.config.codebook_size,  # type: ignore[call-arg]  # extra field, as above
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


def install(model_dir: str | os.PathLike, dest: str | os.PathLike = BUNDLED_DIR) -> Path:
    """Copy a trained model folder's files over the bundled one (keeps the destination's README.md)."""
    import shutil

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for f in Path(model_dir).iterdir():
        if f.is_file() and f.name != "README.md":
            shutil.copy2(f, dest / f.name)
    return dest
