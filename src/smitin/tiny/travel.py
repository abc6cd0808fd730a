"""A training run's caches packed small enough to travel to a lent GPU (and back into a run folder).

A GPU machine is handed the working tree, 64 MiB in all, and no rendered songs. The run's two big
caches are packed losslessly: codes (4 codebooks x 1024 entries = 40 bits a frame) into 5 bytes a
frame instead of 8, and the instrument activity (at most 8 families) into one byte a frame instead of
one per family. The codec, tokenizer and JSON files are copied as they are. `unpack_run` rebuilds the
exact `codes` and `activity` pairs that `smitin.tiny.prepare` reads, so training there is the same
run as here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch

from .checkpoints import load_state, save_state

_COPY = ("codec", "tokenizer", "codes.json", "activity.json")


def pack_codes(clips: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """[4, T_i] codes (values < 1024) -> (uint8 bytes, 5 a frame; int64 lengths)."""
    lengths = torch.tensor([c.shape[1] for c in clips], dtype=torch.int64)
    codes = torch.cat([c.long() for c in clips], dim=1).numpy()
    if codes.shape[0] != 4 or codes.min() < 0 or codes.max() >= 1024:
        raise ValueError("pack_codes packs 4 codebooks of at most 1024 entries")
    word = codes[0] | codes[1] << 10 | codes[2] << 20 | codes[3] << 30  # 40 bits a frame
    packed = word.astype("<u8").view(np.uint8).reshape(-1, 8)[:, :5]
    return torch.from_numpy(np.ascontiguousarray(packed).reshape(-1)), lengths


def unpack_codes(packed: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
    """Inverse of `pack_codes`: the [4, T_i] int16 codes."""
    b = packed.numpy().reshape(-1, 5)
    full = np.zeros((b.shape[0], 8), dtype=np.uint8)
    full[:, :5] = b
    word = full.view("<u8").reshape(-1).astype(np.int64)
    codes = np.stack([(word >> (10 * q)) & 1023 for q in range(4)]).astype(np.int16)
    return [torch.from_numpy(c.copy()) for c in np.split(codes, np.cumsum(lengths.numpy())[:-1], axis=1)]


def pack_activity(clips: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """[F, T_i] bool/uint8 activity (F <= 8) -> (uint8 bit masks a frame, int64 lengths)."""
    lengths = torch.tensor([a.shape[1] for a in clips], dtype=torch.int64)
    act = torch.cat([a.to(torch.uint8) for a in clips], dim=1)
    if act.shape[0] > 8:
        raise ValueError("pack_activity packs at most 8 families")
    bits = (act.long() << torch.arange(act.shape[0])[:, None]).sum(0)
    return bits.to(torch.uint8), lengths


def unpack_activity(bits: torch.Tensor, lengths: torch.Tensor, families: int) -> list[torch.Tensor]:
    """Inverse of `pack_activity`: the [F, T_i] uint8 activity."""
    act = ((bits.long()[None] >> torch.arange(families)[:, None]) & 1).to(torch.uint8)
    return list(torch.split(act, lengths.tolist(), dim=1))


def _keys(tensors: dict[str, torch.Tensor], part: str) -> list[str]:
    n = sum(k.startswith(part + "/") for k in tensors)
    return [f"{part}/{i}" for i in range(n)]


def pack_run(run: str | Path, dest: str | Path) -> Path:
    """Write `run`'s codec, tokenizer, codes and activity into `dest`, packed (see the module doc)."""
    run, dest = Path(run), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in _COPY:
        src = run / name
        if src.is_dir():
            shutil.copytree(src, dest / name, dirs_exist_ok=True)
        elif src.exists():
            shutil.copy2(src, dest / name)
    codes = load_state(run / "codes")
    if codes is None:
        raise FileNotFoundError(
            f"{run}/codes.safetensors + codes.json: encode the clips first (train --steps 0)"
        )
    tensors: dict[str, torch.Tensor] = {}
    for part in ("train", "heldout"):
        tensors[f"{part}/bytes"], tensors[f"{part}/lengths"] = pack_codes(
            [codes[0][k] for k in _keys(codes[0], part)]
        )
    save_state(tensors, {"packed": "codes"}, dest / "codes-packed")
    acts = load_state(run / "activity")
    if acts is not None:
        families = len(acts[1]["families"])
        tensors = {}
        for part in ("train", "heldout"):
            tensors[f"{part}/bits"], tensors[f"{part}/lengths"] = pack_activity(
                [acts[0][k] for k in _keys(acts[0], part)]
            )
        save_state(tensors, {"packed": "activity", "families": families}, dest / "activity-packed")
    return dest


