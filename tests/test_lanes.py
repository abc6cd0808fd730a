"""Lanes: what people write (CLI, JSON, API), the errors they get, and the per-step layout."""

import json
import subprocess
import sys

import pytest
import torch

from smitin.lanes import (
    Lane,
    LaneError,
    Span,
    check_lanes,
    layout,
    load_lanes,
    parse_lane,
    parse_lane_arg,
    parse_lane_args,
)


def test_the_three_ways_of_writing_a_lane_agree():
    text = parse_lane("0-3:remove, 3-6:add,6-8:FREE")
    listed = Lane.of([(0, 3, "remove"), (3, 6, "add"), (6, 8, "free")])
    obj = Lane.of({"spans": [[0, 3, "remove"], {"start": 3, "end": 6, "want": "add"}, [6, 8, "free"]]})
    assert text == listed == obj
    assert text.spans[1] == Span(3.0, 6.0, "add") and text.ramp == 0
    assert str(text) == "0-3:remove,3-6:add,6-8:free" and parse_lane(str(text)) == text


def test_ramp_and_order():
    lane = parse_lane("4-8:add,0-2.5:remove,ramp=0.5")
    assert [s.start for s in lane.spans] == [0, 4] and lane.ramp == 0.5  # kept in time order
    assert str(lane) == "0-2.5:remove,4-8:add,ramp=0.5"
    assert lane.want_at(1) == "remove" and lane.want_at(3) is None and lane.want_at(4) == "add"
    assert Lane.of({"spans": "0-1:add", "ramp": 0.2}).ramp == 0.2


def test_cli_values():
    assert parse_lane_arg("drums=0-3:remove,3-6:add") == ("drums", parse_lane("0-3:remove,3-6:add"))
    both = parse_lane_args(["drums=0-3:remove,3-6:add", "piano=0-6:free"])
    assert list(both) == ["drums", "piano"]
    with pytest.raises(LaneError, match="given twice"):
        parse_lane_args(["drums=0-3:add", "drums=3-6:remove"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0-3:remove,2-6:add", r"spans '0-3:remove' and '2-6:add' overlap \(2-3 s\)"),
        ("3-1:add", r"span '3-1:add': ends \(1 s\) before it starts \(3 s\)"),
        ("2-2:add", r"ends \(2 s\) before it starts"),
        ("0-3:louder", r"span '0-3:louder': unknown word 'louder'; a span wants add, remove, free or keep"),
        ("0-3", r"span '0-3' has no ':WANT'"),
        ("0:add", r"write the time as START-END"),
        ("a-3:add", r"start 'a' is not a number of seconds"),
        ("0-inf:add", r"end 'inf' is not a number of seconds up to 3600"),
        ("0-1e308:add", r"end '1e308' is not a number of seconds up to 3600"),
        ("0-3:add,ramp=1e308", r"ramp must be a number of seconds from 0 to 3600, not 1e\+308"),
        ("0-3:add,ramp=nan", r"ramp must be a number of seconds from 0 to 3600"),
        ("0-3:add,,3-4:free", r"empty span"),
        ("0-3:add,ramp=fast", r"the ramp 'fast' is not a number"),
        ("0-3:add,ramp=-1", r"ramp must be a number of seconds from 0 to 3600"),
        ("ramp=1", r"has no spans"),
        ("", r"empty lane"),
    ],
)
def test_bad_lanes_say_what_is_wrong(text, message):
    with pytest.raises(LaneError, match=message):
        parse_lane(text)


def test_bad_cli_values_name_the_trait():
    with pytest.raises(LaneError, match=r"--lane '0-3:add': name the trait first"):
        parse_lane_arg("0-3:add")
    with pytest.raises(LaneError, match=r"--lane drums: span '0-3:loud': unknown word"):
        parse_lane_arg("drums=0-3:loud")
    assert issubclass(LaneError, ValueError)


def test_bad_api_values():
    with pytest.raises(LaneError, match=r"a span is \(start, end, want\[, strength\]\)"):
        Lane.of([(0, 3)])
    with pytest.raises(LaneError, match="keys 'spans'"):
        Lane.of({"span": []})
    with pytest.raises(LaneError, match="needs at least one span"):
        Lane.of([])
    with pytest.raises(LaneError, match="has no 'want'"):
        Lane.of([{"start": 0, "end": 1}])
    with pytest.raises(LaneError, match="starts before 0 s"):
        Lane.of([(-1, 1, "add")])


