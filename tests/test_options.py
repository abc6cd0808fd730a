import math
import re

import pytest

from smitin.options import GAINS, ROWS, GenerationOptions


def test_build_takes_fields_and_passes_the_rest_to_sampling():
    base = GenerationOptions(duration=2.0, seed=4)
    opts = GenerationOptions.build(base, every=1, temperature=0.7, top_k=50)
    assert (opts.duration, opts.seed, opts.every) == (2.0, 4, 1)
    assert opts.sampling == {"temperature": 0.7, "top_k": 50}
    assert base.every == 1 and base.sampling == {}  # the base is left alone
    assert GenerationOptions.build(None) == GenerationOptions()
    settings = opts.settings()
    assert settings["temperature"] == 0.7 and "sampling" not in settings and settings["gain"] == "switch"


def test_cfg_follows_the_guidance_scale():
    assert GenerationOptions().cfg
    assert not GenerationOptions(guidance_scale=1.0).cfg


@pytest.mark.parametrize(
    "bad",
    [
        {"duration": 0},
        {"duration": -1},
        {"duration": math.nan},
        {"duration": math.inf},
        {"batch": 0},
        {"every": 0},
        {"guidance_scale": math.nan},
        {"rows": "uncond"},
        {"gain": "linear"},
    ],
)
def test_nonsense_is_refused_naming_the_option(bad):
    (name,) = bad
    with pytest.raises(ValueError, match=name.split("_")[0]):
        GenerationOptions(**bad)


def test_the_words_are_the_ones_the_cli_uses():
    assert ROWS == ("both", "cond") and GAINS == ("switch", "ramp")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"seed": -1}, "seed must be a whole number from 0 to 2**63-1"),
        ({"seed": 2**63}, "seed must be a whole number from 0 to 2**63-1"),
        ({"seed": 1.5}, "seed must be a whole number"),
        ({"seed": True}, "seed must be a whole number"),
        ({"guidance_scale": -0.5}, "guidance_scale must be between 0 and 30"),
        ({"guidance_scale": 1e30}, "guidance_scale must be between 0 and 30"),
        ({"batch": 1.5}, "batch must be a whole number"),
        ({"every": 10**6}, "every (the schedule interval) must be"),
    ],
)
def test_numbers_have_upper_and_lower_bounds(bad, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        GenerationOptions(**bad)


def test_guidance_below_one_turns_cfg_off():
    assert not GenerationOptions(guidance_scale=0.5).cfg and not GenerationOptions(guidance_scale=0).cfg
    assert GenerationOptions(guidance_scale=0.5).model_guidance == 1.0
    assert GenerationOptions(guidance_scale=3.0).model_guidance == 3.0
