"""npnet.collection without a host: sample numbering and sharding, prompt files, names, the writer."""

from __future__ import annotations

import pytest
import torch

from npnet import InputError
from npnet.collection import (
    DatasetWriter,
    Pair,
    check_dataset_name,
    collect,
    plan,
    read_prompt_file,
    read_prompts,
)
from npnet.dataset import NoisePromptDataset
from npnet.redenoise import redenoise


def test_shards_partition_the_samples_and_keep_their_seeds():
    prompts = ["a", "b", "c"]
    whole = plan(prompts, 4, base_seed=10)
    parts = [plan(prompts, 4, 10, shard_index=i, shard_count=3) for i in range(3)]
    assert sorted((s.index, s.prompt, s.seed) for p in parts for s in p) == [
        (s.index, s.prompt, s.seed) for s in whole
    ]
    assert [s.prompt for s in whole[:4]] == ["a", "b", "c", "a"]  # prompt by prompt, then round by round
    assert all(s.seed == 10 + s.index for s in whole)


def test_prompt_files(tmp_path):
    (tmp_path / "p.jsonl").write_text('{"prompt": " a cat "}\n\n"a dog"\n')
    assert read_prompt_file(tmp_path / "p.jsonl") == ["a cat", "a dog"]
    (tmp_path / "bad.jsonl").write_text('{"caption": "x"}\n')
    with pytest.raises(InputError, match="line 1"):
        read_prompt_file(tmp_path / "bad.jsonl")
    assert read_prompts("one\n  # no\n\n two ") == ["one", "two"]


@pytest.mark.parametrize("name", ["", "..", ".hidden", "a/b", "a\\b", "c:d"])
def test_dataset_names_are_one_plain_folder(name):
    with pytest.raises(InputError) as error:
        check_dataset_name(name)
    assert error.value.input == "dataset_name"


def pair(seed: int, gain: float = 0.5) -> Pair:
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(1, 4, 8, 8, generator=g)
    return Pair(noise, noise + 0.1, torch.randn(1, 5, 16, generator=g), gain)


def test_writer_resumes_and_refuses_other_settings(tmp_path):
    samples = plan(["x", "y"], 3, 0)
    writer = DatasetWriter(tmp_path, {"cfg": 5.5}, samples_per_shard=4)
    made = []

    def make(sample):
        made.append(sample.index)
        if sample.index == 2:
            raise RuntimeError("the host failed")
        return pair(sample.seed)

    with pytest.raises(RuntimeError):
        collect(samples, make, writer)
    assert DatasetWriter(tmp_path, {"cfg": 5.5}).done == {0, 1}  # written before the error surfaced
    made.clear()
    assert collect(samples, lambda s: pair(s.seed), DatasetWriter(tmp_path, {"cfg": 5.5})) == 4
    assert len(NoisePromptDataset(tmp_path)) == 6
    with pytest.raises(InputError, match="cfg differ"):
        DatasetWriter(tmp_path, {"cfg": 7.0})


def test_nan_is_never_written_as_a_sample(tmp_path):
    samples = plan(["x"], 2, 0)
    writer = DatasetWriter(tmp_path, {})
    with pytest.raises(ValueError, match="NaN or Inf"):
        collect(samples, lambda s: pair(s.seed, gain=float("nan")), writer)
    assert not list(tmp_path.glob("*.safetensors"))


def test_redenoise_needs_a_second_sigma_above_zero():
    x = torch.randn(1, 4, 2, 2)
    with pytest.raises(ValueError, match="at least 2 sampling steps"):
        redenoise(
            x,
            torch.tensor(1.0),
            torch.tensor(0.0),
            lambda x, s, c: x,
            lambda s, n, lat: lat + s * n,
            5.5,
            1.0,
        )
