"""Captured decoding (static KV cache, one step function) against eager `generate`, on CPU.

On CPU the captured engine runs the same step function as on CUDA, without the graph: these
tests pin that the step reproduces the library's eager step (greedy codes equal, C within float
tolerance) for text-to-music and continuation, steered and not, with lanes, sparse schedules and
mixed batches, on the bundled model and on musicgen-small's head layout.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import MusicgenForConditionalGeneration

from helpers import make_probes
from smitin import architectures
from smitin.backbone import Backbone, load
from smitin.captured import StaticStep, resolve
from smitin.generate import continue_audio, generate, max_new_tokens
from smitin.mixed import Request, generate_mixed
from smitin.options import GenerationOptions
from smitin.steering import Steer

GREEDY = {"do_sample": False, "progress": False, "seed": 0}


@pytest.fixture(scope="module")
def bundled():
    return load("bundled")


def small_shaped(layers: int) -> Backbone:
    """musicgen-small's decoder layout (16 heads x 64, hidden 1024, 2048 codes) with `layers` layers and
    random weights; a one-layer text encoder (the step never runs it)."""
    cfg = architectures.config("small")
    cfg.decoder.num_hidden_layers = layers
    cfg.text_encoder.num_layers = 1
    torch.manual_seed(0)
    model = MusicgenForConditionalGeneration(cfg)
    model.generation_config.pad_token_id = cfg.decoder.pad_token_id
    model.generation_config.decoder_start_token_id = cfg.decoder.decoder_start_token_id
    return Backbone(model, None, name=f"random-small-{layers}-layers")


@pytest.fixture(scope="module")
def small2():
    return small_shaped(2)


@pytest.fixture
def steps_run(monkeypatch):
    """Counts the static steps taken (so a silent fallback to eager cannot pass for captured)."""
    calls = []
    original = StaticStep._forward

    def counted(self, span):
        calls.append(span)
        original(self, span)

    monkeypatch.setattr(StaticStep, "_forward", counted)
    return calls


def steers_for(model, lanes: bool = False) -> list[Steer]:
    drums, bass = make_probes(model.layout, "drums", seed=0), make_probes(model.layout, "bass", seed=1)
    return [
        Steer(drums, alpha=5.0, threshold=0.6, lane="0-0.2:remove,0.2-0.4:add" if lanes else None),
        Steer(bass, alpha=-3.0, heads="soft", threshold=0.6),
    ]


def both(fn, *args, **kwargs):
    """The same call with the eager and the captured engine."""
    return fn(*args, engine="eager", **kwargs), fn(*args, engine="captured", **kwargs)


def same(eager, captured) -> None:
    assert torch.equal(eager.codes, captured.codes)
    assert captured.trace.settings["engine"] == "captured" and eager.trace.settings["engine"] == "eager"
    if eager.trace.traits:
        torch.testing.assert_close(captured.trace.c, eager.trace.c, atol=1e-5, rtol=0)
        assert torch.equal(captured.trace.g, eager.trace.g)
        assert torch.equal(captured.trace.edited, eager.trace.edited)


@pytest.mark.parametrize("steered", [False, True], ids=["plain", "steered"])
@pytest.mark.parametrize("which", ["bundled", "small2"])
def test_text_to_music_greedy_codes_equal_eager(request, which, steered, steps_run):
    model = request.getfixturevalue(which)
    prompt = "a rock song" if model.processor is not None else None
    steer = steers_for(model) if steered else []
    eager, captured = both(generate, model, prompt, steer=steer, duration=0.4, batch=2, **GREEDY)
    same(eager, captured)
    steps = eager.codes.shape[-1] + model.num_codebooks - 1
    assert len(steps_run) == steps - 1  # every step after the prefill ran static
    if steered:
        assert captured.trace.applied.any() and not captured.trace.applied.all()  # the monitor acted


def test_sparse_schedule_and_lanes_equal_eager(bundled):
    eager, captured = both(
        generate, bundled, None, steer=steers_for(bundled, lanes=True), duration=0.4, every=3, **GREEDY
    )
    same(eager, captured)
    assert captured.trace.share_scheduled() < 0.5
    assert captured.trace.wanted("drums")[0] == "remove" and captured.trace.wanted("drums")[15] == "add"


def test_kept_traits_and_bounded_edits_equal_eager(bundled):
    """A kept trait (always watched, pushed only after a low reading) and bounded edits run the
    same arithmetic in the captured step as in the eager hook."""
    drums, piano = make_probes(bundled.layout, "drums", seed=0), make_probes(bundled.layout, "piano", seed=2)
    steer = [
        Steer(drums, alpha=5.0, threshold=0.6, edit="bounded"),
        Steer(piano, alpha=3.0, threshold=0.9, keep=True),
    ]
    eager, captured = both(generate, bundled, None, steer=steer, duration=0.4, every=2, **GREEDY)
    same(eager, captured)
    assert "keep" in captured.trace.wanted("piano")
    assert captured.trace.g[:, 0, 1].abs().sum() > 0  # the kept trait was pushed back at some step


def test_sampled_codes_equal_eager(bundled):
    """Sampling is the library's (same RNG draws): equal codes whenever the logits are."""
    sampled = {"progress": False, "seed": 3}
    eager, captured = both(generate, bundled, None, steer=steers_for(bundled), duration=0.4, **sampled)
    same(eager, captured)


