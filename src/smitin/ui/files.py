"""What the studio writes and serves: its own folder, names made safe, files only for their browser.

Shared on a LAN (`--host 0.0.0.0`) the studio meets strangers, so:

- user-given names never become paths: a trait name typed on the page is turned into a slug
  (`slug`) and the paths made from it are checked to stay inside the cache (`inside`);
- everything the app and Gradio write while it runs (uploads, Gradio's copies of outputs, the
  WAV and trace downloads) lives in one private folder of its own (`AppFolder`, mode 0700), not
  in the system's shared `/tmp/gradio`, and the folder is removed when the studio stops, on
  Ctrl-C (SIGINT) and on SIGTERM alike;
- each browser gets a random id in a cookie, and a file of that folder is served only to the
  browser it was sent to (`PrivateFiles`, an ASGI middleware in front of Gradio's routes: it
  notes every path of the folder that a response hands to a browser, and refuses the folder's
  files to everyone else with 403).

Imports no gradio: the middleware speaks plain ASGI.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import stat
import tempfile
import threading
import weakref
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

COOKIE = "smitin_client"
MAX_SLUG = 48
SCAN_TAIL = 4096  # bytes of a response body kept to find a path cut in two by chunking
MAX_OWNED = 100_000  # paths remembered; the oldest are forgotten (their files are long gone)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def slug(name: str, fallback: str = "trait") -> str:
    """A name safe in a file name: lower case letters, digits, '-' and '_' (`../../drums` -> `drums`)."""
    text = re.sub(r"[^a-z0-9_]+", "-", str(name).lower()).strip("-_")[:MAX_SLUG].strip("-_")
    return text or fallback


def inside(root: str | Path, *parts: str) -> Path:
    """`root/parts...`, refused (ValueError) unless it stays inside `root` once resolved."""
    base = Path(root).resolve()
    path = base.joinpath(*parts).resolve()
    if path != base and base not in path.parents:
        raise ValueError(f"{'/'.join(parts)!r} would lie outside {base}; use a plain name")
    return path


def train_paths(cache: str | Path, trait: str, model_key: str, fingerprint: str) -> tuple[Path, Path]:
    """Where the studio's training writes: (probe file, activation folder), both inside `cache`."""
    key = f"{slug(trait)}-{slug(model_key, 'model')}-{slug(fingerprint, 'data')[:12]}"
    return inside(cache, "probes", f"{key}.safetensors"), inside(cache, "activations", key)


