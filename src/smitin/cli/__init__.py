"""The `smitin` command: one table of commands (:data:`COMMANDS`), one parser, one dispatch.

Modules: ``registry`` (the Command record, building the parser, running a command),
``commands`` (the table and :func:`main`), ``arguments`` (the options of smitin's own commands),
``probes`` and ``generation`` (their handlers). The work is done by the library modules,
imported when a command runs: building the parser imports no torch.
"""

from .commands import COMMANDS, build_parser, main
from .registry import Command, UsageError
from .steers import parse_steer

__all__ = ["COMMANDS", "Command", "UsageError", "build_parser", "main", "parse_steer"]
