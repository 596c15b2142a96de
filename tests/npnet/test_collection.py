"""npnet.learning.collection without a host: sample numbering and sharding, prompt files, names, the writer."""

from __future__ import annotations

import pytest
import torch

from npnet import InputError
from npnet.learning.collection import (
    DatasetWriter,
    Pair,
    check_dataset_name,
    collect,
    plan,
    prompts_fingerprint,
    read_prompt_file,
    read_prompts,
)
from npnet.learning.dataset import NoisePromptDataset
from npnet.learning.evaluation import jobs
from npnet.learning.redenoise import redenoise


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
    (tmp_path / "bad.jsonl").write_text('{"text": "x"}\n')
    with pytest.raises(InputError, match="line 1"):
        read_prompt_file(tmp_path / "bad.jsonl")
    assert read_prompts("one\n  # no\n\n two ") == ["one", "two"]


def test_seeds_given_in_a_jsonl_file_are_the_samples_seeds(tmp_path):
    # The authors' lists: {"caption": ..., "seed": ...}, one sample per line, captions may repeat.
    (tmp_path / "authors.jsonl").write_text(
        '{"caption": "a cat", "seed": 42}\n{"caption": "a dog", "seed": 7}\n{"caption": "a cat", "seed": 9}\n'
    )
    prompts = read_prompt_file(tmp_path / "authors.jsonl")
    assert prompts == ["a cat", "a dog", "a cat"] and prompts.seeds == [42, 7, 9]
    assert [(s.prompt, s.seed) for s in plan(prompts, 1, 1000)] == [("a cat", 42), ("a dog", 7), ("a cat", 9)]
    assert [s.seed for s in plan(prompts, 2, 1000)] == [42, 7, 9, 43, 8, 10]  # k-th round: seed + k
    assert [(j.prompt, j.seed) for j in jobs(prompts, 1000, 2)][:3] == [
        ("a cat", 42),
        ("a cat", 43),
        ("a dog", 7),
    ]
    # the seeds are part of the prompt fingerprint, so a resume with other seeds is refused
    (tmp_path / "other.jsonl").write_text(
        '{"caption": "a cat", "seed": 1}\n{"caption": "a dog", "seed": 7}\n{"caption": "a cat", "seed": 9}\n'
    )
    assert prompts_fingerprint(prompts) != prompts_fingerprint(read_prompt_file(tmp_path / "other.jsonl"))
    assert prompts_fingerprint(prompts) != prompts_fingerprint(list(prompts))


@pytest.mark.parametrize(
    "text, match",
    [
        ('{"prompt": "a", "seed": 1}\n{"prompt": "b"}\n', "every line or on none"),
        ('{"prompt": "a", "seed": -1}\n', "integer >= 0"),
        ('{"prompt": "a", "seed": "7"}\n', "integer >= 0"),
    ],
)
def test_bad_seeds_in_a_jsonl_file_are_refused_with_the_line(tmp_path, text, match):
    (tmp_path / "p.jsonl").write_text(text)
    with pytest.raises(InputError, match=match):
        read_prompt_file(tmp_path / "p.jsonl")


@pytest.mark.parametrize("name", ["", "..", ".hidden", "a/b", "a\\b", "c:d"])
def test_dataset_names_are_one_plain_folder(name):
    with pytest.raises(InputError) as error:
        check_dataset_name(name)
    assert error.value.input == "dataset_name"


def pair(seed: int, gain: float = 0.5) -> Pair:
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(1, 4, 8, 8, generator=g)
    return Pair(noise, noise + 0.1, torch.randn(1, 5, 16, generator=g), gain)


def each(make_one):
    """A batch `make` from a one-sample one."""
    return lambda batch: [make_one(s) for s in batch]


def test_writer_resumes_and_refuses_other_settings(tmp_path):
    samples = plan(["x", "y"], 3, 0)
    writer = DatasetWriter(tmp_path, {"cfg": 5.5}, samples_per_shard=4)
    made = []

    def make(batch):
        (sample,) = batch  # batch_size 1
        made.append(sample.index)
        if sample.index == 2:
            raise RuntimeError("the host failed")
        return [pair(sample.seed)]

    with pytest.raises(RuntimeError):
        collect(samples, make, writer)
    assert DatasetWriter(tmp_path, {"cfg": 5.5}).done == {0, 1}  # written before the error surfaced
    made.clear()
    assert collect(samples, each(lambda s: pair(s.seed)), DatasetWriter(tmp_path, {"cfg": 5.5})) == 4
    assert len(NoisePromptDataset(tmp_path)) == 6
    with pytest.raises(InputError, match="cfg differ"):
        DatasetWriter(tmp_path, {"cfg": 7.0})


def test_nan_is_never_written_as_a_sample(tmp_path):
    samples = plan(["x"], 2, 0)
    writer = DatasetWriter(tmp_path, {})
    with pytest.raises(ValueError, match="NaN or Inf"):
        collect(samples, each(lambda s: pair(s.seed, gain=float("nan"))), writer)
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


# -- shared folders, bounded memory, values as stored, unreadable shards (issue 20) -----------------


def indices_in_files(folder) -> list[int]:
    """Every sample number in the folder's shard files, duplicates included."""
    from safetensors import safe_open

    found = []
    for path in sorted(folder.glob("part-*.safetensors")):
        with safe_open(path, "pt") as f:
            found.extend(f.get_tensor("index").tolist())
    return found