def test_checks_against_the_steered_traits_and_the_duration():
    lanes = parse_lane_args(["drums=0-3:remove,3-6:add,6-8:free"])
    check_lanes(lanes, ["drums", "bass"], duration=8)
    with pytest.raises(
        LaneError, match=r"drums: span '6-8:free' ends at 8 s, past the end of the clip \(6 s"
    ):
        check_lanes(lanes, ["drums"], duration=6)
    with pytest.raises(LaneError, match=r"a lane for 'drums', which is not steered \(steered traits: bass\)"):
        check_lanes(lanes, ["bass"])
    with pytest.raises(LaneError, match=r"steered traits: none"):
        check_lanes(lanes, [])


def test_lanes_file(tmp_path):
    good = tmp_path / "lanes.json"
    good.write_text(
        json.dumps(
            {
                "drums": "0-3:remove,3-6:add",
                "piano": [[0, 3, "add"]],
                "bass": {"spans": "0-6:free", "ramp": 1},
            }
        )
    )
    lanes = load_lanes(good)
    assert str(lanes["drums"]) == "0-3:remove,3-6:add" and lanes["bass"].ramp == 1
    bad = tmp_path / "bad.json"
    bad.write_text("drums=0-3:add")
    with pytest.raises(LaneError, match=r"bad.json is not JSON: Expecting value \(line 1, column 1\)"):
        load_lanes(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(LaneError, match=r"the top level must be an object"):
        load_lanes(bad)
    bad.write_text('{"drums": "0-3:loud"}')
    with pytest.raises(LaneError, match=r"bad.json: drums: span '0-3:loud': unknown word"):
        load_lanes(bad)
    with pytest.raises(LaneError, match=r"lanes file .*missing.json: cannot read it"):
        load_lanes(tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"drums": "0-3:add", "x": "\xff\xfe"}', r"not UTF-8 text"),
        (b"\xff\xfe{}", r"not UTF-8 text \(byte 0"),
        (b"[" * 100_000 + b"]" * 100_000, r"nested too deeply"),
        (b'{"drums": [[0, 3, "add"]], "x": ' + b"[" * 40 + b"]" * 40 + b"}", r"nested too deeply"),
        (b'{"drums": [[0, ' + b"9" * 5000 + b', "add"]]}', r"numbers must stay below|out of range"),
        (b'{"drums": [[0, 1e308, "add"]]}', r"out of range"),
        (b'{"drums": {"spans": [[0, 3, "add"]], "ramp": 1e300}}', r"out of range"),
        (
            b'{"drums": {"spans": [[0, 3, "add"]], "ramp": 1e9}}',
            r"ramp must be a number of seconds from 0 to 3600",
        ),
        (b'{"drums": [[0, NaN, "add"]]}', r"NaN is not a number JSON allows"),
        (b'{"drums": "0-3:add"}' + b" " * (1 << 20), r"is 1,048,5\d\d bytes; at most 1,048,576 are read"),
    ],
    ids=[
        "utf8-inside",
        "utf8-start",
        "deep",
        "deep-40",
        "huge-int",
        "1e308",
        "ramp-1e300",
        "ramp-1e9",
        "nan",
        "big",
    ],
)
def test_hostile_lanes_files_are_refused_naming_the_file(tmp_path, content, message):
    path = tmp_path / "lanes.json"
    path.write_bytes(content)
    with pytest.raises(LaneError, match=message) as err:
        load_lanes(path)
    assert len(str(err.value)) < 400 and "lanes.json" in str(err.value)


@pytest.mark.parametrize("special", ["/dev/zero", "/dev/null", "fifo", "folder"])
def test_special_files_are_not_read_as_lanes(tmp_path, special):
    import os

    if special == "fifo":
        special = str(tmp_path / "fifo")
        os.mkfifo(special)
    elif special == "folder":
        special = str(tmp_path)
    with pytest.raises(LaneError, match=r"not a regular file|is a folder"):
        load_lanes(special)


def test_a_pushing_lane_on_a_trait_of_strength_zero_is_refused():
    lanes = parse_lane_args(["drums=0-3:add"])
    with pytest.raises(
        LaneError, match=r"drums: span '0-3:add' wants the trait present, but its strength is 0"
    ):
        check_lanes(lanes, ["drums"], duration=4, strengths={"drums": 0.0})
    check_lanes(lanes, ["drums"], duration=4, strengths={"drums": -5.0})
    check_lanes(parse_lane_args(["drums=0-3:free"]), ["drums"], duration=4, strengths={"drums": 0.0})


