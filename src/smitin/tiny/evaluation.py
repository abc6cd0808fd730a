"""The bundled tiny MusicGen's model card numbers: codec, LM, text adherence and SMITIN probes.

Measured on rendered songs neither the codec nor the LM saw (`scripts/eval_tiny.py` runs it and
writes the tables into the model card). Kept apart from the modules that build and train.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import torch
from transformers import MusicgenForConditionalGeneration, MusicgenProcessor, PreTrainedConfig

from .. import audio as audio_io
from ..audio import normalise_loudness
from ..backbone import codec_round_trip
from ..codec import MelCodecDecoderOutput, MelCodecEncoderOutput, MelCodecModel
from .clips import encode_songs, read_songs
from .config import TrainConfig
from .training import heldout_ce

TRAITS = ("drums", "bass", "guitar", "piano")


def reconstruct(codec: MelCodecModel, audio: np.ndarray, batch: int = 16) -> np.ndarray:
    """Encode + decode clips [N, S] through the codec (same length out)."""

    @torch.no_grad()
    def through(x: torch.Tensor) -> torch.Tensor:
        enc = codec.encode(x[:, None])
        # return_dict is not False, so these are the output objects
        assert isinstance(enc, MelCodecEncoderOutput) and enc.audio_codes is not None
        dec = codec.decode(enc.audio_codes)
        assert isinstance(dec, MelCodecDecoderOutput) and dec.audio_values is not None
        return dec.audio_values[:, 0]

    return codec_round_trip(through, audio, batch)


def codec_metrics(codec: MelCodecModel, clips: np.ndarray) -> dict[str, float]:
    """Log-mel error in dB: of the quantised frames (VQ alone) and of the decoded audio re-analysed."""
    x = torch.from_numpy(np.stack([normalise_loudness(a) for a in clips]))
    with torch.no_grad():
        lm = codec.log_mel(x)
        q = codec.dequantize(codec.quantize(lm))
        enc = codec.encode(x[:, None])
        # return_dict is not False, so these are the output objects
        assert isinstance(enc, MelCodecEncoderOutput) and enc.audio_codes is not None
        dec = codec.decode(enc.audio_codes)
        assert isinstance(dec, MelCodecDecoderOutput) and dec.audio_values is not None
        rec = dec.audio_values[:, 0, : x.shape[-1]]
        lm_rec = codec.log_mel(rec)
    to_db = 20.0 / math.log(10.0)
    active = lm > math.log(1e-3)  # ignore near-silent bins, where log error is meaningless
    return {
        "vq_logmel_mae_db": float((q - lm).abs()[active].mean() * to_db),
        "decoded_logmel_mae_db": float((lm_rec - lm).abs()[active].mean() * to_db),
        "decoded_logmel_mae_db_all_bins": float((lm_rec - lm).abs().mean() * to_db),
    }


def unigram_ce(train_codes: list[torch.Tensor], test_codes: list[torch.Tensor], vocab: int) -> float:
    """Cross-entropy (nats) of test codes under per-codebook unigram counts (add-one smoothing)."""
    k = train_codes[0].shape[0]
    total, count = 0.0, 0
    for q in range(k):
        counts = torch.ones(vocab, dtype=torch.float64)
        for c in train_codes:
            counts += torch.bincount(c[q].long(), minlength=vocab).double()
        logp = torch.log(counts / counts.sum())
        for c in test_codes:
            total += float(-logp[c[q].long()].sum())
            count += c.shape[1]
    return total / count


@torch.no_grad()
def generate_clips(
    model: MusicgenForConditionalGeneration,
    processor: MusicgenProcessor,
    prompts: list[str],
    seconds: float,
    seed: int,
    guidance_scale: float = 3.0,
    batch: int = 8,
) -> np.ndarray:
    """Text-to-music for each prompt ([N, S] float32); `None`-like empty prompts use the null text."""
    k = model.decoder.num_codebooks
    audio_cfg = model.config.audio_encoder
    # typed as MusicgenConfig's constructor input (dict | config | None); __post_init__ makes it a config
    assert isinstance(audio_cfg, PreTrainedConfig)
    steps = int(round(seconds * audio_cfg.frame_rate)) + k - 1
    outs = []
    for i in range(0, len(prompts), batch):
        torch.manual_seed(seed + i)
        inputs = processor(text=prompts[i : i + batch], padding=True, return_tensors="pt")
        audio = model.generate(**inputs, max_new_tokens=steps, guidance_scale=guidance_scale, do_sample=True)
        outs.append(audio[:, 0].numpy())
    return np.concatenate(outs)


def evaluate(
    model_dir: str | os.PathLike,
    eval_data: str | os.PathLike,
    classifier_data: str | os.PathLike,
    n_gen: int = 16,
    seconds: float = 5.0,
    seed: int = 0,
    probe_traits: Sequence[str] = ("drums", "bass", "guitar", "piano"),
    log: Any = print,
) -> dict[str, Any]:
    """Measure the codec, the LM, text adherence (on songs neither ever saw) and the probes."""
    from .. import data as sdata
    from ..experiment.features import clip_features
    from ..experiment.judges import fit_classifier

    torch.manual_seed(seed)
    model = MusicgenForConditionalGeneration.from_pretrained(model_dir).eval()
    processor = MusicgenProcessor.from_pretrained(model_dir)
    codec: MelCodecModel = model.audio_encoder
    sr = codec.config.sampling_rate
    songs = read_songs(eval_data)
    ids = sorted(s["id"] for s in songs)
    half_a = set(ids[::2])  # classifier-train / unigram-fit songs; the other half tests
    res: dict[str, Any] = {
        "eval_data": str(eval_data),
        "eval_songs": len(songs),
        "seed": seed,
        "seconds": seconds,
    }

    # 1. codec: reconstruction error on 10 s excerpts of every eval song's full mix
    t0 = time.time()
    clips = []
    for meta in songs:
        # a song has at least one stem, so the sum is an array (never the start value 0)
        mix = cast(np.ndarray, sum(audio_io.read(p, sr) for p in meta["stem_paths"].values()))
        mid = max(0, len(mix) // 2 - 5 * sr)
        clips.append(normalise_loudness(mix[mid : mid + 10 * sr]))
    n = min(len(c) for c in clips)
    res["codec"] = codec_metrics(codec, np.stack([c[:n] for c in clips]))
    log(f"codec: {res['codec']} ({time.time() - t0:.0f} s)")

    # 2. instrument classifiers: trained on paired with/without-stem segments (smitin.data) of a
    # separate render (neither the codec, the LM nor the eval songs), tested on the eval songs'
    # originals and on their codec reconstructions; they then judge the text-adherence generations
    res["classifier_data"] = str(classifier_data)
    res["classifier"] = {}
    judges = {}
    for trait in TRAITS:
        train_segs, test_segs = (
            sdata.stem_segments(d, trait, sample_rate=sr, seconds=seconds, max_segments_per_track=8)
            for d in (classifier_data, eval_data)
        )
        if len(train_segs) < 8 or len(test_segs) < 8:
            continue
        train_audio = train_segs.load(range(len(train_segs)))
        clf = fit_classifier(clip_features(train_audio, sr), train_segs.labels())
        # the judge of generated audio hears what the decoder makes: trained on reconstructions of
        # the same rendered segments, so Griffin-Lim's smeared transients do not read as drums
        judge = fit_classifier(clip_features(reconstruct(codec, train_audio), sr), train_segs.labels())
        audio, labels = test_segs.load(range(len(test_segs))), test_segs.labels()
        f_orig, f_rec = clip_features(audio, sr), clip_features(reconstruct(codec, audio), sr)
        res["classifier"][trait] = {
            "train_segments": int(len(train_segs)),
            "test_segments": int(len(test_segs)),
            "acc_orig": float(clf.score(f_orig, labels)),
            "acc_reconstructed": float(clf.score(f_rec, labels)),
            "judge_acc_reconstructed": float(judge.score(f_rec, labels)),
        }
        judges[trait] = judge
        log(f"classifier {trait}: {res['classifier'][trait]}")

    # 3. LM: held-out token cross-entropy vs a unigram baseline
    t0 = time.time()
    rng = random.Random(seed)
    families = sorted({f for s in songs for f in s["stem_paths"]})
    clips_ex = encode_songs(songs, codec, 1, seed, families, log=lambda *a, **k: None)
    tok = processor.tokenizer
    cfg = TrainConfig(batch_size=8, segment_frames=250, caption_details=0.0)  # style + instruments
    ce_text = heldout_ce(model, clips_ex, tok, cfg, n_batches=8)
    ce_null = heldout_ce(model, clips_ex, tok, cfg, n_batches=8, empty=True)
    short = TrainConfig(batch_size=8, segment_frames=50, caption_details=0.0)  # 1 s: the caption matters most
    ce_text_1s = heldout_ce(model, clips_ex, tok, short, n_batches=16)
    ce_null_1s = heldout_ce(model, clips_ex, tok, short, n_batches=16, empty=True)
    a_codes = [e.codes for e in clips_ex if e.song in half_a]
    b_codes = [e.codes for e in clips_ex if e.song not in half_a]
    vocab = codec.config.codebook_size
    uni = 0.5 * (unigram_ce(a_codes, b_codes, vocab) + unigram_ce(b_codes, a_codes, vocab))
    all_codes = a_codes + b_codes
    oracle = unigram_ce(all_codes, all_codes, vocab)  # the test codes' own unigram entropy: a lower bound
    res["lm"] = {
        "heldout_ce_with_caption": ce_text,
        "heldout_ce_null_caption": ce_null,
        "heldout_ce_1s_with_caption": ce_text_1s,
        "heldout_ce_1s_null_caption": ce_null_1s,
        "unigram_ce": uni,
        "unigram_oracle_ce": oracle,
        "uniform_ce": math.log(vocab),
    }
    log(f"lm: {res['lm']} ({time.time() - t0:.0f} s)")

    # 4. text adherence: prompts naming vs excluding each instrument, judged by the classifiers
    t0 = time.time()
    styles = sorted({s.get("style", "pop") for s in songs})
    others = [f for f in families if f not in TRAITS] + list(TRAITS)
    res["text_adherence"] = {}
    null_gen = generate_clips(model, processor, [""] * n_gen, seconds, seed + 999)
    for trait in judges:
        rest = [f for f in others if f != trait]
        # named / left out of the instrument list / negated ("without X" still says the word)
        prompts: dict[str, list[str]] = {"named": [], "excluded": [], "negated": []}
        for _ in range(n_gen):
            style = styles[rng.randrange(len(styles))]
            extra = [w.replace("_", " ") for w in rng.sample(rest, 2)]
            prompts["named"].append(f"a {style} groove with {trait}, {extra[0]} and {extra[1]}")
            prompts["excluded"].append(f"a {style} groove with {extra[0]} and {extra[1]}")
            prompts["negated"].append(f"a {style} groove with {extra[0]} and {extra[1]}, without {trait}")
        found = {
            kind: float(
                judges[trait]
                .predict(clip_features(generate_clips(model, processor, ps, seconds, seed), sr))
                .mean()
            )
            for kind, ps in prompts.items()
        }
        res["text_adherence"][trait] = {
            "n": n_gen,
            "found_when_named": found["named"],
            "found_when_excluded": found["excluded"],
            "found_when_negated": found["negated"],
            "found_with_empty_prompt": float(judges[trait].predict(clip_features(null_gen, sr)).mean()),
            "example_prompts": [v[0] for v in prompts.values()],
        }
        log(f"text adherence {trait}: {res['text_adherence'][trait]} ({time.time() - t0:.0f} s)")

    # 5. SMITIN probes on this model (the engine's defaults: 3 s segments, last position, by-track
    # split) trained on the classifier render: more tracks than the eval songs, so validation is
    # not a coin toss
    if probe_traits:
        from ..backbone import Backbone
        from ..probes import fit

        t0 = time.time()
        backbone = Backbone(model, processor, name=str(model_dir))  # the model already loaded above
        res["probes"] = {}
        for trait in probe_traits:
            segs = sdata.stem_segments(classifier_data, trait, sample_rate=sr)
            probes = fit(backbone, segs, progress=False)
            info = probes.meta["training"]
            res["probes"][trait] = {
                "best": float(probes.accuracy.max()),
                "median": float(probes.accuracy.median()),
                "val_segments": info["validation"]["segments"],
                "val_tracks": info["validation"]["tracks"],
                "train_segments": info["train"]["segments"],
            }
            log(f"probes {trait}: {res['probes'][trait]} ({time.time() - t0:.0f} s)")
    return res


def results_markdown(res: dict[str, Any]) -> str:
    """The numbers as markdown tables (pasted into the model card)."""
    c = res["codec"]
    lines = [
        f"Measured on {res['eval_songs']} rendered songs that neither the codec nor the LM saw "
        f"(`{res['eval_data']}`), seed {res['seed']}.",
        "",
        "| codec | value |",
        "|---|---|",
        f"| log-mel MAE of the quantised frames (VQ alone), dB | {c['vq_logmel_mae_db']:.2f} |",
        f"| log-mel MAE of the decoded audio (VQ + Griffin-Lim), dB | {c['decoded_logmel_mae_db']:.2f} |",
        "",
        f"Instrument classifiers trained on `{res.get('classifier_data', '?')}` (another render), "
        "tested on the eval songs:",
        "",
        "| instrument | train / test segments | accuracy on originals | same classifier on reconstructions "
        "| kept | judge (trained on reconstructions) on reconstructions |",
        "|---|---|---|---|---|---|",
    ]
    for t, v in res["classifier"].items():
        lines.append(
            f"| {t} | {v.get('train_segments', '?')} / {v['test_segments']} | {v['acc_orig']:.2f} "
            f"| {v['acc_reconstructed']:.2f} | {100 * v['acc_reconstructed'] / v['acc_orig']:.0f}% "
            f"| {v.get('judge_acc_reconstructed', float('nan')):.2f} |"
        )
    lm = res["lm"]
    lines += [
        "",
        "| LM, held-out token cross-entropy (nats) | value |",
        "|---|---|",
        f"| with a caption | {lm['heldout_ce_with_caption']:.3f} |",
        f"| null caption (CFG's unconditional row) | {lm['heldout_ce_null_caption']:.3f} |",
        f"| first 1 s of a clip (1 s crops), with a caption "
        f"| {lm.get('heldout_ce_1s_with_caption', float('nan')):.3f} |",
        f"| first 1 s of a clip, null caption | {lm.get('heldout_ce_1s_null_caption', float('nan')):.3f} |",
        f"| unigram baseline (per codebook, fitted on the other half of the songs) | {lm['unigram_ce']:.3f} |",
        f"| unigram fitted on the evaluated codes themselves (best any unigram can do) "
        f"| {lm['unigram_oracle_ce']:.3f} |",
        f"| uniform over the codebook | {lm['uniform_ce']:.3f} |",
        "",
        "Text adherence is judged by the classifiers trained on codec reconstructions of the rendered "
        "segments (the last column above), since generated audio comes out of the same decoder.",
        "",
        f"| text adherence ({res['seconds']:g} s, CFG 3) | n per kind | judge finds it when named "
        '| when left out | when negated ("without X") | empty prompt |',
        "|---|---|---|---|---|---|",
    ]
    for t, v in res["text_adherence"].items():
        lines.append(
            f"| {t} | {v['n']} | {v['found_when_named']:.2f} | {v['found_when_excluded']:.2f} "
            f"| {v.get('found_when_negated', float('nan')):.2f} | {v['found_with_empty_prompt']:.2f} |"
        )
    if res.get("probes"):
        lines += [
            "",
            f"| SMITIN probes (3 s segments of `{res.get('classifier_data', '?')}`, split by track) "
            "| best head, validation acc. | median head | validation segments (tracks) |",
            "|---|---|---|---|",
        ]
        for t, v in res["probes"].items():
            lines.append(
                f"| {t} | {v['best']:.3f} | {v['median']:.3f} | {v['val_segments']} ({v['val_tracks']}) |"
            )
    return "\n".join(lines) + "\n"
