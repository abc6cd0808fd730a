"""One table of commands: every command has a unique path, options and a handler that exists."""

import argparse

from smitin.cli import COMMANDS, Command, build_parser
from smitin.cli.registry import build, dispatch, resolve

REQUIRED = {  # the options a command cannot parse without
    ("probes", "train"): ["--out", "p.safetensors"],
    ("probes", "show"): ["p.safetensors"],
    ("generate",): [""],
    ("continue",): ["a.wav"],
    ("data", "synth"): ["--out", "stems"],
}


def test_every_command_resolves():
    paths = [cmd.path for cmd in COMMANDS]
    assert len(set(paths)) == len(paths)
    assert {p[0] for p in paths} == {
        "probes",
        "generate",
        "continue",
        "data",
        "demo",
        "experiment",
        "diagnose",
        "ui",
    }
    for cmd in COMMANDS:
        assert callable(resolve(cmd.handler)), cmd.name
        args = build_parser().parse_args([*cmd.path, *REQUIRED.get(cmd.path, [])])
        assert args.cli_command == cmd and args.command == cmd.path[0]
        if len(cmd.path) == 2:
            assert getattr(args, f"{cmd.path[0]}_command") == cmd.path[1]


def test_a_table_builds_a_parser_and_dispatches(capsys):
    def arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("--n", type=int, default=1)

    table = (
        Command(("hello",), "say hello", "builtins:print", arguments),
        Command(("group", "leaf"), "a sub-command", "builtins:len", description="a leaf"),
    )
    parser = build(table, {"group": "a group"}, prog="x")
    args = parser.parse_args(["hello", "--n", "3"])
    assert args.n == 3 and args.cli_command.name == "hello"
    assert dispatch(args) == 0  # print(args) returned None: exit 0
    assert "Namespace(" in capsys.readouterr().out
    assert "a group" in parser.format_help() and "say hello" in parser.format_help()
