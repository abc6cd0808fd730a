"""`smitin ui`: its arguments, and a package that imports its heavy parts only when used."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import smitin.ui
from smitin.backbone import BUNDLED


def test_cli_arguments():
    from smitin.cli import build_parser

    args = build_parser().parse_args(["ui", "--port", "0", "--probes", "a.safetensors", "b.safetensors"])
    assert args.port == 0 and args.share == "no"
    assert [p.name for p in args.probes] == ["a.safetensors", "b.safetensors"]
    assert build_parser().parse_args(["ui"]).probes is None  # -> default drum probes
    assert build_parser().parse_args(["ui"]).model == BUNDLED
    assert build_parser().parse_args(["ui"]).engine == "auto"
    assert build_parser().parse_args(["ui", "--engine", "captured"]).engine == "captured"


def test_the_package_face_loads_its_parts_on_use():
    """`import smitin.ui` (as `smitin ui --help` does) loads neither gradio nor matplotlib."""
    code = (
        "import sys, smitin.ui as ui; "
        "print(sorted(m for m in ('gradio', 'matplotlib') if m in sys.modules)); "
        "ui.add_arguments, ui.run; ui.new_session; print('smitin.ui.session' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["[]", "True"]
    assert all(getattr(smitin.ui, name) is not None for name in smitin.ui.__all__)
    assert smitin.ui.free_port() > 0


FIRST_START = """
import shutil, sys, time
from pathlib import Path
from helpers import write_stems
from smitin import synth
from smitin.backbone import load
from smitin.ui.command import default_probes

model, log, flags, me = sys.argv[1:5]

def render(out, songs, seed, sample_rate, progress):  # stands in for fluidsynth: same folder, in place
    with open(log, "a") as fh:
        fh.write("render\\n")
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    time.sleep(1.0)
    return write_stems(out, tracks=4, seconds=8.0, sr=sample_rate)

synth.render_dataset = render
b = load(model)
Path(flags, me).touch()
while len(list(Path(flags).iterdir())) < 2:  # both start together
    time.sleep(0.01)
print(default_probes(b, log=lambda m: print(m, file=sys.stderr)))
"""


@pytest.mark.slow
def test_two_first_starts_train_the_default_probes_once(tiny, tmp_path):
    """Two studios started at once on an empty cache: one renders and trains, the other waits and reuses."""
    import os

    import torch

    from helpers import write_stems
    from smitin import data
    from smitin.probes import ProbeSet, fit

    model, flags, log = tmp_path / "model", tmp_path / "flags", tmp_path / "render.log"
    tiny.model.save_pretrained(model)
    flags.mkdir()
    (tmp_path / "start.py").write_text(FIRST_START)
    tests = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "SMITIN_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1", "PYTHONPATH": tests}
    procs = [
        subprocess.Popen(
            [sys.executable, str(tmp_path / "start.py"), str(model), str(log), str(flags), name],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for name in ("a", "b")
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    paths = {out.strip().splitlines()[-1] for out, _ in outs}
    assert len(paths) == 1 and log.read_text() == "render\n"  # one file; rendered once
    assert sum("waiting for it to finish" in err for _, err in outs) == 1
    probes = ProbeSet.load(paths.pop())
    segs = data.stem_segments(
        write_stems(tmp_path / "solo", tracks=4, seconds=8.0, sr=tiny.sample_rate),
        "drums",
        sample_rate=tiny.sample_rate,
    )
    solo = fit(tiny, segs, progress=False)
    for name in ("weight", "bias", "accuracy", "direction", "sigma"):
        assert torch.allclose(getattr(probes, name), getattr(solo, name), atol=1e-4), name


def test_host_help_says_what_listening_everywhere_exposes():
    from smitin.cli import build_parser

    parser = build_parser()
    ui = parser._subparsers._group_actions[0].choices["ui"]  # type: ignore[union-attr]
    text = " ".join(ui.format_help().split())  # argparse wraps lines
    assert "default 127.0.0.1: this machine only" in text and "anyone who reaches the port" in text
    assert ui.parse_args([]).host == "127.0.0.1"
