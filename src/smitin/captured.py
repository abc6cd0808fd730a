"""Captured decoding: MusicGen's decode step on a static KV cache, replayed as one CUDA graph.

On a GPU `transformers`' eager decoder step is launch-bound (measured on an H100: 33.7 ms per
musicgen-small step, 0.6x real time, about 1.4 ms of launches per layer), and every small op of
the steering hook pays a launch too. Here the whole single-token step (embeddings, every layer
with the steering edit and the monitor's reading in its `out_proj` pre-hooks, the codebook heads)
runs on preallocated buffers: its position and step index are device tensors, so it is captured
once per generation and replayed every step.

`transformers` still drives generation: text encoder, CFG rows, delay pattern, logits processors
and sampling with its own RNG, codec. `engine()` swaps the decoder's forward for the length of a
`generate` call: the prefill runs through the library's own forward (the steering hooks work as
in eager mode), its KV cache is copied into static buffers, and every later step runs here.
Why not `cache_implementation="static"`: MusicGen's decoder then still places positions from a
host-side cache length (transformers 5.17) or checks it on the host (5.25), which a captured
graph cannot follow from step to step.

Numerics: the step calls the library's own modules (layer norms, projections, the attention
function of the model's `attn_implementation`). The only difference from eager is that
self-attention runs over the whole static buffer with later positions masked: equal up to float
rounding, and greedy codes equal (tests on CPU; the GPU check is `benchmarks/bench_gpu.py`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from transformers.cache_utils import EncoderDecoderCache
from transformers.modeling_outputs import CausalLMOutputWithCrossAttentions

from .backbone import Backbone
from .options import ENGINES
from .steering import Steering

# Self-attention spans grow in steps of this many positions (one graph each): a step reads at most
# BUCKET - 1 masked positions, where attending to the whole cache would read twice the average.
BUCKET = 256

# what the library's outputs call the cache: "cache" since transformers 5.2x, "past_key_values" before
CACHE_FIELD = (
    "cache" if "cache" in CausalLMOutputWithCrossAttentions.__dataclass_fields__ else "past_key_values"
)


def unsupported(backbone: Backbone) -> str | None:
    """Why the captured step cannot run this model (None: it can)."""
    if backbone.is_melody:
        return "MusicGen-Melody feeds its text and chroma as a decoder prefix"
    impl = getattr(backbone.model.decoder.config, "_attn_implementation", "eager")
    if impl not in ("eager", "sdpa"):
        return f"attn_implementation {impl!r} (the captured step supports 'eager' and 'sdpa')"
    return None


def resolve(backbone: Backbone, engine: str = "auto") -> str:
    """ "eager" or "captured" for this model: "auto" is captured on CUDA, eager elsewhere; a model
    the captured step cannot run falls back to eager (with a warning if "captured" was asked)."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
    if engine == "eager":
        return "eager"
    why = unsupported(backbone)
    if why is not None:
        if engine == "captured":
            warnings.warn(f"{backbone.name}: generating eagerly: {why}", stacklevel=3)
        return "eager"
    if engine == "auto" and backbone.device.type != "cuda":
        return "eager"
    return "captured"


