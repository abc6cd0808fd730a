"""``smitin generate --prompts FILE``: many generations from one file, split across ranks, resumable.

FILE holds one request per line: a plain text prompt, or a JSON object with "prompt" and any of
"steer" (a list of "FILE[:ALPHA][:keep]", replacing the command line's --steer and --keep), "seed"
and "duration".
Blank lines and lines starting with '#' are skipped but still count, so line numbers stay stable.
Line i (counting from 0 over the requests) writes OUT/NNNN.wav (OUT/NNNN-0.wav... with
--batch) and OUT/NNNN.json (its trace); its seed is the line's own, else --seed + i, so every
file is the same however many processes run. The trace records what made the audio (the line's
`Record`: prompt, steers with the probe files' SHA-256, seed, duration, model and options); a
rerun skips a line whose files exist with the same record, and regenerates one whose record
differs, saying how many and why. Under torchrun, line i goes to rank i % WORLD_SIZE.
--trace and --plot name single files and are refused here (each line has its own trace).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .registry import UsageError
from .steers import SteerSpec, parse_steer

MAX_FILE_BYTES = 64 << 20  # a prompts file: 10,000 lines of JSON take about 1 MB
MAX_PROMPT_CHARS = 2000  # a text prompt (MusicGen's text encoder reads a few hundred tokens)


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
    from ..textfiles import TextFileError, loads, read_text

    if not path.exists():
        raise UsageError(f"--prompts {path}: no such file")
    try:
        content = read_text(path, "--prompts", MAX_FILE_BYTES)
    except TextFileError as err:
        raise UsageError(str(err)) from None
    lines: list[Line] = []
    for number, raw in enumerate(content.splitlines(), start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        where = f"--prompts {path}, line {number}"
        if not text.startswith("{"):
            lines.append(Line(len(lines), number, _prompt(text, where), None, None, None))
            continue
        try:
            item = loads(text, where)
        except json.JSONDecodeError as err:
            raise UsageError(
                f"{where}: not valid JSON ({err.msg}); write a plain prompt or a JSON object"
            ) from None
        except TextFileError as err:
            raise UsageError(str(err)) from None
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
        lines.append(Line(len(lines), number, _prompt(item.get("prompt", ""), where), parsed, seed, duration))
    if not lines:
        raise UsageError(f"--prompts {path}: no prompts in the file")
    return lines


def _prompt(text: str, where: str) -> str:
    if len(text) > MAX_PROMPT_CHARS:
        raise UsageError(
            f"{where}: a prompt of {len(text):,} characters; at most {MAX_PROMPT_CHARS} are allowed"
        )
    return text


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes: a probe file retrained under the same name gets another record."""
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def wavs(out: Path, line: Line, batch: int) -> list[Path]:
    """The audio files of a line: NNNN.wav, or NNNN-0.wav, NNNN-1.wav... with --batch."""
    if batch == 1:
        return [out / f"{line.name()}.wav"]
    return [out / f"{line.name()}-{i}.wav" for i in range(batch)]


