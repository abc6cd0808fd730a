"""Render multitrack songs: General MIDI per stem family -> FluidSynth -> exact stems and their mix.

Each stem is rendered by a FRESH synthesizer (in-process libfluidsynth, or one ``fluidsynth``
process per stem): a shared synth leaks the previous stem's release and reverb into the next one. Stems are written as float32 WAV
and the mix as their float32 sum, so ``mix == sum(stems)`` holds bit for bit. A family counts as
present only if its rendered stem is audible for a good part of the song (some mma grooves play
sparsely), so the plain-layout loader sees the same instruments as songs.jsonl.

Length: over 400 lines because it is one pipeline (MIDI per family -> fresh synth per stem ->
activity gate -> song metadata -> dataset folder with resume); its parts share the song record
and splitting them would only move that record around.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pretty_midi
import soundfile as sf

from ..activity import block_activity, block_energy, track_level
from . import fluid
from . import mma as mma_mod
from .parts import STYLES, Grid, bass_part, comp_part, drum_part, lead_part
from .theory import (
    FAMILIES,
    FAMILY_PROGRAMS,
    HARMONIC,
    PRESENCE,
    PROGRAM_WORDS,
    Key,
    caption_list,
    family_of_program,
    progression,
)

SOUNDFONTS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/sounds/sf2/MuseScore_General.sf2",
)
SOURCES = ("mix", "mma", "procedural")
TAIL_SECONDS = 1.0  # release after the last bar
FADE_SECONDS = 0.05
GATE_DB = -35.0  # dB below the song's mix level: smitin.data's default gate, so both agree on presence
MIN_ACTIVE = 0.2  # share of the song a family must play in to count as present
MIX_PEAK = 0.8
FORMAT_VERSION = 3  # bump when the audio a plan renders to changes
SAMPLE_RATES = (
    8000,
    96000,
)  # FluidSynth's range: outside it, it renders at the bound but the WAV says otherwise
MAX_SONG_SECONDS = 600.0


class SynthError(RuntimeError):
    """The renderer cannot run here; the message says what to install."""


def find_soundfont(explicit: str | os.PathLike | None = None) -> Path:
    """The GM soundfont to use: argument, $SMITIN_SOUNDFONT, Debian's, then pretty_midi's bundled one."""
    cands = [explicit, os.environ.get("SMITIN_SOUNDFONT"), *SOUNDFONTS]
    cands.append(Path(pretty_midi.__file__).parent / "TimGM6mb.sf2")
    for c in cands:
        if c and Path(c).is_file():
            return Path(c)
    if explicit:
        raise SynthError(f"soundfont {explicit} not found")
    raise SynthError(
        "no General MIDI soundfont found; apt-get install fluid-soundfont-gm or set SMITIN_SOUNDFONT"
    )


def _renderer() -> str:
    if fluid.available():
        return "lib"
    if shutil.which("fluidsynth"):
        return "cli"
    try:
        import fluidsynth  # noqa: F401  (pyfluidsynth, used through pretty_midi)

        return "pyfluidsynth"
    except ImportError as exc:
        raise SynthError(
            "FluidSynth is missing: apt-get install fluidsynth (or pip install pyfluidsynth with libfluidsynth)"
        ) from exc


# ----------------------------------------------------------------------------- song plan


def plan_song(index: int, seed: int, seconds: float | None, source: str, have_mma: bool) -> dict:
    """Everything random about song ``index``, drawn from its own generator (order-independent)."""
    rng = np.random.default_rng([seed, index])
    use_mma = have_mma and (source == "mma" or (source == "mix" and rng.random() < 0.6))
    if use_mma:
        grooves = mma_mod.list_grooves()
        styles = sorted({g[1] for g in grooves})
        style = styles[int(rng.integers(len(styles)))]
        options = [g for g in grooves if g[1] == style]
        groove, _, beats = options[int(rng.integers(len(options)))]
        lo, hi = mma_mod.tempo_range(style)
    else:
        style = sorted(STYLES)[int(rng.integers(len(STYLES)))]
        groove = f"procedural-{style.replace(' ', '-')}"
        (lo, hi), beats = STYLES[style]
    tempo = int(rng.integers(lo, hi + 1))
    key = Key(int(rng.integers(12)), bool(rng.random() < 0.45))
    target = float(seconds) if seconds is not None else float(rng.uniform(30.0, 60.0))
    bar_s = beats * 60.0 / tempo
    bars = max(2, int(round((target - TAIL_SECONDS) / bar_s)))
    jazzy = any(w in style for w in ("jazz", "swing", "bossa", "bebop", "blues"))
    chords = progression(key, rng, bars, jazzy=jazzy)
    present = [f for f in FAMILIES if rng.random() < PRESENCE[f]]
    pitched = [f for f in present if f != "drums"]
    if not pitched:  # every song has something tonal
        present.append(HARMONIC[int(rng.integers(len(HARMONIC)))])
    if len(present) < 2:
        rest = [f for f in FAMILIES if f not in present]
        present.append(rest[int(rng.integers(len(rest)))])
    present = [f for f in FAMILIES if f in present]
    programs = {f: int(rng.choice(p)) for f, p in FAMILY_PROGRAMS.items() if f in present}
    # some families sit out the first section, so presence also changes within songs
    enters = {}
    if bars >= 12:
        for f in present:
            if len(present) > 2 and rng.random() < 0.2:
                enters[f] = 8 if bars >= 16 else 4
        if len(enters) == len(present):
            enters.pop(present[0])
    return {
        "index": index,
        "id": f"song_{index:04d}",
        "seed": int(rng.integers(2**31 - 1)),
        "source": "mma" if use_mma else "procedural",
        "groove": groove,
        "style": style,
        "tempo": tempo,
        "key": key.name,
        "tonic": key.tonic,
        "minor": key.minor,
        "beats_per_bar": beats,
        "bars": bars,
        "duration": round(bars * bar_s + TAIL_SECONDS, 6),
        "chords": [c.name for c in chords],
        "_chords": chords,
        "families": present,
        "programs": programs,
        "enters_bar": enters,
    }


def _jsonable(o: object) -> object:
    if hasattr(o, "item"):
        return o.item()  # numpy scalars from pretty_midi / numpy random draws
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _role(name: str) -> str:
    return name.split("-")[0].lower()


def build_midi(plan: dict) -> tuple[pretty_midi.PrettyMIDI, dict[str, str]]:
    """The song as one PrettyMIDI whose instruments are named by stem family."""
    rng = np.random.default_rng(plan["seed"])
    chords = plan["_chords"]
    present = plan["families"]
    programs = plan["programs"]
    grid = Grid(plan["tempo"], plan["beats_per_bar"], rng)
    pm = pretty_midi.PrettyMIDI(initial_tempo=float(plan["tempo"]))
    insts: list[pretty_midi.Instrument] = []
    origin: dict[str, str] = {}
    if plan["source"] == "mma":
        src = mma_mod.run_mma(plan["groove"], plan["tempo"], chords, plan["seed"] % 100000)
        pm = src
        pitched_present = [f for f in HARMONIC if f in present]  # the lead stays a melody
        for inst in src.instruments:
            if not inst.notes:
                continue
            fam = family_of_program(inst.program, inst.is_drum)
            role = _role(inst.name)
            if fam not in present:
                if inst.is_drum:
                    continue
                if role in ("bass", "walk") and "bass" in present:
                    fam = "bass"
                elif pitched_present:
                    fam = pitched_present[int(rng.integers(len(pitched_present)))]
                else:
                    continue
                inst.program = programs[fam]
            # None (no stem family) is never in ``present``: it was reassigned or skipped above
            assert fam is not None
            inst.name = fam
            insts.append(inst)
            origin.setdefault(fam, "mma")
        pm.instruments = []
    for fam in present:
        if fam in origin:
            continue
        style = plan["style"] if plan["style"] in STYLES else _nearest_style(plan)
        if fam == "drums":
            inst = drum_part(style, plan["bars"], grid)
        elif fam == "bass":
            inst = bass_part(style, chords, grid, programs[fam])
        elif fam == "synth_lead":
            inst = lead_part(Key(plan["tonic"], plan["minor"]), chords, grid, programs[fam])
        else:
            inst = comp_part(fam, style, chords, grid, programs[fam])
        insts.append(inst)
        origin[fam] = "procedural"
    bar_s = plan["beats_per_bar"] * 60.0 / plan["tempo"]
    end = plan["bars"] * bar_s
    for inst in insts:
        first = plan["enters_bar"].get(inst.name, 0) * bar_s
        inst.notes = [n for n in inst.notes if first <= n.start < end]
        for n in inst.notes:
            n.end = min(n.end, end)
    pm.instruments = [i for i in insts if i.notes]
    return pm, origin


def _nearest_style(plan: dict) -> str:
    """Procedural pattern for a family mma did not play, chosen to fit the groove's style."""
    style = plan["style"]
    if plan["beats_per_bar"] == 3:
        return "waltz"
    for word, mapped in (
        ("bossa", "bossa nova"),
        ("samba", "bossa nova"),
        ("latin", "bossa nova"),
        ("funk", "funk"),
        ("soul", "funk"),
        ("disco", "disco"),
        ("ballad", "ballad"),
        ("slow", "ballad"),
        ("reggae", "reggae"),
        ("ska", "reggae"),
        ("pop", "pop"),
    ):
        if word in style:
            return mapped
    return "rock"


