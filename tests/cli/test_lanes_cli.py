"""`--lane` / `--lanes` on the command line: followed when good, refused with exit 2 when bad."""

from __future__ import annotations

import json

import pytest

from helpers import make_probes, run_cli
from smitin.backbone import load


@pytest.fixture(scope="module")
def probe_file(tmp_path_factory):
    bundled = load("bundled")
    probes = make_probes(bundled.layout)
    probes.meta.update(model="bundled", weights=bundled.weights_digest())
    return probes.save(tmp_path_factory.mktemp("probes") / "drums.safetensors")


def test_a_lane_is_followed_and_recorded(probe_file, tmp_path, capsys):
    trace = tmp_path / "t.json"
    code, text = run_cli(["generate", "x", "--steer", str(probe_file), "--duration", "0.6",
                      "--lane", "drums=0-0.3:remove,0.3-0.6:add", "--out", str(tmp_path / "o.wav"),
                      "--trace", str(trace)], capsys)  # fmt: skip
    assert code == 0, text
    t = json.loads(trace.read_text())
    wants = [s["traits"]["drums"]["want"] for s in t["steps"]]
    assert wants[0] == "remove" and wants[20] == "add"
    assert t["settings"]["traits"][0]["lane"] == "0-0.3:remove,0.3-0.6:add"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lane", "bass=0-1:add"], "a lane for 'bass', which is not steered (steered traits: drums)"),
        (["--lane", "drums=0-5:add"], "past the end of the clip (1 s of new audio)"),
        (["--lane", "drums=0-1:maybe"], "unknown word 'maybe'"),
        (["--lane", "drums0-1:add"], "name the trait first"),
        (["--lane", "drums=0-0.6:add,0.5-1:remove"], "overlap"),
        (["--lanes", "LANES"], "is not JSON"),
    ],
)
def test_bad_lanes_are_refused_before_the_model_loads(probe_file, tmp_path, capsys, args, message):
    bad = tmp_path / "lanes.json"
    bad.write_text("drums: 0-1:add")
    args = [str(bad) if a == "LANES" else a for a in args]
    out = tmp_path / "o.wav"
    code, text = run_cli(
        ["generate", "x", "--steer", str(probe_file), "--duration", "1", "--out", str(out), *args], capsys
    )
    assert code == 2 and message in text and "Traceback" not in text, text
    assert not out.exists()


def test_a_pushing_lane_on_a_trait_at_strength_zero_is_refused(probe_file, tmp_path, capsys):
    out = tmp_path / "o.wav"
    for lane in ("drums=0-1:add", "drums=0-0.5:free,0.5-1:remove"):
        code, text = run_cli(["generate", "x", "--steer", f"{probe_file}:0", "--duration", "1",
                              "--lane", lane, "--out", str(out)], capsys)  # fmt: skip
        assert code == 2 and "its strength is 0, so nothing would push" in text and "Traceback" not in text, (
            text
        )
    assert not out.exists()
    code, text = run_cli(["generate", "x", "--steer", f"{probe_file}:0", "--duration", "0.5",
                          "--lane", "drums=0-0.5:free", "--out", str(out)], capsys)  # fmt: skip
    assert code == 0, text  # a lane that pushes nothing is fine at strength 0


def test_keep_from_the_command_line(probe_file, tmp_path, capsys):
    """--keep and a keep span: recorded as kept, edited only after a reading, with a bounded edit."""
    trace = tmp_path / "t.json"
    code, text = run_cli(["generate", "x", "--keep", str(probe_file), "--duration", "0.6", "--edit", "bounded",
                      "--out", str(tmp_path / "o.wav"), "--trace", str(trace)], capsys)  # fmt: skip
    assert code == 0, text
    t = json.loads(trace.read_text())
    assert t["settings"]["traits"][0]["keep"] is True and t["settings"]["traits"][0]["edit"] == "bounded"
    steps = [s["traits"]["drums"] for s in t["steps"]]
    assert {s["want"] for s in steps} == {"keep"} and steps[0]["applied"] == [False]
    code, text = run_cli(["generate", "x", "--steer", f"{probe_file}:2", "--duration", "0.6",
                      "--lane", "drums=0-0.3:add,0.3-0.6:keep", "--out", str(tmp_path / "o.wav"),
                      "--trace", str(trace)], capsys)  # fmt: skip
    assert code == 0, text
    wants = [s["traits"]["drums"]["want"] for s in json.loads(trace.read_text())["steps"]]
    assert wants[0] == "add" and wants[20] == "keep"
    code, text = run_cli(
        ["generate", "x", "--keep", f"{probe_file}:-2", "--out", str(tmp_path / "o.wav")], capsys
    )
    assert code == 2 and "must be positive" in text
