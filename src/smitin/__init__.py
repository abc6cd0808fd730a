"""smitin: steer MusicGen with per-head probes and self-monitoring (SMITIN, Koo et al. 2025).

In Python::

    import smitin
    model = smitin.load()                                   # or "facebook/musicgen-small"
    segments = smitin.data.stem_segments("stems/", "drums", sample_rate=model.sample_rate)
    drums = smitin.train_probes(model, segments)            # a ProbeSet: one probe per head
    drums.save("drums.safetensors")
    result = smitin.generate(model, "a calm piano piece", steer=[smitin.Steer(drums, alpha=5)])
    result.save("out.wav", trace="trace.json")              # audio + what the monitor saw

This is the public face only. Its names are imported on first use, so that importing a light
submodule (the `smitin` command builds its parser from `smitin.cli`) loads no torch; the first
name used also registers the bundled model's codec with transformers (`smitin.codec`).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from .version import __version__

if TYPE_CHECKING:
    from . import data
    from .backbone import Backbone, load
    from .generate import Result, continue_audio, generate
    from .lanes import Lane
    from .mixed import Request, generate_mixed
    from .options import GenerationOptions
    from .probes import ProbeSet
    from .probes import fit as train_probes
    from .steering import Steer

# public name -> (module, attribute); attribute None means the module itself
_LAZY: dict[str, tuple[str, str | None]] = {
    "Backbone": ("backbone", "Backbone"),
    "GenerationOptions": ("options", "GenerationOptions"),
    "Lane": ("lanes", "Lane"),
    "Request": ("mixed", "Request"),
    "ProbeSet": ("probes", "ProbeSet"),
    "Result": ("generate", "Result"),
    "Steer": ("steering", "Steer"),
    "continue_audio": ("generate", "continue_audio"),
    "data": ("data", None),
    "generate": ("generate", "generate"),
    "generate_mixed": ("mixed", "generate_mixed"),
    "load": ("backbone", "load"),
    "train_probes": ("probes", "fit"),
}

__all__ = [
    "Backbone",
    "GenerationOptions",
    "Lane",
    "ProbeSet",
    "Request",
    "Result",
    "Steer",
    "continue_audio",
    "data",
    "generate",
    "generate_mixed",
    "load",
    "train_probes",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'smitin' has no attribute {name!r}")
    importlib.import_module(".codec", __name__)  # registers the bundled model's codec with transformers
    module, attr = _LAZY[name]
    mod = importlib.import_module(f".{module}", __name__)
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Face(types.ModuleType):
    """The package module, keeping a public function that shares its name with a submodule.

    Importing ``smitin.generate`` (the module) binds it as the package's ``generate`` attribute,
    which would hide the public ``smitin.generate`` function once the face is lazy; that binding
    is dropped, so ``smitin.generate`` is always the function (as when the face was eager).
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and _LAZY[name][1] is not None and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Face