class AppFolder:
    """The studio's own temporary folder, removed when it stops (SIGINT, SIGTERM, exit).

    `open` makes it (mode 0700), points Gradio (GRADIO_TEMP_DIR) and Python's `tempfile` at it,
    and makes SIGTERM stop the server as Ctrl-C does, so the same cleanup runs.
    """

    def __init__(self, prefix: str = "smitin-studio-") -> None:
        self.prefix = prefix
        self.root: Path | None = None
        self._finalizer: weakref.finalize | None = None
        self._saved: dict[str, Any] = {}

    def open(self) -> Path:
        self.root = Path(tempfile.mkdtemp(prefix=self.prefix)).resolve()
        os.chmod(self.root, stat.S_IRWXU)
        (self.root / "gradio").mkdir()
        self._saved = {"env": os.environ.get("GRADIO_TEMP_DIR"), "tempdir": tempfile.tempdir}
        os.environ["GRADIO_TEMP_DIR"] = str(self.root / "gradio")
        tempfile.tempdir = str(self.root)
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.root, ignore_errors=True)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _interrupt)
        return self.root

    @property
    def gradio(self) -> Path:
        if self.root is None:
            raise RuntimeError("AppFolder.open() first")
        return self.root / "gradio"

    def close(self) -> None:
        """Remove the folder and restore what `open` changed."""
        if self._finalizer is not None:
            self._finalizer()
        if self._saved:
            env = self._saved["env"]
            if env is None:
                os.environ.pop("GRADIO_TEMP_DIR", None)
            else:
                os.environ["GRADIO_TEMP_DIR"] = env
            tempfile.tempdir = self._saved["tempdir"]
            self._saved = {}

    def __enter__(self) -> AppFolder:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM: stop as Ctrl-C does (Gradio's launch loop and our cleanup both handle it)."""
    raise KeyboardInterrupt


class Owners:
    """Which browsers (cookie ids) each served path was handed to; thread-safe, bounded.

    A path may have several: Gradio names its copies by content, so two browsers that upload the
    same file are handed the same path (and each already has its content).
    """

    def __init__(self) -> None:
        self._owners: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def claim(self, path: str, client: str) -> None:
        with self._lock:
            if path not in self._owners and len(self._owners) >= MAX_OWNED:
                self._owners.pop(next(iter(self._owners)))
            self._owners.setdefault(path, set()).add(client)

    def allowed(self, path: str, client: str) -> bool:
        with self._lock:
            return client in self._owners.get(path, ())


class PrivateFiles:
    """ASGI middleware: the files of `root` are served only to the browser they were handed to.

    Every request gets a browser id (the `smitin_client` cookie, set if missing). Paths under
    `root` that appear in a response (upload results, generated audio and downloads in the queue's
    event stream) are claimed for that browser; a request for a file under `root`
    (`/gradio_api/file=...` or `/file=...`) is refused with 403 unless it carries the owner's id.
    Files outside `root` are left to Gradio's own rules.
    """

    def __init__(self, app: Callable[..., Awaitable[None]], root: str | Path, owners: Owners | None = None):
        self.app = app
        self.root = str(Path(root).resolve())
        self.owners = owners if owners is not None else Owners()
        self._pattern = re.compile(re.escape(self.root).encode() + rb"/[^\"'\s\\<>?#]+")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = _cookie(scope, COOKIE)
        fresh = None
        if client is None:
            client = fresh = secrets.token_urlsafe(24)
        target = _file_target(scope.get("path", ""))
        if target is not None:
            real = os.path.realpath(target)
            if (real == self.root or real.startswith(self.root + os.sep)) and not self.owners.allowed(
                real, client
            ):
                await _forbidden(send, fresh)
                return
            await self.app(scope, receive, _with_cookie(send, fresh))
            return
        await self.app(scope, receive, self._watching(send, client, fresh))

    def _watching(self, send: Send, client: str, fresh: str | None) -> Send:
        tail = b""

        async def watched(message: Message) -> None:
            nonlocal tail
            if message["type"] == "http.response.start" and fresh is not None:
                message = {**message, "headers": [*message.get("headers", []), _set_cookie(fresh)]}
            elif message["type"] == "http.response.body":
                body = tail + bytes(message.get("body", b""))
                for match in self._pattern.finditer(body):
                    self.owners.claim(os.path.realpath(match.group().decode("utf-8", "replace")), client)
                tail = body[-SCAN_TAIL:]
            await send(message)

        return watched


def _file_target(path: str) -> str | None:
    """The file a Gradio file route asks for (`/gradio_api/file=PATH`, `/file=PATH`), else None."""
    for prefix in ("/gradio_api/file=", "/file="):
        if path.startswith(prefix):
            return path[len(prefix) :]
    return None


def _cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == b"cookie":
            for part in value.decode("latin-1").split(";"):
                k, _, v = part.strip().partition("=")
                if k == name and re.fullmatch(r"[A-Za-z0-9_-]{16,64}", v):
                    return v
    return None


def _set_cookie(value: str) -> tuple[bytes, bytes]:
    return (b"set-cookie", f"{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict".encode())


def _with_cookie(send: Send, fresh: str | None) -> Send:
    if fresh is None:
        return send

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), _set_cookie(fresh)]}
        await send(message)

    return sending


async def _forbidden(send: Send, fresh: str | None) -> None:
    body = b"File not allowed: it belongs to another browser session."
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    if fresh is not None:
        headers.append(_set_cookie(fresh))
    await send({"type": "http.response.start", "status": 403, "headers": headers})
    await send({"type": "http.response.body", "body": body})
