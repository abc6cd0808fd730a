"""Steering studio: pure helpers, UI generation == engine generation, and a real browser run."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("gradio", reason="the UI needs gradio: pip install -e '.[ui]'")

from helpers import make_probes, write_stems  # noqa: E402
from smitin import ui  # noqa: E402
from smitin.generate import generate, max_new_tokens  # noqa: E402
from smitin.options import GenerationOptions  # noqa: E402
from smitin.steering import Steer  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")  # pandas notes, not ours

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM = os.environ.get("SMITIN_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture
def probe_files(tiny, tmp_path):
    paths = []
    for i, trait in enumerate(("drums", "bass")):
        paths.append(make_probes(tiny.layout, trait, seed=i).save(tmp_path / f"{trait}.safetensors"))
    return paths


# -- pure helpers --------------------------------------------------------------------------------


def test_sessions_are_copies_and_traits_replace(probe_files, tmp_path):
    s0 = ui.new_session("bundled", probe_files[:1])
    assert [p["trait"] for p in s0["probes"]] == ["drums"]
    s1, messages = ui.add_probes(s0, [probe_files[1], tmp_path / "missing.safetensors", ""])
    assert [p["trait"] for p in s1["probes"]] == ["drums", "bass"]
    assert len(messages) == 1 and "no such probe file" in messages[0]
    assert [p["trait"] for p in s0["probes"]] == ["drums"]  # the input session is untouched
    s2, _ = ui.add_probes(s1, [probe_files[0]])  # drums again: replaced, not doubled
    assert sorted(p["trait"] for p in s2["probes"]) == ["bass", "drums"]


def test_too_many_traits_are_refused(tiny, tmp_path):
    paths = [
        make_probes(tiny.layout, f"t{i}", seed=i).save(tmp_path / f"t{i}.safetensors")
        for i in range(ui.MAX_TRAITS + 1)
    ]
    session, messages = ui.add_probes(ui.new_session("bundled"), paths)
    assert len(session["probes"]) == ui.MAX_TRAITS and "at most" in messages[0]


def test_parsers():
    assert ui.parse_threshold("auto") is None and ui.parse_threshold(" ") is None
    assert ui.parse_threshold("0.7") == 0.7
    with pytest.raises(ValueError, match="between 0 and 1"):
        ui.parse_threshold("1.5")
    assert ui.parse_heads("soft") == "soft" and ui.parse_heads("16") == 16
    with pytest.raises(ValueError):
        ui.parse_heads("0")
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


# -- generation as the UI runs it ------------------------------------------------------------


def test_ui_generation_matches_the_engine_and_is_live(tiny):
    probes = make_probes(tiny.layout)
    request = ui.Request(options=GenerationOptions(duration=0.4, seed=3))
    states = []
    recorder = ui.CodeRecorder(tiny, 64)
    with recorder.recording():
        got = ui.run_generation(tiny, [Steer(probes, alpha=4)], request, states.append)
    want = generate(tiny, None, steer=[Steer(probes, alpha=4)], duration=0.4, seed=3, progress=False)
    assert np.array_equal(got.audio, want.audio)
    assert torch.equal(got.trace.c, want.trace.c) and torch.equal(got.trace.edited, want.trace.edited)
    assert got.trace.settings["seed"] == 3
    # the live state is the one that steered, and the recorder saw the codes (one step behind)
    assert len(states) == 1 and ui.live_trace(states[0]).c.shape == got.trace.c.shape
    frames = recorder.frames()
    assert frames.shape[1] == got.codes.shape[2] - 1
    assert torch.equal(frames, got.codes[0, :, : frames.shape[1]])


def test_a_cancelled_run_leaves_no_hooks_behind(tiny):
    probes = make_probes(tiny.layout)
    recorder = ui.CodeRecorder(tiny, 64)
    with pytest.raises(ui.Cancelled), recorder.recording():
        ui.run_generation(
            tiny,
            [Steer(probes)],
            ui.Request(options=GenerationOptions(duration=0.4)),
            lambda _s: recorder.cancel.set(),
        )
    assert not tiny.decoder_stack._forward_pre_hooks and not tiny.out_projs[0]._forward_pre_hooks
    assert "decode" not in vars(tiny.model.audio_encoder)  # the engine's codes recorder is gone too
    again = generate(tiny, None, duration=0.2, seed=1, progress=False)
    assert np.array_equal(again.audio, generate(tiny, None, duration=0.2, seed=1, progress=False).audio)


def test_preview_decodes_in_chunks(tiny):
    codes = generate(tiny, None, duration=1.2, progress=False).codes[0]
    preview = ui.Preview(tiny)
    assert preview.update(codes[:, :10]) is None  # too few new frames yet
    first = preview.update(codes[:, :50])
    assert first is not None and len(first) == 50 * preview.hop
    final = preview.update(codes, final=True)
    assert len(final) == codes.shape[1] * preview.hop


def test_figures(tiny):
    probes = make_probes(tiny.layout)
    r = ui.run_generation(
        tiny, [Steer(probes, alpha=4)], ui.Request(options=GenerationOptions(duration=0.3)), lambda _s: None
    )
    ref = ui.run_generation(
        tiny,
        ui.unsteered([Steer(probes)]),
        ui.Request(options=GenerationOptions(duration=0.3)),
        lambda _s: None,
    )
    fig = ui.trace_figure(r.trace, ref.trace, total_seconds=0.5)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "drums C(t)" in labels and "drums C(t) unsteered" in labels
    assert fig.axes[0].get_xlim() == (0, 0.5)
    assert ui.trace_figure(None).axes[0].get_title().startswith("monitor: waiting")
    assert len(ui.heatmap_figure([probes, probes]).axes) == 4  # two maps, two colour bars
    assert ui.heatmap_figure([]) is None
    assert len(ui.spectrogram_figure([("a", r.audio[0]), ("b", ref.audio[0])], tiny.sample_rate).axes) == 2


def test_cli_arguments():
    from smitin.cli import build_parser

    args = build_parser().parse_args(["ui", "--port", "0", "--probes", "a.safetensors", "b.safetensors"])
    assert (
        args.port == 0
        and args.share == "no"
        and [p.name for p in args.probes]
        == [
            "a.safetensors",
            "b.safetensors",
        ]
    )
    assert build_parser().parse_args(["ui"]).probes is None  # -> default drum probes


# -- the app through its API (no browser): train in the page, then generate ---------------------


@pytest.fixture
def tiny_app(tiny, tmp_path, monkeypatch):
    """The studio on a free port serving the tiny test model, no probes loaded."""
    monkeypatch.setenv("SMITIN_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "tiny-model"
    tiny.model.save_pretrained(folder)
    holder = ui.ModelHolder()
    holder.get(str(folder))
    demo = ui.build_app(holder, ui.new_session(str(folder)))
    port = ui.free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.mark.slow
def test_train_then_generate_through_the_api(tiny_app, tmp_path):
    from gradio_client import Client

    stems = write_stems(tmp_path / "stems", tracks=6, seconds=12.0)
    client = Client(tiny_app, verbose=False)
    listing = client.predict(str(stems), "drums", 5, 0, 0, 0, api_name="/on_train")
    assert "drums" in listing[0] and (tmp_path / "cache" / "probes").is_dir()
    options = ["", None, 0.5, 0, 3, 5, "both", "switch", True, "auto", "soft", True, False]
    status, *_rest, files = client.predict(*options, -4, 0, 0, 0, api_name="/on_generate")
    assert "drums (alpha -4): edit on" in status and "unsteered" in status
    names = sorted(Path(f["value"] if isinstance(f, dict) else f).name for f in files)
    assert names == ["steered-trace.json", "steered.wav", "unsteered-trace.json", "unsteered.wav"]
    import soundfile as sf
    from gradio_client import handle_file

    sf.write(tmp_path / "prompt.wav", np.zeros(4000, np.float32), 8000)  # 0.5 s at the model's rate
    cont = list(options)
    cont[1], cont[11] = handle_file(str(tmp_path / "prompt.wav")), False  # continue, steered only
    status, *_rest, files = client.predict(*cont, 3, 0, 0, 0, api_name="/on_generate")
    assert "drums (alpha +3)" in status and "unsteered" not in status
    steered = sf.read(Path(files[0]["value"] if isinstance(files[0], dict) else files[0]))[0]
    assert len(steered) == pytest.approx(8000 * 1.0, abs=200)  # the prompt, then 0.5 s more
    bad = list(options)
    bad[9] = "2"  # threshold out of range: a message in the page, not a crash
    with pytest.raises(Exception, match="between 0 and 1"):
        client.predict(*bad, 5, 0, 0, 0, api_name="/on_generate")


# -- a real browser ------------------------------------------------------------------------------

WATCH_JS = """() => {
  window.__seen = {status: [], plots: []};
  const record = () => {
    const s = document.querySelector('#status');
    const t = s ? s.innerText.trim() : '';
    if (t && window.__seen.status.at(-1) !== t) window.__seen.status.push(t);
    const img = document.querySelector('#trace-plot img');
    if (img && window.__seen.plots.at(-1) !== img.src) window.__seen.plots.push(img.src);
  };
  new MutationObserver(record).observe(document.body,
    {subtree: true, childList: true, characterData: true, attributes: true});
}"""


def _chromium_reason() -> str | None:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        return f"no Chromium at {CHROMIUM}: run scripts/setup.sh (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed: pip install -e '.[dev]'"
    return None


@pytest.mark.slow
@pytest.mark.skipif(_chromium_reason() is not None, reason=str(_chromium_reason()))
def test_studio_in_a_real_browser(tmp_path, monkeypatch):
    """Start the app, set a slider, generate 1 s with the bundled model, see audio and the trace."""
    import argparse

    from playwright.sync_api import expect, sync_playwright

    import smitin

    monkeypatch.setenv("SMITIN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    bundled = smitin.load()  # whatever the bundled model is now: probes made for its layout
    probe_file = make_probes(bundled.layout, "drums").save(tmp_path / "drums.safetensors")
    args = argparse.Namespace(
        model="bundled", device="cpu", dtype=None, probes=[probe_file], cache=None, port=0, host="127.0.0.1"
    )
    holder, session0, note = ui.prepare(args, log=lambda _m: None)
    demo = ui.build_app(holder, session0, startup_note=note)
    port = ui.free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    ARTIFACTS.mkdir(exist_ok=True)
    external: list[str] = []
    try:
        with sync_playwright() as pw:
            # a fresh profile: playwright passes it as --user-data-dir
            browser = pw.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"),
                executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
                headless=True,
                args=[
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                ],
                viewport={"width": 1400, "height": 2200},
            )
            page = browser.new_page()

            def offline(route):  # the page must work with no internet: refuse, and remember
                url = route.request.url
                if url.startswith(("http://127.0.0.1", "http://localhost", "data:", "blob:")):
                    route.continue_()
                else:
                    external.append(url)
                    route.abort()

            page.route("**/*", offline)
            page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
            expect(page.locator("#probe-list")).to_contain_text("drums", timeout=30_000)

            slider = page.locator("#alpha-0 input[type=number]")
            slider.fill("-7")
            slider.press("Enter")
            duration = page.locator("#duration input[type=number]")
            duration.fill("1")
            duration.press("Enter")
            page.evaluate(WATCH_JS)  # record every status text and plot image the page shows
            page.locator("#generate").click()

            expect(page.locator("#status")).to_contain_text("done", timeout=80_000)
            expect(
                page.locator("#steered audio, #steered [data-testid=waveform-slot]").first
            ).to_be_attached()
            expect(
                page.locator("#unsteered audio, #unsteered [data-testid=waveform-slot]").first
            ).to_be_attached()
            expect(page.locator("#trace-plot img")).to_be_visible()
            expect(page.locator("#files")).to_contain_text(re.compile(r"steered\s*\.wav"))
            page.screenshot(path=str(ARTIFACTS / "ui-studio.png"), full_page=True)
            status = page.locator("#status").inner_text()
            seen = page.evaluate("window.__seen")
            # Stop ends a long run and frees the model: the next generation goes through
            long_run = max_new_tokens(bundled, 30)
            duration.fill("30")
            duration.press("Enter")
            page.get_by_label("also generate unsteered (same seed)").uncheck()
            page.locator("#generate").click()
            expect(page.locator("#status")).to_contain_text("generating steered", timeout=30_000)
            page.locator("#stop").click()
            duration.fill("0.5")
            duration.press("Enter")
            for _ in range(20):  # the page takes a click only once the stopped request has ended
                page.locator("#generate").click()
                if f"/ {long_run} " not in page.locator("#status").inner_text(timeout=5_000):
                    break
                page.wait_for_timeout(1_000)
            expect(page.locator("#status")).to_contain_text("done (steered", timeout=60_000)
            # a second browser session starts from the defaults, not from the first one's settings
            other = browser.new_page()
            other.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
            expect(other.locator("#probe-list")).to_contain_text("drums", timeout=30_000)
            expect(other.locator("#alpha-0 input[type=number]")).to_have_value("5")
            expect(other.locator("#status")).not_to_contain_text("done")
            browser.close()
    finally:
        demo.close()
    assert "drums (alpha -7): edit on" in status
    live = [t for t in seen["status"] if t.startswith("generating steered")]
    assert live, f"no live status while generating: {seen['status']}"
    assert len(set(seen["plots"])) >= 2, "the trace plot was not redrawn while generating"
    assert not external, f"the page fetched from outside localhost: {external}"
