import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from helpers import write_stems
from smitin import data
from smitin.activations import capture, content_digest, extract, noise_response
from smitin.probes import fit


def test_capture_reads_every_layer_at_the_last_positions(tiny):
    codes = tiny.encode(torch.randn(3, 8000))
    z_all = capture(tiny, codes, last=51)
    z_last = capture(tiny, codes, last=1)
    assert z_last.shape == (3, 1, 2, 4, 8)
    assert torch.equal(z_last[:, 0], z_all[:, -1])
    assert torch.allclose(capture(tiny, codes[1:2])[0], z_last[1], atol=1e-6)  # batching changes nothing


def test_captured_heads_are_the_attention_outputs(tiny):
    """out_proj applied to the captured heads gives the layer's self-attention output."""
    codes = tiny.encode(torch.randn(1, 8000))
    z = capture(tiny, codes, last=1)[0, 0]  # [L, H, D]
    outs = {}
    attn = tiny.model.decoder.model.decoder.layers[1].self_attn

    def keep(_module, _args, output):
        outs["o"] = output[0]

    handle = attn.register_forward_hook(keep)
    try:
        capture(tiny, codes, last=1)
    finally:
        handle.remove()
    assert torch.allclose(tiny.out_projs[1](z[1].flatten()), outs["o"][0, -1], atol=1e-6)


def test_capture_hooks_leave_generation_bit_identical(tiny):
    cond = tiny.null_condition(1)
    torch.manual_seed(3)
    ref = tiny.model.generate(**cond, max_new_tokens=20, do_sample=True, guidance_scale=3.0)
    seen = []
    with tiny.head_hooks(lambda layer, x: seen.append(x[:, -1].clone()) and None):
        torch.manual_seed(3)
        out = tiny.model.generate(**cond, max_new_tokens=20, do_sample=True, guidance_scale=3.0)
    assert seen and torch.equal(ref, out)


def test_extract_caches_and_resumes(tiny, stems, tmp_path):
    segs = data.stem_segments(stems, "drums", sample_rate=tiny.sample_rate, seconds=1.0)
    cache = tmp_path / "cache"
    a = extract(tiny, segs, batch_size=3, cache_dir=cache, progress=False)
    shards = sorted(cache.glob("*/shard-*.safetensors"))
    assert len(shards) == -(-len(segs) // 3) and a.z.shape[0] == len(segs)
    assert a.z.dtype == torch.float16
    shards[1].unlink()  # as if killed before this batch
    shards[2].write_bytes(b"torn")  # a damaged shard is redone too
    with pytest.warns(UserWarning, match="unreadable.*recomputing"):
        b = extract(tiny, segs, batch_size=3, cache_dir=cache, progress=False)
    assert torch.equal(a.z, b.z)
    assert np.array_equal(a.labels, segs.labels()) and a.groups == segs.groups()


def test_changed_data_invalidates_the_cache(tiny, stems, tmp_path):
    cache = tmp_path / "cache"
    segs = data.stem_segments(stems, "drums", sample_rate=tiny.sample_rate, seconds=1.0)
    extract(tiny, segs, batch_size=4, cache_dir=cache, progress=False)
    other = data.stem_segments(stems, "bass", sample_rate=tiny.sample_rate, seconds=1.0)
    with pytest.warns(UserWarning, match="other inputs"):
        z = extract(tiny, other, batch_size=4, cache_dir=cache, progress=False).z
    fresh = extract(tiny, other, batch_size=4, progress=False).z
    assert torch.equal(z, fresh)


def test_wrong_sample_rate_is_refused(tiny, stems):
    segs = data.stem_segments(stems, "drums", sample_rate=16000, seconds=1.0)
    with pytest.raises(ValueError, match="16000 Hz but .* needs 8000 Hz"):
        extract(tiny, segs, progress=False)


SCRIPT = textwrap.dedent(
    """
    import sys, time
    from smitin import data
    from smitin.backbone import load
    from smitin.probes import fit
    b = load(sys.argv[1])
    segs = data.stem_segments(sys.argv[2], "drums", sample_rate=b.sample_rate, seconds=0.5, hop=0.25)
    slow = segs.load
    def load_slowly(idx):
        time.sleep(float(sys.argv[4]))
        return slow(idx)
    segs.load = load_slowly
    fit(b, segs, cache_dir=sys.argv[3], batch_size=2, progress=False).save(sys.argv[3] + ".safetensors")
    """
)


@pytest.mark.slow
def test_resume_after_kill_gives_identical_probes(tiny, tmp_path):
    model = tmp_path / "model"
    tiny.model.save_pretrained(model)
    stems = write_stems(tmp_path / "stems", tracks=4, seconds=4.0)
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    cache = tmp_path / "cache"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script), str(model), str(stems), str(cache), "0.3"], env=env)
    deadline = time.time() + 120
    while len(list(cache.glob("*/shard-*.safetensors"))) < 3 and time.time() < deadline:
        assert proc.poll() is None, "extraction ended before it could be killed"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(cache.glob("*/shard-*.safetensors")))
    assert done >= 3 and not (tmp_path / "cache.safetensors").exists()
    subprocess.run(
        [sys.executable, str(script), str(model), str(stems), str(cache), "0"], check=True, env=env
    )
    from smitin.probes import ProbeSet

    resumed = ProbeSet.load(tmp_path / "cache.safetensors")
    segs = data.stem_segments(stems, "drums", sample_rate=tiny.sample_rate, seconds=0.5, hop=0.25)
    assert len(segs) // 2 > done  # the kill really happened mid-way
    clean = fit(tiny, segs, batch_size=2, progress=False)
    for name in ("weight", "bias", "accuracy", "direction", "sigma"):
        assert torch.allclose(getattr(resumed, name), getattr(clean, name), atol=1e-5), name


