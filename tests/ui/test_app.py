"""The studio's page: train and generate through its API, and a real browser run (Debian chromium)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

pytest.importorskip("gradio", reason="the UI needs gradio: pip install -e '.[ui]'")

from helpers import make_probes, write_stems  # noqa: E402
from smitin.ui import app, batcher, command, figures, session  # noqa: E402

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
    options = ["", None, 0.5, 0, 3, 5, "both", "switch", True, "auto", "16", "auto", True, False, ""]
    status, *_rest, files = client.predict(*options, -4, 0, 0, 0, False, api_name="/on_generate")
    assert "drums (alpha -4): edit on" in status and "unsteered" in status
    names = sorted(Path(f["value"] if isinstance(f, dict) else f).name for f in files)
    assert names == ["steered-trace.json", "steered.wav", "unsteered-trace.json", "unsteered.wav"]
    from gradio_client import handle_file

    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(4000) / 8000)  # 0.5 s at the model's rate
    sf.write(tmp_path / "prompt.wav", tone.astype(np.float32), 8000)
    cont = list(options)
    cont[1], cont[12] = handle_file(str(tmp_path / "prompt.wav")), False  # continue, steered only
    status, *_rest, files = client.predict(*cont, 3, 0, 0, 0, False, api_name="/on_generate")
    assert "drums (alpha +3)" in status and "unsteered" not in status
    steered = sf.read(Path(files[0]["value"] if isinstance(files[0], dict) else files[0]))[0]
    assert len(steered) == pytest.approx(8000 * 0.5, abs=200)  # the new audio only, as smitin continue
    bad = list(options)
    bad[9] = "2"  # threshold out of range: a message in the page, not a crash
    with pytest.raises(Exception, match="between 0 and 1"):
        client.predict(*bad, 5, 0, 0, 0, False, api_name="/on_generate")


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


@contextmanager
def _studio_in_chromium(tmp_path, monkeypatch, probes=("drums",), batch_window_s=None):
    """The studio on the bundled model with made-up probes, and a headless Chromium with no internet.

    Yields (bundled model, port, probe files by trait, a new offline page maker, holder, refused
    URLs). Each page is its own browser session.
    """
    import argparse

    from playwright.sync_api import sync_playwright

    import smitin

    monkeypatch.setenv("SMITIN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    bundled = smitin.load()  # whatever the bundled model is now: probes made for its layout
    files = {
        trait: make_probes(bundled.layout, trait, seed=i).save(tmp_path / f"{trait}.safetensors")
        for i, trait in enumerate(probes)
    }
    args = argparse.Namespace(
        model="bundled",
        device="cpu",
        dtype=None,
        probes=[files[probes[0]]],
        cache=None,
        port=0,
        host="127.0.0.1",
    )
    holder, session0, note = command.prepare(args, log=lambda _m: None)
    if batch_window_s is not None:
        holder.batcher.window_s = batch_window_s
    from smitin.ui.files import AppFolder

    folder = AppFolder().__enter__()  # as `smitin ui` runs: its own folder, files served per browser
    demo = app.build_app(holder, session0, startup_note=note)
    port = command.free_port()
    demo.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        **command.launch_options(folder.root),
    )
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

            def offline(route):  # the page must work with no internet: refuse, and remember
                url = route.request.url
                if url.startswith(("http://127.0.0.1", "http://localhost", "data:", "blob:")):
                    route.continue_()
                else:
                    external.append(url)
                    route.abort()

            def new_page():
                page = browser.new_page()
                page.route("**/*", offline)
                page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
                return page

            yield bundled, port, files, new_page, holder, external
            browser.close()
    finally:
        demo.close()
        folder.close()


def _set_number(page, elem_id: str, value: float) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


@pytest.mark.slow
@pytest.mark.skipif(_chromium_reason() is not None, reason=str(_chromium_reason()))
def test_studio_in_a_real_browser(tmp_path, monkeypatch):
    """Start the app, set a slider, generate 1 s with the bundled model, see audio and the trace."""
    from playwright.sync_api import expect

    with _studio_in_chromium(tmp_path, monkeypatch) as (_bundled, _port, _files, new_page, _holder, external):
        page = new_page()
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
        expect(page.locator("#steered audio, #steered [data-testid=waveform-slot]").first).to_be_attached()
        expect(
            page.locator("#unsteered audio, #unsteered [data-testid=waveform-slot]").first
        ).to_be_attached()
        expect(page.locator("#trace-plot img")).to_be_visible()
        expect(page.locator("#files")).to_contain_text(re.compile(r"steered\s*\.wav"))
        page.screenshot(path=str(ARTIFACTS / "ui-studio.png"), full_page=True)
        links = page.locator("#files a").evaluate_all("els => els.map(e => e.href)")
        assert links and all(page.request.get(u).status == 200 for u in links)  # this browser's files
        import httpx

        assert all(httpx.get(u).status_code == 403 for u in links)  # to anyone else: refused
        status = page.locator("#status").inner_text()
        seen = page.evaluate("window.__seen")
        # Stop ends a long run, keeps what was made (downloadable) and frees the model
        duration.fill("30")
        duration.press("Enter")
        page.get_by_label("also generate unsteered (same seed)").uncheck()
        page.locator("#generate").click()
        expect(page.locator("#status")).to_contain_text("generating steered", timeout=30_000)
        page.locator("#stop").click()
        expect(page.locator("#status")).to_contain_text("stopped at", timeout=30_000)
        expect(page.locator("#files")).to_contain_text(re.compile(r"steered\s*\.wav"))
        duration.fill("0.5")
        duration.press("Enter")
        page.locator("#generate").click()
        expect(page.locator("#status")).to_contain_text("done (steered", timeout=60_000)
        # a second browser session starts from the defaults, not from the first one's settings
        other = new_page()
        expect(other.locator("#probe-list")).to_contain_text("drums", timeout=30_000)
        expect(other.locator("#alpha-0 input[type=number]")).to_have_value("5")
        expect(other.locator("#status")).not_to_contain_text("done")
    assert "drums (alpha -7): edit on" in status
    live = [t for t in seen["status"] if t.startswith("generating unsteered + steered: step")]
    assert live, f"no live status while generating: {seen['status']}"
    assert len(set(seen["plots"])) >= 2, "the trace plot was not redrawn while generating"
    assert not external, f"the page fetched from outside localhost: {external}"


@pytest.mark.slow
@pytest.mark.skipif(_chromium_reason() is not None, reason=str(_chromium_reason()))
def test_two_browser_sessions_at_once_share_a_batch(tmp_path, monkeypatch):
    """Two sessions click Generate together with different traits, alphas, seeds: one batch, each its own."""
    from playwright.sync_api import expect

    with _studio_in_chromium(tmp_path, monkeypatch, ("drums", "bass"), batch_window_s=3.0) as (
        _bundled,
        _port,
        probe_files,
        new_page,
        holder,
        external,
    ):
        first, second = new_page(), new_page()
        for page in (first, second):
            expect(page.locator("#probe-list")).to_contain_text("drums", timeout=30_000)
        # the second session swaps drums for bass probes, keeps the default alpha, and compares nothing
        second.get_by_role("button", name="Clear probes").click()
        expect(second.locator("#probe-list")).to_contain_text("No probe files", timeout=10_000)
        second.get_by_label("or paths on this machine (one per line)").fill(str(probe_files["bass"]))
        second.get_by_role("button", name="Load paths").click()
        expect(second.locator("#probe-list")).to_contain_text("bass", timeout=10_000)
        second.get_by_label("also generate unsteered (same seed)").uncheck()
        _set_number(second, "alpha-0", 4)
        _set_number(second, "seed", 5)
        _set_number(first, "alpha-0", -6)
        _set_number(first, "seed", 1)
        for page in (first, second):
            _set_number(page, "duration", 1)
        for page in (first, second):  # within the batching window of each other
            page.locator("#generate").click()
        for page in (first, second):
            expect(page.locator("#status")).to_contain_text("done", timeout=120_000)
            expect(page.locator("#files")).to_contain_text(re.compile(r"steered\s*\.wav"))
        first.screenshot(path=str(ARTIFACTS / "ui-studio-first-of-two.png"), full_page=True)
        second.screenshot(path=str(ARTIFACTS / "ui-studio-second-of-two.png"), full_page=True)
        statuses = [p.locator("#status").inner_text() for p in (first, second)]
        links = [
            p.locator("#files a").evaluate_all("links => links.map(a => a.href)") for p in (first, second)
        ]
        traces = []
        for page, hrefs in zip((first, second), links, strict=True):
            (href,) = [h for h in hrefs if h.split("?")[0].endswith("/steered-trace.json")]
            traces.append(json.loads(page.request.get(href).text()))
    assert holder.batcher.sizes == [3], holder.batcher.sizes  # first: unsteered + steered; second: steered
    assert "drums (alpha -6): edit on" in statuses[0] and "bass" not in statuses[0]
    assert "bass (alpha +4): edit on" in statuses[1] and "drums" not in statuses[1]
    assert all("one batch of 3 requests" in s for s in statuses), statuses
    assert statuses[0].startswith("done (unsteered") and statuses[1].startswith("done (steered")
    assert sum(h.split("?")[0].endswith(".wav") for h in links[0]) == 2
    assert sum(h.split("?")[0].endswith(".wav") for h in links[1]) == 1
    for trace, seed, trait, alpha in ((traces[0], 1, "drums", -6), (traces[1], 5, "bass", 4)):
        assert trace["settings"]["seed"] == seed and trace["settings"]["batch_users"] == 2
        assert [(t["trait"], t["alpha"]) for t in trace["settings"]["traits"]] == [(trait, alpha)]
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
    figures.trace_figure(None)  # matplotlib loads on the first figure: not while this run is watched
    path = make_probes(tiny.layout).save(tmp_path / "drums.safetensors")
    handler = app.GenerateHandler(tiny_holder, poll_s=0.05)
    # 1.5 s: long enough that a fast machine still polls the batch while it runs (0.3 s could end
    # between two polls, and then no "step" status is ever shown)
    updates = list(handler(*_generate_args(session.new_session("tiny", [path]), 1.5, True, -4, 0, 0, 0)))
    assert updates[0][0].startswith(("waiting for the model", "generating"))
    # both runs are two requests of one batch, watched together
    assert any(u[0].startswith("generating unsteered + steered: step") for u in updates)
    status, _plot, _stream, unsteered_wav, steered_wav, _spec, files = updates[-1]
    assert status.startswith("done (unsteered") and "drums (alpha -4): edit on" in status
    assert "one batch of 2 requests" in status
    streamed = np.concatenate([sf.read(io.BytesIO(u[2]))[0] for u in updates if isinstance(u[2], bytes)])
    whole, rate = sf.read(steered_wav)
    assert rate == tiny.sample_rate and len(streamed) == len(whole)  # the stream played all of it
    assert Path(unsteered_wav).name == "unsteered.wav" and Path(steered_wav).name == "steered.wav"
    assert sorted(Path(f).name for f in files) == [
        "steered-trace.json",
        "steered.wav",
        "unsteered-trace.json",
        "unsteered.wav",
    ]
    assert not tiny_holder.busy.locked()


def test_the_studio_runs_its_generations_on_the_engine_it_was_started_with(tiny, tmp_path):
    """`smitin ui --engine captured`: both requests of the batch ran captured steps (their traces say
    so; the default, auto, runs eager steps on a CPU)."""
    holder = app.ModelHolder(engine="captured")
    holder.backbone, holder.name = tiny, "tiny"
    path = make_probes(tiny.layout).save(tmp_path / "drums.safetensors")
    handler = app.GenerateHandler(holder, poll_s=0.05)
    updates = list(handler(*_generate_args(session.new_session("tiny", [path]), 0.6, True, 3, 0, 0, 0)))
    files = {Path(f).name: f for f in updates[-1][-1]}
    for name in ("steered-trace.json", "unsteered-trace.json"):
        assert json.loads(Path(files[name]).read_text())["settings"]["engine"] == "captured"


def test_a_stopped_generate_frees_the_model(tiny, tiny_holder):
    handler = app.GenerateHandler(tiny_holder, poll_s=0.05)
    running = handler(*_generate_args(session.new_session("tiny"), 20, False, 0, 0, 0, 0))
    while not next(running)[0].startswith("generating steered"):  # past the batching window
        pass
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


def test_two_users_at_once_share_one_batch_and_each_gets_their_own(tiny, tmp_path, monkeypatch):
    """Two Generate calls from two threads, different traits, alphas, seeds: one batch, own results."""
    from smitin.mixed import Request, generate_mixed
    from smitin.options import GenerationOptions
    from smitin.recipes import parse_heads

    calls: list[tuple[list, list]] = []  # each model call's requests and results

    def recorded(*args, **kwargs):
        results = generate_mixed(*args, **kwargs)
        calls.append((list(args[1]), results))
        return results

    monkeypatch.setattr(batcher, "generate_mixed", recorded)
    holder = app.ModelHolder(batch_window_s=1.0)
    holder.backbone, holder.name = tiny, "tiny"
    drums = make_probes(tiny.layout, "drums").save(tmp_path / "drums.safetensors")
    bass = make_probes(tiny.layout, "bass", seed=1).save(tmp_path / "bass.safetensors")
    args_a = _generate_args(session.new_session("tiny", [drums]), 0.3, True, -4, 0, 0, 0)
    args_b = list(_generate_args(session.new_session("tiny", [bass]), 0.3, False, 3, 0, 0, 0))
    args_b[4], args_b[9], args_b[11] = 7, False, "4"  # its own seed, monitor off, top-4 heads
    handler = app.GenerateHandler(holder, poll_s=0.05)
    got: dict[str, list] = {}
    threads = [
        threading.Thread(target=lambda k=k, a=a: got.__setitem__(k, list(handler(*a))))
        for k, a in (("a", args_a), ("b", args_b))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert holder.batcher.sizes == [3] and len(calls) == 1  # a's unsteered and steered runs, b's run
    status_a, _p, _r, ref_a, wav_a, _s, files_a = got["a"][-1]
    status_b, _p, _r, ref_b, wav_b, _s, files_b = got["b"][-1]
    assert "drums (alpha -4)" in status_a and "bass" not in status_a and "one batch of 3" in status_a
    assert "bass (alpha +3)" in status_b and "drums" not in status_b and ref_b is None
    assert any(u[0].startswith("generating unsteered + steered") for u in got["a"])
    assert {Path(f).parent for f in files_a}.isdisjoint(Path(f).parent for f in files_b)
    traces = {k: json.loads(Path(f[-1]).read_text()) for k, f in (("a", files_a), ("b", files_b))}
    assert traces["a"]["settings"]["seed"] == 0 and traces["b"]["settings"]["seed"] == 7
    assert traces["a"]["settings"]["batch_requests"] == traces["b"]["settings"]["batch_requests"] == 3
    assert traces["a"]["settings"]["batch_users"] == 2
    assert [x["alpha"] for x in traces["b"]["settings"]["traits"]] == [3.0]

    def alone(args, alpha: float, heads: str, monitor: bool):
        sets = session.load_probe_sets(args[0], tiny)
        steers = session.build_steers(
            sets, [alpha], monitor=monitor, heads=parse_heads(heads), direction="probe"
        )
        options = GenerationOptions(duration=0.3, seed=args[4], guidance_scale=3, every=5)
        return generate_mixed(tiny, [Request(None, steers, seed=args[4])], options=options, progress=False)[0]

    # each request's codes in the batch are those it makes alone, and each user got their own row
    (requests, results), want, codes = calls[0], {}, {}
    for name, (args, alpha, heads, monitor) in {
        "a unsteered": (args_a, 0, "soft", True),
        "a steered": (args_a, -4, "soft", True),
        "b steered": (args_b, 3, "4", False),
    }.items():
        (i,) = [
            j
            for j, r in enumerate(requests)  # the batch's order is the order the users arrived in
            if r.seed == args[4] and [s.alpha for s in r.steer] == [alpha]
        ]
        assert torch.equal(results[i].codes, alone(args, alpha, heads, monitor).codes), name
        want[name] = results[i].audio[0]
        codes[name] = results[i].codes
    assert np.allclose(sf.read(wav_a)[0], want["a steered"], atol=1e-4)
    assert np.allclose(sf.read(wav_b)[0], want["b steered"], atol=1e-4)
    assert not torch.equal(codes["a steered"], codes["b steered"])  # the rows differ
    assert np.allclose(sf.read(ref_a)[0], want["a unsteered"], atol=1e-4)


def test_stop_keeps_what_was_made(tiny, tiny_holder, tmp_path):
    """Stop (through the session's desk) ends the run at its next step; the page gets its files."""
    path = make_probes(tiny.layout).save(tmp_path / "drums.safetensors")
    handler = app.GenerateHandler(tiny_holder, poll_s=0.05)
    args = _generate_args(session.new_session("tiny", [path]), 20, False, 3, 0, 0, 0)
    updates = []
    for update in handler(*args, key="me"):
        updates.append(update)
        if sum(isinstance(u[2], bytes) for u in updates) == 3:  # three chunks heard: Stop
            assert handler.desk.stop("me") and not handler.desk.stop("someone else")
    status, *_rest, steered_wav, _spec, files = updates[-1]
    assert status.startswith("stopped at") and "drums (alpha +3)" in status
    audio, rate = sf.read(steered_wav)
    streamed = sum(len(sf.read(io.BytesIO(u[2]))[0]) for u in updates if isinstance(u[2], bytes))
    assert 0 < len(audio) < 5 * rate and len(audio) == streamed  # what was heard is what is kept
    trace = json.loads(Path(files[-1]).read_text())
    assert len(trace["steps"]) == len(audio) * tiny.frame_rate // rate and trace["settings"]["stopped"]
    assert not tiny_holder.busy.locked() and not handler.desk.stop("me")  # the run left the desk


def test_a_slider_reaches_only_its_own_sessions_run(tiny, tmp_path):
    """Two sessions in one batch; one moves its slider mid-run: only its run changes, from the next step."""
    holder = app.ModelHolder(batch_window_s=1.0)
    holder.backbone, holder.name = tiny, "tiny"
    drums = make_probes(tiny.layout, "drums").save(tmp_path / "drums.safetensors")
    handler = app.GenerateHandler(holder, poll_s=0.05)
    got: dict[str, list] = {}

    def run(key: str, seed: int) -> None:
        args = list(_generate_args(session.new_session("tiny", [drums]), 3, False, 4, 0, 0, 0))
        args[4], args[9] = seed, False  # its own seed, monitor off: every step pushed
        got[key] = []
        for update in handler(*args, key=key):
            got[key].append(update)
            if key == "a" and sum(isinstance(u[2], bytes) for u in got[key]) == 2:
                handler.desk.strength("a", 0, -2.5)

    threads = [threading.Thread(target=run, args=(k, s)) for k, s in (("a", 1), ("b", 2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert holder.batcher.sizes == [2]  # one batch, both users
    traces = {k: json.loads(Path(got[k][-1][-1][-1]).read_text()) for k in ("a", "b")}
    (change,) = traces["a"]["changes"]
    assert (change["trait"], change["old"], change["new"]) == ("drums", 4.0, -2.5)
    step = change["step"]
    wants = [s["traits"]["drums"]["want"] for s in traces["a"]["steps"]]
    assert set(wants[:step]) == {"add"} and set(wants[step:]) == {"remove"}
    assert "changes" not in traces["b"]  # the other user's run never heard of it
    assert {s["traits"]["drums"]["want"] for s in traces["b"]["steps"]} == {"add"}
    assert "1 live change" in got["a"][-1][0] and "live change" not in got["b"][-1][0]


STREAM_JS = """() => {
  window.__live = [];
  const t0 = performance.now();
  window.__tick = setInterval(() => {
    const a = document.querySelector('#stream audio');
    const s = document.querySelector('#status');
    const b = a && a.buffered.length ? a.buffered.end(a.buffered.length - 1) : 0;
    window.__live.push({t: performance.now() - t0, buffered: b, playing: a ? a.currentTime : 0,
                        status: s ? s.innerText.trim() : ''});
  }, 100);
}"""


@pytest.mark.slow
@pytest.mark.skipif(_chromium_reason() is not None, reason=str(_chromium_reason()))
def test_live_stream_plays_while_made_and_a_slider_moved_mid_run_is_in_the_trace(tmp_path, monkeypatch):
    """Generate 8 s: audio arrives while the model still runs; the strength slider moved mid-run
    reaches the run at a later step, which the trace records and the live C(t) plot redraws."""
    from playwright.sync_api import expect

    with _studio_in_chromium(tmp_path, monkeypatch) as (_bundled, _port, _files, new_page, _holder, external):
        page = new_page()
        expect(page.locator("#probe-list")).to_contain_text("drums", timeout=30_000)
        page.get_by_label("also generate unsteered (same seed)").uncheck()
        _set_number(page, "duration", 8)
        page.evaluate(WATCH_JS)
        page.evaluate(STREAM_JS)
        page.locator("#generate").click()
        # streamed audio is buffered in the page while the model is still generating
        page.wait_for_function(
            "() => window.__live.some(x => x.buffered > 0.5 && x.status.startsWith('generating'))",
            timeout=60_000,
        )
        status = page.locator("#status").inner_text()
        step_at_move = int(re.search(r"step (\d+)", status).group(1))
        plots_before = len(page.evaluate("window.__seen.plots"))
        _set_number(page, "alpha-0", -6)
        expect(page.locator("#status")).to_contain_text("done", timeout=90_000)
        live = page.evaluate("window.__live")
        seen = page.evaluate("window.__seen")
        page.screenshot(path=str(ARTIFACTS / "ui-studio-live.png"), full_page=True)
        final = page.locator("#status").inner_text()
        hrefs = page.locator("#files a").evaluate_all("links => links.map(a => a.href)")
        (href,) = [h for h in hrefs if h.split("?")[0].endswith("/steered-trace.json")]
        trace = json.loads(page.request.get(href).text())
    during = [x["buffered"] for x in live if x["status"].startswith("generating")]
    assert len(during) >= 5 and during[-1] > during[0] + 1.0  # the buffer grew while it generated
    assert "1 live change" in final
    (change,) = trace["changes"]
    assert (change["trait"], change["what"], change["old"], change["new"]) == ("drums", "alpha", 5.0, -6.0)
    assert change["step"] >= step_at_move  # it took effect at a step after the move
    wants = [s["traits"]["drums"]["want"] for s in trace["steps"]]
    assert set(wants[: change["step"]]) == {"add"} and set(wants[change["step"] :]) == {"remove"}
    assert len(set(seen["plots"][plots_before:])) >= 2  # C(t) kept being redrawn after the move
    assert not external, f"the page fetched from outside localhost: {external}"


@pytest.mark.slow
@pytest.mark.skipif(_chromium_reason() is not None, reason=str(_chromium_reason()))
def test_two_pages_stream_at_once_and_each_hand_reaches_only_its_own_music(tmp_path, monkeypatch):
    """Two sessions stream together (one batch); the first moves its slider mid-run: only its run changes."""
    from playwright.sync_api import expect

    with _studio_in_chromium(tmp_path, monkeypatch, batch_window_s=3.0) as (
        _bundled,
        _port,
        _files,
        new_page,
        holder,
        external,
    ):
        first, second = new_page(), new_page()
        for page, seed in ((first, 1), (second, 2)):
            expect(page.locator("#probe-list")).to_contain_text("drums", timeout=30_000)
            page.get_by_label("also generate unsteered (same seed)").uncheck()
            _set_number(page, "duration", 6)
            _set_number(page, "seed", seed)
            page.evaluate(STREAM_JS)
        for page in (first, second):  # within the batching window of each other
            page.locator("#generate").click()
        first.wait_for_function(
            "() => window.__live.some(x => x.buffered > 0.5 && x.status.startsWith('generating'))",
            timeout=60_000,
        )
        _set_number(first, "alpha-0", -4)
        traces, finals, lives = [], [], []
        for page in (first, second):
            expect(page.locator("#status")).to_contain_text("done", timeout=90_000)
            finals.append(page.locator("#status").inner_text())
            lives.append(page.evaluate("window.__live"))
            hrefs = page.locator("#files a").evaluate_all("links => links.map(a => a.href)")
            (href,) = [h for h in hrefs if h.split("?")[0].endswith("/steered-trace.json")]
            traces.append(json.loads(page.request.get(href).text()))
    assert holder.batcher.sizes == [2], holder.batcher.sizes  # one batch, both users streaming
    for live in lives:  # each page's own stream grew while the model generated
        during = [x["buffered"] for x in live if x["status"].startswith("generating")]
        assert len(during) >= 5 and during[-1] > during[0] + 1.0
    (change,) = traces[0]["changes"]
    assert (change["old"], change["new"]) == (5.0, -4.0)
    assert "changes" not in traces[1] and "live change" not in finals[1]
    assert {s["traits"]["drums"]["want"] for s in traces[1]["steps"]} == {"add"}
    assert [t["settings"]["seed"] for t in traces] == [1, 2]
    assert not external, f"the page fetched from outside localhost: {external}"


def test_a_continuation_streams_only_its_new_audio(tiny, tiny_holder, tmp_path):
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(4000) / 8000)  # 0.5 s at the model's rate
    sf.write(tmp_path / "prompt.wav", tone.astype(np.float32), 8000)
    args = list(_generate_args(session.new_session("tiny"), 0.6, False, 0, 0, 0, 0))
    args[2] = str(tmp_path / "prompt.wav")
    handler = app.GenerateHandler(tiny_holder, poll_s=0.05)  # its downloads folder lives as long as it
    updates = list(handler(*args))
    streamed = np.concatenate([sf.read(io.BytesIO(u[2]))[0] for u in updates if isinstance(u[2], bytes)])
    saved, rate = sf.read(updates[-1][4])
    assert updates[-1][0].startswith("done") and len(streamed) == len(saved) == round(0.6 * rate)


def test_endless_goes_on_until_stop_and_keeps_it(tmp_path):
    """Endless in the studio: a stream past the model's positions (120 here), until Stop."""
    from smitin import architectures

    model = architectures.build("tiny", seed=0)
    model.model.config.decoder.max_position_embeddings = 120  # at most 2.3 s in one call
    holder = app.ModelHolder()
    holder.backbone, holder.name = model, "tiny"
    path = make_probes(model.layout).save(tmp_path / "drums.safetensors")
    handler = app.GenerateHandler(holder, poll_s=0.05, ahead_s=None)  # unpaced: quick
    args = _generate_args(session.new_session("tiny", [path]), 1, True, 3, 0, 0, 0)
    updates, heard = [], 0.0
    for update in handler(*args, key="me", endless=True):
        updates.append(update)
        if isinstance(update[2], bytes):
            heard += len(sf.read(io.BytesIO(update[2]))[0]) / model.sample_rate
            if heard > 6:
                handler.desk.stop("me")
    assert any("(endless)" in u[0] for u in updates)
    status, _plot, _sound, ref, steered_wav, _spec, files = updates[-1]
    assert status.startswith("stopped at") and ref is None  # endless makes no unsteered run
    audio, rate = sf.read(steered_wav)
    assert len(audio) / rate > 6 > 2.3
    trace = json.loads(Path(files[-1]).read_text())
    assert trace["settings"]["stream"]["windows"] >= 3 and len(trace["steps"]) == len(audio) * 50 // rate
    assert holder.batcher.sizes == [1] and not holder.busy.locked()


# -- property-based: whatever the page sends, the user gets a message or a generation ---------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from helpers import any_value, bounded_examples  # noqa: E402

PAGE = bounded_examples(60)
ANY = any_value()


class Reached(Exception):
    """The handler passed every check and submitted the runs to the model."""


@PAGE
@given(
    fields=st.fixed_dictionaries(
        {
            "duration": ANY,
            "seed": ANY,
            "guidance": ANY,
            "every": ANY,
            "rows": st.one_of(st.sampled_from(["both", "cond"]), ANY),
            "gain": st.one_of(st.sampled_from(["switch", "ramp"]), ANY),
            "threshold": ANY,
            "heads": ANY,
            "direction": st.one_of(st.sampled_from(["auto", "denoised", "mass_mean", "probe"]), ANY),
            "lanes": st.one_of(
                st.text(max_size=40), st.sampled_from(["drums=0-1:add", "drums=0-1:add,ramp=1e308"])
            ),
            "alpha": ANY,
        }
    )
)
def test_any_page_values_get_a_message_or_a_generation(tiny, tiny_holder, tmp_path, monkeypatch, fields):
    import gradio as gr

    path = tmp_path / "drums.safetensors"
    if not path.exists():
        make_probes(tiny.layout).save(path)

    def submit(*_a, **_k):
        raise Reached

    monkeypatch.setattr(tiny_holder.batcher, "submit", submit)
    handler = app.with_status(app.GenerateHandler(tiny_holder))
    f = fields
    args = (
        session.new_session("tiny", [path]),
        "x",
        None,
        f["duration"],
        f["seed"],
        f["guidance"],
        f["every"],
    )
    args += (f["rows"], f["gain"], True, f["threshold"], f["heads"], f["direction"], True, False, f["lanes"])
    try:
        list(handler(*args, f["alpha"], 0, 0, 0))
    except (gr.Error, Reached):
        pass
