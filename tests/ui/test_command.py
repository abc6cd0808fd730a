"""`smitin ui`: its arguments, and a package that imports its heavy parts only when used."""

from __future__ import annotations

import subprocess
import sys

import smitin.ui
from smitin.backbone import BUNDLED


def test_cli_arguments():
    from smitin.cli import build_parser

    args = build_parser().parse_args(["ui", "--port", "0", "--probes", "a.safetensors", "b.safetensors"])
    assert args.port == 0 and args.share == "no"
    assert [p.name for p in args.probes] == ["a.safetensors", "b.safetensors"]
    assert build_parser().parse_args(["ui"]).probes is None  # -> default drum probes
    assert build_parser().parse_args(["ui"]).model == BUNDLED


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