def unpack_run(src: str | Path, run: str | Path) -> Path:
    """Rebuild a run folder from `pack_run`'s output: the exact caches `prepare` reads."""
    src, run = Path(src), Path(run)
    run.mkdir(parents=True, exist_ok=True)
    for name in _COPY:
        if (src / name).is_dir():
            shutil.copytree(src / name, run / name, dirs_exist_ok=True)
    packed = load_state(src / "codes-packed")
    if packed is None:
        raise FileNotFoundError(f"{src}/codes-packed.safetensors: made by pack_run")
    tensors = {
        f"{part}/{i}": c
        for part in ("train", "heldout")
        for i, c in enumerate(unpack_codes(packed[0][f"{part}/bytes"], packed[0][f"{part}/lengths"]))
    }
    save_state(tensors, json.loads((src / "codes.json").read_text()), run / "codes")
    acts = load_state(src / "activity-packed")
    if acts is not None and (src / "activity.json").exists():
        families = int(acts[1]["families"])
        tensors = {
            f"{part}/{i}": a
            for part in ("train", "heldout")
            for i, a in enumerate(
                unpack_activity(acts[0][f"{part}/bits"], acts[0][f"{part}/lengths"], families)
            )
        }
        save_state(tensors, json.loads((src / "activity.json").read_text()), run / "activity")
    return run


def split_weights(model_dir: str | Path, dest: str | Path, max_bytes: int = 15 * 2**20) -> list[Path]:
    """A saved model's weights as `weights-<i>.safetensors` files of at most `max_bytes` each, lossless.

    What comes back from a lent GPU is a few files of at most 16 MiB each; the config and tokenizer
    are small and the codec never changes, so only the weights need splitting.
    """
    from safetensors.torch import load_file, save_file

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    weights = load_file(Path(model_dir) / "model.safetensors")
    parts: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name in sorted(weights):
        t = weights[name]
        n = t.numel() * t.element_size()
        if n > max_bytes:
            raise ValueError(f"{name} alone is {n} bytes, over {max_bytes}")
        if size + n > max_bytes:
            parts.append({})
            size = 0
        parts[-1][name] = t.contiguous()
        size += n
    paths = []
    for i, part in enumerate(parts):
        paths.append(dest / f"weights-{i}.safetensors")
        save_file(part, str(paths[-1]))
    return paths


def join_weights(src: str | Path) -> dict[str, torch.Tensor]:
    """The state dict `split_weights` wrote into `src` (every `weights-<i>.safetensors`)."""
    from safetensors.torch import load_file

    out: dict[str, torch.Tensor] = {}
    for path in sorted(Path(src).glob("weights-*.safetensors")):
        out.update(load_file(path))
    if not out:
        raise FileNotFoundError(f"no weights-<i>.safetensors in {src}")
    return out


def rebuild_model(weights_dir: str | Path, run: str | Path, dest: str | Path) -> Path:
    """A saved model folder (as `train` writes) from `split_weights`' files and the configs beside
    them, with the run folder's tokenizer; loading it back checks that the weights fit the config."""
    import shutil

    from safetensors.torch import save_file
    from transformers import MusicgenForConditionalGeneration, PreTrainedTokenizerFast

    from .. import codec as _codec  # noqa: F401  (registers the codec's model type with transformers)
    from .model import build_processor, save_bundle

    weights_dir, run, dest = Path(weights_dir), Path(run), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    save_file(join_weights(weights_dir), str(dest / "model.safetensors"), metadata={"format": "pt"})
    for name in ("config.json", "generation_config.json"):
        shutil.copy2(weights_dir / name, dest / name)
    model = MusicgenForConditionalGeneration.from_pretrained(dest)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(run / "tokenizer")
    rate = model.audio_encoder.config.sampling_rate  # the codec's, which the processor must match
    save_bundle(model.eval(), build_processor(tokenizer, int(rate)), dest)
    return dest


def main(argv: list[str] | None = None) -> int:
    """`python -m smitin.tiny.travel pack RUN DEST | unpack SRC RUN | rebuild WEIGHTS RUN DEST`."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    arity = {"pack": 2, "unpack": 2, "rebuild": 3}
    if not args or args[0] not in arity or len(args) - 1 != arity[args[0]]:
        print(main.__doc__, file=sys.stderr)
        return 2
    if args[0] == "pack":
        print(pack_run(*args[1:]))
    elif args[0] == "unpack":
        print(unpack_run(*args[1:]))
    else:
        print(rebuild_model(*args[1:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