class StaticStep:
    """Buffers and the step function for one batch shape: `rows` decoder rows, `length` positions.

    `run(pos)` reads `ids` [rows * K, 1] and `pos` [1] (`pos` the same position, known on the host)
    and writes `logits` [rows * K, 1, vocab]. Self-attention reads the cache up to the next multiple
    of `BUCKET` positions, not all `length`: with `graph` (CUDA) each such span is captured once, at
    its first step, and replayed after that (the graphs share one memory pool).
    """

    def __init__(
        self, backbone: Backbone, rows: int, length: int, cross: tuple[int, Any] | None, graph: bool
    ) -> None:
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
        from transformers.models.musicgen.modeling_musicgen import eager_attention_forward

        self.lm: Any = backbone.model.decoder
        self.stack: Any = backbone.decoder_stack
        impl = getattr(self.lm.config, "_attn_implementation", "eager")
        self.attention: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(impl, eager_attention_forward)
        lay, dev, dt = backbone.layout, backbone.device, backbone.dtype
        self.k, self.rows, self.length, self.graph_wanted = backbone.num_codebooks, rows, length, graph
        kv = (rows, lay.heads, length, lay.head_dim)
        self.keys = [torch.zeros(kv, device=dev, dtype=dt) for _ in range(lay.layers)]
        self.values = [torch.zeros(kv, device=dev, dtype=dt) for _ in range(lay.layers)]
        self.cross_keys: list[torch.Tensor] = []
        self.cross_values: list[torch.Tensor] = []
        self.cross_mask: torch.Tensor | None = None
        if cross is not None:
            enc, mask = cross
            shape = (rows, lay.heads, enc, lay.head_dim)
            self.cross_keys = [torch.zeros(shape, device=dev, dtype=dt) for _ in range(lay.layers)]
            self.cross_values = [torch.zeros(shape, device=dev, dtype=dt) for _ in range(lay.layers)]
            self.cross_mask = None if mask is None else torch.zeros_like(mask)
        self.ids = torch.zeros(rows * self.k, 1, dtype=torch.long, device=dev)
        self.pos = torch.zeros(1, dtype=torch.long, device=dev)
        self.positions = torch.arange(length, device=dev)
        # sdpa takes a boolean mask (True: attend); eager attention adds a float one
        self.bool_mask = impl != "eager"
        self.logits = torch.zeros(rows * self.k, 1, self.lm.config.vocab_size, device=dev, dtype=dt)
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self.graph: torch.cuda.CUDAGraph | None = None  # the one replayed last

    def load(self, cache: Any, prefix: int, cross_mask: torch.Tensor | None) -> None:
        """Copy a prefill's KV cache (an `EncoderDecoderCache` of `prefix` positions) into the buffers."""
        own = cache.self_attention_cache.layers
        for i, (k, v) in enumerate(zip(self.keys, self.values, strict=True)):
            k[:, :, :prefix].copy_(own[i].keys)
            v[:, :, :prefix].copy_(own[i].values)
            k[:, :, prefix:].zero_()
            v[:, :, prefix:].zero_()
        other = cache.cross_attention_cache.layers
        for i, (k, v) in enumerate(zip(self.cross_keys, self.cross_values, strict=True)):
            k.copy_(other[i].keys)
            v.copy_(other[i].values)
        if self.cross_mask is not None and cross_mask is not None:
            self.cross_mask.copy_(cross_mask)
        self.graphs, self.graph = {}, None  # the steering state may be new: capture again

    def run(self, pos: int) -> None:
        span = min(self.length, (pos // BUCKET + 1) * BUCKET)
        if not self.graph_wanted:
            self._forward(span)
            return
        self.graph = self.graphs.get(span)
        if self.graph is None:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):  # warm-up: recomputes this very step, harmless
                self._forward(span)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            pool = next(iter(self.graphs.values())).pool() if self.graphs else None
            try:
                # thread_local: the studio's watching thread may read the trace meanwhile
                with torch.cuda.graph(graph, pool=pool, capture_error_mode="thread_local"):
                    self._forward(span)
            except RuntimeError as err:  # e.g. an op that cannot be captured: keep the static step
                warnings.warn(f"smitin: the decoder step could not be captured ({err}); running it "
                              "on the static cache without a CUDA graph", stacklevel=2)  # fmt: skip
                self.graph_wanted = False
                self._forward(span)
                return
            self.graphs[span] = self.graph = graph
        self.graph.replay()

    def _attend(self, attn: Any, x: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask, span: int):
        shape = (self.rows, 1, -1, attn.head_dim)
        q = attn.q_proj(x).view(shape).transpose(1, 2)
        if span:  # self-attention: this position's key and value go into the cache first
            keys.index_copy_(2, self.pos, attn.k_proj(x).view(shape).transpose(1, 2))
            values.index_copy_(2, self.pos, attn.v_proj(x).view(shape).transpose(1, 2))
            keys, values = keys[:, :, :span], values[:, :, :span]
        out, _ = self.attention(attn, q, keys, values, mask, dropout=0.0, scaling=attn.scaling)
        return attn.out_proj(out.reshape(self.rows, 1, -1).contiguous())  # steering hooks run here

    def _forward(self, span: int) -> None:
        """One decoder step, op for op as `MusicgenDecoder.forward` in eval mode (attending to `span`
        cache positions, later ones masked)."""
        stack, ids = self.stack, self.ids.view(self.rows, self.k, 1)
        h = sum(stack.embed_tokens[k](ids[:, k]) for k in range(self.k))
        h = h + stack.embed_positions.weights.index_select(0, self.pos)
        valid = (self.positions[:span] <= self.pos)[None, None, None, :]
        if self.bool_mask:
            mask = valid
        else:
            mask = torch.zeros(valid.shape, dtype=h.dtype, device=h.device)
            mask.masked_fill_(~valid, torch.finfo(h.dtype).min)
        for i, layer in enumerate(stack.layers):
            x = layer.self_attn_layer_norm(h)
            h = h + self._attend(layer.self_attn, x, self.keys[i], self.values[i], mask, span)
            if self.cross_keys:
                x = layer.encoder_attn_layer_norm(h)
                cross = (self.cross_keys[i], self.cross_values[i], self.cross_mask)
                h = h + self._attend(layer.encoder_attn, x, *cross, 0)
            x = layer.fc2(layer.activation_fn(layer.fc1(layer.final_layer_norm(h))))
            h = h + x
        h = stack.layer_norm(h)
        logits = torch.stack([head(h) for head in self.lm.lm_heads], dim=1)  # [rows, K, 1, vocab]
        self.logits.copy_(logits.reshape(-1, 1, logits.shape[-1]))


class _Runner:
    """The decoder's forward while an engine is on: prefill eagerly, then static steps."""

    def __init__(self, backbone: Backbone, state: Steering | None, steps: int, graph: bool) -> None:
        self.backbone, self.state, self.steps, self.graph = backbone, state, steps, graph
        self.static: StaticStep | None = None
        self.key: tuple | None = None
        self.prefix = 0
        self.done = 0  # decode steps since the prefill

    def __call__(self, original: Callable, *args: Any, **kwargs: Any) -> Any:
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        if not args and isinstance(cache, Counted) and cache.runner is self and self.static is not None:
            return self._decode(kwargs, cache)
        return self._prefill(original, args, kwargs)

    def _prefill(self, original: Callable, args: tuple, kwargs: dict) -> Any:
        if self.state is not None:
            self.state.static = False  # a new generation: its prefill goes through the eager hook
        masks: dict[str, Any] = {}
        stack: Any = self.backbone.decoder_stack
        layer0 = stack.layers[0]

        def grab(_module, _args, kw):
            masks["cross"] = kw.get("attention_mask")

        handle = layer0.encoder_attn.register_forward_pre_hook(grab, with_kwargs=True)
        try:
            out = original(*args, **kwargs)
        finally:
            handle.remove()
        name = "cache" if "cache" in out else "past_key_values"
        cache: Any = out.get(name)
        ids = kwargs.get("input_ids")
        plain = all(kwargs.get(k) is None for k in ("inputs_embeds", "labels", "attention_mask"))
        if args or not plain or ids is None or not isinstance(cache, EncoderDecoderCache):
            return out  # something the static step does not reproduce: this generation stays eager
        prefix = ids.shape[1]
        length = prefix + self.steps
        if length > stack.embed_positions.weights.shape[0]:
            return out
        rows = ids.shape[0] // self.backbone.num_codebooks
        mask = masks.get("cross")
        if mask is not None and mask.dim() == 4:
            mask = mask[:, :, -1:, :]  # one query row (every row of a bidirectional mask is alike)
        cross_layers: Any = cache.cross_attention_cache.layers
        enc = cross_layers[0].keys.shape[-2] if "cross" in masks else None
        cross = None if enc is None else (enc, mask)
        sig = None if mask is None else (mask.dtype, tuple(mask.shape))
        key = (rows, length, enc, sig)
        if self.static is None or key != self.key:
            self.static, self.key = StaticStep(self.backbone, rows, length, cross, self.graph), key
        self.static.load(cache, prefix, mask)
        self.prefix, self.done = prefix, 0
        out[name] = Counted.wrap(cache, self, prefix)
        return out

    def _decode(self, kwargs: dict, cache: Counted) -> Any:
        static = self.static
        assert static is not None
        self.done += 1
        static.ids.copy_(kwargs["input_ids"])
        pos = self.prefix + self.done - 1
        if pos >= static.length:
            raise ValueError(
                f"the captured engine was sized for {self.steps} new steps (engine(..., steps)); this "
                "generate asks for more: open it with the generate's max_new_tokens"
            )
        static.pos.fill_(pos)
        if self.state is not None:
            self.state.static_step(self.done)
        static.run(pos)
        cache.length = self.prefix + self.done
        fields: dict[str, Any] = {"logits": static.logits.clone(), CACHE_FIELD: cache}
        return CausalLMOutputWithCrossAttentions(**fields)


class Counted(EncoderDecoderCache):
    """The prefill's cache handed back to `transformers` while the steps run on static buffers: it
    answers how many positions there are, and marks the calls that are steps of this runner."""

    runner: _Runner
    length: int

    @classmethod
    def wrap(cls, cache: EncoderDecoderCache, runner: _Runner, length: int) -> Counted:
        out = object.__new__(cls)
        out.__dict__.update(cache.__dict__)
        out.runner, out.length = runner, length
        return out

    def get_seq_length(self, layer_idx: int | None = 0) -> int:
        return self.length


@contextmanager
def engine(backbone: Backbone, kind: str, state: Steering | None, steps: int) -> Iterator[str]:
    """Run the `generate` calls in this block with the chosen engine ("auto", "eager", "captured");
    yields the one that runs. `steps` is `max_new_tokens` (sizes the static cache); `state` is the
    steering state of `smitin.steering.apply`, if any."""
    chosen = resolve(backbone, kind)
    if chosen == "eager":
        yield chosen
        return
    lm = backbone.model.decoder
    original = lm.forward
    runner = _Runner(backbone, state, steps, graph=backbone.device.type == "cuda")

    def forward(*args: Any, **kwargs: Any) -> Any:
        return runner(original, *args, **kwargs)

    lm.forward = forward
    try:
        yield chosen
    finally:
        del lm.forward  # the instance attribute goes; the class's forward shows again
