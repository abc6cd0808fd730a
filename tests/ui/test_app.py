"""The studio's page: train and generate through its API, and a real browser run (Debian chromium)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gradio", reason="the UI needs gradio: pip install -e '.[ui]'")

from helpers import make_probes, write_stems  # noqa: E402
from smitin.generate import max_new_tokens  # noqa: E402
from smitin.ui import app, command, session  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")  # pandas notes, not ours

ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts"
CHROMIUM = os.environ.get("SMITIN_CHROMIUM", "/usr/bin/chromium")


# -- the app through its API (no browser): train in the page, then generate ---------------------


@pytest.fixture
def tiny_app(tiny, tmp_path, monkeypatch):
    """The studio on a free port serving the tiny test model, no probes loaded."""
    monkeypatch.setenv("SMITIN_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "tiny-model"
    tiny.model.save_pretrained(folder)
    holder = app.ModelHolder()
    holder.get(str(folder))
    demo = app.build_app(holder, session.new_session(str(folder)))
    port = command.free_port()
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
    options = ["", None, 0.5, 0, 3, 5, "both", "switch", True, "auto", "16", "mass_mean", True, False, ""]
    status, *_rest, files = client.predict(*options, -4, 0, 0, 0, api_name="/on_generate")
    assert "drums (alpha -4): edit on" in status and "unsteered" in status
    names = sorted(Path(f["value"] if isinstance(f, dict) else f).name for f in files)
    assert names == ["steered-trace.json", "steered.wav", "unsteered-trace.json", "unsteered.wav"]
    import soundfile as sf
    from gradio_client import handle_file

    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(4000) / 8000)  # 0.5 s at the model's rate
    sf.write(tmp_path / "prompt.wav", tone.astype(np.float32), 8000)
    cont = list(options)
    cont[1], cont[12] = handle_file(str(tmp_path / "prompt.wav")), False  # continue, steered only
    status, *_rest, files = client.predict(*cont, 3, 0, 0, 0, api_name="/on_generate")
    assert "drums (alpha +3)" in status and "unsteered" not in status
    steered = sf.read(Path(files[0]["value"] if isinstance(files[0], dict) else files[0]))[0]
    assert len(steered) == pytest.approx(8000 * 0.5, abs=200)  # the new audio only, as smitin continue
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
    holder, session0, note = command.prepare(args, log=lambda _m: None)
    demo = app.build_app(holder, session0, startup_note=note)
    port = command.free_port()
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


# -- the Generate handler without a server ---------------------------------------------------


@pytest.fixture
def tiny_holder(tiny):
    holder = app.ModelHolder()
    holder.backbone, holder.name = tiny, "tiny"  # as if loaded: get("tiny") returns it
    return holder


def _generate_args(probe_session, duration, compare, *alphas):
    # prompt, audio prompt, duration, seed, guidance, every, rows, gain, monitor, threshold, heads,
    # direction, compare, preview, lanes
    return (
        probe_session,
        "",
        None,
        duration,
        0,
        3,
        5,
        "both",
        "switch",
        True,
        "auto",
        "soft",
        "probe",
        compare,
        True,
        "",
        *alphas,
    )


def test_generate_handler_runs_both_and_saves(tiny, tiny_holder, tmp_path):
    path = make_probes(tiny.layout).save(tmp_path / "drums.safetensors")
    handler = app.GenerateHandler(tiny_holder, poll_s=0.05)
    updates = list(handler(*_generate_args(session.new_session("tiny", [path]), 0.3, True, -4, 0, 0, 0)))
    assert updates[0][0].startswith("generating unsteered: step")
    assert any(u[0].startswith("generating steered: step") for u in updates)
    status, _plot, (rate, audio), unsteered_wav, steered_wav, _spec, files = updates[-1]
    assert status.startswith("done (unsteered") and "drums (alpha -4): edit on" in status
    assert rate == tiny.sample_rate and audio.dtype == np.int16
    assert Path(unsteered_wav).name == "unsteered.wav" and Path(steered_wav).name == "steered.wav"
    assert sorted(Path(f).name for f in files) == [
        "steered-trace.json",
        "steered.wav",
        "unsteered-trace.json",
        "unsteered.wav",
    ]
    assert not tiny_holder.busy.locked()


def test_a_stopped_generate_frees_the_model(tiny, tiny_holder):
    handler = app.GenerateHandler(tiny_holder, poll_s=0.05)
    running = handler(*_generate_args(session.new_session("tiny"), 30, False, 0, 0, 0, 0))
    assert next(running)[0].startswith("generating steered")
    running.close()  # what Stop (or a closed tab) does to the handler
    assert not tiny_holder.busy.locked()
    updates = list(handler(*_generate_args(session.new_session("tiny"), 0.2, False, 0, 0, 0, 0)))
    assert updates[-1][0].startswith("done (steered") and "no traits" in updates[-1][0]


def test_generations_share_one_downloads_folder(tiny, tiny_holder, tmp_path, monkeypatch):
    """N generations leave one smitin-ui-* folder, holding the newest `keep`; it goes with the app."""
    import gc
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # count only this test's folders
    handler = app.GenerateHandler(tiny_holder, poll_s=0.05, downloads=app.Downloads(keep=2))
    wavs = []
    for _ in range(3):
        *_rest, files = list(handler(*_generate_args(session.new_session("tiny"), 0.2, False, 0, 0, 0, 0)))[
            -1
        ]
        wavs.append(Path(files[0]))
    (root,) = tmp_path.glob("smitin-ui-*")
    assert [w.parent.parent for w in wavs] == [root] * 3 and len({w.parent for w in wavs}) == 3
    assert [w.exists() for w in wavs] == [False, True, True]  # the oldest generation was rotated out
    assert sorted(p.name for p in root.iterdir()) == ["0002", "0003"]
    assert wavs[-1].name == "steered.wav"
    del handler
    gc.collect()
    assert not root.exists()  # removed with the app (and at interpreter exit)


def test_downloads_close_and_reopen(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    downloads = app.Downloads(keep=1)
    first = downloads.new()
    assert downloads.new() != first and not first.exists()
    downloads.close()
    assert not list(tmp_path.glob("smitin-ui-*"))
    assert downloads.new().is_dir()  # a later generation makes a fresh folder
    downloads.close()
    with pytest.raises(ValueError, match="keep must be at least 1"):
        app.Downloads(keep=0)


def test_lanes_from_the_page_steer_and_bad_lanes_run_nothing(tiny, tiny_holder, tmp_path):
    path = make_probes(tiny.layout).save(tmp_path / "drums.safetensors")
    probe_session = session.new_session("tiny", [path])
    args = list(_generate_args(probe_session, 0.3, False, 4, 0, 0, 0))
    args[15] = "drums=0-0.15:remove,0.15-0.3:add"
    handler = app.GenerateHandler(tiny_holder, poll_s=0.05)
    *_, last = handler(*args)
    trace = json.loads(Path(last[-1][-1]).read_text())
    wants = [s["traits"]["drums"]["want"] for s in trace["steps"]]
    assert wants[0] == "remove" and wants[10] == "add"
    for bad, message in (("piano=0-0.3:add", "not steered"), ("drums=0-9:add", "past the end")):
        args[15] = bad
        with pytest.raises(ValueError, match=message):
            next(iter(handler(*args)))
        assert not tiny_holder.busy.locked()