# ----------------------------------------------------------------------------- audio


def _stem_midi(pm: pretty_midi.PrettyMIDI, family: str) -> pretty_midi.PrettyMIDI:
    out = copy.copy(pm)
    out.instruments = [i for i in pm.instruments if i.name == family]
    return out


def backend() -> str:
    """'lib' (libfluidsynth in-process, fastest), 'cli' (a fluidsynth process per stem) or
    'pyfluidsynth'; $SMITIN_FLUIDSYNTH=cli|lib forces one."""
    forced = os.environ.get("SMITIN_FLUIDSYNTH", "").lower()
    if forced == "cli" and shutil.which("fluidsynth"):
        return "cli"
    if forced in ("", "lib") and fluid.available():
        return "lib"
    return _renderer()


def render_stem(
    pm: pretty_midi.PrettyMIDI, sample_rate: int, soundfont: Path, n_samples: int, workdir: Path
) -> np.ndarray:
    """Mono float32 audio of one stem from a fresh synthesizer, padded/cut to ``n_samples``."""
    how = backend()
    if how == "lib":
        buf = io.BytesIO()
        pm.write(buf)
        x = fluid.render_midi(buf.getvalue(), soundfont, sample_rate, n_samples).T
    elif how == "cli":
        mid, wav = workdir / "stem.mid", workdir / "stem.wav"
        pm.write(str(mid))
        cmd = [
            "fluidsynth", "-ni", "-q", "-T", "wav", "-O", "float", "-F", str(wav), "-r", str(sample_rate),
            "-g", "0.5", "-o", "synth.cpu-cores=1", str(soundfont), str(mid),
        ]  # fmt: skip
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if res.returncode != 0 or not wav.is_file():
            raise SynthError(f"fluidsynth failed: {(res.stdout + res.stderr).strip()[-400:]}")
        x, _ = sf.read(str(wav), dtype="float32", always_2d=True)
        wav.unlink()
    else:
        x = pm.fluidsynth(fs=sample_rate, sf2_path=str(soundfont)).astype(np.float32)[:, None]
    mono = x.mean(axis=1, dtype=np.float32) if x.shape[1] > 1 else x[:, 0]
    out = np.zeros(n_samples, dtype=np.float32)
    m = min(n_samples, len(mono))
    out[:m] = mono[:m]
    fade = min(n_samples, int(FADE_SECONDS * sample_rate))
    out[n_samples - fade :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return out


_SFC_SET_ADD_PEAK_CHUNK = 0x1050  # libsndfile command; its PEAK chunk carries a wall-clock timestamp


def write_wav(path: Path, x: np.ndarray, sample_rate: int) -> None:
    """Mono float32 WAV without libsndfile's timestamped PEAK chunk, so same audio -> same bytes."""
    with sf.SoundFile(str(path), "w", sample_rate, 1, subtype="FLOAT", format="WAV") as f:
        try:
            sf._snd.sf_command(f._file, _SFC_SET_ADD_PEAK_CHUNK, sf._ffi.NULL, 0)
        except AttributeError:  # private API moved: fall back to zeroing the timestamp below
            pass
        f.write(x)
    with open(path, "r+b") as fh:
        head = fh.read(256)
        i = head.find(b"PEAK")
        if i >= 0:
            fh.seek(i + 12)
            fh.write(b"\0\0\0\0")


# Stem level relative to the others, dB (drawn per song): GM renders come out at arbitrary levels
# (mma's brush kits 25 dB under the band), which would make "present" stems inaudible.
LEVELS_DB: dict[str, tuple[float, float]] = {
    "drums": (-3.0, 1.0),
    "bass": (-5.0, -1.0),
    "guitar": (-8.0, -3.0),
    "piano": (-8.0, -3.0),
    "organ": (-9.0, -4.0),
    "strings": (-9.0, -4.0),
    "synth_lead": (-7.0, -3.0),
}


def balance(stems: dict[str, np.ndarray], sample_rate: int, rng: np.random.Generator) -> None:
    """Mix in place: scale each stem so its RMS while playing sits at a drawn level per family."""
    for fam in FAMILIES:
        if fam not in stems:
            continue
        e = block_energy(stems[fam], sample_rate)
        playing = e[e > e.max() * 1e-4] if len(e) and e.max() > 0 else e
        lo, hi = LEVELS_DB[fam]
        target = 10.0 ** (float(rng.uniform(lo, hi)) / 20.0)
        if len(playing) and playing.mean() > 0:
            stems[fam] = stems[fam] * np.float32(target / np.sqrt(playing.mean()))


def active_shares(
    stems: dict[str, np.ndarray], sample_rate: int, gate_db: float = GATE_DB
) -> dict[str, float]:
    """Share of the song in which each stem plays, by the same gate the segment loader uses."""
    energies = {f: block_energy(x, sample_rate) for f, x in stems.items()}
    level = track_level(list(energies.values()))
    return {
        f: float(np.mean(block_activity(e, level, gate_db))) if len(e) else 0.0 for f, e in energies.items()
    }


def _describe_family(fam: str, pm: pretty_midi.PrettyMIDI) -> tuple[str, list[int]]:
    insts = [i for i in pm.instruments if i.name == fam]
    progs = sorted({i.program for i in insts if not i.is_drum})
    if fam == "drums":
        return "drums", []
    main = max(insts, key=lambda i: len(i.notes))
    word = PROGRAM_WORDS.get(main.program) or pretty_midi.program_to_instrument_name(main.program).lower()
    if fam == "synth_lead" and "lead" not in word:
        word = f"{word} lead"
    return word, progs


def render_song(job: dict) -> dict:
    """Render one planned song into ``out/<id>/``; returns its songs.jsonl record."""
    plan, out_dir = job["plan"], Path(job["out_dir"])
    sr, soundfont = int(job["sample_rate"]), Path(job["soundfont"])
    song_dir = out_dir / plan["id"]
    meta_path = song_dir / "meta.json"
    if meta_path.is_file():  # resume: a finished song with the same plan is kept
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("plan_key") == job["plan_key"]:
                return meta
        except ValueError:
            pass
    pm, origin = build_midi(plan)
    n = int(round(plan["duration"] * sr))
    stems: dict[str, np.ndarray] = {}
    dropped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="smitin-synth-") as tmp:
        for fam in FAMILIES:
            if fam not in plan["families"]:
                continue
            if not any(i.name == fam for i in pm.instruments):
                dropped[fam] = "no notes"
                continue
            stems[fam] = render_stem(_stem_midi(pm, fam), sr, soundfont, n, Path(tmp))
    balance(stems, sr, np.random.default_rng([plan["seed"], 1]))
    peak = float(np.max(np.abs(sum(stems.values())))) if stems else 0.0
    gain = np.float32(MIX_PEAK / peak) if peak > 0 else np.float32(1.0)
    for fam in list(stems):
        stems[fam] = stems[fam] * gain
    for fam, share in active_shares(stems, sr).items():
        if share < MIN_ACTIVE and len(stems) > 1:
            dropped[fam] = f"too sparse: plays in {share:.0%} of the song"
            del stems[fam]
    mix = np.zeros(n, dtype=np.float32)
    for fam in FAMILIES:  # fixed order: the sum is reproducible bit for bit
        if fam in stems:
            mix += stems[fam]
    if song_dir.exists():
        shutil.rmtree(song_dir)
    song_dir.mkdir(parents=True)
    for fam, x in stems.items():
        write_wav(song_dir / f"{fam}.wav", x, sr)
    write_wav(song_dir / "mix.wav", mix, sr)
    check = np.zeros(n, dtype=np.float32)
    for fam in FAMILIES:
        if fam in stems:
            check += sf.read(str(song_dir / f"{fam}.wav"), dtype="float32")[0]
    if not np.array_equal(check, sf.read(str(song_dir / "mix.wav"), dtype="float32")[0]):
        raise SynthError(f"{song_dir}: mix.wav is not the sum of its stems")
    words, programs = [], {}
    for fam in FAMILIES:
        if fam in stems:
            word, progs = _describe_family(fam, pm)
            words.append(word)
            if progs:
                programs[fam] = progs
    bar_s = plan["beats_per_bar"] * 60.0 / plan["tempo"]
    style = plan["style"]
    meta = {
        "id": plan["id"],
        "source": plan["source"],
        "groove": plan["groove"],
        "style": style,
        "tempo": plan["tempo"],
        "key": plan["key"],
        "time_signature": f"{plan['beats_per_bar']}/4",
        "bars": plan["bars"],
        "duration": round(n / sr, 3),
        "sample_rate": sr,
        "instruments": [f for f in FAMILIES if f in stems],
        "programs": programs,
        "program_names": {
            f: [pretty_midi.program_to_instrument_name(p) for p in ps] for f, ps in programs.items()
        },
        "parts": {f: origin.get(f, "") for f in stems},
        "enters": {f: round(b * bar_s, 3) for f, b in plan["enters_bar"].items() if f in stems},
        "dropped": dropped,
        "chords": plan["chords"],
        "caption": f"{'an' if style[0] in 'aeiou8' else 'a'} {style} groove at {plan['tempo']} bpm in "
        f"{plan['key']} with {caption_list(words)}",
        "soundfont": soundfont.name,
        "seed": plan["seed"],
        "plan_key": job["plan_key"],
    }
    meta = json.loads(json.dumps(meta, default=_jsonable))
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    return meta


