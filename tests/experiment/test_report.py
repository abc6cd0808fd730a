"""The report's tables."""

from smitin.experiment.config import Config
from smitin.experiment.report import sweep_table


def _row(trait, method, alpha, diff):
    return {
        "trait": trait,
        "task": "continuation",
        "method": method,
        "alpha": alpha,
        "success_cnn": 0.5,
        "cnn_diff": diff,
        "cnn_diff_low": diff - 0.1,
        "cnn_diff_high": diff + 0.1,
    }


def test_the_sweep_gives_each_trait_its_own_line_and_interval():
    rows = [
        _row("drums", "smitin", 5.0, 0.81),
        _row("guitar", "smitin", 5.0, 0.19),
        _row("drums", "iti", 2.0, 0.98),
    ]
    lines = sweep_table(Config(traits=["drums", "guitar"]), rows).splitlines()[2:]
    assert len(lines) == 3
    drums = next(x for x in lines if x.startswith("| drums | SMITIN | 5 |"))
    guitar = next(x for x in lines if x.startswith("| guitar | SMITIN | 5 |"))
    assert "+81 [+71, +91]" in drums and "+19 [+9, +29]" in guitar  # not the first trait's for both
