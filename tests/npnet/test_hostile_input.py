"""Careless and hostile files and tensors given to the core: each refused with the input it concerns.

Regression tests of the hostile-input review (files that are not checkpoints, damaged weights, scaled
noise, names that are not UTF-8)."""

from __future__ import annotations

import os

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import npnet
from npnet import InputError
from npnet.inputs import shown
from npnet.learning.collection import DatasetWriter, Pair, collect, plan
from npnet.learning.dataset import NoisePromptDataset

CONFIG = npnet.NPNetConfig(channels=4, height=16, width=16, tokens=8, embed_dim=32, family=None)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("hostile") / "good.safetensors"
    npnet.save(npnet.NPNet(CONFIG), path)
    with safe_open(path, "pt") as f:
        metadata = f.metadata()
    return path, load_file(path), metadata


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("text.pth", b"hello, not a checkpoint", r"is not a readable PyTorch checkpoint \(KeyError"),
        ("zero.pth", b"", r"is empty \(0 bytes\)"),
        ("noise.safetensors", os.urandom(256), "is not a readable .safetensors file"),
    ],
)
def test_files_that_are_not_checkpoints_are_a_value_error_with_a_reason(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=message):
        npnet.load(tmp_path / name)


def test_integer_and_nan_weights_are_refused_at_load(tmp_path, saved):
    _, state, metadata = saved
    save_file(
        {k: v.to(torch.int32) for k, v in state.items()}, str(tmp_path / "int.safetensors"), metadata=metadata
    )
    with pytest.raises(ValueError, match="not floating point"):
        npnet.load(tmp_path / "int.safetensors")
    broken = {**state, "alpha": torch.full_like(state["alpha"], float("nan"))}
    save_file(broken, str(tmp_path / "nan.safetensors"), metadata=metadata)
    with pytest.raises(ValueError, match=r"NaN or Inf values \(1\): alpha; the file is damaged"):
        npnet.load(tmp_path / "nan.safetensors")


def test_an_upper_case_suffix_loads_as_safetensors(tmp_path, saved):
    path, _, _ = saved
    (tmp_path / "UPPER.SAFETENSORS").write_bytes(path.read_bytes())
    assert npnet.load(tmp_path / "UPPER.SAFETENSORS").config == CONFIG


@pytest.mark.parametrize(
    "noise, input_name, message",
    [
        (torch.zeros(0, 4, 16, 16), "noise", "is empty"),
        (torch.zeros(1, 4, 16, 16, dtype=torch.int64), "noise", "floating-point"),
        (torch.full((1, 4, 16, 16), float("nan")), "noise", "NaN or Inf"),
        (torch.randn(1, 4, 16, 16) * 1e30, "noise", "unit-variance Gaussian noise"),
    ],
)
def test_bad_noise_is_blamed_on_the_noise(saved, noise, input_name, message):
    model = npnet.load(saved[0])
    with pytest.raises(npnet.InputError, match=message) as error:
        npnet.golden_noise(model, noise, torch.randn(1, 8, 32))
    assert error.value.input == input_name


def test_nan_conditioning_is_blamed_on_the_prompt(saved):
    with pytest.raises(npnet.InputError) as error:
        npnet.golden_noise(
            npnet.load(saved[0]), torch.randn(1, 4, 16, 16), torch.full((1, 8, 32), float("nan"))
        )
    assert error.value.input == "prompt_embeds"


def test_a_name_that_is_not_utf8_is_shown_escaped_and_can_be_written(tmp_path):
    name = os.fsdecode(b"bad\xff.pth")
    (tmp_path / name).write_bytes(b"")
    text = shown(tmp_path / name)
    assert text.endswith("bad\\xff.pth")
    text.encode("utf-8")  # what a log handler does; the raw name would raise UnicodeEncodeError
    with pytest.raises(ValueError) as error:
        npnet.load(tmp_path / name)
    str(error.value).encode("utf-8")


# -- noise prompt datasets: values a float16 shard cannot hold, files that are not shards (issue 20) -----


def pair(seed: int, gain: float = 0.5) -> Pair:
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(1, 4, 8, 8, generator=g)
    return Pair(noise, noise + 0.1, torch.randn(1, 5, 16, generator=g), gain)


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("golden", 7e4, "golden holds values beyond"),
        ("embeds", float("nan"), "embeds holds NaN"),
        ("noise", float("inf"), "noise holds NaN or Inf"),
    ],
)
def test_values_are_checked_as_a_float16_shard_stores_them(tmp_path, field, value, words):
    made = pair(0)
    tensors = {"noise": made.noise, "golden": made.golden, "embeds": made.embeds}
    tensors[field] = tensors[field].clone()
    tensors[field].view(-1)[0] = value
    bad = Pair(tensors["noise"], tensors["golden"], tensors["embeds"], 0.5)
    writer = DatasetWriter(tmp_path, {})
    with pytest.raises(ValueError, match=words):
        collect(plan(["x"], 1, 0), lambda batch: [bad for _ in batch], writer)
    assert not list(tmp_path.glob("*.safetensors"))


