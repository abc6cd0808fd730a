"""Trait names: normalisation and the traits the stem map knows."""

from __future__ import annotations

from smitin.data import DEFAULT_STEM_MAP, known_traits, normalise_name


def test_normalise_name() -> None:
    assert normalise_name("Electric Guitar 2") == "electric_guitar"
    assert normalise_name("Strings (continued)") == "strings"
    assert normalise_name("lead-vocals") == "lead_vocals"
    assert normalise_name("808") == "808"


def test_known_traits_include_the_defaults_and_a_user_map() -> None:
    traits = known_traits()
    assert traits == sorted(DEFAULT_STEM_MAP) and {"drums", "bass", "guitar", "piano", "vocals"} <= set(
        traits
    )
    assert "kazoo" in known_traits({"Kazoo": ["kazoo 1"]})


def test_playing_names_the_traits_a_prompts_stems_carry():
    from smitin.data.traits import playing

    stems = ["grand-piano", "Bass 2", "organ"]
    assert playing(stems, ["drums", "bass", "piano"]) == ["bass", "piano"]  # in the traits' order
    assert playing(stems, ["piano", "bass"]) == ["piano", "bass"]
    assert playing([], ["drums"]) == [] and playing(["drums"], []) == []
