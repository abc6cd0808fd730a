"""Model folders that cannot work are refused at load, naming the folder, what is wrong and the fix.

Each broken folder is built from a tiny MusicGen saved once with `save_pretrained`: no weights,
truncated or garbage weights, weights of another model, not a model folder at all, a file, a
missing path, and a codec that yields another number of codebooks than the decoder reads.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file
from transformers import MusicgenForConditionalGeneration

from smitin import architectures
from smitin.backbone import ModelError, load
from smitin.cli import main


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny):
    path = tmp_path_factory.mktemp("model") / "tiny"
    tiny.model.save_pretrained(path)
    return path


@pytest.fixture
def copy(saved, tmp_path):
    """A fresh copy of the saved tiny model, to break."""

    def make(name: str = "model"):
        return shutil.copytree(saved, tmp_path / name)

    return make


def test_a_saved_copy_loads(copy):
    assert load(copy()).num_codebooks == 4


def test_a_folder_with_a_config_and_no_weights(copy):
    folder = copy()
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="no weights") as err:
        load(folder)
    assert str(folder) in str(err.value) and "save_pretrained" in str(err.value)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_truncated_or_corrupt_weights(copy, damage):
    folder = copy()
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(
        {"truncated": data[: len(data) // 2], "garbage": b"not a model " * 50, "empty": b""}[damage]
    )
    with pytest.raises(ModelError, match="cannot read the weights in") as err:
        load(folder)
    message = str(err.value)
    assert str(folder) in message and "truncated or corrupt" in message and "save_pretrained" in message


def test_weights_of_another_model(copy, tmp_path):
    folder = copy()
    other = tmp_path / "other"
    architectures.build("tiny", heads=2, hidden=16).model.save_pretrained(other)
    shutil.copy(other / "config.json", folder / "config.json")  # config of one model, weights of another
    with pytest.raises(ModelError, match="do not fit its config.json") as err:
        load(folder)
    assert str(folder) in str(err.value)


@pytest.mark.parametrize("kind", ["missing", "extra"])
def test_a_partial_or_longer_decoder_is_refused(copy, tmp_path, kind):
    folder = copy()
    if kind == "missing":  # a weights file without the decoder's output heads: they would be random
        tensors = load_file(folder / "model.safetensors")
        save_file({k: v for k, v in tensors.items() if "lm_heads" not in k}, folder / "model.safetensors")
        match = "lack 4 decoder tensors"
    else:  # config of a one-layer decoder over two-layer weights: layer 1 would be dropped silently
        architectures.build("tiny", layers=1).model.config.save_pretrained(tmp_path / "one")
        shutil.copy(tmp_path / "one" / "config.json", folder / "config.json")
        match = "decoder tensors its config.json has no place for"
    with pytest.raises(ModelError, match=match) as err:
        load(folder)
    assert str(folder) in str(err.value)


def test_a_folder_that_is_not_a_model(tmp_path):
    folder = tmp_path / "songs"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    with pytest.raises(ModelError, match="is not a model folder: it has no config.json") as err:
        load(folder)
    assert str(folder) in str(err.value) and "facebook/musicgen-small" in str(err.value)


def test_a_config_that_is_not_json(copy):
    folder = copy()
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="cannot read the model config") as err:
        load(folder)
    assert str(folder / "config.json") in str(err.value)


def test_a_file_is_not_a_model_folder(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"x")
    with pytest.raises(ModelError, match="is a file, not a model folder"):
        load(path)


@pytest.mark.parametrize("name", ["{tmp}/nothing-here", "no/such/model", "./mymodel"])
def test_a_missing_path_that_is_not_a_hub_id(tmp_path, name):
    name = name.format(tmp=tmp_path)
    with pytest.raises(
        ModelError, match="cannot load a model config from .*there is no such folder.* not a hub id"
    ):
        load(name)


def test_a_missing_path_object_is_a_folder_not_a_hub_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError, match="there is no such folder"):
        load(Path("owner/name"))  # a Path is a folder even when its text could be a hub id


def test_a_codec_with_other_codebooks_than_the_decoder(tmp_path):
    config = architectures.config("tiny")
    config.audio_encoder.target_bandwidths = [
        2.4
    ]  # this EnCodec then yields 8 codebooks; the decoder reads 4
    folder = tmp_path / "k8"
    MusicgenForConditionalGeneration(config).save_pretrained(folder)
    with pytest.raises(ModelError, match="yields 8 codebooks per frame but its decoder reads 4") as err:
        load(folder)
    assert str(folder) in str(err.value)


def test_the_cli_reports_a_broken_folder_in_one_line(copy, capsys):
    folder = copy()
    (folder / "model.safetensors").write_bytes(b"")
    assert main(["generate", "", "--model", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("smitin: error: cannot read the weights in") and str(folder) in err
    assert "Traceback" not in err