def test_layout_per_step():
    """10 frames/s: step s is time s/10; outside the spans the trait's own sign, monitored as today."""
    lane = parse_lane("0-0.3:remove,0.3-0.6:add,0.6-0.8:free")
    laid = layout([lane, None], [5.0, -2.0], steps=12, frame_rate=10)
    want = laid.want[:, 0].tolist()
    assert want == [-1] * 3 + [1] * 3 + [0] * 2 + [1] * 4  # after 0.8 s: alpha 5's constant "add"
    assert laid.sign[:, 0].tolist() == [-1.0] * 3 + [1.0] * 9
    assert laid.scale[:, 0].tolist() == [1.0] * 6 + [0.0] * 2 + [1.0] * 4
    assert laid.remove[:, 0].tolist() == [True] * 3 + [False] * 9
    # no lane: constant; a negative alpha is removal, pushed with its own sign (relative +1)
    assert laid.want[:, 1].tolist() == [-1] * 12 and laid.remove[:, 1].all()
    assert (laid.sign[:, 1] == 1).all() and (laid.scale[:, 1] == 1).all()
    # relative to a negative alpha: a "remove" span is the trait's own direction, "add" the opposite
    neg = layout([lane], [-5.0], steps=12, frame_rate=10)
    assert neg.sign[:, 0].tolist() == [1.0] * 3 + [-1.0] * 3 + [1.0] * 6
    assert neg.remove[:, 0].tolist() == [True] * 3 + [False] * 3 + [True] * 6


def test_a_span_ending_at_the_duration_covers_the_last_steps():
    lane = parse_lane("0-0.5:remove,0.5-1:add")
    tail = layout([lane], [-3.0], steps=13, frame_rate=10, duration=1.0)  # 10 frames + 3 delay steps
    assert tail.want[:, 0].tolist() == [-1] * 5 + [1] * 8
    cut = layout([lane], [-3.0], steps=13, frame_rate=10)  # no duration: the lane ends at step 10
    assert cut.want[:, 0].tolist() == [-1] * 5 + [1] * 5 + [-1] * 3


def test_ramp_crossfades_the_push():
    lane = parse_lane("0-0.4:add,0.4-1:remove,ramp=0.4")
    laid = layout([lane], [5.0], steps=10, frame_rate=10)
    push = (laid.scale * laid.sign)[:, 0]
    assert torch.allclose(push, torch.tensor([1, 1, 1, 1, 0.5, 0, -0.5, -1, -1, -1.0]))
    assert laid.want[:, 0].tolist() == [1] * 4 + [-1] * 6  # the wish switches at once
    assert laid.remove[:, 0].tolist() == [False] * 4 + [True] * 6  # the monitor watches the new wish
    free = layout([parse_lane("0-0.2:add,0.2-0.6:free,ramp=0.2")], [5.0], steps=8, frame_rate=10)
    assert torch.allclose(free.scale[:, 0], torch.tensor([1, 1, 0.5, 0, 0, 0, 0.5, 1.0]))


def test_parsing_needs_no_torch():
    code = (
        "import sys, smitin.lanes as l; l.parse_lane_args(['drums=0-1:add']); print('torch' in sys.modules)"
    )
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
    )


def test_keep_is_a_wish_in_lanes_and_cli_values():
    lane = parse_lane("0-3:add, 3-6:KEEP")
    assert [s.want for s in lane.spans] == ["add", "keep"] and str(lane) == "0-3:add,3-6:keep"
    assert Lane.of([(0, 6, "keep")]).spans[0].want == "keep"
    trait, piano = parse_lane_arg("piano=0-6:keep")
    assert trait == "piano" and piano.want_at(2.0) == "keep"


