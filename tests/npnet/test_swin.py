"""Our Swin-T against timm's: same 173 state-dict entries, same features."""

from __future__ import annotations

import pytest
import timm
import torch

from npnet.swin import SwinTransformer


@pytest.fixture(scope="module")
def swin_pair():
    torch.manual_seed(0)
    reference = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False)
    generator = torch.Generator().manual_seed(0)
    state_dict = {
        key: value + 0.05 * torch.randn(value.shape, generator=generator)
        if value.is_floating_point()
        else value
        for key, value in reference.state_dict().items()
    }
    reference.load_state_dict(state_dict, strict=True)
    ours = SwinTransformer()
    ours.load_state_dict(state_dict, strict=True)
    return reference.eval(), ours.eval()


def test_state_dict_keys_and_shapes_match_timm(swin_pair):
    reference, ours = swin_pair
    expected = [(key, tuple(value.shape)) for key, value in reference.state_dict().items()]
    got = [(key, tuple(value.shape)) for key, value in ours.state_dict().items()]
    assert len(got) == 173
    assert got == expected


def test_index_and_mask_buffers_are_not_persistent(swin_pair):
    _, ours = swin_pair
    keys = ours.state_dict().keys()
    assert not [key for key in keys if key.endswith(("relative_position_index", "attn_mask"))]
    assert any(name.endswith("attn_mask") for name, _ in ours.named_buffers())


@pytest.mark.parametrize("scale, batch, seed", [(1.0, 1, 0), (3.0, 2, 1), (0.1, 1, 2)])
def test_features_match_timm(swin_pair, scale, batch, seed):
    reference, ours = swin_pair
    x = scale * torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        expected = reference.forward_features(x)
        got = ours.forward_features(x)
    assert got.shape == expected.shape == (batch, 7, 7, 768)
    assert (got - expected).abs().max().item() <= 1e-5


def test_drop_path_acts_in_training_only_and_rises_over_the_blocks():
    torch.manual_seed(0)
    swin = SwinTransformer()
    swin.init_non_persistent_buffers(torch.device("cpu"))
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        plain = swin.eval().forward_features(x)
        swin.set_drop_path(0.5)
        rates = [block.drop_path for stage in swin.layers for block in stage.blocks]
        assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.5) and rates == sorted(rates)
        assert torch.equal(swin.eval().forward_features(x), plain)  # inference: eval mode, no drop
        swin.train()
        a, b = swin.forward_features(x), swin.forward_features(x)
        assert (a - b).abs().max() > 1e-3  # two training passes drop different blocks
        swin.set_drop_path(0.0)
        assert torch.allclose(swin.forward_features(x), plain, atol=1e-5)
