"""Property-based: hostile command lines and prompts files get a clean refusal or get through, never a traceback.

Every example runs the real parser, the checks and the steering set-up on the bundled model (loaded
once), up to the model's own `generate` call, replaced by a stand-in that stops there: each
example takes milliseconds.
Examples are derandomized (the same ones every run: CI stays reproducible) and few.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import bounded_examples, make_probes
from smitin import backbone as backbone_module
from smitin.cli import UsageError, main
from smitin.cli.batch import read_prompts

FAST = bounded_examples(80)


class Reached(Exception):
    """Every check passed and steering was set up: the model was about to generate."""


@pytest.fixture(scope="module")
def bundled():
    return backbone_module.load("bundled")


@pytest.fixture
def workdir(tmp_path, monkeypatch, bundled):
    monkeypatch.chdir(tmp_path)

    def generate(*_a, **_k):
        raise Reached

    monkeypatch.setattr(backbone_module, "load", lambda *_a, **_k: bundled)
    monkeypatch.setattr(bundled.model, "generate", generate)
    (tmp_path / "song.wav").write_bytes(b"not a folder")
    make_probes(bundled.layout).save(tmp_path / "d.safetensors")
    return tmp_path


def numbers() -> st.SearchStrategy[str]:
    """What people (and attackers) type where a number goes."""
    return st.one_of(
        st.integers(min_value=-(10**40), max_value=10**40).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.sampled_from(["nan", "-inf", "1e308", "1e-320", "0x10", "", " ", "1_000", "٣", "9" * 5000]),
        st.sampled_from(["0", "1", "0.5", "2", "0.2"]),  # plausible values, so the checks after pass too
        st.text(max_size=12),
    )


NAMES = st.sampled_from(["a.wav", "o/x.wav", "a.xyz", "noext", "/proc/x.wav", "song.wav/x.wav", ".", "d/"])
OPTIONS = {
    "--seed": numbers(),
    "--duration": numbers(),
    "--batch": numbers(),
    "--guidance": numbers(),
    "--every": numbers(),
    "--heads": st.one_of(numbers(), st.sampled_from(["soft", "16", "33"])),
    "--threshold": st.one_of(numbers(), st.sampled_from(["paper", "positive", "auto"])),
    "--steer": st.one_of(
        st.builds(lambda a: f"d.safetensors:{a}", numbers()), st.text(max_size=20), st.just("d.safetensors")
    ),
    "--lane": st.one_of(
        st.text(max_size=40),
        st.builds(lambda t: f"drums={t}", st.text(max_size=30)),
        st.builds(
            lambda a, b, w, r: f"drums={a}-{b}:{w},ramp={r}",
            numbers(),
            numbers(),
            st.sampled_from(["add", "remove", "free", "louder"]),
            numbers(),
        ),
    ),
    "--recipe": st.one_of(st.sampled_from(["smitin", "paper", "iti"]), st.text(max_size=8)),
    "--rows": st.sampled_from(["both", "cond", "uncond", ""]),
    "--out": NAMES,
    "--trace": NAMES,
    "--plot": NAMES,
}


@st.composite
def command_lines(draw) -> list[str]:
    argv = ["generate", draw(st.text(max_size=30))]
    if draw(st.booleans()):  # a steered trait, so that lanes get past "not steered"
        argv += ["--steer", "d.safetensors:" + draw(st.sampled_from(["5", "-3", "0"]))]
    for flag in draw(st.lists(st.sampled_from(sorted(OPTIONS)), max_size=5, unique=True)):
        argv += [flag, draw(OPTIONS[flag])]
    return argv


@contextmanager
def outcome(capsys):
    """Run a command: exit 2 with one clean error line, exit 0, or Reached; anything else fails."""
    try:
        yield
    except Reached:
        return
    except SystemExit as exit_:  # argparse's own refusal ("error: argument --seed: invalid int value")
        err = capsys.readouterr().err
        assert exit_.code == 2 and "error:" in err and "Traceback" not in err, err


@FAST
@given(argv=command_lines())
def test_any_generate_command_line_is_refused_cleanly_or_gets_through(workdir, capsys, argv):
    with outcome(capsys):
        code = main(argv)
        out = capsys.readouterr()
        assert code in (0, 2), (argv, out)
        if code == 2:
            lines = [x for x in out.err.splitlines() if x.startswith("smitin: error:")]
            assert len(lines) == 1 and "Traceback" not in out.err, (argv, out.err)
    leftovers = [p.name for p in workdir.rglob(".smitin-check-*")]
    assert not leftovers, leftovers  # the writability probes leave nothing behind


JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.floats(allow_nan=False),
        st.text(max_size=20),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
LINES = st.one_of(
    st.text(max_size=60),
    st.builds(json.dumps, JSON_VALUES),
    st.builds(
        lambda p, s, d, st_: json.dumps({"prompt": p, "seed": s, "duration": d, "steer": st_}),
        st.text(max_size=20),
        st.one_of(st.integers(min_value=-(10**25), max_value=10**25), st.floats(), st.text(max_size=5)),
        st.one_of(st.floats(allow_nan=False), st.integers(min_value=-(10**25), max_value=10**25)),
        st.one_of(st.lists(st.text(max_size=20), max_size=2), st.just(["d.safetensors:5"]), JSON_VALUES),
    ),
)


@FAST
@given(
    content=st.one_of(
        st.lists(LINES, min_size=0, max_size=6).map(
            lambda xs: "\n".join(xs).encode("utf-8", "surrogatepass")
        ),
        st.binary(max_size=200),
    )
)
def test_any_prompts_file_is_parsed_or_refused_naming_the_line(workdir, capsys, content):
    path = workdir / "p.txt"
    path.write_bytes(content)
    try:
        lines = read_prompts(path)
    except UsageError as err:
        assert str(err).startswith("--prompts ") and len(str(err)) < 600, str(err)
        return
    assert lines and all(isinstance(x.prompt, str) for x in lines)
    with outcome(capsys):  # and the whole command: refused cleanly, or on its way to the model
        code = main(["generate", "--prompts", str(path), "--out", str(workdir / "o")])
        err = capsys.readouterr().err
        assert code == 2 and err.count("smitin: error:") == 1 and "Traceback" not in err, err
