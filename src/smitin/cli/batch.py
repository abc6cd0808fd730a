"""``smitin generate --prompts FILE``: many generations from one file, split across ranks, resumable.

FILE holds one request per line: a plain text prompt, or a JSON object with "prompt" and any of
"steer" (a list of "FILE[:ALPHA][:keep]", replacing the command line's --steer and --keep), "seed"
and "duration".
Blank lines and lines starting with '#' are skipped but still count, so line numbers stay stable.
Line i (counting from 0 over the requests) writes OUT/NNNN.wav and OUT/NNNN.json (its trace);
its seed is the line's own, else --seed + i, so every file is the same however many processes
run. A line whose two files exist is skipped: rerunning the command finishes what is missing.
Under torchrun, line i goes to rank i % WORLD_SIZE.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .registry import UsageError
from .steers import SteerSpec, parse_steer


@dataclass(frozen=True)
class Line:
    """One request of a prompts file."""

    index: int  # position among the requests: names the output files
    number: int  # line number in the file, for messages
    prompt: str
    steer: tuple[SteerSpec, ...] | None  # None: the command line's --steer and --keep
    seed: int | None
    duration: float | None

    def name(self) -> str:
        return f"{self.index:04d}"


def read_prompts(path: Path) -> list[Line]:
    """Parse and check every line before any work; a bad line is a UsageError naming it."""
    if not path.is_file():
        raise UsageError(f"--prompts {path}: no such file")
    lines: list[Line] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        where = f"--prompts {path}, line {number}"
        if not text.startswith("{"):
            lines.append(Line(len(lines), number, text, None, None, None))
            continue
        try:
            item = json.loads(text)
        except json.JSONDecodeError as err:
            raise UsageError(
                f"{where}: not valid JSON ({err.msg}); write a plain prompt or a JSON object"
            ) from None
        if not isinstance(item, dict) or not isinstance(item.get("prompt", ""), str):
            raise UsageError(f'{where}: a JSON line must be an object with a "prompt" string')
        unknown = set(item) - {"prompt", "steer", "seed", "duration"}
        if unknown:
            raise UsageError(f"{where}: unknown keys {sorted(unknown)}; use prompt, steer, seed, duration")
        steer = item.get("steer")
        if steer is not None and not (isinstance(steer, list) and all(isinstance(s, str) for s in steer)):
            raise UsageError(f'{where}: "steer" must be a list of "FILE[:ALPHA][:keep]" strings')
        seed, duration = item.get("seed"), item.get("duration")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
            raise UsageError(f'{where}: "seed" must be a whole number >= 0, not {seed!r}')
        if duration is not None and (not isinstance(duration, (int, float)) or isinstance(duration, bool)):
            raise UsageError(f'{where}: "duration" must be a number of seconds, not {duration!r}')
        try:
            parsed = tuple(parse_steer(s) for s in steer) if steer is not None else None
        except UsageError as err:
            raise UsageError(f"{where}: {err}") from None
        lines.append(Line(len(lines), number, item.get("prompt", ""), parsed, seed, duration))
    if not lines:
        raise UsageError(f"--prompts {path}: no prompts in the file")
    return lines


def done(out: Path, line: Line) -> bool:
    return (out / f"{line.name()}.wav").exists() and (out / f"{line.name()}.json").exists()


def run(args: argparse.Namespace, options, settings: dict[str, Any]) -> int:
    """Generate every line of --prompts this rank owns that is not written yet; `settings` are
    the `Steer` keywords the command line gives every trait (`steers.steer_settings`)."""
    from dataclasses import replace

    from ..files import OutputError, check_writable

    lines = read_prompts(args.prompts)
    out: Path = args.out
    try:
        check_writable(out / "0000.wav", "--out folder")
    except OutputError as err:
        raise UsageError(str(err)) from None
    per_line = []
    for line in lines:  # every line's options checked before any model loads
        fields = {"seed": line.seed if line.seed is not None else args.seed + line.index}
        if line.duration is not None:
            fields["duration"] = line.duration
        try:
            per_line.append(replace(options, **fields))
        except ValueError as err:
            raise UsageError(f"--prompts {args.prompts}, line {line.number}: {err}") from None
    probe_files = {s.path for line in lines for s in (line.steer or ())} | {s.path for s in args.steers}
    from ..distributed import barrier, joined

    with joined(args.device) as world:
        from ..backbone import load
        from ..generate import generate as generate_audio
        from ..probes import ProbeSet
        from ..steering import Steer

        for path in sorted(probe_files):
            ProbeSet.load(path)
        mine = [line for line in lines if line.index % world.size == world.rank]
        for line in mine:  # temporaries of a killed earlier run (hidden, never read): remove
            for stale in out.glob(f".{line.name()}.*.tmp.*"):
                stale.unlink(missing_ok=True)
        todo = [line for line in mine if not done(out, line)]
        print(
            f"{world.tag()}{len(lines)} prompts, {len(mine)} for this process, "
            f"{len(mine) - len(todo)} already written"
        )
        if todo:
            backbone = load(args.model, device=world.device(args.device), dtype=args.dtype)
            probes = {path: ProbeSet.load(path, backbone) for path in sorted(probe_files)}
            from tqdm.auto import tqdm

            # rank 0's bar counts every rank's lines: line i's round ends near line i + size - 1
            bar = tqdm(
                total=len(lines),
                desc="prompts (all ranks)",
                unit="clip",
                disable=not world.main or args.quiet,
            )
            bar.update(len(lines) - len([x for x in lines if not done(out, x)]))
            for line in todo:
                steers = [
                    Steer(probes[s.path], alpha=s.alpha, keep=s.keep, **settings)
                    for s in (line.steer if line.steer is not None else args.steers)
                ]
                result = generate_audio(
                    backbone,
                    line.prompt or None,
                    steer=steers,
                    options=per_line[line.index],
                    progress=False,
                )
                result.save(out / f"{line.name()}.wav", out / f"{line.name()}.json")
                bar.update(max(0, min(len(lines), line.index + world.size) - bar.n))
                bar.write(
                    f"{world.tag()}wrote {out / line.name()}.wav ({line.prompt!r}, seed {per_line[line.index].seed})"
                )
            bar.close()
        barrier(world)
    if world.main:
        missing = [line.name() for line in lines if not done(out, line)]
        if missing:
            raise UsageError(f"{len(missing)} prompts were not written ({', '.join(missing[:5])}...); rerun")
        print(f"all {len(lines)} prompts written to {out}")
    return 0
