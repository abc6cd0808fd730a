import pytest

from helpers import make_probes
from smitin.backbone import HeadLayout
from smitin.options import GenerationOptions
from smitin.recipes import DEFAULT_RECIPE, RECIPES, recipe
from smitin.steering import Steer


def test_the_defaults_are_the_default_recipe():
    r = RECIPES[DEFAULT_RECIPE]
    s = Steer(make_probes(HeadLayout(2, 4, 8)))
    assert (s.heads, s.direction, s.monitor) == (r.heads, r.direction, r.monitor)
    assert GenerationOptions().every == r.every
    assert (r.heads, r.direction, r.every, r.monitor) == (16, "auto", 1, True)


def test_the_papers_recipe_is_one_name_away():
    p = make_probes(HeadLayout(2, 4, 8))
    s = Steer.from_recipe(p, "paper", alpha=-3.0)
    assert (s.heads, s.direction, s.monitor, s.alpha) == ("soft", "probe", True, -3.0)
    assert recipe("paper").every == 5
    iti = Steer.from_recipe(p, "iti", heads=4)  # keywords override the recipe
    assert (iti.heads, iti.monitor, iti.direction) == (4, False, "mass_mean")


def test_an_unknown_recipe_lists_the_known_ones():
    with pytest.raises(ValueError, match="smitin, paper, iti"):
        recipe("best")


def test_heads_as_typed():
    from smitin.recipes import parse_heads

    assert parse_heads(None) == 16 and parse_heads(" ") == 16 and parse_heads(None, "soft") == "soft"
    assert parse_heads("soft") == "soft" and parse_heads(" 8 ") == 8 and parse_heads(4) == 4
    for bad in ("0", "-3", "abc"):
        with pytest.raises(ValueError, match="heads must be 'soft' or a"):
            parse_heads(bad)