@pytest.mark.parametrize("which", ["bundled", "small2"])
def test_continuation_equals_eager(request, which, steps_run):
    model = request.getfixturevalue(which)
    sr = model.sample_rate
    t = np.arange(int(0.3 * sr)) / sr
    prompt = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * np.sin(2 * np.pi * 1330 * t)).astype(np.float32)
    eager, captured = both(
        continue_audio, model, prompt, sr, steer=steers_for(model), duration=0.3, batch=2, **GREEDY
    )
    same(eager, captured)
    assert np.allclose(eager.audio, captured.audio, atol=1e-5)
    assert steps_run  # the steps after the prompt's prefill ran static


def test_mixed_batch_with_per_request_steering_equals_eager(bundled, steps_run):
    drums, bass = make_probes(bundled.layout, "drums", seed=0), make_probes(bundled.layout, "bass", seed=1)
    reqs = [
        Request("a rock song", [Steer(drums, alpha=5, threshold=0.6)], seed=1),
        Request(None, [Steer(bass, alpha=-3, heads="soft", threshold=0.6)], seed=2),
        Request(None, [], seed=3),
        Request("a bass line", [Steer(drums, alpha=5, lane="0-0.2:remove,0.2-0.4:add", threshold=0.6)]),
    ]
    for sampling in ({"do_sample": False}, {}):  # greedy, and each request's own seed
        eager = generate_mixed(bundled, reqs, duration=0.4, progress=False, engine="eager", **sampling)
        captured = generate_mixed(bundled, reqs, duration=0.4, progress=False, engine="captured", **sampling)
        for e, c in zip(eager, captured, strict=True):
            same(e, c)
    assert steps_run


def test_engine_choice(tiny):
    assert resolve(tiny, "auto") == "eager"  # CPU: eager unless asked
    assert resolve(tiny, "captured") == "captured"
    with pytest.raises(ValueError, match="engine must be one of"):
        resolve(tiny, "fast")
    with pytest.raises(ValueError, match="engine must be one of"):
        GenerationOptions(engine="fast")
    melody = architectures.build("tiny-melody")
    with pytest.warns(UserWarning, match="generating eagerly"):
        assert resolve(melody, "captured") == "eager"
    r = generate(melody, None, duration=0.2, engine="captured", progress=False)  # falls back, still works
    assert r.trace.settings["engine"] == "eager"


