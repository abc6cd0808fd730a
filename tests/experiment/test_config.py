"""The experiment's command line: what --threshold accepts and what reaches the SMITIN rows."""

import argparse

import pytest

from helpers import make_probes
from smitin.architectures import build
from smitin.experiment.config import add_arguments, config_from_args
from smitin.experiment.rows import Job


def _config(*argv):
    p = argparse.ArgumentParser()
    add_arguments(p)
    return config_from_args(p.parse_args(list(argv)))


@pytest.mark.parametrize(
    ("given", "kept"), [(None, None), ("paper", None), ("positive", "positive"), ("0.6", 0.6)]
)
def test_threshold_takes_what_generate_takes(given, kept):
    cfg = _config(*(["--threshold", given] if given else []))
    assert cfg.threshold == kept


@pytest.mark.parametrize("bad", ["5", "0", "nan", "median"])
def test_a_bad_threshold_is_refused_with_the_accepted_values(bad, capsys):
    with pytest.raises(SystemExit) as err:
        _config("--threshold", bad)
    assert err.value.code == 2 and "threshold must be a probability" in capsys.readouterr().err


def test_positive_threshold_reaches_the_smitin_rows_only():
    probes = make_probes(build("tiny", seed=0).layout)
    cfg = _config("--threshold", "positive")
    job = Job("drums", "continuation", "smitin", 5.0, sweep=False, texts=None, waves=None, count=2)
    (steer,) = job.steers(probes, cfg)
    (paper,) = job.steers(probes, _config())
    assert steer.threshold == "positive" and steer.tau != pytest.approx(paper.tau)
    iti = Job("drums", "continuation", "iti", 5.0, sweep=False, texts=None, waves=None, count=2)
    assert not iti.steers(probes, cfg)[0].monitor
