"""Many requests in one forward pass: each sample of a batch with its own prompt, seed and steering.

On a GPU MusicGen's step costs about the same for 2 rows as for 64 (it is launch-bound), so
serving one request per `generate` wastes the machine. `generate_mixed` runs N requests as one
batch: every request's steers become slots of one `Steering` (a slot pushes, and its monitor
gates, only its own sample's rows), laid out once as device tensors like any other generation,
so the step adds no host-device sync and no allocation per request, head or step.

Seeds: `transformers` samples every row of a batch from one torch RNG, so with plain sampling a
request's draw depends on the requests around it. With `own_seeds=True` (the default) each
request draws from its own generator instead: a logits processor takes the distribution
`transformers` would sample (classifier-free guidance, temperature, top-k, top-p) and picks the
token by inverse CDF with that request's uniforms, drawn before generation from its seed; the
other tokens are masked so the library's own sampling can only confirm the choice. A request's
codes then depend only on its seed and its own logits: bit-identical to running it alone
wherever the model's arithmetic does not depend on the batch size (the tests check it on CPU).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from transformers import LogitsProcessor, LogitsProcessorList

from .backbone import Backbone
from .captured import engine
from .generate import RequestError, Result, check_request, keep_codes, max_new_tokens, step_bar
from .options import GenerationOptions
from .steering import Steer, Steering, apply

FAILURE = (
    "the model's output went NaN or infinite (the steering pushed too hard for this model: lower the "
    "strength, or use probes trained for it); the other requests of the batch were not affected"
)


@dataclass
class Request:
    """One request of a mixed batch: its text prompt (None: unconditional), steers and seed, and
    for a continuation its audio prompt (mono float32 at the model's rate)."""

    prompt: str | None = None
    steer: Sequence[Steer] = field(default_factory=tuple)
    seed: int = 0
    audio: np.ndarray | None = None


class OwnSeeds(LogitsProcessor):
    """Sample each request's tokens from its own seed (see the module's docstring).

    Runs first among the logits processors (where `transformers` puts user processors): it
    reproduces the later ones (CFG, temperature, top-k, top-p) to get the distribution, chooses,
    and hands on scores whose only finite entry per row is the choice (CFG keeps it finite).
    """

    def __init__(
        self,
        seeds: Sequence[int],
        codebooks: int,
        steps: int,
        *,
        guidance_scale: float,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        device: torch.device | str = "cpu",
    ) -> None:
        # Uniforms per (step, request, codebook), each request's from its own generator.
        u = [torch.rand(steps, codebooks, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
        self.u = torch.stack(u, dim=1).flatten(1).to(device)  # [steps, B*K], row order of the scores
        self.rows = len(seeds) * codebooks
        self.cfg = guidance_scale > 1
        self.guidance_scale, self.temperature, self.top_k, self.top_p = (
            guidance_scale,
            temperature,
            top_k,
            top_p,
        )
        self.step = 0
        self.codebooks = codebooks
        # requests whose logits went NaN or infinite (a step overflowed): kept on the device, read once
        self.failed = torch.zeros(len(seeds), dtype=torch.bool, device=device)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.cfg:
            cond, uncond = scores[: self.rows], scores[self.rows :]
            logits = uncond + (cond - uncond) * self.guidance_scale
        else:
            cond, logits = scores, scores
        # A request whose rows overflowed fails alone: its rows get a harmless distribution (so the
        # library's sampling never sees NaN) and it is marked failed; the others go on untouched.
        finite = torch.isfinite(logits).all(-1)  # [rows] (no host sync)
        self.failed |= ~finite.view(-1, self.codebooks).all(-1)
        logits = torch.where(finite[:, None], logits, torch.zeros_like(logits))
        if self.cfg:
            uncond = torch.where(finite[:, None], uncond, torch.zeros_like(uncond))
        logits = logits.float() / self.temperature
        if 0 < self.top_k < logits.shape[-1]:
            kth = logits.topk(self.top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = logits.softmax(-1)
        if 0 < self.top_p < 1:
            sorted_p, order = probs.sort(dim=-1, descending=True)
            drop = sorted_p.cumsum(-1) - sorted_p > self.top_p
            probs = probs.scatter(1, order, sorted_p.masked_fill(drop, 0.0))
            probs = probs / probs.sum(-1, keepdim=True)
        cdf = probs.cumsum(-1)
        u = self.u[min(self.step, len(self.u) - 1)][:, None] * cdf[:, -1:]
        token = torch.searchsorted(cdf, u).clamp_(max=cdf.shape[-1] - 1)  # [rows, 1]
        self.step += 1
        chosen = torch.full_like(cond, float("-inf")).scatter_(1, token, 0.0)
        return torch.cat([chosen, uncond]) if self.cfg else chosen  # type: ignore[return-value]


def _condition(backbone: Backbone, prompts: list[str | None]) -> dict:
    """Text conditions for the batch; a request without a prompt gets the null condition.

    The null condition is an all-masked text (MusicGen zeroes masked encoder states), so an
    unconditional request in a batch with text prompts sees what it sees alone.
    """
    if not any(prompts):
        return backbone.null_condition(len(prompts))
    cond = backbone.text_condition([p or "" for p in prompts])
    empty = torch.tensor([not p for p in prompts], device=backbone.device)
    cond["attention_mask"] = cond["attention_mask"].masked_fill(empty[:, None], 0)
    return cond


def generate_mixed(
    backbone: Backbone,
    requests: Sequence[Request],
    *,
    options: GenerationOptions | None = None,
    own_seeds: bool = True,
    progress: bool = True,
    on_start: Callable[[Steering], None] | None = None,
    isolate: bool = False,
    **overrides: Any,
) -> list[Result]:
    """Many requests in one batch, each with its own prompt, steers and seed: text-to-music, or
    continuations when every request has an audio prompt (cut to the shortest, as `continue_audio`).

    `options` (or keywords) are shared: duration, guidance, schedule, rows, gain, engine, sampling;
    `options.batch` and `options.seed` are not used (one sample per request, each its own seed).
    Returns one Result per request, with its own audio, codes and trace (its traits only).
    `on_start(state)` receives the live steering state of the whole batch before the first step
    (as in `generate`: a UI reads it for a live plot; `Trace.select` picks one request's part).

    A request whose step goes NaN or infinite (e.g. steered far too hard) does not stop the batch:
    with `own_seeds` its rows are set aside and the others finish as if it were not there. It is
    then refused with a RequestError naming it, or with `isolate` its Result comes back with
    `failure` set (a server hands each user their own outcome).
    """
    if not requests:
        return []
    opts = GenerationOptions.build(options, **overrides)
    steers = [s for r in requests for s in r.steer]
    owners = [b for b, r in enumerate(requests) for _ in r.steer]
    check_request(backbone, steers, opts, samples=len(requests))
    steps = max_new_tokens(backbone, opts.duration)
    cond = _condition(backbone, [r.prompt for r in requests])
    waves = [r.audio for r in requests]
    prompt_n = 0
    if any(w is not None for w in waves):
        if any(w is None for w in waves):
            raise ValueError("a mixed batch continues audio prompts for every request or for none")
        prompt_n = min(len(w) for w in waves if w is not None)
        check_request(backbone, steers, opts, prompt_n / backbone.sample_rate, samples=len(requests))
        prompts = np.stack([np.asarray(w, dtype=np.float32)[:prompt_n] for w in waves if w is not None])
        values = torch.from_numpy(prompts)[:, None].to(backbone.device, torch.float32)
        cond = {**cond, "input_values": values}
    kwargs: dict[str, Any] = {
        "do_sample": True,
        **opts.sampling,
        "max_new_tokens": steps,
        "guidance_scale": opts.model_guidance,
    }
    if own_seeds and kwargs["do_sample"]:
        config = backbone.model.generation_config
        processor = OwnSeeds(
            [r.seed for r in requests],
            backbone.num_codebooks,
            steps,
            guidance_scale=opts.model_guidance,
            temperature=float(kwargs.get("temperature", config.temperature) or 1.0),
            top_k=int(kwargs.get("top_k", config.top_k) or 0),
            top_p=float(kwargs.get("top_p", config.top_p) or 1.0),
            device=backbone.device,
        )
        kwargs["logits_processor"] = LogitsProcessorList([processor])
    hook = {"every": opts.every, "rows": opts.rows, "gain": opts.gain, "cfg": opts.cfg}
    with (
        apply(backbone, steers, **hook, max_steps=steps + 1, duration=opts.duration, owners=owners) as state,
        engine(backbone, opts.engine, state, steps) as ran,
        keep_codes(backbone) as codes,
        step_bar(backbone, steps, progress),
    ):
        if on_start is not None:
            on_start(state)
        torch.manual_seed(requests[0].seed)  # only used where own_seeds is off
        with torch.no_grad():
            values = backbone.model.generate(**cond, **kwargs)
    trace = state.trace()
    settings = opts.settings()
    trace.settings.update({k: settings[k] for k in ("duration", "guidance_scale")}, engine=ran)
    trace.settings.update(opts.sampling)
    audio = values[:, 0].float().cpu().numpy()
    failed = processor.failed.tolist() if own_seeds and kwargs["do_sample"] else [False] * len(requests)
    if any(failed) and not isolate:
        bad = ", ".join(str(b) for b, f in enumerate(failed) if f)
        raise RequestError(f"requests {bad}: {FAILURE}")
    out, first = [], 0
    for b, r in enumerate(requests):
        mine = list(range(first, first + len(r.steer)))
        first += len(r.steer)
        own = trace.select(b, mine)
        own.settings.update(seed=r.seed, prompt=r.prompt, own_seeds=own_seeds)
        result = Result(audio[b : b + 1], backbone.sample_rate, codes[0][b : b + 1], own)
        if failed[b]:
            result.failure = FAILURE
        if prompt_n:
            result.prompt_seconds = prompt_n / backbone.sample_rate
            result.prompt_audio = prompts[b : b + 1]
            own.settings["prompt_seconds"] = round(result.prompt_seconds, 4)
        out.append(result)
    return out
