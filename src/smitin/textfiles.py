"""Small text files people hand to smitin (lanes, prompts): read with limits, before any parsing.

A user's file may be anything: /dev/zero (endless), a FIFO (blocks forever), gigabytes, Latin-1
text, JSON nested ten thousand deep or a number with ten thousand digits. Each of those is
refused here with a message that names the file, instead of hanging, filling the memory or
ending in a traceback.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

MAX_DEPTH = 32  # nesting of JSON arrays and objects; lanes need 4, prompt lines 2
MAX_NUMBER = 2**63  # |number| in a JSON file: a seed fits; the fields bound their own numbers further


class TextFileError(ValueError):
    """A text file that cannot be read as asked; the message names it and the problem."""


def read_text(path: str | Path, what: str, limit: int) -> str:
    """The UTF-8 text of a regular file of at most `limit` bytes; TextFileError otherwise."""
    path = Path(path)
    try:
        info = path.stat()
    except OSError as err:
        raise TextFileError(f"{what} {path}: cannot read it ({err.strerror or err})") from None
    if stat.S_ISDIR(info.st_mode):
        raise TextFileError(f"{what} {path} is a folder; give a file")
    if not stat.S_ISREG(info.st_mode):
        raise TextFileError(f"{what} {path} is not a regular file (a device, pipe or socket); give a file")
    if info.st_size > limit:
        raise TextFileError(f"{what} {path} is {info.st_size:,} bytes; at most {limit:,} are read")
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as err:
        raise TextFileError(f"{what} {path}: cannot read it ({err.strerror or err})") from None
    if len(data) > limit:  # grew while we looked
        raise TextFileError(f"{what} {path} is over {limit:,} bytes; at most {limit:,} are read")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise TextFileError(
            f"{what} {path}: not UTF-8 text (byte {err.start}: {data[err.start : err.start + 1]!r}); "
            "save it as UTF-8"
        ) from None


def loads(text: str, where: str) -> Any:
    """JSON with bounded nesting and numbers; TextFileError naming `where` otherwise.

    json.JSONDecodeError is re-raised as is (its position is the useful part of the message).
    """
    try:
        data = json.loads(text, parse_constant=_constant)
    except json.JSONDecodeError:
        raise
    except TextFileError as err:
        raise TextFileError(f"{where}: {err}") from None
    except RecursionError:
        raise TextFileError(f"{where}: JSON nested too deeply (at most {MAX_DEPTH} levels)") from None
    except ValueError as err:  # an integer with more digits than Python converts
        raise TextFileError(f"{where}: {err}; numbers must stay below {MAX_NUMBER:g}") from None
    _check(data, where, 0)
    return data


def _constant(name: str) -> float:
    raise TextFileError(f"{name} is not a number JSON allows; write a finite number")


def _check(value: Any, where: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise TextFileError(f"{where}: JSON nested too deeply (at most {MAX_DEPTH} levels)")
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)) and not abs(value) <= MAX_NUMBER:
        raise TextFileError(f"{where}: the number {_short(value)} is out of range (|x| <= {MAX_NUMBER:g})")
    if isinstance(value, dict):
        for v in value.values():
            _check(v, where, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check(v, where, depth + 1)


def _short(value: float) -> str:
    text = repr(value)
    return text if len(text) <= 24 else f"{text[:10]}...({len(text)} digits)"
