"""What the generation commands read from their options: --steer FILE[:ALPHA][:keep], --keep, --edit."""

import argparse
from pathlib import Path

import pytest

from smitin.cli import UsageError, parse_steer
from smitin.cli.steers import SteerSpec, steer_settings, steer_specs
from smitin.recipes import recipe


def test_parse_steer():
    assert parse_steer("drums.safetensors:-2.5") == (Path("drums.safetensors"), -2.5, False)
    assert parse_steer("drums.safetensors") == (Path("drums.safetensors"), 5.0, False)
    assert parse_steer("C:/probes/drums.safetensors") == (Path("C:/probes/drums.safetensors"), 5.0, False)


def test_keep_is_a_word_of_steer_or_its_own_flag():
    assert parse_steer("piano.safetensors:keep") == SteerSpec(Path("piano.safetensors"), 5.0, True)
    assert parse_steer("piano.safetensors:3:KEEP") == SteerSpec(Path("piano.safetensors"), 3.0, True)
    assert parse_steer("piano.safetensors:3", keep=True) == SteerSpec(Path("piano.safetensors"), 3.0, True)
    with pytest.raises(UsageError, match=r"--keep piano.safetensors:-3: a held trait .* must be positive"):
        parse_steer("piano.safetensors:-3", keep=True, flag="--keep")
    with pytest.raises(UsageError, match="strength must be a number"):
        parse_steer("piano.safetensors:loud:keep")
    args = argparse.Namespace(steer=["drums.safetensors:5"], keep=["piano.safetensors"])
    assert [s.keep for s in steer_specs(args)] == [False, True]


def test_the_edit_and_the_recipe_overrides_are_one_set_of_steer_keywords():
    args = argparse.Namespace(heads=None, threshold=None, no_monitor=False, direction=None, edit=None)
    smitin = steer_settings(args, recipe("smitin"))
    assert smitin == {
        "heads": 16,
        "monitor": True,
        "threshold": "positive",
        "direction": "auto",
        "edit": "shift",
    }
    bounded = steer_settings(
        argparse.Namespace(**{**vars(args), "edit": "bounded", "heads": "4"}), recipe("paper")
    )
    assert bounded["edit"] == "bounded" and bounded["heads"] == 4 and bounded["direction"] == "probe"
    with pytest.raises(UsageError, match="--heads must be"):
        steer_settings(argparse.Namespace(**{**vars(args), "heads": "many"}), recipe("smitin"))
