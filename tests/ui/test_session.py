"""Studio sessions: probe files per session, parsers, slider slots, steers and their unsteered twins."""

from __future__ import annotations

import copy
import dataclasses
import re

import pytest

from helpers import bounded_examples, make_probes
from smitin import ui as studio
from smitin.ui import session as ui


@pytest.fixture
def probe_files(tiny, tmp_path):
    paths = []
    for i, trait in enumerate(("drums", "bass")):
        paths.append(make_probes(tiny.layout, trait, seed=i).save(tmp_path / f"{trait}.safetensors"))
    return paths


def test_sessions_are_copies_and_traits_replace(probe_files, tmp_path):
    s0 = ui.new_session("bundled", probe_files[:1])
    assert [p.trait for p in s0.probes] == ["drums"]
    s1, messages = ui.add_probes(s0, [probe_files[1], tmp_path / "missing.safetensors", ""])
    assert [p.trait for p in s1.probes] == ["drums", "bass"]
    assert len(messages) == 1 and "no such probe file" in messages[0]
    assert [p.trait for p in s0.probes] == ["drums"]  # the input session is untouched
    s2, _ = ui.add_probes(s1, [probe_files[0]])  # drums again: replaced, not doubled
    assert sorted(p.trait for p in s2.probes) == ["bass", "drums"]
    assert s2.probes[-1] == ui.ProbeEntry("drums", str(probe_files[0]))


def test_sessions_change_only_by_copy(probe_files):
    """gr.State deep-copies the first session for each browser: a copy equals it and shares nothing."""
    s0 = ui.new_session("bundled", probe_files)
    assert copy.deepcopy(s0) == s0
    with pytest.raises(dataclasses.FrozenInstanceError):
        s0.model = "other"  # type: ignore[misc]
    assert s0.with_model("other").model == "other" and s0.model == "bundled"
    assert s0.cleared().probes == () and len(s0.probes) == 2
    assert [p.trait for p in ui.load_probe_sets(s0)] == ["drums", "bass"]


def test_too_many_traits_are_refused(tiny, tmp_path):
    paths = [
        make_probes(tiny.layout, f"t{i}", seed=i).save(tmp_path / f"t{i}.safetensors")
        for i in range(ui.MAX_TRAITS + 1)
    ]
    session, messages = ui.add_probes(ui.new_session("bundled"), paths)
    assert len(session.probes) == ui.MAX_TRAITS and "at most" in messages[0]


def test_parsers():
    assert ui.parse_threshold("auto") == "paper" and ui.parse_threshold("paper") == "paper"
    assert ui.parse_threshold(" ") == "positive" and ui.parse_threshold(None) == "positive"  # the default
    assert ui.parse_threshold("0.7") == 0.7
    with pytest.raises(ValueError, match="between 0 and 1"):
        ui.parse_threshold("1.5")
    assert studio.parse_heads("soft") == "soft" and studio.parse_heads("16") == 16
    assert studio.parse_heads("") == 16  # smitin's recipe
    with pytest.raises(ValueError):
        studio.parse_heads("0")
    assert ui.parse_paths("a.safetensors, b.safetensors\n\n c.safetensors ") == [
        "a.safetensors",
        "b.safetensors",
        "c.safetensors",
    ]


def test_slider_slots_follow_the_session(probe_files):
    session = ui.new_session("bundled", probe_files)
    updates = ui.slider_updates(session, previous=[-3.0])
    assert len(updates) == ui.MAX_TRAITS
    assert updates[0]["visible"] and updates[0]["value"] == -3.0 and updates[0]["label"].startswith("drums")
    assert updates[1]["visible"] and updates[1]["value"] == ui.DEFAULT_ALPHA
    assert not any(u["visible"] for u in updates[2:])
    assert "bass" in ui.probe_table(session) and "unsteered" in ui.probe_table(ui.new_session("x"))


def test_steers_and_their_unsteered_twins(tiny):
    sets = [make_probes(tiny.layout, "drums"), make_probes(tiny.layout, "bass", seed=1)]
    steers = ui.build_steers(sets, [5, -2.5], monitor=False, threshold=0.6, heads=8)
    assert [(s.name, s.alpha, s.monitor, s.threshold, s.heads) for s in steers] == [
        ("drums", 5.0, False, 0.6, 8),
        ("bass", -2.5, False, 0.6, 8),
    ]
    zero = ui.unsteered(steers)
    assert [s.alpha for s in zero] == [0, 0] and steers[0].alpha == 5.0


