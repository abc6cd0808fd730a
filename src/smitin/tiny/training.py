"""Training the tiny MusicGen: batches in the delay layout, losses, the tagging head, the resumable loop."""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from transformers import MusicgenForConditionalGeneration, PreTrainedConfig, PreTrainedTokenizerFast

from .checkpoints import load_checkpoint, save_checkpoint
from .clips import Example, caption_corpus, make_caption
from .config import TrainConfig
from .model import build_model, build_processor, build_tokenizer, save_bundle
from .prepare import prepare


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


def to_device(batch: dict[str, torch.Tensor], device: torch.device | str) -> dict[str, torch.Tensor]:
    """The batch's tensors on `device` (non-blocking from the host: the step is queued behind it)."""
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _autocast(device: torch.device | str) -> Any:
    """bf16 autocast on a GPU (the training there), a no-op on CPU (fp32, as the shipped stages ran)."""
    kind = torch.device(device).type
    return torch.autocast(device_type=kind, dtype=torch.bfloat16, enabled=kind == "cuda")


class RunLog:
    """Log of a run: prints each message and appends it, with its numbers, to a JSON-lines file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, msg: str, **record: Any) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        with open(self.path, "a") as f:
            f.write(json.dumps({"time": time.time(), "msg": msg, **record}) + "\n")


def make_batch(
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
    activities = [ex.activity for ex in chosen if ex.activity is not None]
    if len(activities) == len(chosen):  # every clip has its activity
        tags = torch.zeros(len(chosen), activities[0].shape[0], s)
        valid = torch.zeros(len(chosen), s, dtype=torch.bool)
        for i, (activity, start) in enumerate(zip(activities, starts, strict=True)):
            a = activity[:, start : start + s]
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
    pos = torch.arange(length, device=tags.device)
    frame = (pos - 1).clamp(0, s - 1)
    return tags[:, :, frame].transpose(1, 2), valid[:, frame] & (pos >= 1)


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
    decoder_cfg = model.config.decoder
    # typed as MusicgenConfig's constructor input (dict | config | None); __post_init__ makes it a config
    assert isinstance(decoder_cfg, PreTrainedConfig)
    pad = decoder_cfg.pad_token_id
    total = 0.0
    device = next(model.parameters()).device
    for _ in range(n_batches):
        batch = make_batch(examples, cfg, tokenizer, rng, pad, 1.0 if empty else 0.0, caption_rng=captions)
        with _autocast(device):
            total += float(lm_loss(model, to_device(batch, device)))
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
    log = RunLog(out / "train_log.jsonl")
    torch.set_num_threads(cfg.threads)
    device = torch.device(cfg.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
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
    torch.nn.Module.to(model, device)  # (transformers' typed `to` wrapper rejects a device)
    model.train()
    params = [p for n, p in model.named_parameters() if not n.startswith("audio_encoder")]
    n_params = sum(p.numel() for p in params)
    tagger = None
    if cfg.tag_weight > 0:
        layers = cfg.sizes.layers
        tagger = TagHead(cfg.sizes.hidden, families, (layers // 2, layers)).to(device)
        params += list(tagger.parameters())
    opt = torch.optim.AdamW(
        params, lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.01, fused=device.type == "cuda" or None
    )
    step, elapsed = 0, 0.0
    rng = random.Random(cfg.seed)
    ck = load_checkpoint(model, opt, ckpt_path, tagger)
    if ck is not None:
        step, elapsed = ck["step"], ck["elapsed"]
        version, internal, gauss = ck["rng"]
        rng.setstate((version, tuple(internal), gauss))
        log(f"resumed at step {step} ({elapsed / 60:.1f} min trained)")
    log(
        f"{len(train_ex)} train clips, {len(held_ex)} held-out clips, {n_params / 1e6:.2f}M trainable params",
        params=n_params,
    )
    decoder_cfg = model.config.decoder
    # typed as MusicgenConfig's constructor input (dict | config | None); __post_init__ makes it a config
    assert isinstance(decoder_cfg, PreTrainedConfig)
    pad = decoder_cfg.pad_token_id

    def lr_at(i: int) -> float:
        if i < cfg.warmup:
            return cfg.lr * (i + 1) / cfg.warmup
        frac = (i - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        if cfg.time_schedule:  # the cosine ends when the wall-time cap does, if that comes first
            frac = max(frac, (elapsed + time.time() - t_seg) / (cfg.max_minutes * 60))
        return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))

    def save_ckpt() -> None:
        save_checkpoint(
            model, opt, {"step": step, "elapsed": elapsed, "rng": rng.getstate()}, ckpt_path, tagger
        )

    t_seg = time.time()
    # running sums stay on the device: one host sync per log line, not per step
    run_loss, run_tag, run_hit = (torch.zeros((), device=device) for _ in range(3))
    best: tuple[float, dict[str, torch.Tensor]] | None = None
    while step < cfg.steps:
        if elapsed + (time.time() - t_seg) > cfg.max_minutes * 60:
            log(f"wall-time cap of {cfg.max_minutes} min reached at step {step}; stopping early")
            break
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        short = cfg.short_prob > 0 and rng.random() < cfg.short_prob
        frames = cfg.short_frames if short else cfg.segment_frames
        batch = to_device(
            make_batch(train_ex, cfg, tokenizer, rng, pad, cfg.empty_caption_prob, frames), device
        )
        with _autocast(device):
            if tagger is None:
                loss = ce = lm_loss(model, batch)
            else:
                ce, hidden = lm_loss(model, batch, hidden=True)
                tag, hit = tagger(hidden, batch)
                loss = ce + cfg.tag_weight * tag
                run_tag += tag.detach().float()
                run_hit += hit.detach().float()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        run_loss += ce.detach().float()
        if step % cfg.log_every == 0:
            now = elapsed + time.time() - t_seg
            n = cfg.log_every
            mean_loss, mean_tag, mean_hit = (float(x) / n for x in (run_loss, run_tag, run_hit))
            tags = f" tag {mean_tag:.3f} (acc {mean_hit:.3f})" if tagger is not None else ""
            log(
                f"step {step} loss {mean_loss:.3f}{tags} lr {lr_at(step):.2e} {now / 60:.1f} min",
                step=step,
                loss=mean_loss,
                **({"tag_loss": mean_tag, "tag_acc": mean_hit} if tagger is not None else {}),
                minutes=now / 60,
            )
            run_loss, run_tag, run_hit = (torch.zeros((), device=device) for _ in range(3))
        if step % cfg.eval_every == 0 or step == cfg.steps:
            held = heldout_ce(model, held_ex, tokenizer, cfg)
            log(f"step {step} held-out CE {held:.3f}", step=step, heldout_ce=held)
            if cfg.keep_best and (best is None or held < best[0]):
                best = (held, {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()})
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            elapsed += time.time() - t_seg
            t_seg = time.time()
            save_ckpt()
    elapsed += time.time() - t_seg
    t_seg = time.time()
    save_ckpt()
    if best is not None:
        model.load_state_dict(best[1])
        log(f"keeping the weights of the best held-out CE seen ({best[0]:.3f})", best_heldout_ce=best[0])
    torch.nn.Module.to(model, "cpu").eval()
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
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "best_heldout_ce": best[0] if best is not None else None,
    }
    (out / "train_summary.json").write_text(json.dumps(summary, indent=1))
    log(f"saved {model_dir}: {json.dumps(summary)}")
    return model_dir