def test_two_servers_with_different_shard_sizes_write_each_sample_once(tmp_path):
    """Two writers opened on one folder before either wrote (two servers started together), making the
    same plan in alternation with different samples_per_shard: no shard is overwritten, no sample twice."""
    samples = plan(["a", "b", "c"], 8, 0)  # 24 samples
    first = DatasetWriter(tmp_path, {"cfg": 5.5}, samples_per_shard=3)
    second = DatasetWriter(tmp_path, {"cfg": 5.5}, samples_per_shard=5)
    for sample in samples:
        for writer in (first, second):
            if sample.index not in writer.done:
                writer.add(sample, pair(sample.seed))
    first.flush()
    second.flush()
    assert sorted(indices_in_files(tmp_path)) == list(range(24))
    assert len(NoisePromptDataset(tmp_path)) == 24
    # Re-queuing either server finds nothing left to make.
    assert collect(samples, each(lambda s: pair(s.seed)), DatasetWriter(tmp_path, {"cfg": 5.5})) == 0


def test_a_shard_name_is_never_overwritten(tmp_path):
    from npnet.learning.dataset import write_shard

    first = pair(1)
    write_shard(tmp_path / "x.safetensors", first.noise, first.golden, first.embeds, exclusive=True)
    with pytest.raises(FileExistsError):
        write_shard(tmp_path / "x.safetensors", first.noise, first.golden, first.embeds, exclusive=True)
    assert [p.name for p in tmp_path.iterdir()] == ["x.safetensors"]  # no temporary file left behind


def test_readers_keep_one_copy_of_a_sample_that_two_servers_wrote(tmp_path):
    from npnet.learning.dataset import write_shard

    def shard(name, indices):
        made = [pair(i) for i in indices]
        write_shard(
            tmp_path / name,
            torch.cat([p.noise for p in made]),
            torch.cat([p.golden for p in made]),
            torch.cat([p.embeds for p in made]),
            torch.tensor([0.5] * len(made)),
            {"cfg": 5.5, "shard_index": 0, "prompts": ["x"] * len(made)},
            index=torch.tensor(indices),
        )

    shard("part-000-of-001-00000.safetensors", [0, 1, 2])
    shard("part-000-of-001-00001.safetensors", [2, 3])  # a race: sample 2 twice
    dataset = NoisePromptDataset(tmp_path)
    assert len(dataset) == 4 and dataset.duplicates == 1
    from npnet.learning.collection import dataset_gains

    assert len(dataset_gains(tmp_path)) == 4


def test_the_plan_is_lazy_and_skipping_is_arithmetic():
    huge = plan([f"p{i}" for i in range(1000)], 100_000, 7, shard_index=3, shard_count=4)
    assert len(huge) == 25_000_000
    assert huge[0].index == 3 and huge[-1].index == 99_999_999 and huge[1].seed == 7 + 7
    from npnet.learning.collection import remaining

    assert remaining(huge, {3, 7, 8}) == 25_000_000 - 2


def test_pending_samples_hold_no_images_and_are_float16():
    from npnet.learning.collection import Sample, as_stored

    sample = Sample(0, 0, "x", 0)
    made = pair(0)
    with_images = Pair(made.noise, made.golden, made.embeds, 0.5, images=torch.zeros(2, 1024, 1024, 3))
    stored = as_stored(sample, with_images)
    assert stored.images is None and stored.golden.dtype == torch.float16


def test_a_shard_is_written_after_flush_seconds_even_when_not_full(tmp_path):
    writer = DatasetWriter(tmp_path, {}, samples_per_shard=64, flush_seconds=0.0)
    collect(plan(["x"], 3, 0), each(lambda s: pair(s.seed)), writer)
    assert len(list(tmp_path.glob("part-*.safetensors"))) == 3  # one per sample: at most one lost on a kill


def test_a_long_dataset_name_is_refused_with_its_length():
    with pytest.raises(InputError, match="300 characters"):
        check_dataset_name("a" * 300)
    with pytest.raises(InputError, match="letters, digits"):
        check_dataset_name("my data$et")
    assert check_dataset_name(" sdxl_npd-2.v1 ") == "sdxl_npd-2.v1"


def test_a_bom_is_not_part_of_the_first_prompt(tmp_path):
    for name, text in (("p.txt", "a cat\nb dog\n"), ("p.jsonl", '{"prompt": "a cat"}\n')):
        path = tmp_path / name
        path.write_bytes(b"\xef\xbb\xbf" + text.encode())
        assert read_prompt_file(path)[0] == "a cat"


def test_a_lone_surrogate_is_refused_naming_the_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "fine"}\n{"prompt": "bad \\ud800"}\n')
    with pytest.raises(InputError, match="p.jsonl line 2.*surrogate"):
        read_prompt_file(path)


def test_seeds_that_pass_2_64_are_refused_before_the_first_sample(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(f'{{"prompt": "a", "seed": 1}}\n{{"prompt": "b", "seed": {2**64 - 2}}}\n')
    prompts = read_prompt_file(path)
    plan(prompts, 2, 0)  # seeds 2**64 - 2 and 2**64 - 1: fine
    with pytest.raises(InputError, match="p.jsonl line 2.*passes 2\\*\\*64 - 1"):
        plan(prompts, 3, 0)
    with pytest.raises(InputError, match="seed.*2\\*\\*64"):
        path.write_text(f'{{"prompt": "a", "seed": {2**64}}}\n')
        read_prompt_file(path)
    with pytest.raises(InputError, match="seed .* passes 2\\*\\*64 - 1"):
        plan(["a", "b"], 2, 2**64 - 3)
    with pytest.raises(InputError, match="passes 2\\*\\*64 - 1"):
        jobs(read_prompts("a"), 2**64 - 2, 3)