def test_the_lane_field_is_checked_as_it_is_typed():
    from smitin.ui.session import lanes_message, parse_lanes

    assert lanes_message("", ["drums"], 8) == "no lanes: every trait is steered for the whole clip"
    assert lanes_message("drums=0-3:remove,3-6:add", ["drums"], 8) == "lanes: drums 0-3:remove,3-6:add"
    lanes = parse_lanes("drums=0-4:add\npiano=0-4:remove; bass=4-8:free", ["drums", "piano", "bass"], 8)
    assert sorted(lanes) == ["bass", "drums", "piano"]
    for text, message in (
        ("drums=0-9:add", "past the end of the clip"),
        ("drums=0-3:loud", "unknown word 'loud'"),
        ("guitar=0-3:add", "not steered"),
        ("drums=0-4:add,3-6:remove", "overlap"),
        ("drums=4-3:add", "before it starts"),
    ):
        got = lanes_message(text, ["drums"], 8)
        assert message in got and "nothing runs" in got, got


def test_the_page_applies_the_cli_bounds(tiny):
    """One checked set of options: what the CLI refuses, the page refuses, with the same words."""
    from smitin.options import GenerationOptions

    ok = ui.page_options(5, 2**63 - 1, 3, 1, "both", "switch")
    assert ok == GenerationOptions(duration=5.0, seed=2**63 - 1, guidance_scale=3.0, every=1)
    for fields, message in (
        ((5, 2**63, 3, 1, "both", "switch"), "seed must be a whole number from 0 to 2**63-1"),
        ((5, float("inf"), 3, 1, "both", "switch"), "seed must be a number"),
        ((5, 0.5, 3, 1, "both", "switch"), "seed must be a number"),
        ((float("nan"), 0, 3, 1, "both", "switch"), "duration must be a positive number"),
        ((5, 0, -1, 1, "both", "switch"), "guidance_scale must be between 0 and 30"),
        ((5, 0, 3, 0, "both", "switch"), "every (the schedule interval) must be a whole number from 1"),
        ((5, 0, 3, 1, "uncond", "switch"), "rows must be one of"),
    ):
        with pytest.raises(ValueError, match=re.escape(message)):
            ui.page_options(*fields)
    probes = [make_probes(tiny.layout)]  # 2 layers x 4 heads
    with pytest.raises(ValueError, match=r"heads must be 'soft' or 1..8 \(2 layers x 4 heads"):
        ui.build_steers(probes, [5.0], heads=1000)
    assert ui.build_steers(probes, [5.0], heads=16)[0].heads == 16  # the recipe's K: capped, as the CLI
    with pytest.raises(ValueError, match="strength must be a finite number between -100 and 100"):
        ui.build_steers(probes, [1e9])


def test_a_pushing_lane_at_strength_zero_is_refused_on_the_page():
    with pytest.raises(
        ValueError, match=r"drums: span '0-1:add' wants the trait present, but its strength is 0"
    ):
        ui.parse_lanes("drums=0-1:add", ["drums"], 2.0, {"drums": 0.0})
    assert ui.parse_lanes("drums=0-1:free", ["drums"], 2.0, {"drums": 0.0})
    with pytest.raises(ValueError, match="at most 10,000"):
        ui.parse_lanes("x" * 20_000, ["drums"], 2.0)


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@bounded_examples(150)
@given(
    text=st.one_of(
        st.text(max_size=200),
        st.sampled_from(["/dev/zero", "/dev/stdin", "/", "~", "x" * 5000, "/proc/self/mem", "a\x00b", ",,,"]),
    )
)
def test_any_typed_paths_load_probes_or_say_why(text):
    """'Load paths' with any text: every path is loaded or skipped with a message naming it."""
    session, messages = ui.add_probes(ui.new_session("tiny"), ui.parse_paths(text))
    assert len(session.probes) + len(messages) <= len(ui.parse_paths(text))
    assert all(isinstance(m, str) and m for m in messages)
