"""What goes wrong with input data: the error raised, and the report of files skipped on the way."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Unusable input; the message names the offending file or folder and the fix."""


class Report:
    """Collects skipped files (with a counted reason) and warnings for a set's summary."""

    def __init__(self) -> None:
        self.skipped: list[dict] = []
        self.warnings: list[str] = []
        self.reasons: dict[str, int] = {}

    def skip(self, path: Path | str, reason: str) -> None:
        self.skipped.append({"path": str(path), "reason": reason})
        kind = reason.split(":")[0]
        self.reasons[kind] = self.reasons.get(kind, 0) + 1

    def warn(self, msg: str) -> None:
        self.warnings.append(msg)