@pytest.mark.parametrize("bucket", [256, 4], ids=["one span", "spans of 4"])
@pytest.mark.parametrize("which", ["bundled", "small2"])
def test_step_logits_equal_eager_within_rounding(request, which, bucket, steps_run, monkeypatch):
    """Greedy codes can survive a wrong step (the argmax moves late): compare every step's logits,
    also where self-attention's span grows step by step (spans of 4 positions)."""
    from smitin import captured
    from smitin.captured import engine
    from smitin.steering import apply

    monkeypatch.setattr(captured, "BUCKET", bucket)
    model = request.getfixturevalue(which)
    got = {}
    for kind in ("eager", "captured"):
        with (
            apply(model, steers_for(model), cfg=True, max_steps=20) as state,
            engine(model, kind, state, 12),
            torch.no_grad(),
        ):
            out = model.model.generate(
                **model.null_condition(2),
                max_new_tokens=12,
                do_sample=False,
                guidance_scale=3.0,
                return_dict_in_generate=True,
                output_logits=True,
            )
        got[kind] = torch.stack(out.logits)
    assert len(steps_run) == 11
    # positions 1..11 (after a one-position prefill); the span covers the position, in steps of 4
    assert steps_run == ([4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12] if bucket == 4 else [13] * 11)
    torch.testing.assert_close(got["captured"], got["eager"], atol=2e-5, rtol=1e-5)
    assert got["eager"][1:].std() > 0.01  # real logits, not a constant both sides agree on


def test_the_gpu_benchmark_runs_its_cpu_smoke(tmp_path):
    """benchmarks/bench_gpu.py is run once on a lent GPU: its code paths must work before that."""
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_gpu.py"
    spec = importlib.util.spec_from_file_location("bench_gpu", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--cpu-smoke", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "bench_gpu.json").read_text())
    assert not [n for n in result["notes"] if n.startswith(("FAIL", "SKIP"))]
    cases = {r["case"] for r in result["rows"]}
    assert {
        "exactness float32",
        "exactness bfloat16",
        "speed",
        "hook overhead (captured step alone)",
        "throughput 4 mixed",
    } <= cases
    assert all(r["codes_equal"] for r in result["rows"] if r["case"].startswith("exactness"))
    assert "| model | case |" in (tmp_path / "bench_gpu.md").read_text()


def test_one_steering_block_serves_several_generations(bundled, steps_run):
    """`apply` steers every generate in its block: the second one starts with an eager prefill too."""
    from smitin.captured import engine
    from smitin.steering import apply

    codes = {}
    for kind in ("eager", "captured"):
        with (
            apply(bundled, steers_for(bundled), cfg=True, max_steps=20) as state,
            engine(bundled, kind, state, 10),
        ):
            runs = [
                bundled.model.generate(
                    **bundled.null_condition(1), max_new_tokens=n, do_sample=False, guidance_scale=3.0
                )
                for n in (10, 8)
            ]
            codes[kind] = (runs, state.trace().c)
    for a, b in zip(codes["eager"][0], codes["captured"][0], strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    torch.testing.assert_close(codes["captured"][1], codes["eager"][1], atol=1e-5, rtol=0)
    assert len(steps_run) == 9 + 7


def test_a_generation_longer_than_the_engine_was_sized_for_is_refused(bundled):
    from smitin.captured import engine

    with engine(bundled, "captured", None, 4), pytest.raises(ValueError, match="sized for 4 new steps"):
        bundled.model.generate(**bundled.null_condition(1), max_new_tokens=8, do_sample=False)


@pytest.mark.slow
def test_musicgen_small_full_depth_greedy_codes_equal_eager(steps_run):
    """All 24 layers of musicgen-small's decoder (random weights), 4 monitored traits, 0.3 s."""
    model = small_shaped(24)
    steer = [
        Steer(make_probes(model.layout, t, i), threshold=0.6) for i, t in enumerate(("a", "b", "c", "d"))
    ]
    eager, captured = both(generate, model, None, steer=steer, duration=0.3, **GREEDY)
    same(eager, captured)
    assert len(steps_run) == max_new_tokens(model, 0.3) - 1


def test_captured_decoding_needs_no_audio_io():
    """The GPU benchmark machine may lack soundfile/soxr: steering and the engine must not need them."""
    import subprocess
    import sys

    code = "import sys; sys.modules.update(soundfile=None, soxr=None); import smitin.captured, smitin.architectures"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