def test_layout_holds_kept_steps():
    """keep: pushed towards present when it pushes (relative to the alpha's sign), the monitor on
    1 - C off, marked as held; a kept trait without a lane is held throughout."""
    lane = parse_lane("0-0.3:remove,0.3-0.6:keep")
    laid = layout([lane, None, None], [-5.0, 5.0, 5.0], steps=8, frame_rate=10, keeps=[False, True, False])
    assert laid.want[:, 0].tolist() == [-1] * 3 + [2] * 3 + [-1] * 2
    assert laid.hold[:, 0].tolist() == [False] * 3 + [True] * 3 + [False] * 2
    assert laid.sign[:, 0].tolist() == [1.0] * 3 + [-1.0] * 3 + [1.0] * 2  # keep pushes against -5
    assert laid.remove[:, 0].tolist() == [True] * 3 + [False] * 3 + [True] * 2
    assert laid.hold[:, 1].all() and (laid.want[:, 1] == 2).all() and (laid.sign[:, 1] == 1).all()
    assert not laid.hold[:, 2].any() and (laid.want[:, 2] == 1).all()
    with pytest.raises(ValueError, match="keep flags"):
        layout([None], [5.0], steps=4, frame_rate=10, keeps=[True, False])


def test_a_span_may_carry_its_strength():
    lane = parse_lane("0-0.4:add,0.4-1:add*2.5,1-1.2:remove*1")
    assert [s.strength for s in lane.spans] == [None, 2.5, 1.0]
    assert str(lane) == "0-0.4:add,0.4-1:add*2.5,1-1.2:remove*1"
    assert Lane.of([(0, 1, "add", 2.0)]).spans[0].strength == 2.0
    laid = layout([lane], [5.0], steps=12, frame_rate=10)
    want = torch.tensor([1.0] * 4 + [0.5] * 6 + [0.2] * 2)  # |strength| / |alpha|
    assert torch.equal(laid.scale[:, 0], want)
    assert laid.sign[:, 0].tolist() == [1.0] * 10 + [-1.0] * 2
    assert laid.want[:, 0].tolist() == [1] * 10 + [-1] * 2
    # shifts built with another alpha (a live stream's reference): the push is |alpha| / |ref|
    moved = layout([None], [-2.0], steps=3, frame_rate=10, refs=[4.0])
    assert moved.scale[:, 0].tolist() == [0.5] * 3 and moved.sign[:, 0].tolist() == [-1.0] * 3
    assert moved.remove[:, 0].all()
    with pytest.raises(LaneError, match="strength must be a number >= 0"):
        parse_lane("0-1:add*-2")
    with pytest.raises(LaneError, match="strength 'x' is not a number"):
        parse_lane("0-1:add*x")


# -- property-based: any text or JSON is a lane or a LaneError, and a lane always lays out ------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from helpers import bounded_examples  # noqa: E402

FAST = FAST_FIXTURES = bounded_examples(150)
NUMBERS = st.one_of(
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 0.5, 1, 2, 3.5, 8]),
)
LANE_TEXT = st.one_of(
    st.text(max_size=60),
    st.lists(
        st.builds(
            lambda a, b, w: f"{a}-{b}:{w}",
            NUMBERS.map(str),
            NUMBERS.map(str),
            st.sampled_from(["add", "remove", "free", "ADD", "x", ""]),
        ),
        max_size=4,
    ).map(",".join),
    st.builds(lambda t, r: f"{t},ramp={r}", st.just("0-1:add"), NUMBERS.map(str)),
)
JSON_LANES = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=12), LANE_TEXT),
    lambda c: st.one_of(
        st.lists(c, max_size=4), st.dictionaries(st.sampled_from(["spans", "ramp", "x"]), c, max_size=3)
    ),
    max_leaves=10,
)


def _lays_out(lane: Lane) -> None:
    laid = layout([lane], [5.0], steps=60, frame_rate=50.0, duration=1.0)
    assert torch.isfinite(laid.scale).all()


@FAST
@given(text=LANE_TEXT)
def test_any_lane_text_is_a_lane_or_a_lane_error(text):
    try:
        lane = parse_lane(text)
    except LaneError as err:
        assert len(str(err)) < 600
        return
    try:
        lane.check(1.0)
    except LaneError:
        return
    _lays_out(lane)


@FAST_FIXTURES
@given(data=st.dictionaries(st.text(max_size=8), JSON_LANES, max_size=3))
def test_any_lanes_file_is_lanes_or_a_lane_error(tmp_path, data):
    path = tmp_path / "lanes.json"
    path.write_text(json.dumps(data, allow_nan=True))
    try:
        lanes = load_lanes(path)
    except LaneError as err:
        assert "lanes.json" in str(err) and len(str(err)) < 600
        return
    for lane in lanes.values():
        try:
            lane.check(1.0)
        except LaneError:
            continue
        _lays_out(lane)
