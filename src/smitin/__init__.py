"""smitin: steer MusicGen with per-head probes and self-monitoring (SMITIN, Koo et al. 2025).

In Python::

    import smitin
    model = smitin.load()                                   # or "facebook/musicgen-small"
    segments = smitin.data.stem_segments("stems/", "drums", sample_rate=model.sample_rate)
    drums = smitin.train_probes(model, segments)            # a ProbeSet: one probe per head
    drums.save("drums.safetensors")
    result = smitin.generate(model, "a calm piano piece", steer=[smitin.Steer(drums, alpha=5)])
    result.save("out.wav", trace="trace.json")              # audio + what the monitor saw
"""

from . import codec as _codec  # noqa: E402, F401  registers the bundled model's codec with transformers
from . import data  # noqa: E402
from .backbone import Backbone, load  # noqa: E402
from .generate import Result, continue_audio, generate  # noqa: E402
from .options import GenerationOptions  # noqa: E402
from .probes import ProbeSet  # noqa: E402
from .probes import fit as train_probes  # noqa: E402
from .steering import Steer  # noqa: E402
from .version import __version__

__all__ = [
    "Backbone",
    "GenerationOptions",
    "ProbeSet",
    "Result",
    "Steer",
    "continue_audio",
    "data",
    "generate",
    "load",
    "train_probes",
    "__version__",
]
