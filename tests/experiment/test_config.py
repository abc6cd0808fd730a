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
    ("given", "kept"), [(None, None), ("paper", "paper"), ("positive", "positive"), ("0.6", 0.6)]
)
def test_threshold_takes_what_generate_takes(given, kept):
    cfg = _config(*(["--threshold", given] if given else []))
    assert cfg.threshold == kept


@pytest.mark.parametrize("bad", ["5", "0", "nan", "median"])
def test_a_bad_threshold_is_refused_with_the_accepted_values(bad, capsys):
    with pytest.raises(SystemExit) as err:
        _config("--threshold", bad)
    assert err.value.code == 2 and "threshold must be a probability" in capsys.readouterr().err


def test_rows_take_their_recipes_threshold_unless_one_is_given():
    probes = make_probes(build("tiny", seed=0).layout)

    def steer(method, *argv):
        job = Job("drums", "continuation", method, 5.0, sweep=False, texts=None, waves=None, count=2)
        return job.steers(probes, _config(*argv))[0]

    assert steer("smitin").threshold == "positive" and steer("smitin-paper").threshold == "paper"
    assert steer("smitin", "--threshold", "paper").threshold == "paper"
    assert steer("smitin-paper", "--threshold", "0.6").tau == 0.6
    assert steer("smitin").tau != pytest.approx(steer("smitin", "--threshold", "paper").tau)
    assert not steer("iti").monitor and not steer("no-monitor").monitor


def test_edit_reaches_the_smitin_rows_only():
    probes = make_probes(build("tiny", seed=0).layout)

    def steer(method, *argv):
        job = Job("drums", "continuation", method, 5.0, sweep=False, texts=None, waves=None, count=2)
        return job.steers(probes, _config(*argv))[0]

    assert steer("smitin").edit == "shift" and _config().edit is None  # one flag away, not the default
    assert steer("smitin", "--edit", "bounded").edit == "bounded"
    assert steer("no-monitor", "--edit", "bounded").edit == "bounded"
    assert (
        steer("iti", "--edit", "bounded").edit == "shift"
        and steer("smitin-paper", "--edit", "bounded").edit == "shift"
    )


def test_the_default_edit_leaves_cached_rows_their_keys():
    """Rows cached before edits had a choice keep their cache key; a bounded row gets its own."""
    from smitin.experiment.runner import Experiment

    exp = Experiment.__new__(Experiment)  # only what row_path reads
    exp.cfg, exp.digest = _config(), "weights"
    job = Job("drums", "continuation", "smitin", 5.0, sweep=False, texts=None, waves=None, count=2)
    key, path, _ = exp.row_path(job)
    assert "edit" not in key["recipe"] and key["recipe"]["heads"] == 16
    exp.cfg = _config("--edit", "bounded")
    bounded, other, _ = exp.row_path(job)
    assert bounded["recipe"]["edit"] == "bounded" and other != path
