"""Text-to-music and audio continuation with steering, returning audio plus the monitor's trace."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
from tqdm.auto import tqdm

from . import audio as audio_io
from . import budget
from .backbone import Backbone
from .captured import engine
from .files import staged
from .monitor import Trace
from .options import GenerationOptions
from .probes import MAX_SHIFT
from .recipes import check_alpha, check_threshold
from .steering import Steer, Steering, apply


class RequestError(ValueError):
    """A generation request the model cannot serve (too long, too many heads...); says the limit."""


@dataclass
class Result:
    """Generated audio [B, S] at `sample_rate`, its codes [B, K, frames] and the steering trace.

    For a continuation `audio` holds the codec's re-synthesis of the prompt followed by the new
    audio (`prompt_seconds` says where the prompt ends), `new_audio` only the new part and
    `prompt_audio` the prompt as given (mono, at `sample_rate`).
    """

    audio: np.ndarray
    sample_rate: int
    codes: torch.Tensor
    trace: Trace
    prompt_seconds: float = 0.0
    prompt_audio: np.ndarray | None = None
    failure: str | None = None  # a mixed batch's request that failed alone (`generate_mixed(isolate=True)`)

    @property
    def new_audio(self) -> np.ndarray:
        """[B, S]: the generated part only (all of `audio` for text-to-music)."""
        return self.audio[:, round(self.prompt_seconds * self.sample_rate) :]

    def output(self, with_prompt: bool = False) -> np.ndarray:
        """[B, S] what `save` writes: the new audio, or the prompt as given followed by it."""
        if not with_prompt or self.prompt_audio is None:
            return self.new_audio
        return np.concatenate([self.prompt_audio, self.new_audio], axis=1)

    def save(
        self, wav: str | Path, trace: str | Path | None = None, *, with_prompt: bool = False
    ) -> list[Path]:
        """Write one WAV per sample (`out.wav`, or `out-0.wav`, `out-1.wav`... for a batch).

        A continuation writes its new audio only (with_prompt: the prompt as given, then the new
        audio). A clip that peaks above full scale is scaled down as a whole to peak
        `audio.PEAK_CEILING` instead of clipping; the gains, levels and where the prompt ends go
        into the trace's settings under "output". Every file is written under a temporary name
        and renamed only when all are written.
        """
        wav = Path(wav)
        clips = self.output(with_prompt)
        n = len(clips)
        paths = [wav if n == 1 else wav.with_name(f"{wav.stem}-{i}{wav.suffix}") for i in range(n)]
        limited = [audio_io.limit_peak(a) for a in clips]
        self.trace.settings["output"] = {
            "written": "prompt+new" if with_prompt and self.prompt_audio is not None else "new",
            "prompt_seconds": round(self.prompt_seconds, 4) if with_prompt else 0.0,
            "peak_gain": [round(g, 6) for _, g in limited],
            "rms_dbfs": [round(audio_io.level_dbfs(a), 2) for a, _ in limited],
        }
        targets = paths + ([Path(trace)] if trace is not None else [])
        with staged(targets) as temps:
            for tmp, (a, _) in zip(temps, limited, strict=False):
                sf.write(str(tmp), a, self.sample_rate)
            if trace is not None:
                self.trace.save(temps[-1])
        return paths

    def quiet(self) -> list[int]:
        """Samples whose new audio is (nearly) silent: RMS below `audio.QUIET_DBFS`."""
        return [i for i, a in enumerate(self.new_audio) if audio_io.level_dbfs(a) < audio_io.QUIET_DBFS]


def max_new_tokens(backbone: Backbone, seconds: float) -> int:
    """Steps for `seconds` of new audio: the delay pattern costs K - 1 extra steps."""
    return max(1, round(seconds * backbone.frame_rate)) + backbone.num_codebooks - 1


def max_positions(backbone: Backbone) -> int:
    """Decoder positions the model was built for (MusicGen: 2,048, i.e. about 41 s at 50 Hz)."""
    config = backbone.model.config
    decoder = getattr(config, "decoder", config)
    return int(getattr(decoder, "max_position_embeddings", 2048))


def max_seconds(backbone: Backbone, prompt_seconds: float = 0.0) -> float:
    """The longest new audio the model's positions allow after a prompt of `prompt_seconds`."""
    free = max_positions(backbone) - 1 - round(prompt_seconds * backbone.frame_rate)
    return max(0.0, (free - backbone.num_codebooks + 1) / backbone.frame_rate)


