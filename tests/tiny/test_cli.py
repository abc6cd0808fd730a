"""The train-tiny command line: its defaults are TrainConfig's, and each option reaches the config."""

from __future__ import annotations

import argparse

from smitin.tiny.cli import add_train_arguments, config_from_args
from smitin.tiny.config import TrainConfig
from smitin.tiny.model import TinySizes


def parse(*argv: str) -> TrainConfig:
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    return config_from_args(parser.parse_args(list(argv)))


def test_defaults_are_the_train_config() -> None:
    assert parse() == TrainConfig()


def test_options_reach_the_config() -> None:
    cfg = parse(
        *("--data", "a", "b", "--out", "run", "--steps", "7", "--hidden", "64", "--layers", "2"),
        *("--tag-weight", "1", "--tag-rows", "null", "--init-from", "stage2", "--short-prob", "0.5"),
    )
    assert cfg.data == ["a", "b"] and cfg.out == "run" and cfg.steps == 7
    assert cfg.sizes == TinySizes(layers=2, hidden=64, ffn=256, dropout=0.0)
    assert (cfg.tag_weight, cfg.tag_rows, cfg.init_from, cfg.short_prob) == (1.0, "null", "stage2", 0.5)
