"""The offline renderer: exact stems, determinism, presence statistics, CLI hooks, data round trip."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from smitin.cli import build_parser
from smitin.cli.arguments import SYNTH_SOURCES
from smitin.data import stem_segments
from smitin.synth import FAMILIES, render_dataset, run_synth
from smitin.synth import mma as mma_mod
from smitin.synth.render import SOURCES, find_soundfont, plan_song, render_stem

needs_fluidsynth = pytest.mark.skipif(
    shutil.which("fluidsynth") is None, reason="fluidsynth CLI not installed"
)
SR = 16000
SEED = 2  # with mma installed: song 0 comes from an mma groove, song 1 is procedural


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "a"
    return render_dataset(out, songs=2, seed=SEED, sample_rate=SR, seconds=8.0, progress=False, workers=2)


def _audio_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.wav"))}


@needs_fluidsynth
def test_layout_and_mix_is_exact_sum(rendered: Path) -> None:
    records = [json.loads(line) for line in (rendered / "songs.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == ["song_0000", "song_0001"]
    for r in records:
        song = rendered / r["id"]
        stems = sorted(p.stem for p in song.glob("*.wav") if p.stem != "mix")
        assert stems == sorted(r["instruments"]) and len(stems) >= 2
        assert set(stems) <= set(FAMILIES)
        mix, sr = sf.read(str(song / "mix.wav"), dtype="float32")
        assert sr == SR and abs(len(mix) / SR - r["duration"]) < 1e-3 and 7.0 < r["duration"] < 10.0
        total = np.zeros_like(mix)
        for fam in FAMILIES:
            if fam in stems:
                x, _ = sf.read(str(song / f"{fam}.wav"), dtype="float32")
                assert x.ndim == 1 and len(x) == len(mix)
                assert np.sqrt(np.mean(x**2)) > 1e-3, f"{fam} stem is silent"
                total += x
        assert np.array_equal(total, mix)
        assert 0.5 < np.abs(mix).max() <= 0.81
        assert r["caption"].startswith(("a ", "an ")) and f"{r['tempo']} bpm" in r["caption"]
        assert r["key"] in r["caption"] and r["sample_rate"] == SR
        for key in ("tempo", "key", "groove", "style", "programs", "duration", "source", "chords"):
            assert key in r
    if mma_mod.mma_path():
        assert [r["source"] for r in records] == ["mma", "procedural"]


@needs_fluidsynth
def test_same_seed_same_bytes_other_seed_differs(rendered: Path, tmp_path: Path) -> None:
    again = render_dataset(
        tmp_path / "b", songs=2, seed=SEED, sample_rate=SR, seconds=8.0, progress=False, workers=1
    )
    a, b = _audio_files(rendered), _audio_files(again)
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a)
    assert (rendered / "songs.jsonl").read_bytes() == (again / "songs.jsonl").read_bytes()
    other = render_dataset(
        tmp_path / "c", songs=1, seed=SEED + 1, sample_rate=SR, seconds=8.0, progress=False
    )
    assert (other / "song_0000" / "mix.wav").read_bytes() != a["song_0000/mix.wav"]


@needs_fluidsynth
def test_rerun_keeps_finished_songs(rendered: Path) -> None:
    mix = rendered / "song_0001" / "mix.wav"
    before = mix.stat().st_mtime_ns
    render_dataset(rendered, songs=2, seed=SEED, sample_rate=SR, seconds=8.0, progress=False, workers=1)
    assert mix.stat().st_mtime_ns == before


@needs_fluidsynth
def test_rendered_songs_feed_stem_segments(rendered: Path) -> None:
    records = [json.loads(line) for line in (rendered / "songs.jsonl").read_text().splitlines()]
    trait = next(
        f for f in ("drums", "bass", "strings", "piano", "guitar", "organ") if f in records[0]["instruments"]
    )
    ss = stem_segments(rendered, trait, sample_rate=SR, seconds=2.0)
    assert ss.summary["layout"] == "plain" and ss.summary["segments"]["positive"] > 0
    assert all("mix.wav" not in p for s in ss.segments for p in s.sources)


@needs_fluidsynth
@pytest.mark.parametrize("model_rate", [8000, 32000])
def test_songs_at_one_rate_feed_a_model_at_another(rendered: Path, model_rate: int) -> None:
    """`data synth --sample-rate` need not match the model: stems are resampled to its rate on load."""
    records = [json.loads(line) for line in (rendered / "songs.jsonl").read_text().splitlines()]
    trait = next(f for f in FAMILIES if f in records[0]["instruments"])
    ss = stem_segments(rendered, trait, sample_rate=model_rate, seconds=1.0)
    assert ss.summary["files_resampled"] > 0  # written at SR, read at the model's rate
    clip = ss.load_one(ss.segments[0])
    assert clip.shape == (model_rate,) and np.isfinite(clip).all() and np.abs(clip).max() > 0


@needs_fluidsynth
def test_fresh_synth_per_stem_leaves_no_tail(tmp_path: Path) -> None:
    """A stem rendered after a loud one must stay silent until its own first note."""
    sf2 = find_soundfont()

    def one_note(program: int, is_drum: bool, start: float) -> pretty_midi.PrettyMIDI:
        pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
        inst = pretty_midi.Instrument(program=program, is_drum=is_drum)
        inst.notes.append(
            pretty_midi.Note(velocity=120, pitch=49 if is_drum else 60, start=start, end=start + 1.0)
        )
        pm.instruments.append(inst)
        return pm

    loud = render_stem(one_note(0, True, 0.0), SR, sf2, 3 * SR, tmp_path)
    late = render_stem(one_note(48, False, 2.0), SR, sf2, 3 * SR, tmp_path)
    assert np.abs(loud[: SR // 2]).max() > 0.01
    assert np.abs(late[: int(1.9 * SR)]).max() < 1e-5  # -100 dBFS: only float noise
    assert np.abs(late[2 * SR :]).max() > 0.001


def test_presence_varies_across_songs() -> None:
    plans = [plan_song(i, 0, None, "mix", have_mma=mma_mod.mma_path() is not None) for i in range(300)]
    for fam in FAMILIES:
        share = np.mean([fam in p["families"] for p in plans])
        assert 0.35 < share < 0.8, (fam, share)
    assert all(len(p["families"]) >= 2 for p in plans)
    assert len({p["tempo"] for p in plans}) > 40 and len({p["key"] for p in plans}) == 24
    assert all(28.0 <= p["duration"] <= 63.0 for p in plans)
    if mma_mod.mma_path():
        sources = [p["source"] for p in plans]
        assert 0.45 < sources.count("mma") / len(sources) < 0.75
        assert len({p["groove"] for p in plans if p["source"] == "mma"}) > 50


def test_without_mma_everything_is_procedural(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mma_mod, "mma_path", lambda: None)
    plans = [plan_song(i, 0, 10.0, "mix", have_mma=False) for i in range(20)]
    assert {p["source"] for p in plans} == {"procedural"}


@needs_fluidsynth
def test_cli_hooks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def parse(argv: list[str]):
        return build_parser().parse_args(["data", "synth", *argv])

    args = parse(
        [
            "--out",
            str(tmp_path / "o"),
            "--songs",
            "1",
            "--seed",
            "4",
            "--sample-rate",
            "8000",
            "--seconds",
            "4",
            "--quiet",
        ]
    )
    assert run_synth(args) == 0
    assert (tmp_path / "o" / "song_0000" / "mix.wav").is_file()
    assert str(tmp_path / "o") in capsys.readouterr().out
    bad = parse(["--out", str(tmp_path / "x"), "--songs", "0"])
    assert run_synth(bad) == 2


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--sample-rate", "0", "sample rate 0 Hz is outside FluidSynth's 8000-96000 Hz"),
        # FluidSynth would render at 8 kHz into a WAV labelled 100 Hz
        ("--sample-rate", "100", "outside FluidSynth's"),
        ("--sample-rate", "200000", "outside FluidSynth's"),
        ("--seconds", "0", "seconds must be a number above 0"),
        ("--seconds", "-1", "seconds must be a number above 0"),
        ("--seconds", "nan", "got nan"),
        ("--seconds", "inf", "at most 600"),
        ("--workers", "0", "workers must be at least 1"),
        ("--seed", "-1", "seed must be 0 or more"),
    ],
)
def test_bad_settings_are_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    out = tmp_path / "o"
    args = build_parser().parse_args(["data", "synth", "--out", str(out), "--songs", "1", option, value])
    assert run_synth(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("smitin: error: ") and message in err and "Traceback" not in err
    assert not out.exists()


def test_cli_offers_every_source() -> None:
    assert SYNTH_SOURCES == SOURCES


def test_sparse_stem_share_uses_the_loader_gate() -> None:
    from smitin.synth.render import MIN_ACTIVE, active_shares

    rng = np.random.default_rng(0)
    loud = (0.3 * rng.standard_normal(SR * 10)).astype(np.float32)
    sparse = np.zeros(SR * 10, dtype=np.float32)
    sparse[: SR // 2] = 0.3 * rng.standard_normal(SR // 2)  # plays for 0.5 s of 10
    shares = active_shares({"drums": loud, "piano": sparse}, SR)
    assert shares["drums"] == 1.0 and shares["piano"] < MIN_ACTIVE


@needs_fluidsynth
def test_in_process_and_cli_backends_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from smitin.synth import fluid
    from smitin.synth.render import backend, build_midi

    if not fluid.available():
        pytest.skip("libfluidsynth not loadable")
    plan = plan_song(0, SEED, 4.0, "procedural", have_mma=False)
    pm, _ = build_midi(plan)
    n = int(plan["duration"] * SR)
    sf2 = find_soundfont()
    assert backend() == "lib"
    a = render_stem(pm, SR, sf2, n, tmp_path)
    assert np.array_equal(a, render_stem(pm, SR, sf2, n, tmp_path))  # deterministic
    monkeypatch.setenv("SMITIN_FLUIDSYNTH", "cli")
    assert backend() == "cli"
    b = render_stem(pm, SR, sf2, n, tmp_path)
    assert np.abs(a).max() > 0.05 and np.corrcoef(a, b)[0, 1] > 0.999