def check_request(
    backbone: Backbone,
    steers: Sequence[Steer],
    opts: GenerationOptions,
    prompt_seconds: float = 0.0,
    samples: int | None = None,
) -> None:
    """Refuse, before generating, what the model cannot serve; each message states the limit.

    `samples`: clips generated together (default `opts.batch`; a mixed batch: its requests),
    checked against the memory the machine has free (`smitin.budget`).
    """
    limit = max_seconds(backbone, prompt_seconds)
    if opts.duration > limit:
        room = max_seconds(backbone) - opts.duration
        if prompt_seconds:
            raise RequestError(
                f"a {prompt_seconds:.1f} s prompt plus {opts.duration:g} s of new audio exceed {backbone.name}'s "
                f"{max_positions(backbone)} positions: with this duration the prompt may be at most "
                f"{max(room, 0):.1f} s (keep its last seconds), or ask for at most {limit:.1f} s"
            )
        raise RequestError(
            f"duration {opts.duration:g} s is longer than {backbone.name} can generate: at most {limit:.1f} s "
            f"({max_positions(backbone)} positions at {backbone.frame_rate:g} frames per second)"
        )
    for s in steers:
        try:
            check_alpha(s.alpha)
            check_threshold(s.threshold)
        except ValueError as err:
            raise RequestError(f"{s.name}: {err}") from None
        unit, sigma = s.probes.steering_vectors(s.direction)
        push = abs(s.alpha) * float((unit.double().norm(dim=-1) * sigma.double()).max())
        if not push <= MAX_SHIFT:  # NaN too
            raise RequestError(
                f"{s.name}: steering at strength {s.alpha:g} would add up to {push:.3g} to a head in one "
                f"step (at most {MAX_SHIFT:g}): these probes' directions or spreads are far too large "
                "for any model; retrain them with `smitin probes train`"
            )
    n = opts.batch if samples is None else samples
    steps = max_new_tokens(backbone, opts.duration)
    need = budget.estimate(backbone, n, steps, opts.duration + prompt_seconds, opts.cfg)
    if not need.fits:
        raise RequestError(
            f"generating {n} clip{'s' if n != 1 else ''} at once needs about {budget.gib(need.need)} of memory (estimated: "
            f"{budget.gib(need.per_row)} per {opts.duration:g} s clip on {backbone.name}), more than the "
            f"{budget.gib(need.free or 0)} free on {backbone.device}; generate at most {need.most_rows()} "
            "at once (--batch)"
        )


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

    `options` holds duration, seed, batch, guidance_scale, every, rows, gain, engine and sampling
    (see `GenerationOptions`; engine "auto" runs captured steps on CUDA, `smitin.captured`); any of them may also be given as a keyword (`duration=8`), and other
    keywords go to `transformers`' `generate` unchanged (temperature, top_k...); sampling is on by
    default. `on_start(state)` receives the live steering state before the first step (a UI can
    poll its trace from another thread while the model runs).
    """
    opts = GenerationOptions.build(options, **overrides)
    check_request(backbone, steer, opts)
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
    `batch` times. The result holds the codec's re-synthesis of the prompt followed by `duration`
    seconds of new audio (`Result.new_audio` is the new part; `Result.save` writes only it unless
    asked). Prompts with NaN/inf samples, silent or shorter than one codec frame are refused, and
    so is a prompt too long for the model's positions. Options as for `generate`.
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
    check_request(backbone, steer, opts, n / backbone.sample_rate)
    cond = backbone.condition(texts)
    values = torch.from_numpy(np.stack([w[:n] for w in waves]))[:, None]
    cond = {**cond, "input_values": values.to(backbone.device, torch.float32)}
    result = _run(backbone, cond, steer, opts, progress, on_start)
    result.prompt_seconds = n / backbone.sample_rate
    result.prompt_audio = np.stack([w[:n] for w in waves])
    result.trace.settings["prompt_seconds"] = round(result.prompt_seconds, 4)
    return result


def continue_codes(
    backbone: Backbone,
    codes: torch.Tensor,
    prompt: str | None = None,
    *,
    steer: Sequence[Steer] = (),
    options: GenerationOptions | None = None,
    progress: bool = True,
    on_start: Callable[[Steering], None] | None = None,
    **overrides: Any,
) -> Result:
    """Continue codes [K, T] (one sample) as they are, with no codec round trip in between.

    What a stream's next window does (`smitin.stream`): the last seconds it made are the prompt.
    The Result's codes hold the prompt's T frames followed by the new ones; its `audio` is the
    codec's decode of all of them, and `prompt_seconds` says where the new part starts.
    """
    opts = GenerationOptions.build(options, **overrides)
    if opts.batch != 1:
        raise ValueError("continue_codes continues one sample: batch must be 1")
    k, t = codes.shape
    if k != backbone.num_codebooks:
        raise ValueError(f"codes have {k} codebooks; {backbone.name} reads {backbone.num_codebooks}")
    check_request(backbone, steer, opts, t / backbone.frame_rate)
    ids = codes.long().reshape(k, t).to(backbone.device)
    cond = {**backbone.condition(_texts(prompt, 1)), "decoder_input_ids": ids}
    result = _run(backbone, cond, steer, opts, progress, on_start)
    result.prompt_seconds = t / backbone.frame_rate
    result.trace.settings["prompt_seconds"] = round(result.prompt_seconds, 4)
    return result


def _prompt_wave(backbone: Backbone, audio, sample_rate: int | None) -> np.ndarray:
    """One prompt as mono float32 at the model's rate."""
    sr = backbone.sample_rate
    if isinstance(audio, (str, Path)):
        name = str(audio)
        wave = audio_io.read(audio, sr)  # refuses NaN/inf samples, naming the file
    else:
        name = "the audio prompt"
        if sample_rate is None:
            raise ValueError("give the prompt's sample_rate with raw audio")
        audio_io.check_finite(np.asarray(audio), name)
        wave = audio_io.resample(audio_io.to_mono(audio), sample_rate, sr)
    if len(wave) < sr / backbone.frame_rate:
        raise audio_io.AudioError(
            f"{name}: {len(wave) / sr * 1000:.1f} ms is shorter than one codec frame "
            f"({1000 / backbone.frame_rate:.0f} ms); give at least {1 / backbone.frame_rate:.2f} s of audio"
        )
    if audio_io.level_dbfs(wave) < 20 * np.log10(audio_io.SILENT_RMS):
        raise audio_io.AudioError(f"{name}: the audio prompt is silent; give music to continue")
    wave, gain = audio_io.limit_peak(wave)
    if gain < 1.0:
        warnings.warn(
            f"{name}: samples beyond full scale (peak {audio_io.PEAK_CEILING / gain:.3g}); "
            f"scaled down to peak {audio_io.PEAK_CEILING}",
            stacklevel=3,
        )
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
        "guidance_scale": opts.model_guidance,
    }
    hook_options = {"every": opts.every, "rows": opts.rows, "gain": opts.gain, "cfg": opts.cfg}
    with (
        apply(backbone, steers, **hook_options, max_steps=steps + 1, duration=opts.duration) as state,
        engine(backbone, opts.engine, state, steps) as ran,
        keep_codes(backbone) as codes,
        step_bar(backbone, steps, progress),
    ):
        if on_start is not None:
            on_start(state)
        if opts.seed is not None:
            torch.manual_seed(opts.seed)
        with torch.no_grad():
            values = backbone.model.generate(**cond, **kwargs)
    trace = state.trace()
    settings = opts.settings()
    trace.settings.update({k: settings[k] for k in ("duration", "seed", "guidance_scale")}, engine=ran)
    trace.settings.update(opts.sampling)
    return Result(values[:, 0].float().cpu().numpy(), backbone.sample_rate, codes[0], trace)


@contextmanager
def keep_codes(backbone: Backbone) -> Iterator[list[torch.Tensor]]:
    """Keep the codes `generate` hands to the codec (it returns audio only); `smitin.mixed` uses it too."""
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
def step_bar(backbone: Backbone, steps: int, enabled: bool) -> Iterator[None]:
    """A progress bar that ticks once per decoder step (not per forward of the prompt)."""
    bar = tqdm(total=steps, desc="generate", unit="step", disable=not enabled)

    def tick(past: int, _ids: torch.Tensor | None) -> None:
        if past:
            bar.update(1)

    try:
        with backbone.decoder_steps(tick):
            yield
    finally:
        bar.close()