def test_an_infinite_gain_is_refused_by_the_training_reader(tmp_path):
    from npnet.learning.dataset import DatasetError, write_shard

    made = pair(0)
    write_shard(
        tmp_path / "a.safetensors", made.noise, made.golden, made.embeds, torch.tensor([float("inf")])
    )
    with pytest.raises(DatasetError, match="a.safetensors: 'gain' contains NaN or Inf"):
        NoisePromptDataset(tmp_path)


def _good_shard(folder, name="part-000-of-001-00000.safetensors"):
    writer = DatasetWriter(folder, {"cfg": 5.5})
    collect(plan(["x"], 1, 0), lambda batch: [pair(s.seed) for s in batch], writer)
    return next(folder.glob("part-*.safetensors"))


UNREADABLE = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[:40]),
    "empty": lambda p: p.write_bytes(b""),
    "huge-header": lambda p: p.write_bytes((2**40).to_bytes(8, "little") + b"{}"),
    "pickle": lambda p: p.write_bytes(b"\x80\x04\x95" + b"\x00" * 64),
    "directory": lambda p: (p.unlink(), p.mkdir()),
    "dangling-link": lambda p: (p.unlink(), p.symlink_to(p.with_name("gone"))),
    "fifo": lambda p: (p.unlink(), __import__("os").mkfifo(p)),
}


@pytest.mark.parametrize("spoil", list(UNREADABLE), ids=list(UNREADABLE))
def test_an_unreadable_shard_is_named_and_never_hangs(tmp_path, spoil):
    shard = _good_shard(tmp_path)
    UNREADABLE[spoil](shard)
    with pytest.raises(InputError) as error:
        DatasetWriter(tmp_path, {"cfg": 5.5})
    assert error.value.input == "dataset_name" and shard.name in str(error.value)
    from npnet.learning.dataset import DatasetError

    with pytest.raises(DatasetError, match=shard.name):
        NoisePromptDataset(tmp_path)


@pytest.mark.parametrize(
    "metadata, index, words",
    [
        ("{not json", None, "is not JSON"),
        (None, torch.zeros(1, 1, dtype=torch.int64), "'index' has shape [1, 1]"),
        (None, "drop", "has no 'index'"),
    ],
    ids=["bad-json", "2d-index", "no-index"],
)
def test_a_shard_with_bad_metadata_or_index_is_named(tmp_path, metadata, index, words):
    import json

    from safetensors.torch import save_file

    made = pair(0)
    tensors = {"noise": made.noise, "golden": made.golden, "embeds": made.embeds, "gain": torch.tensor([0.5])}
    if index is None:
        tensors["index"] = torch.tensor([0])
    elif not isinstance(index, str):
        tensors["index"] = index
    info = metadata if metadata is not None else json.dumps({"version": 1, "cfg": 5.5, "shard_count": 1})
    save_file(tensors, tmp_path / "part-000-of-001-00000.safetensors", metadata={"npd": info})
    with pytest.raises(InputError, match=r"part-000-of-001-00000\.safetensors") as error:
        DatasetWriter(tmp_path, {"cfg": 5.5})
    assert words in str(error.value)


@pytest.mark.parametrize(
    "kwargs, input_name",
    [
        ({"strength": float("nan")}, "strength"),
        ({"strength": 1.5}, "strength"),
        ({"strength": True}, "strength"),
        ({"token_policy": "everything"}, "token_policy"),
        ({"resolution_mode": "stretch"}, "resolution_mode"),
    ],
)
def test_golden_settings_refuse_bad_values_at_construction_naming_them(kwargs, input_name):
    """The one place the Golden Noise widgets are checked: both hosts build their settings through it."""
    with pytest.raises(npnet.InputError) as error:
        npnet.GoldenSettings(**kwargs)
    assert error.value.input == input_name and input_name in str(error.value)
    assert npnet.GoldenSettings(strength=1).strength == 1.0 and isinstance(
        npnet.GoldenSettings().strength, float
    )


@pytest.mark.parametrize("strength", [0.25, 0.5, 0.9])
def test_a_partial_strength_blends_the_two_spreads_it_does_not_claim_unit_variance(strength):
    """The blend's std is (1 - s) std(plain) + s std(golden) per sample: with a golden noise of std 1.3
    it is above 1, as the README and tooltips now say (they used to promise unit variance)."""
    from npnet.golden import blend

    g = torch.Generator().manual_seed(4)
    plain = torch.randn(3, 4, 16, 16, generator=g)
    golden = 1.3 * torch.randn(3, 4, 16, 16, generator=g)
    out = blend(plain, golden, strength)
    dims = (1, 2, 3)
    expected = (1 - strength) * plain.std(dim=dims) + strength * golden.std(dim=dims)
    assert torch.allclose(out.std(dim=dims), expected, rtol=1e-5)
    if strength >= 0.5:
        assert (out.std(dim=dims) > 1.02).all()
