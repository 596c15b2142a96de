"""Loading: the three published layouts, strict checking, variant detection, refusing code pickles."""

from __future__ import annotations

import os

import pytest
import torch
from safetensors.torch import save_file

import npnet
from dev.npnet_reference import make_inputs, official_checkpoint


@pytest.mark.parametrize("layout", ["official", "text_embedding"])
def test_all_layouts_give_identical_outputs(checkpoint_files, sdxl_model, layout):
    noise, embeds = make_inputs(1, seed=11)
    model = npnet.load(checkpoint_files[layout])
    # The tensors are bit-identical (next test), but safetensors are memory-mapped at 8-byte aligned file
    # offsets while torch.load allocates 64-byte aligned memory, and CPU BLAS kernels sum in an
    # alignment-dependent order: outputs agree to float32 rounding, not bit for bit.
    assert (model(noise, embeds) - sdxl_model(noise, embeds)).abs().max().item() <= 1e-5


def test_all_layouts_load_identical_tensors(checkpoint_files, sdxl_model):
    expected = sdxl_model.state_dict()
    for layout in ("official", "text_embedding"):
        state_dict = npnet.load(checkpoint_files[layout]).state_dict()
        assert state_dict.keys() == expected.keys()
        assert all(torch.equal(state_dict[key], expected[key]) for key in expected), layout


def test_loaded_model_is_float32_inference_ready(sdxl_model):
    assert {p.dtype for p in sdxl_model.parameters()} == {torch.float32}
    assert not sdxl_model.training
    assert len(sdxl_model.state_dict()) == 22 + 177 + 2 + 2


def test_dit_variant_is_detected_from_the_weights(tmp_path, dit_state_dict):
    path = tmp_path / "dit.safetensors"
    save_file(dit_state_dict, path)
    model = npnet.load(path)
    assert (model.family, model.embed_dim) == ("dit", 1024)
    noise, _ = make_inputs(1)
    with pytest.raises(ValueError, match="looks like SDXL / DreamShaper XL"):
        npnet.golden_noise(model, noise, torch.randn(1, 77, 2048))


def _write(tmp_path, state_dict, name="bad.safetensors"):
    path = tmp_path / name
    save_file(state_dict, path)
    return path


def test_missing_key_is_named(tmp_path, sdxl_state_dict):
    state_dict = {k: v for k, v in sdxl_state_dict.items() if k != "unet_svd.mlp4.2.bias"}
    with pytest.raises(ValueError) as error:
        npnet.load(_write(tmp_path, state_dict))
    message = str(error.value)
    assert "missing keys (1): unet_svd.mlp4.2.bias" in message
    assert "unexpected" not in message and "wrong shapes" not in message
    assert "Accepted formats" in message and "text_embedding" in message


def test_unexpected_key_is_named(tmp_path, sdxl_state_dict):
    state_dict = dict(sdxl_state_dict)
    state_dict["unet_embedding.swin.layers.0.blocks.0.attn.relative_position_index"] = torch.zeros(49, 49)
    with pytest.raises(ValueError) as error:
        npnet.load(_write(tmp_path, state_dict))
    message = str(error.value)
    assert (
        "unexpected keys (1): unet_embedding.swin.layers.0.blocks.0.attn.relative_position_index" in message
    )
    assert "timm < 0.9.6" in message and "missing" not in message


def test_wrong_shape_is_named(tmp_path, sdxl_state_dict):
    state_dict = dict(sdxl_state_dict)
    state_dict["unet_embedding.upconv.weight"] = torch.zeros(4, 768, 1, 1)
    with pytest.raises(ValueError) as error:
        npnet.load(_write(tmp_path, state_dict))
    message = str(error.value)
    assert (
        "wrong shapes (1): unet_embedding.upconv.weight: file [4, 768, 1, 1], NPNet [4, 7, 1, 1]" in message
    )
    assert "missing" not in message and "unexpected" not in message


def test_official_layout_missing_a_top_level_entry(tmp_path, sdxl_state_dict):
    checkpoint = official_checkpoint(sdxl_state_dict)
    del checkpoint["beta"]
    path = tmp_path / "sdxl.pth"
    torch.save(checkpoint, path)
    with pytest.raises(ValueError, match=r"missing keys \(1\): beta"):
        npnet.load(path)


def test_unknown_embedding_width_is_rejected(tmp_path, sdxl_state_dict):
    state_dict = dict(sdxl_state_dict)
    state_dict["embeeding.linear.weight"] = torch.zeros(8, 77 * 768)
    with pytest.raises(ValueError, match="768-wide prompt embedding do not match any released checkpoint"):
        npnet.load(_write(tmp_path, state_dict))


def test_not_an_npnet_file(tmp_path):
    with pytest.raises(ValueError, match="not an NPNet checkpoint"):
        npnet.load(_write(tmp_path, {"weight": torch.zeros(3)}))
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a readable .safetensors"):
        npnet.load(garbage)
    with pytest.raises(FileNotFoundError, match="NPNet weights not found"):
        npnet.load(tmp_path / "absent.pth")


class _RunsCode:
    """Pickles as a call to os.system: what a malicious checkpoint carries."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_carrying_code_is_refused_never_run(tmp_path, sdxl_state_dict):
    marker = tmp_path / "code-ran"
    checkpoint = official_checkpoint(sdxl_state_dict)
    checkpoint["alpha"] = _RunsCode(marker)
    path = tmp_path / "evil.pth"
    torch.save(checkpoint, path)  # pickling only records the call; nothing runs here
    with pytest.raises(ValueError) as error:
        npnet.load(path)
    assert "refused to load" in str(error.value) and "could run code" in str(error.value)
    assert not marker.exists()


def test_half_precision_file_is_widened_exactly(tmp_path, sdxl_state_dict):
    half = {k: v.half() if v.is_floating_point() else v for k, v in sdxl_state_dict.items()}
    model = npnet.load(_write(tmp_path, half))
    assert model.alpha.dtype == torch.float32
    assert torch.equal(model.unet_svd.mlp3[0].weight, half["unet_svd.mlp3.0.weight"].float())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_dtype_other_than_float32_is_refused(checkpoint_files, dtype):
    with pytest.raises(ValueError, match="Pass dtype=None or torch.float32"):
        npnet.load(checkpoint_files["embeeding"], dtype=dtype)