def written(out: Path, line: Line, batch: int) -> dict[str, Any] | None:
    """The record in a line's trace if all its files are there (None: not written, or unreadable)."""
    trace = out / f"{line.name()}.json"
    if not (trace.is_file() and all(p.is_file() for p in wavs(out, line, batch))):
        return None
    try:
        record = json.loads(trace.read_text(encoding="utf-8")).get("settings", {}).get("request")
    except (OSError, ValueError, AttributeError):
        return {}
    return record if isinstance(record, dict) else {}


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The parts of a line's record that changed ('prompt', 'steer'...), in the record's order."""
    return [k for k in new if old.get(k) != new[k]] or (["record"] if old != new else [])


def run(args: argparse.Namespace, options, settings: dict[str, Any]) -> int:
    """Generate every line of --prompts this rank owns that is not written yet; `settings` are
    the `Steer` keywords the command line gives every trait (`steers.steer_settings`)."""
    from dataclasses import replace

    from ..files import OutputError, check_writable

    for flag, value in (("--trace", args.trace), ("--plot", args.plot)):
        if value is not None:
            raise UsageError(
                f"{flag} names one file; with --prompts each line writes its own trace (OUT/NNNN.json): "
                f"drop {flag}, or use `smitin generate PROMPT` for one clip with {flag}"
            )
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
    from ..probes import ProbeSet

    digests = {}
    for path in sorted(probe_files):  # every probe file checked (and fingerprinted) before any work
        ProbeSet.load(path)
        digests[path] = file_digest(path)
    records = [record(args, line, per_line[line.index], settings, digests) for line in lines]
    from ..distributed import barrier, joined

    with joined(args.device) as world:
        from ..backbone import load
        from ..generate import check_request
        from ..generate import generate as generate_audio
        from ..steering import Steer

        batch = options.batch
        mine = [line for line in lines if line.index % world.size == world.rank]
        for line in mine:  # temporaries of a killed earlier run (hidden, never read): remove
            for pattern in (f".{line.name()}.*.tmp*", f".{line.name()}-*.tmp*"):
                for stale in out.glob(pattern):
                    stale.unlink(missing_ok=True)
        found = {line.index: written(out, line, batch) for line in mine}
        todo = [line for line in mine if found[line.index] != records[line.index]]
        changed = {
            line.index: differences(found[line.index] or {}, records[line.index])
            for line in todo
            if found[line.index] is not None
        }
        why = "; ".join(
            f"line {lines[i].number}: {', '.join(d)} changed" for i, d in list(changed.items())[:5]
        )
        more = f"; ... ({len(changed) - 5} more)" if len(changed) > 5 else ""
        print(
            f"{world.tag()}{len(lines)} prompts, {len(mine)} for this process, "
            f"{len(mine) - len(todo)} already written"
            + (f", {len(changed)} to regenerate ({why}{more})" if changed else "")
        )
        if todo:
            backbone = load(args.model, device=world.device(args.device), dtype=args.dtype)
            probes = {path: ProbeSet.load(path, backbone) for path in sorted(probe_files)}
            if args.heads is not None:
                from ..recipes import check_heads

                try:
                    check_heads(
                        settings["heads"], backbone.layout.layers, backbone.layout.heads, backbone.name
                    )
                except ValueError as err:
                    raise UsageError(f"--{err}") from None
            for line in todo:  # a line the model cannot serve fails now, before any generation
                try:
                    check_request(backbone, [], per_line[line.index])
                except ValueError as err:
                    raise UsageError(f"--prompts {args.prompts}, line {line.number}: {err}") from None
            from tqdm.auto import tqdm

            # rank 0's bar counts every rank's lines: line i's round ends near line i + size - 1
            bar = tqdm(
                total=len(lines),
                desc="prompts (all ranks)",
                unit="clip",
                disable=not world.main or args.quiet,
            )
            bar.update(len(mine) - len(todo))
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
                result.trace.settings["request"] = records[line.index]
                paths = result.save(out / f"{line.name()}.wav", out / f"{line.name()}.json")
                bar.update(max(0, min(len(lines), line.index + world.size) - bar.n))
                names = ", ".join(p.name for p in paths)
                bar.write(
                    f"{world.tag()}wrote {out}/{names} ({line.prompt!r}, seed {per_line[line.index].seed})"
                )
            bar.close()
        barrier(world)
    if world.main:
        missing = [line.name() for line in lines if written(out, line, batch) != records[line.index]]
        if missing:
            raise UsageError(f"{len(missing)} prompts were not written ({', '.join(missing[:5])}...); rerun")
        print(f"all {len(lines)} prompts written to {out}")
    return 0


def record(
    args: argparse.Namespace,
    line: Line,
    options: Any,
    settings: dict[str, Any],
    digests: dict[Path, str],
) -> dict[str, Any]:
    """What makes a line's audio, as its trace records it (JSON values): a rerun compares it."""
    steer = line.steer if line.steer is not None else args.steers
    return {
        "prompt": line.prompt,
        "steer": [
            {"file": str(s.path), "sha256": digests[s.path], "alpha": s.alpha, "keep": s.keep} for s in steer
        ],
        "seed": options.seed,
        "duration": options.duration,
        "model": str(args.model),
        "options": json.loads(json.dumps(options.settings(), default=str)),
        "steering": {"recipe": args.recipe, **json.loads(json.dumps(settings, default=str))},
    }