def test_a_shard_that_does_not_fit_is_recomputed_with_a_warning(tiny, stems, tmp_path):
    """Shards made by hand, for other inputs or by an older smitin are redone, never fatal."""
    from safetensors.torch import save_file

    segs = data.stem_segments(stems, "drums", sample_rate=tiny.sample_rate, seconds=1.0)
    cache = tmp_path / "cache"
    ref = extract(tiny, segs, batch_size=4, cache_dir=cache, progress=False).z
    (folder,) = [p for p in cache.iterdir() if p.is_dir()]
    save_file({"z": torch.zeros(7, 1, 2, 4, 8, dtype=torch.float16)}, folder / "shard-000000.safetensors")
    with pytest.warns(UserWarning, match=r"shard-000000.*other inputs.*recomputing"):
        assert torch.equal(extract(tiny, segs, batch_size=4, cache_dir=cache, progress=False).z, ref)
    shard = folder / "shard-000001.safetensors"
    save_file({"z": torch.zeros(7, 1, 2, 4, 8, dtype=torch.float16)}, shard, metadata={"key": folder.name})
    with pytest.warns(UserWarning, match=r"shard-000001.*\(7, 1, 2, 4, 8\).*recomputing"):
        assert torch.equal(extract(tiny, segs, batch_size=4, cache_dir=cache, progress=False).z, ref)
    # the flat layout of smitin <= 0.2 (manifest and shards in the cache folder itself) is removed
    (cache / "manifest.json").write_text('{"key": {"model": "old"}}')
    save_file({"z": torch.zeros(3, 1, 2, 4, 8)}, cache / "shard-000000.safetensors")
    with pytest.warns(UserWarning, match="older smitin"):
        assert torch.equal(extract(tiny, segs, batch_size=4, cache_dir=cache, progress=False).z, ref)
    assert sorted(p.name for p in cache.iterdir()) == sorted([folder.name, f"{folder.name}.lock"])
    assert not list(folder.glob("*.tmp"))


