"""The help answers at once (no torch, transformers or gradio imported) and teaches the method."""

import subprocess
import sys

import pytest

from smitin.cli import COMMANDS, build_parser

PATHS = [(), ("probes",), ("data",), *(cmd.path for cmd in COMMANDS)]
HEAVY = ("torch", "transformers", "gradio")

SCRIPT = """
import sys
from smitin.cli import main
try:
    main(sys.argv[1:] + ["--help"])
except SystemExit as exc:
    assert exc.code == 0, exc.code
print("HEAVY", *[m for m in {heavy!r} if m in sys.modules])
"""


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "smitin")
def test_help_imports_no_torch(path):
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(heavy=HEAVY), *path],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"usage: smitin {' '.join(path)}".rstrip()), run.stdout[:200]
    assert run.stdout.splitlines()[-1] == "HEAVY", f"imported by `smitin {' '.join(path)} --help`"


def test_python_m_smitin_cli():
    run = subprocess.run(
        [sys.executable, "-m", "smitin.cli", "--version"], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0 and run.stdout.startswith("smitin "), run.stderr


def _help(*path: str) -> str:
    parser = build_parser()
    for word in path:  # walk down to the sub-parser of the command
        sub = next(a for a in parser._actions if a.dest.endswith("command") and a.choices)
        parser = sub.choices[word]
    return parser.format_help()


def test_help_teaches(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # no wrapping: argparse would break lines at hyphens
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--help"])
    assert exc.value.code == 0
    top = capsys.readouterr().out
    # the typical session, in order: render stems, train probes, look at them, generate steered
    session = [
        "smitin data synth --out stems --songs 50",
        "smitin probes train --data stems --trait drums --out drums.safetensors",
        "smitin probes show drums.safetensors --plot drums.png",
        'smitin generate "a calm piano piece" --steer drums.safetensors:5 --out out.wav --trace trace.json',
    ]
    positions = [top.index(line) for line in session]
    assert positions == sorted(positions)
    assert "--model facebook/musicgen-small" in top  # how to use a real model
    for word in ("probes", "generate", "continue", "data", "demo", "experiment", "ui"):
        assert f"\n    {word} " in top

    gen = " ".join(_help("generate").split())  # argparse wraps lines: compare with single spaces
    assert "--steer FILE[:ALPHA]" in gen and "Repeat for several traits" in gen
    assert "negative removes the trait" in gen and "default 5" in gen
    assert "facebook/musicgen-small|medium|large|melody" in gen and "'bundled'" in gen
    assert "--guidance GUIDANCE_SCALE, --guidance-scale GUIDANCE_SCALE" in gen
    assert "--every EVERY" in gen and "the paper's sparse schedule" in gen
    assert "--no-monitor" in gen and "plain ITI" in gen

    train = " ".join(_help("probes", "train").split())
    assert "MUSDB18-HQ, MoisesDB or Slakh2100" in train and "--positive POSITIVE" in train
    assert "a rerun resumes" in train
    assert "FluidSynth" in _help("data", "synth")
