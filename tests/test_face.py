"""The package face: `import smitin` is light, and every public name is there on first use."""

import subprocess
import sys

SCRIPT = """
import sys
import smitin
assert "torch" not in sys.modules, "import smitin loaded torch"
assert smitin.__version__
import smitin.generate  # the submodule must not hide the public function of the same name
from smitin import Backbone, GenerationOptions, ProbeSet, Result, Steer, continue_audio, data, generate, load
from smitin import train_probes
assert smitin.generate is generate and generate.__module__ == "smitin.generate" and callable(generate)
assert smitin.train_probes.__name__ == "fit" and data.stem_segments and smitin.data is data
assert set(smitin.__all__) <= set(dir(smitin))
try:
    smitin.nope
except AttributeError as err:
    assert "nope" in str(err)
else:
    raise AssertionError("smitin.nope")
print("ok")
"""


def test_face_is_lazy_and_complete():
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr
