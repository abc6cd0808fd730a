"""`smitin ui`: its arguments, and starting the studio.

Importing this module loads neither torch nor gradio, so `smitin ui --help` answers at once;
`prepare` and `run` import what they need when called.
"""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..options import engine_arg  # no torch: `smitin ui --help` stays light

if TYPE_CHECKING:
    from ..backbone import Backbone
    from .app import ModelHolder
    from .session import Session


BUNDLED = "bundled"  # == smitin.backbone.BUNDLED (a test checks), spelled here to keep torch unloaded


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--port", type=int, default=7860, help="port to listen on (default 7860; 0 picks a free one)"
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only). 0.0.0.0 serves the studio, with "
        "no login, to every network this machine is on: anyone who reaches the port can run generations and "
        "probe training here, read probe files and stem folders by path on this machine, load models "
        "(downloading from the hub) and write to its cache. Each browser is served only its own files (a cookie "
        "id); the studio's temporary folder is removed when it stops (Ctrl-C or SIGTERM)",
    )
    p.add_argument(
        "--model",
        default=BUNDLED,
        help="model to preload: 'bundled' (default), a hub id or a save_pretrained folder",
    )
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--dtype", default=None, help="weights dtype, e.g. float16 on a GPU")
    engine_arg(p, "; for every generation of the studio (captured streams about 10%% faster on a CPU)")
    p.add_argument(
        "--probes",
        nargs="*",
        type=Path,
        default=None,
        metavar="FILE",
        help="probe files to preload (default: drum probes trained once on the bundled model and cached)",
    )
    p.add_argument(
        "--share",
        choices=("no", "yes"),
        default="no",
        help="'yes' asks Gradio for a public link (needs internet; default no)",
    )
    p.add_argument(
        "--cache", type=Path, default=None, help="cache folder (default $SMITIN_CACHE or ~/.cache/smitin)"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def default_probes(backbone: Backbone, log: Callable[[str], None] = print) -> str:
    """The default drum probes' file, trained on the first start and reused after.

    Two studios (or a studio and `smitin demo`) started at once share one cache: the lock in
    `smitin.defaults.train_default_probes` lets the first train while the others wait.
    """
    from ..defaults import train_default_probes

    return str(train_default_probes(backbone, log=log))


def prepare(args: argparse.Namespace, log: Callable[[str], None] = print) -> tuple[ModelHolder, Session, str]:
    """Load the model and the probes the app starts with (training default probes if needed)."""
    from ..probes import ProbeSet
    from .app import ModelHolder
    from .session import new_session

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if args.cache:
        os.environ["SMITIN_CACHE"] = str(args.cache)
    holder = ModelHolder(args.device, args.dtype, engine=getattr(args, "engine", "auto"))
    log(f"loading model {args.model}")
    backbone = holder.get(args.model)
    note = ""
    if args.probes is not None:
        paths = [str(p) for p in args.probes]
        for p in paths:
            ProbeSet.load(p, backbone)  # fail early on a bad or foreign file
    elif args.model == BUNDLED:
        try:
            paths = [default_probes(backbone, log)]
        except Exception as err:  # no renderer, disk full...: the studio still works, unsteered
            note = f"Default drum probes could not be trained ({err}); load or train probe files."
            log(f"warning: {note}")
            paths = []
    else:
        paths = []
        note = "No probe files given: load probe files trained for this model, or train them below."
    return holder, new_session(args.model, paths), note


def launch_options(folder: Path) -> dict:
    """What `demo.launch` gets besides host and port: the app's files served only to their browser."""
    from starlette.middleware import Middleware

    from .files import PrivateFiles

    return {"app_kwargs": {"middleware": [Middleware(PrivateFiles, root=str(folder))]}}


def run(args: argparse.Namespace) -> int:
    """Start the studio; its temporary folder is removed when it stops (Ctrl-C or SIGTERM)."""
    from .files import AppFolder

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    with AppFolder() as folder:  # before gradio reads GRADIO_TEMP_DIR
        try:
            holder, session0, note = prepare(args)
            from .app import build_app

            demo = build_app(holder, session0, startup_note=note)
            port = args.port or free_port(args.host)
            print(f"steering studio on http://{args.host}:{port} (Ctrl-C stops it)")
            print(f"temporary files in {folder.root} (each browser gets only its own; removed on exit)")
            demo.launch(
                server_name=args.host,
                server_port=port,
                share=args.share == "yes",
                show_error=True,
                **launch_options(folder.root or folder.gradio),
            )
        except KeyboardInterrupt:
            pass
        print(f"studio stopped; removed its temporary files ({folder.root})")
    return 0
