"""The studio's files: safe names, its own folder (removed on SIGINT/SIGTERM), files per browser."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from smitin.ui.files import AppFolder, inside, slug, train_paths

pytest.importorskip("gradio", reason="the UI needs gradio: pip install -e '.[ui]'")


@pytest.mark.parametrize(
    ("name", "want"),
    [
        ("drums", "drums"),
        ("../../../drums", "drums"),
        ("/etc/passwd", "etc-passwd"),
        ("Bass Guitar", "bass-guitar"),
        ("..", "trait"),
        ("", "trait"),
        ("\x00\n", "trait"),
        ("x" * 500, "x" * 48),
    ],
)
def test_a_typed_name_becomes_a_slug(name, want):
    assert slug(name) == want


def test_training_paths_stay_inside_the_cache(tmp_path):
    for trait in ("../../../drums", "/abs/drums", "..", "a/../../b", "~root"):
        probes, acts = train_paths(tmp_path, trait, "../model", "../../fingerprint")
        for p in (probes, acts):
            assert tmp_path.resolve() in p.parents, (trait, p)
    assert probes.parent.name == "probes" and probes.suffix == ".safetensors"
    with pytest.raises(ValueError, match="would lie outside"):
        inside(tmp_path, "..", "x")
    with pytest.raises(ValueError, match="would lie outside"):
        inside(tmp_path, "/etc")


def test_the_app_folder_is_private_and_goes_away(monkeypatch):
    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    before = tempfile.tempdir
    with AppFolder() as folder:
        root = folder.root
        assert root is not None and root.stat().st_mode & 0o777 == 0o700
        assert os.environ["GRADIO_TEMP_DIR"] == str(root / "gradio") and tempfile.gettempdir() == str(root)
        (root / "gradio" / "x.wav").write_bytes(b"x")
    assert not root.exists() and "GRADIO_TEMP_DIR" not in os.environ and tempfile.tempdir == before


# -- a real server: files served per browser ---------------------------------------------------------


@pytest.fixture
def private_app(monkeypatch):
    """A small Gradio app in its own folder behind PrivateFiles: returns an uploaded file's copy."""
    import gradio as gr

    from smitin.ui.command import free_port, launch_options

    folder = AppFolder().__enter__()

    def shout(f: str) -> str:  # a new file made from the upload: Gradio copies it into its cache
        out = Path(f).with_suffix(".out")
        out.write_bytes(Path(f).read_bytes().upper())
        return str(out)

    with gr.Blocks() as demo:
        inp = gr.File()
        out = gr.File()
        inp.upload(shout, inp, out, api_name="echo")
    port = free_port()
    demo.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        **launch_options(folder.root),
    )
    try:
        yield f"http://127.0.0.1:{port}", folder.root
    finally:
        demo.close()
        folder.close()


def test_a_file_is_served_only_to_the_browser_it_was_handed_to(private_app, tmp_path):
    import httpx

    url, root = private_app
    alice, bob = httpx.Client(base_url=url), httpx.Client(base_url=url)
    for c in (alice, bob):
        assert c.get("/").status_code == 200 and c.cookies.get("smitin_client")
    assert alice.cookies["smitin_client"] != bob.cookies["smitin_client"]
    up = alice.post("/gradio_api/upload", files={"files": ("song.wav", b"RIFF secret audio")})
    (path,) = up.json()
    assert str(root) in path
    got = alice.get(f"/gradio_api/file={path}")
    assert got.status_code == 200 and got.content == b"RIFF secret audio"
    assert bob.get(f"/gradio_api/file={path}").status_code == 403
    assert httpx.get(f"{url}/gradio_api/file={path}").status_code == 403  # no cookie at all
    assert httpx.head(f"{url}/gradio_api/file={path}").status_code == 403
    forged = httpx.get(f"{url}/gradio_api/file={path}", cookies={"smitin_client": "A" * 32})
    assert forged.status_code == 403
    # another app's file in the shared temporary folder is not served by this one
    shared = Path(tempfile.gettempdir() if not str(tempfile.gettempdir()).startswith(str(root)) else "/tmp")
    other = shared / "gradio" / "someone-else" / "theirs.wav"
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_bytes(b"theirs")
    try:
        assert alice.get(f"/gradio_api/file={other}").status_code == 403
    finally:
        other.unlink()


def test_a_generated_file_reaches_its_own_browser_through_the_queue(private_app):
    """The event stream hands the output's path to the browser that asked; only it can fetch it."""
    import json

    import httpx

    url, root = private_app
    alice, bob = httpx.Client(base_url=url), httpx.Client(base_url=url)
    alice.get("/"), bob.get("/")
    (uploaded,) = alice.post("/gradio_api/upload", files={"files": ("in.txt", b"mine")}).json()
    payload = {"data": [{"path": uploaded, "meta": {"_type": "gradio.FileData"}}]}
    event = alice.post("/gradio_api/call/echo", json=payload).json()["event_id"]
    stream = alice.get(f"/gradio_api/call/echo/{event}", timeout=60).text
    data = json.loads(next(line[6:] for line in stream.splitlines() if line.startswith("data: [")))
    output = data[0]["path"]
    assert str(root) in output and output != uploaded  # Gradio's own copy of the output
    assert alice.get(f"/gradio_api/file={output}").content == b"MINE"
    assert bob.get(f"/gradio_api/file={output}").status_code == 403
    (same,) = bob.post("/gradio_api/upload", files={"files": ("in.txt", b"mine")}).json()
    assert same == uploaded and bob.get(f"/gradio_api/file={same}").content == b"mine"  # his copy too


# -- the studio process: its folder is removed on SIGINT and on SIGTERM --------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_studio_removes_its_folder_when_stopped(sig, tmp_path):
    from helpers import make_probes
    from smitin.backbone import load
    from smitin.ui.command import free_port

    probes = make_probes(load("bundled").layout).save(tmp_path / "drums.safetensors")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SMITIN_CACHE": str(tmp_path / "cache")}
    port = free_port()
    cmd = [sys.executable, "-m", "smitin", "ui", "--port", str(port), "--probes", str(probes)]
    # a test run started in the background of a shell inherits an ignored SIGINT, and Python then
    # installs no Ctrl-C handler in the studio: give it the terminal's default, as a user's shell does
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    folder = None
    deadline = time.time() + 120
    assert proc.stdout is not None
    while time.time() < deadline and folder is None:
        line = proc.stdout.readline()
        if line.startswith("temporary files in "):
            folder = Path(line.split()[3])
    assert folder is not None and folder.is_dir()
    import socket

    while time.time() < deadline:  # serving: a signal during start-up (a busy machine) is another case
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert not folder.exists() and "studio stopped; removed its temporary files" in out


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from helpers import bounded_examples  # noqa: E402


@bounded_examples(200)
@given(
    trait=st.one_of(
        st.text(max_size=300),
        st.sampled_from(
            ["../../../drums", "/etc/passwd", "..", ".", "~root", "a/../../b", "\x00", "x" * 5000]
        ),
    ),
    key=st.text(max_size=40),
)
def test_any_typed_trait_name_trains_into_the_cache_and_nowhere_else(tmp_path_factory, trait, key):
    """Whatever is typed as the trait (or reaches the model key), the studio's training writes
    under the cache, in names short enough for any file system."""
    cache = tmp_path_factory.getbasetemp() / "cache"
    out, activations = train_paths(cache, trait, key, "abc123")
    for path in (out, activations):
        assert cache.resolve() in path.parents and len(path.name) <= 255
    assert out.parent.name == "probes" and activations.parent.name == "activations"
