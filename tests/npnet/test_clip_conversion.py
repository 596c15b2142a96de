"""HPSv2.1's open_clip format converted to transformers' CLIPModel: the converted model scores exactly as
open_clip's own model does. open_clip is installed for this test only (into a temporary folder, run in a
subprocess), never into the pack's environment."""

from __future__ import annotations

import pytest
import torch

from npnet.learning.clip_conversion import ConversionError, convert, convert_file, open_clip_state_dict
from tests.support.open_clip_run import open_clip_run


@pytest.fixture(scope="module")
def open_clip_files(tmp_path_factory):
    return open_clip_run(tmp_path_factory.mktemp("open_clip_site"), tmp_path_factory.mktemp("open_clip_run"))


@pytest.mark.slow
def test_the_converted_model_scores_as_open_clip_does(open_clip_files, tmp_path):
    from transformers import CLIPModel

    folder = convert_file(open_clip_files / "HPS_tiny.pt", tmp_path / "HPSv2.1")
    expected = torch.load(open_clip_files / "expected.pt", weights_only=True)
    model = CLIPModel.from_pretrained(folder).eval()
    with torch.no_grad():
        image = model.get_image_features(pixel_values=expected["pixels"])
        text = model.get_text_features(input_ids=expected["tokens"])
    image = image if isinstance(image, torch.Tensor) else image.pooler_output
    text = text if isinstance(text, torch.Tensor) else text.pooler_output
    got = torch.nn.functional.cosine_similarity(image, text, dim=-1)
    assert torch.allclose(got, expected["cosine"], atol=1e-5), (got, expected["cosine"])
    assert expected["cosine"].std() > 1e-3  # the three pairs score differently: the test can tell


def test_a_file_that_is_not_open_clip_is_refused_by_name():
    with pytest.raises(ConversionError, match="dict of tensors"):
        open_clip_state_dict({"state_dict": {"a": 1}})
    with pytest.raises(ConversionError, match="not an open_clip CLIP checkpoint: no token_embedding"):
        convert({"something": torch.zeros(1)})
