"""Files made by smitin 0.1.0 before the redesign still load, and the engine still makes them.

The fixtures were written by the code as it was before the package split (same tiny model,
same probes, same seed): a probe file, the trace JSON and the audio of one steered generation.
"""

import json
from pathlib import Path

import numpy as np
import torch

from helpers import make_probes
from smitin.generate import generate
from smitin.probes import ProbeSet
from smitin.steering import Steer

FIXTURES = Path(__file__).parent / "fixtures"


def test_an_old_probe_file_loads_unchanged(tiny):
    old = ProbeSet.load(FIXTURES / "drums-v0.1.0-tiny.safetensors", tiny)
    fresh = make_probes(tiny.layout)
    assert old.trait == "drums" and old.meta["smitin"] == "0.1.0"
    for name in ("weight", "bias", "accuracy", "direction", "sigma"):
        assert torch.equal(getattr(old, name), getattr(fresh, name))


def test_the_same_generation_gives_the_same_trace_and_audio(tiny):
    probes = ProbeSet.load(FIXTURES / "drums-v0.1.0-tiny.safetensors", tiny)
    steer = Steer.from_recipe(probes, "paper", alpha=4)  # the defaults of 0.1.0 are the paper's recipe
    r = generate(tiny, None, steer=[steer], duration=0.3, seed=3, every=5, progress=False)
    want = json.loads((FIXTURES / "trace-v0.1.0-tiny.json").read_text())
    got = json.loads(json.dumps(r.trace.to_dict()))
    old_traits, new_traits = want["settings"].pop("traits"), got["settings"].pop("traits")
    # the same keys and values, nothing renamed; new keys may come (the engine that ran, since 0.2)
    assert {k: got["settings"][k] for k in want["settings"]} == want["settings"]
    assert set(got["settings"]) - set(want["settings"]) == {"engine"}
    for old, new in zip(old_traits, new_traits, strict=True):  # new keys may come, none go
        assert {k: new[k] for k in old} == old and new["direction"] == "probe"
    assert [s["step"] for s in got["steps"]] == [s["step"] for s in want["steps"]]
    for a, b in zip(got["steps"], want["steps"], strict=True):
        assert a["traits"]["drums"]["applied"] == b["traits"]["drums"]["applied"]
        assert np.allclose(a["traits"]["drums"]["C"], b["traits"]["drums"]["C"], atol=1e-4)
    assert np.allclose(r.audio, np.load(FIXTURES / "audio-v0.1.0-tiny.npy"), atol=1e-5)
