"""A training run's files: safetensors + JSON pairs for encoded clips, checkpoints and caches (no pickle)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import torch

from .clips import Example


def save_state(tensors: dict[str, torch.Tensor], info: dict, path: Path) -> None:
    """Write `path`.safetensors + `path`.json atomically (JSON last: it marks a complete pair)."""
    from safetensors.torch import save_file

    st, js = path.with_suffix(".safetensors"), path.with_suffix(".json")
    unshared = {k: v.detach().cpu().clone(memory_format=torch.contiguous_format) for k, v in tensors.items()}
    save_file(unshared, str(st) + ".tmp")
    os.replace(str(st) + ".tmp", st)
    js.with_suffix(".tmp").write_text(json.dumps(info))
    os.replace(js.with_suffix(".tmp"), js)


def load_state(path: Path) -> tuple[dict[str, torch.Tensor], dict] | None:
    """The pair written by `save_state`, or None if it is missing or incomplete (no pickle anywhere)."""
    from safetensors.torch import load_file

    st, js = path.with_suffix(".safetensors"), path.with_suffix(".json")
    if not (st.exists() and js.exists()):
        return None
    return load_file(st), json.loads(js.read_text())


def save_examples(blob: dict, path: Path) -> None:
    """Write encoded clips (`{"train", "heldout": [Example], "families", "heldout_songs"}`) as a state pair."""
    tensors, info = {}, {k: blob[k] for k in ("families", "heldout_songs")}
    for part in ("train", "heldout"):
        info[part] = []
        for i, ex in enumerate(blob[part]):
            tensors[f"{part}/{i}"] = ex.codes
            info[part].append({k: v for k, v in asdict(ex).items() if k not in ("codes", "activity")})
    save_state(tensors, info, path)


def load_examples(path: Path) -> dict | None:
    """The clips written by `save_examples` (as `Example`s), or None if missing or incomplete."""
    state = load_state(path)
    if state is None:
        return None
    tensors, info = state
    for part in ("train", "heldout"):
        info[part] = [Example(**meta, codes=tensors[f"{part}/{i}"]) for i, meta in enumerate(info[part])]
    return info


def save_checkpoint(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    extra: dict,
    path: Path,
    tagger: torch.nn.Module | None = None,
) -> None:
    """Model (+ tagger) + AdamW state + RNG states as safetensors + JSON (resumable, and no pickle)."""
    tensors = {f"model/{k}": v for k, v in model.state_dict().items()}
    if tagger is not None:
        tensors.update({f"tagger/{k}": v for k, v in tagger.state_dict().items()})
    opt_state = opt.state_dict()
    for idx, st in opt_state["state"].items():
        for name, value in st.items():
            tensors[f"opt/{idx}/{name}"] = torch.as_tensor(value)
    tensors["torch_rng"] = torch.get_rng_state()
    info = {**extra, "param_groups": opt_state["param_groups"]}
    save_state(tensors, info, path)


def load_checkpoint(
    model: torch.nn.Module, opt: torch.optim.Optimizer, path: Path, tagger: torch.nn.Module | None = None
) -> dict | None:
    """Restore a `save_checkpoint` pair into the model, optimiser (+ tagger) and torch's RNG.

    Returns the extra info saved with it (step, elapsed, rng), or None if `path` holds no complete pair.
    """
    state = load_state(path)
    if state is None:
        return None
    tensors, info = state
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model/")})
    if tagger is not None:
        tagger.load_state_dict({k[7:]: v for k, v in tensors.items() if k.startswith("tagger/")})
    per_param: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("opt/"):
            _, idx, name = key.split("/", 2)
            per_param.setdefault(int(idx), {})[name] = value
    opt.load_state_dict({"state": per_param, "param_groups": info.pop("param_groups")})
    torch.set_rng_state(tensors["torch_rng"])
    return info
