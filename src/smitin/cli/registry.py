"""The command registry: one record per command, one parser built from them, one dispatch.

A :class:`Command` names its place in the command tree (``("probes", "train")``), its help, the
function that adds its options and its handler. Handlers (and options given as
``"module:function"``) are imported only when needed, so building the parser imports no torch,
transformers or gradio: ``smitin --help`` answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Arguments = Callable[[argparse.ArgumentParser], None]


class UsageError(Exception):
    """A bad option found before any work starts; printed as ``smitin: error: ...`` (exit 2)."""


@dataclass(frozen=True)
class Command:
    """One command of the tree.

    path: its words, e.g. ``("generate",)`` or ``("probes", "train")``; help: the one line in its
    parent's list (also its description unless ``description`` is given); arguments: adds its
    options, a function or ``"module:function"`` imported when the parser is built (the module
    must not import torch); handler: ``"module:function"`` taking the parsed arguments and
    returning an exit code (None counts as 0), imported only when the command runs.
    """

    path: tuple[str, ...]
    help: str
    handler: str
    arguments: Arguments | str | None = None
    description: str | None = None
    files: tuple[str, ...] = ()  # options naming files the command writes: checked before it runs
    folders: tuple[str, ...] = ()  # options naming folders it writes into: checked before it runs

    @property
    def name(self) -> str:
        return " ".join(self.path)


def resolve(ref: str) -> Any:
    """``"package.module:attribute"`` -> the attribute, importing the module."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def build(
    commands: Sequence[Command], groups: dict[str, str], **parser_kwargs: Any
) -> argparse.ArgumentParser:
    """One parser for the whole tree, in the table's order.

    ``groups`` gives the help of each first word that has sub-commands (``probes``, ``data``);
    the chosen words land in ``args.command`` and ``args.<group>_command``, the record in
    ``args.cli_command``.
    """
    parser = argparse.ArgumentParser(**parser_kwargs)
    parser.set_defaults(cli_command=None)
    top = parser.add_subparsers(dest="command", required=True)
    subs: dict[str, argparse._SubParsersAction] = {}
    for cmd in commands:
        if len(cmd.path) == 1:
            sub = top.add_parser(cmd.path[0], help=cmd.help, description=cmd.description or cmd.help)
        else:
            group, word = cmd.path
            if group not in subs:
                subs[group] = top.add_parser(group, help=groups[group]).add_subparsers(
                    dest=f"{group}_command", required=True
                )
            sub = subs[group].add_parser(word, help=cmd.help, description=cmd.description or cmd.help)
        arguments = resolve(cmd.arguments) if isinstance(cmd.arguments, str) else cmd.arguments
        if arguments is not None:
            arguments(sub)
        sub.set_defaults(cli_command=cmd)
    return parser


def user_error(err: BaseException) -> bool:
    """Whether ``err`` is one of smitin's errors that name the input and the fix (no traceback).

    Looked up among the modules already imported: an error class whose module was never
    imported cannot have been raised, and nothing is imported just to check.
    """
    kinds = (
        ("smitin.backbone", "ModelError"),
        ("smitin.probes", "ProbeFileError"),
        ("smitin.data.errors", "DataError"),
        ("smitin.audio", "AudioError"),
        ("smitin.files", "OutputError"),
        ("smitin.generate", "RequestError"),
        ("smitin.lanes", "LaneError"),
        ("smitin.diagnose.settings", "DiagnoseError"),
        ("smitin.distributed", "LaunchError"),
        ("smitin.textfiles", "TextFileError"),
    )
    classes = tuple(
        getattr(sys.modules[m], name)
        for m, name in kinds
        if m in sys.modules and hasattr(sys.modules[m], name)
    )
    return isinstance(err, (UsageError, *classes))


def dispatch(args: argparse.Namespace) -> int:
    """Run the parsed command; smitin's own errors become ``smitin: error: ...`` and exit 2."""
    cmd: Command = args.cli_command
    try:
        check_outputs(cmd, args)
        return resolve(cmd.handler)(args) or 0
    except KeyboardInterrupt:
        print("smitin: interrupted; cached work is kept and a rerun resumes", file=sys.stderr)
        return 130
    except Exception as err:
        if not user_error(err):
            raise
        print(f"smitin: error: {rank_tag()}{err}", file=sys.stderr)
        return 2


def check_outputs(cmd: Command, args: argparse.Namespace) -> None:
    """Refuse the command's unwritable output paths before any work (a UsageError naming the option)."""
    check_paths(args, files=cmd.files, folders=cmd.folders)


def check_paths(args: argparse.Namespace, *, files: Sequence[str] = (), folders: Sequence[str] = ()) -> None:
    """Refuse unwritable files and folders named by these options (unset options are skipped)."""
    from ..files import OutputError, check_folder, check_writable

    try:
        for name in files:
            if getattr(args, name, None) is not None:
                check_writable(getattr(args, name), flag(name), suffixes=known_suffixes(name))
        for name in folders:
            if getattr(args, name, None) is not None:
                check_folder(getattr(args, name), flag(name))
    except OutputError as err:
        raise UsageError(str(err)) from None


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def known_suffixes(option: str) -> frozenset[str] | None:
    """The file types an output option can be written as (a plot: matplotlib's); None: any."""
    if option != "plot":
        return None
    from matplotlib.backend_bases import FigureCanvasBase

    return frozenset(FigureCanvasBase.get_supported_filetypes())


def rank_tag() -> str:
    """'[rank R/N] ' under torchrun (read from its variables, no torch import), else ''."""
    size = os.environ.get("WORLD_SIZE", "1")
    return f"[rank {os.environ.get('RANK', '?')}/{size}] " if size not in ("", "1") else ""