# ----------------------------------------------------------------------------- dataset


def check_settings(
    songs: int, seed: int, sample_rate: int, seconds: float | None, workers: int | None, source: str
) -> None:
    """Refuse settings that cannot render what they say (ValueError naming the value), before any work."""
    lo, hi = SAMPLE_RATES
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if songs < 1:
        raise ValueError(f"songs must be at least 1, got {songs}")
    if seed < 0:
        raise ValueError(f"seed must be 0 or more, got {seed}")
    if not lo <= sample_rate <= hi:
        raise ValueError(
            f"sample rate {sample_rate} Hz is outside FluidSynth's {lo}-{hi} Hz; any rate in it works "
            f"for any model (probes train resamples the stems to the model's rate)"
        )
    if seconds is not None and not 0 < seconds <= MAX_SONG_SECONDS:
        raise ValueError(
            f"seconds must be a number above 0 and at most {MAX_SONG_SECONDS:g} per song, got {seconds}; "
            f"for more audio render more songs"
        )
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers} (omit it for up to 2)")


def render_dataset(
    out_dir: str | os.PathLike,
    songs: int = 50,
    seed: int = 0,
    sample_rate: int = 32000,
    seconds: float | None = None,
    progress: bool = True,
    *,
    workers: int | None = None,
    source: str = "mix",
    soundfont: str | os.PathLike | None = None,
) -> Path:
    """Render ``songs`` songs as ``out/<song>/<stem>.wav`` + ``mix.wav`` and ``out/songs.jsonl``.

    Deterministic for a seed (same seed, soundfont and mma -> byte-identical files). ``seconds``
    fixes every song's length (default: 30-60 s each; at most 600 s; songs are whole bars, at least
    two). ``sample_rate`` is the WAVs' rate (8000-96000 Hz); it need not be the model's, as
    ``smitin.data`` resamples stems to the model's rate when it loads them. ``source``: "mix" (about 60% mma grooves,
    the rest procedural), "mma" or "procedural"; without mma every song is procedural. A rerun
    into the same folder keeps finished songs whose plan has not changed.
    """
    check_settings(songs, seed, sample_rate, seconds, workers, source)
    _renderer()
    sf2 = find_soundfont(soundfont)
    have_mma = mma_mod.mma_path() is not None and bool(mma_mod.list_grooves())
    if source == "mma" and not have_mma:
        raise SynthError("source='mma' needs mma: apt-get install mma")
    out = Path(out_dir).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    jobs = []
    for i in range(songs):
        plan = plan_song(i, seed, seconds, source, have_mma)
        public = {k: v for k, v in plan.items() if not k.startswith("_")}
        key = json.dumps([public, sample_rate, sf2.name, FORMAT_VERSION], sort_keys=True, default=_jsonable)
        jobs.append(
            {
                "plan": plan,
                "out_dir": str(out),
                "sample_rate": sample_rate,
                "soundfont": str(sf2),
                "plan_key": key,
            }
        )
    n_workers = max(1, min(workers or min(2, os.cpu_count() or 1), songs))
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=songs, desc="rendering songs", unit="song")
    metas: list[dict] = []
    if n_workers == 1:
        for job in jobs:
            metas.append(render_song(job))
            if bar:
                bar.update(1)
    else:
        # spawn, not fork: forking a process that has started torch's thread pools can deadlock
        with ProcessPoolExecutor(
            max_workers=n_workers, mp_context=multiprocessing.get_context("spawn")
        ) as pool:
            for meta in pool.map(render_song, jobs):
                metas.append(meta)
                if bar:
                    bar.update(1)
    if bar:
        bar.close()
    wall = time.perf_counter() - t0
    with open(out / "songs.jsonl", "w") as fh:
        for m in metas:
            fh.write(json.dumps({k: v for k, v in m.items() if k != "plan_key"}) + "\n")
    audio = sum(m["duration"] for m in metas)
    stats = {
        "songs": songs,
        "seed": seed,
        "sample_rate": sample_rate,
        "audio_seconds": round(audio, 1),
        "wall_seconds": round(wall, 2),
        "audio_seconds_per_wall_second": round(audio / wall, 1) if wall > 0 else None,
        "workers": n_workers,
        "backend": backend(),
        "soundfont": str(sf2),
        "mma": have_mma,
        "presence": {f: sum(f in m["instruments"] for m in metas) for f in FAMILIES},
    }
    (out / "render_stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    if progress:
        print(
            f"rendered {songs} songs ({audio:.0f} s of audio) in {wall:.1f} s: "
            f"{stats['audio_seconds_per_wall_second']} s of audio per second -> {out}",
            file=sys.stderr,
        )
    return out


def run_synth(args: argparse.Namespace) -> int:
    """Entry point for ``smitin data synth`` (options in ``smitin.cli.arguments.data_synth``): renders and prints where the songs went."""
    try:
        out = render_dataset(
            args.out,
            songs=args.songs,
            seed=args.seed,
            sample_rate=args.sample_rate,
            seconds=args.seconds,
            progress=not args.quiet,
            workers=args.workers,
            source=args.source,
            soundfont=args.soundfont,
        )
    except (SynthError, ValueError) as exc:
        print(f"smitin: error: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0
