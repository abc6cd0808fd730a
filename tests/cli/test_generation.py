"""What the generation commands read from their options: --steer FILE[:ALPHA]."""

from pathlib import Path

from smitin.cli import parse_steer


def test_parse_steer():
    assert parse_steer("drums.safetensors:-2.5") == (Path("drums.safetensors"), -2.5)
    assert parse_steer("drums.safetensors") == (Path("drums.safetensors"), 5.0)
    assert parse_steer("C:/probes/drums.safetensors") == (Path("C:/probes/drums.safetensors"), 5.0)