RACE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from safetensors.torch import save_file
    from smitin import data
    from smitin.activations import extract
    from smitin.backbone import load
    model, stems, cache, trait, out, flags = sys.argv[1:7]
    b = load(model)
    segs = data.stem_segments(stems, trait, sample_rate=b.sample_rate, seconds=0.5, hop=0.25)
    slow, loads = segs.load, []
    def load_slowly(idx):
        loads.append(idx)
        time.sleep(0.2)
        return slow(idx)
    segs.load = load_slowly
    Path(out + ".ready").touch()
    while len(list(Path(flags).glob("*.ready"))) < int(sys.argv[7]):  # start together
        time.sleep(0.01)
    z = extract(b, segs, batch_size=2, cache_dir=cache, progress=False).z
    save_file({"z": z}, out)
    print(len(loads))
    """
)


def _race(tmp_path, model, stems, traits):
    """Run one extraction per trait in its own process, all at once, into one cache."""
    script, flags = tmp_path / "race.py", tmp_path / "flags"
    script.write_text(RACE)
    flags.mkdir(exist_ok=True)
    for f in flags.iterdir():
        f.unlink()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    outs = [flags / f"{i}-{t}.safetensors" for i, t in enumerate(traits)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                str(model),
                str(stems),
                str(tmp_path / "cache"),
                t,
                str(o),
                str(flags),
                str(len(traits)),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for t, o in zip(traits, outs, strict=True)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
    from safetensors.torch import load_file

    return (
        [load_file(o)["z"] for o in outs],
        [int(out.split()[-1]) for out, _ in results],
        [e for _, e in results],
    )


@pytest.mark.slow
def test_two_processes_share_one_cache_safely(tiny, tmp_path):
    """Drums, drums and bass at once into one cache: bass gets its own activations (different
    traits used to mix shards) and the two drums runs compute them once (one waits, then reuses)."""
    model = tmp_path / "model"
    tiny.model.save_pretrained(model)
    stems = write_stems(tmp_path / "stems", tracks=4, seconds=3.0)
    solo = {}
    for trait in ("drums", "bass"):
        segs = data.stem_segments(stems, trait, sample_rate=tiny.sample_rate, seconds=0.5, hop=0.25)
        solo[trait] = (extract(tiny, segs, batch_size=2, progress=False).z, -(-len(segs) // 2))
    traits = ["drums", "bass", "drums"]
    zs, loads, errs = _race(tmp_path, model, stems, traits)
    for z, trait in zip(zs, traits, strict=True):
        assert torch.allclose(z.float(), solo[trait][0].float(), atol=1e-3), trait
    assert sorted([loads[0], loads[2]]) == [0, solo["drums"][1]] and loads[1] == solo["bass"][1]
    assert "waiting for it to finish" in errs[0] + errs[2] and "waiting" not in errs[1]
    folders = sorted(p for p in (tmp_path / "cache").iterdir() if p.is_dir())
    assert sorted(len(list(f.glob("shard-*"))) for f in folders) == sorted(n for _, n in solo.values())
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def test_a_swapped_or_damaged_shard_is_recomputed_not_used(tiny, stems, tmp_path):
    """A shard swapped with another of the same folder (same key and shape) used to be read as is."""
    from safetensors.torch import load_file, save_file

    segs = data.stem_segments(stems, "drums", sample_rate=tiny.sample_rate, seconds=1.0)
    cache = tmp_path / "cache"
    ref = extract(tiny, segs, batch_size=2, cache_dir=cache, progress=False).z
    (folder,) = [p for p in cache.iterdir() if p.is_dir()]
    first, second = folder / "shard-000000.safetensors", folder / "shard-000001.safetensors"
    a, b = first.read_bytes(), second.read_bytes()
    first.write_bytes(b)
    second.write_bytes(a)
    with pytest.warns(UserWarning, match=r"shard-000000.*is shard 1 of this cache, not shard 0.*recomputing"):
        assert torch.equal(extract(tiny, segs, batch_size=2, cache_dir=cache, progress=False).z, ref)
    z = load_file(first)["z"].clone()  # a shard edited in place, its tag kept
    z[0, 0, 0, 0, 0] += 1
    save_file({"z": z}, first, metadata=shard_tag(first))
    with pytest.warns(UserWarning, match=r"shard-000000.*does not match its content digest.*recomputing"):
        assert torch.equal(extract(tiny, segs, batch_size=2, cache_dir=cache, progress=False).z, ref)
    z = torch.full_like(load_file(first)["z"], float("nan"))  # NaN with a matching digest: never used
    save_file({"z": z}, first, metadata={**shard_tag(first), "sha256": content_digest(z)})
    with pytest.warns(UserWarning, match=r"shard-000000.*holds NaN or infinite values.*recomputing"):
        assert torch.equal(extract(tiny, segs, batch_size=2, cache_dir=cache, progress=False).z, ref)


def shard_tag(path) -> dict:
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        return dict(f.metadata() or {})


def test_noise_response_is_each_heads_unit_answer_to_noise(tiny, stems):
    segs = data.stem_segments(stems, "drums", sample_rate=tiny.sample_rate, seconds=1.0)
    n, read, shift = noise_response(tiny, segs, count=4)
    lay = tiny.layout
    assert n.shape == (lay.layers, lay.heads, lay.head_dim) and n.dtype == torch.float32
    assert torch.allclose(n.norm(dim=-1), torch.ones(lay.layers, lay.heads), atol=1e-4)
    assert 0 < read <= 4 and read <= int((np.asarray(segs.labels()) == 0).sum())
    assert torch.allclose(shift / shift.norm(dim=-1, keepdim=True), n, atol=1e-5)
    again, _, _ = noise_response(tiny, segs, count=4)
    assert torch.equal(n, again)  # seeded
    other, _, _ = noise_response(tiny, segs, count=4, seed=1)
    assert not torch.equal(n, other) and float((n * other).sum(-1).mean()) > 0.5  # the same response


def test_read_heads_is_the_codec_then_the_capture_extraction_and_diagnosis_share(tiny):
    from smitin.activations import capture, read_heads

    audio = (0.1 * np.random.default_rng(0).standard_normal((2, tiny.sample_rate))).astype(np.float32)
    codes = tiny.encode(torch.from_numpy(audio))
    z = read_heads(tiny, audio, last=2, condition=tiny.condition(["", ""]))
    assert z.shape == (2, 2, tiny.layout.layers, tiny.layout.heads, tiny.layout.head_dim)
    assert torch.equal(z, capture(tiny, codes, last=2, condition=tiny.condition(["", ""])))
    assert torch.equal(read_heads(tiny, audio), capture(tiny, codes))  # None: the null condition
