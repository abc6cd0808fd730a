"""Text-to-music and audio continuation with steering, returning audio plus the monitor's trace."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from . import audio as audio_io
from .backbone import Backbone
from .monitor import Trace
from .options import GenerationOptions
from .steering import Steer, Steering, apply


@dataclass
class Result:
    """Generated audio [B, S] at `sample_rate`, its codes [B, K, frames] and the steering trace."""

    audio: np.ndarray
    sample_rate: int
    codes: torch.Tensor
    trace: Trace
    prompt_seconds: float = 0.0

    def save(self, wav: str | Path, trace: str | Path | None = None) -> list[Path]:
        """Write one WAV per sample (`out.wav`, or `out-0.wav`, `out-1.wav`... for a batch)."""
        wav = Path(wav)
        n = len(self.audio)
        paths = [wav if n == 1 else wav.with_name(f"{wav.stem}-{i}{wav.suffix}") for i in range(n)]
        for path, a in zip(paths, self.audio, strict=True):
            audio_io.write(path, a, self.sample_rate)
        if trace is not None:
            self.trace.save(trace)
        return paths


def max_new_tokens(backbone: Backbone, seconds: float) -> int:
    """Steps for `seconds` of new audio: the delay pattern costs K - 1 extra steps."""
    return max(1, round(seconds * backbone.frame_rate)) + backbone.num_codebooks - 1


def generate(
    backbone: Backbone,
    prompt: str | Sequence[str] | None = None,
    *,
    steer: Sequence[Steer] = (),
    options: GenerationOptions | None = None,
    progress: bool = True,
    on_start: Callable[[Steering], None] | None = None,
    **overrides: Any,
) -> Result:
    """Text-to-music (prompt None: unconditional) with the given traits steered.

    `options` holds duration, seed, batch, guidance_scale, every, rows, gain and sampling (see
    `GenerationOptions`); any of them may also be given as a keyword (`duration=8`), and other
    keywords go to `transformers`' `generate` unchanged (temperature, top_k...); sampling is on by
    default. `on_start(state)` receives the live steering state before the first step (a UI can
    poll its trace from another thread while the model runs).
    """
    opts = GenerationOptions.build(options, **overrides)
    cond = backbone.condition(_texts(prompt, opts.batch))
    return _run(backbone, cond, steer, opts, progress, on_start)


def continue_audio(
    backbone: Backbone,
    audio: np.ndarray | str | Path | Sequence[np.ndarray | str | Path],
    sample_rate: int | None = None,
    prompt: str | Sequence[str] | None = None,
    *,
    steer: Sequence[Steer] = (),
    options: GenerationOptions | None = None,
    progress: bool = True,
    on_start: Callable[[Steering], None] | None = None,
    **overrides: Any,
) -> Result:
    """Continue an audio prompt (a file, or samples at `sample_rate`; mixed to mono, resampled).

    A list of prompts continues each in one batch (cut to the shortest); one prompt is repeated
    `batch` times. The result holds the prompt followed by `duration` seconds of new audio.
    Options as for `generate`.
    """
    opts = GenerationOptions.build(options, **overrides)
    many = isinstance(audio, (list, tuple))
    items = list(audio) if isinstance(audio, (list, tuple)) else [audio]
    waves = [_prompt_wave(backbone, a, sample_rate) for a in items]
    texts = _texts(prompt, len(waves) if many else opts.batch)
    if not many:
        waves = waves * len(texts)
    if len(texts) != len(waves):
        raise ValueError(f"{len(waves)} audio prompts but {len(texts)} text prompts")
    n = min(len(w) for w in waves)
    cond = backbone.condition(texts)
    values = torch.from_numpy(np.stack([w[:n] for w in waves]))[:, None]
    cond = {**cond, "input_values": values.to(backbone.device, torch.float32)}
    result = _run(backbone, cond, steer, opts, progress, on_start)
    result.prompt_seconds = n / backbone.sample_rate
    return result


def _prompt_wave(backbone: Backbone, audio, sample_rate: int | None) -> np.ndarray:
    """One prompt as mono float32 at the model's rate."""
    sr = backbone.sample_rate
    if isinstance(audio, (str, Path)):
        wave = audio_io.read(audio, sr)
    else:
        if sample_rate is None:
            raise ValueError("give the prompt's sample_rate with raw audio")
        wave = audio_io.resample(audio_io.to_mono(audio), sample_rate, sr)
    if len(wave) < sr / backbone.frame_rate:
        raise ValueError("the audio prompt is shorter than one codec frame")
    return np.ascontiguousarray(wave, dtype=np.float32)


def _texts(prompt, batch: int) -> list[str]:
    if prompt is None:
        return [""] * batch
    if isinstance(prompt, str):
        return [prompt] * batch
    return list(prompt)


def _run(
    backbone: Backbone,
    cond: dict,
    steers: Sequence[Steer],
    opts: GenerationOptions,
    progress: bool,
    on_start: Callable[[Steering], None] | None,
) -> Result:
    steps = max_new_tokens(backbone, opts.duration)
    kwargs = {
        "do_sample": True,
        **opts.sampling,
        "max_new_tokens": steps,
        "guidance_scale": opts.guidance_scale,
    }
    hook_options = {"every": opts.every, "rows": opts.rows, "gain": opts.gain, "cfg": opts.cfg}
    with (
        apply(backbone, steers, **hook_options, max_steps=steps + 1, duration=opts.duration) as state,
        _codes(backbone) as codes,
        _progress(backbone, steps, progress),
    ):
        if on_start is not None:
            on_start(state)
        if opts.seed is not None:
            torch.manual_seed(opts.seed)
        with torch.no_grad():
            values = backbone.model.generate(**cond, **kwargs)
    trace = state.trace()
    settings = opts.settings()
    trace.settings.update({k: settings[k] for k in ("duration", "seed", "guidance_scale")})
    trace.settings.update(opts.sampling)
    return Result(values[:, 0].float().cpu().numpy(), backbone.sample_rate, codes[0], trace)


@contextmanager
def _codes(backbone: Backbone) -> Iterator[list[torch.Tensor]]:
    """Keep the codes `generate` hands to the codec (it returns audio only)."""
    codec = backbone.model.audio_encoder
    original = codec.decode
    seen: list[torch.Tensor] = []

    def decode(audio_codes, *args, **kwargs):
        seen.append(audio_codes[0].detach().cpu())
        return original(audio_codes, *args, **kwargs)

    codec.decode = decode
    try:
        yield seen
    finally:
        del codec.decode  # the instance attribute goes; the class method shows again


@contextmanager
def _progress(backbone: Backbone, steps: int, enabled: bool) -> Iterator[None]:
    bar = tqdm(total=steps, desc="generate", unit="step", disable=not enabled)

    def tick(past: int, _ids: torch.Tensor | None) -> None:
        if past:
            bar.update(1)

    try:
        with backbone.decoder_steps(tick):
            yield
    finally:
        bar.close()
