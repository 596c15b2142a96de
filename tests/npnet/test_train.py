"""NPNet of any shape, the NPD format and `python -m npnet.train`: real files, real torch.distributed."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import npnet
from dev.training_data import SMALL, make_dataset, train_process
from npnet.learning.dataset import DatasetError, NoisePromptDataset, write_shard
from npnet.learning.imitation import TrainingError, main, parse_args, train
from npnet.learning.loop import Process
from tests.support.fake_hub import FakeHub

# -- the network for any shape --------------------------------------------------------------------


@pytest.mark.parametrize("channels, grid", [(4, (2, 2)), (16, (4, 4)), (8, (2, 4)), (1, (1, 1)), (3, (1, 3))])
def test_channel_grid_rule(channels, grid):
    assert npnet.NPNetConfig(channels=channels, embed_dim=32, family=None).grid == grid


@pytest.mark.parametrize(
    "config",
    [
        npnet.NPNetConfig(channels=16, height=128, width=128, tokens=8, embed_dim=32, family=None),
        npnet.NPNetConfig(channels=4, height=96, width=160, tokens=8, embed_dim=32, family=None),
    ],
    ids=["flux-like-16ch", "non-square-96x160"],
)
def test_any_shape_runs_keeps_shapes_and_trains(config):
    torch.manual_seed(0)
    model = npnet.NPNet(config)
    with torch.no_grad():
        model.alpha.fill_(1.0)
        model.beta.fill_(0.5)
    x = torch.randn(2, *config.latent_shape)
    e = torch.randn(2, config.tokens, config.embed_dim)
    target = torch.randn_like(x)
    out = model(x, e)
    assert out.shape == x.shape and torch.isfinite(out).all()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    before = torch.nn.functional.mse_loss(out, target)
    for _ in range(3):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x, e), target).backward()
        optimizer.step()
    assert torch.nn.functional.mse_loss(model(x, e), target) < before
    # golden_noise validates against the network's own shape
    with pytest.raises(npnet.InputError, match=f"{config.channels}-channel"):
        npnet.golden_noise(model, torch.randn(1, config.channels + 1, config.height, config.width), e[:1])


def test_official_shape_builds_exactly_the_released_layers(sdxl_state_dict):
    model = npnet.NPNet(npnet.OFFICIAL["sdxl"])
    expected = {k: tuple(v.shape) for k, v in sdxl_state_dict.items()}
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == expected


def test_saved_file_rebuilds_its_network_from_metadata(tmp_path):
    torch.manual_seed(1)
    model = npnet.NPNet(SMALL)
    model.alpha.data.fill_(0.3)
    path = npnet.save(model, tmp_path / "small.safetensors")
    loaded = npnet.load(path)
    assert loaded.config == SMALL
    x, e = torch.randn(1, *SMALL.latent_shape), torch.randn(1, SMALL.tokens, SMALL.embed_dim)
    with torch.no_grad():
        assert (loaded(x, e) - model.eval()(x, e)).abs().max().item() <= 1e-5
    # Without the metadata, a non-released shape is not guessed from the weights.
    stripped = tmp_path / "stripped.safetensors"
    save_file(load_file(path), stripped)
    with pytest.raises(ValueError, match=r"NPNet's is \[8, 77 \* D\]"):
        npnet.load(stripped)


def test_official_shape_file_uses_official_keys_and_loads_without_metadata(tmp_path, sdxl_state_dict):
    model = npnet.NPNet(npnet.OFFICIAL["sdxl"])
    path = npnet.save(model, tmp_path / "ours.safetensors")
    with safe_open(path, "pt") as f:
        assert set(f.keys()) == set(sdxl_state_dict) and "npnet" in f.metadata()
    stripped = tmp_path / "plain.safetensors"
    save_file(load_file(path), stripped)
    assert npnet.load(stripped).config == npnet.OFFICIAL["sdxl"]


# -- the NPD format -------------------------------------------------------------------------------


def test_dataset_reads_shards_and_filters_by_gain(tmp_path):
    folder = make_dataset(tmp_path / "npd", shards=2, per_shard=5)
    everything = NoisePromptDataset(folder)
    assert len(everything) == 10 and everything.config == SMALL
    gains = torch.cat([load_file(p)["gain"] for p in sorted(folder.glob("*.safetensors"))])
    kept = NoisePromptDataset(folder, min_gain=0.0)
    assert len(kept) == int((gains > 0).sum())
    noise, golden, embeds = kept[0]
    assert noise.dtype == golden.dtype == embeds.dtype == torch.float32
    assert noise.shape == SMALL.latent_shape and embeds.shape == (SMALL.tokens, SMALL.embed_dim)


def _shard(path, n=4, c=4, h=16, w=24, t=8, d=32, **overrides):
    tensors = {
        "noise": torch.randn(n, c, h, w),
        "golden": torch.randn(n, c, h, w),
        "embeds": torch.randn(n, t, d),
    }
    tensors.update(overrides)
    write_shard(path, **tensors)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: None, "holds no NPD shards"),
        (
            lambda d: (_shard(d / "a.safetensors"), _shard(d / "b.safetensors", h=32)),
            "b.safetensors holds 4x32x24",
        ),
        (
            lambda d: _shard(d / "a.safetensors", golden=torch.full((4, 4, 16, 24), float("nan"))),
            "a.safetensors: 'golden' contains NaN or Inf",
        ),
        (
            lambda d: _shard(d / "a.safetensors", embeds=torch.ones(4, 8, 32, dtype=torch.int32)),
            "a.safetensors: 'embeds' is torch.int32",
        ),
        (
            lambda d: _shard(d / "a.safetensors", embeds=torch.randn(3, 8, 32)),
            "'embeds' has shape [3, 8, 32]",
        ),
        (lambda d: (d / "a.safetensors").write_bytes(b"not a shard"), "a.safetensors is not a readable"),
    ],
    ids=["empty", "mixed-shapes", "nan", "int-dtype", "prompt-count", "garbage"],
)
def test_bad_datasets_name_the_shard_and_tensor(tmp_path, make, message):
    folder = tmp_path / "npd"
    folder.mkdir()
    make(folder)
    with pytest.raises(DatasetError) as error:
        NoisePromptDataset(folder)
    assert message in str(error.value)


# -- the trainer ----------------------------------------------------------------------------------


def _args(data, out, *extra):
    return ["--data", str(data), "--out", str(out), "--val-fraction", "0.2", "--log-every", "1", *extra]


def test_bad_command_lines_fail_before_training(tmp_path, capsys):
    data = make_dataset(tmp_path / "npd", shards=1, per_shard=6)
    official = npnet.save(npnet.NPNet(npnet.OFFICIAL["sdxl"]), tmp_path / "sdxl.safetensors")
    cases = [
        (["--batch-size", "64"], "fewer than one batch of 64"),
        (["--batch-size", "2", "--init", str(official)], "but the data holds 4x16x24 latents"),
        (["--batch-size", "2", "--init", "nowhere.bin"], "is neither none, imagenet"),
        (["--batch-size", "2", "--lr", "nan"], "--lr must be a finite number"),
        (["--batch-size", "2", "--resume"], "there is no"),
    ]
    for extra, message in cases:
        assert main(_args(data, tmp_path / "out", *extra)) == 2
        assert message in capsys.readouterr().err
    assert main(_args(tmp_path / "missing", tmp_path / "out")) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "out" / "npnet.safetensors").exists()


def test_more_processes_than_samples_is_refused(tmp_path):
    data = make_dataset(tmp_path / "npd", shards=1, per_shard=6, gains=False)
    args = parse_args(_args(data, tmp_path / "out", "--batch-size", "8"))
    with pytest.raises(TrainingError, match="8 processes for 5 training samples"):
        train(args, Process(rank=0, world=8, device=torch.device("cpu")))


def _final(out: Path) -> dict[str, torch.Tensor]:
    return load_file(out / "npnet.safetensors")


def _assert_same_weights(a: dict, b: dict, rel: float) -> None:
    """Every tensor within `rel` of the other, relative to its norm (float reduction order differs)."""
    assert a.keys() == b.keys()
    for key in a:
        scale = b[key].float().norm().clamp_min(1e-12)
        assert ((a[key].float() - b[key].float()).norm() / scale).item() <= rel, key


@pytest.mark.slow
def test_two_processes_with_torchrun_reach_the_single_process_weights(tmp_path):
    data = make_dataset(tmp_path / "npd", shards=2, per_shard=4, gains=False)
    common = ["--epochs", "1", "--batch-size", "2", "--lr", "1e-4", "--seed", "3"]
    single = train_process(*_args(data, tmp_path / "one", *common))
    double = train_process(*_args(data, tmp_path / "two", *common), torchrun=2)
    for process in (single, double):
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
    _assert_same_weights(_final(tmp_path / "two"), _final(tmp_path / "one"), rel=1e-5)
    # and training really moved the weights (a no-op would agree trivially)
    start = npnet.NPNet(SMALL).state_dict()
    assert (_final(tmp_path / "one")["alpha"] - start["alpha"]).abs().item() > 1e-4


@pytest.mark.slow
def test_learns_a_teacher_well_below_the_identity_baseline(tmp_path):
    data = make_dataset(tmp_path / "npd", shards=2, per_shard=12)
    out = tmp_path / "out"
    # The teacher is a paper-architecture network: this checks the trainer's mechanics on its own function
    # class (whether training helps images is tests/learning/test_learning_benchmark.py's question).
    flags = (
        "--epochs",
        "3",
        "--batch-size",
        "4",
        "--lr",
        "1e-3",
        "--arch",
        "paper",
        "--schedule",
        "constant",
    )
    assert main(_args(data, out, *flags)) == 0
    lines = [
        line for line in (out / "metrics.jsonl").read_text().splitlines() if '"val_loss": null' not in line
    ]
    import json

    last = json.loads(lines[-1])
    assert last["val_loss"] < 0.6 * last["identity_val_loss"], last
    # The exported file loads as a network of the data's shape, giving the trained module's outputs.
    model = npnet.load(out / "npnet.safetensors")
    assert model.config == SMALL
    assert (out / "npnet-best.safetensors").is_file()
    state = torch.load(out / "state.pt", weights_only=True)
    assert state["position"]["epoch"] == 3


@pytest.mark.slow
def test_resume_after_sigterm_equals_an_uninterrupted_run(tmp_path):
    data = make_dataset(tmp_path / "npd", shards=1, per_shard=10, gains=False)
    # The paper's Swin-T makes each step take a while, so the signal lands inside the run.
    common = ["--epochs", "2", "--batch-size", "2", "--lr", "1e-3", "--arch", "paper"]
    straight = train_process(*_args(data, tmp_path / "straight", *common))
    interrupted = train_process(*_args(data, tmp_path / "cut", *common))
    metrics = tmp_path / "cut" / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (metrics.exists() and metrics.read_text().count("\n") >= 2) and time.monotonic() < deadline:
        assert interrupted.poll() is None, interrupted.communicate()[1][-3000:]
        time.sleep(0.2)
    interrupted.send_signal(signal.SIGTERM)
    _, err = interrupted.communicate(timeout=300)
    assert interrupted.returncode == 130, err[-3000:]
    assert "state saved" in err and not (tmp_path / "cut" / "npnet.safetensors").exists()
    state = torch.load(tmp_path / "cut" / "state.pt", weights_only=True)
    assert 0 < state["position"]["global_step"] < 8
    resumed = train_process(*_args(data, tmp_path / "cut", *common, "--resume"))
    for process in (straight, resumed):
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
    _assert_same_weights(_final(tmp_path / "cut"), _final(tmp_path / "straight"), rel=1e-6)
    # metrics.jsonl holds each step once, the same steps as the uninterrupted run's
    assert _logged_steps(tmp_path / "cut") == _logged_steps(tmp_path / "straight") == list(range(1, 9))


def _logged_steps(out: Path) -> list[int]:
    import json

    return [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_init_imagenet_downloads_through_the_hub_and_loads_every_swin_key(tmp_path, monkeypatch):
    data = make_dataset(tmp_path / "npd", shards=1, per_shard=6)
    torch.manual_seed(5)
    swin = npnet.NPNet(SMALL).unet_embedding.swin.state_dict()
    weights_file = tmp_path / "swin.safetensors"
    save_file({k: v.contiguous() for k, v in swin.items()}, weights_file)
    hub = FakeHub()
    hub.add("timm/swin_tiny_patch4_window7_224.ms_in1k", "model.safetensors", weights_file.read_bytes())
    server = hub.serve()
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        from npnet.learning.imitation import initial_model

        model = initial_model("imagenet", SMALL, seed=0, weights_dir=str(tmp_path / "cache"))
        for key, value in swin.items():
            assert torch.equal(model.unet_embedding.swin.state_dict()[key], value), key
        # cached: offline now, the file is used without a request
        requests = len(hub.requests)
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        initial_model("imagenet", SMALL, seed=0, weights_dir=str(tmp_path / "cache"))
        assert len(hub.requests) == requests
    finally:
        server.shutdown()
        server.server_close()
    assert (
        main(
            _args(
                data,
                tmp_path / "out",
                "--batch-size",
                "2",
                "--epochs",
                "1",
                "--init",
                "imagenet",
                "--weights-dir",
                str(tmp_path / "cache"),
            )
        )
        == 0
    )
