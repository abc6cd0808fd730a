"""`smitin diagnose` on the command line: bad options are refused before any model loads.

(That its --help imports no torch is checked for every command by tests/cli/test_help.py.)
"""

import pytest

from helpers import run_cli


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--analyses", "directions,vibes"], "--analyses: unknown ['vibes']"),
        (["--variant", "x:loud=1"], "unknown key 'loud'"),
        (["--prompts", "0"], "--prompts must be at least 1"),
        (["--only-variants"], "--only-variants needs at least one --variant"),
        (["--noise-levels", "a,b"], "--noise-levels: could not convert"),
        (["--duration", "0"], "--duration must be a positive number of seconds"),
        (["--probes", "missing.safetensors"], "no such file"),
        (["--keep", "drums"], "name another trait than --trait drums"),
        (["--keep", "piano=missing.safetensors"], "no such probe file"),
    ],
)
def test_bad_options_are_refused_before_the_model_loads(args, message, capsys, tmp_path):
    code, text = run_cli(["diagnose", "--out", str(tmp_path / "d"), *args], capsys)
    assert code == 2 and message in text
