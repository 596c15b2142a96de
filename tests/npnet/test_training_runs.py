"""`python -m npnet.train` as a user runs it, in processes: runs that cannot be mixed or lost, signals,
torchrun, hostile output folders and data. The network and the NPD format: test_train.py."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import torch

import npnet
from dev.training_data import SMALL, make_dataset, train_process
from npnet.learning.dataset import NoisePromptDataset, write_shard
from npnet.learning.imitation import main
from tests.npnet.test_train import _args, _assert_same_weights, _final, _logged_steps

# -- runs that cannot be mixed or lost (issue 20) ------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished one-epoch run and its data, for the resume and --out checks."""
    root = tmp_path_factory.mktemp("finished")
    data = make_dataset(root / "npd", shards=1, per_shard=6, gains=False)
    assert main(_args(data, root / "out", "--epochs", "1", "--batch-size", "2")) == 0
    return data, root / "out"


@pytest.mark.parametrize(
    "change, named",
    [
        (["--seed", "1"], "--seed (the run used 0, now 1)"),
        (["--lr", "0.01"], "--lr (the run used 0.001, now 0.01)"),
        (["--val-fraction", "0.5"], "--val-fraction"),
        (["--batch-size", "1"], "--batch-size (the run used 2, now 1)"),
        (["--min-gain", "-1"], "--min-gain"),
        (
            ["--seed", "1", "--lr", "0.01"],
            "--lr (the run used 0.001, now 0.01); --seed (the run used 0, now 1)",
        ),
    ],
    ids=["seed", "lr", "val-fraction", "batch-size", "min-gain", "two-at-once"],
)
def test_a_resume_with_other_settings_exits_2_naming_each(finished_run, capsys, change, named):
    data, out = finished_run
    before = (out / "state.pt").read_bytes()
    flags = {"--batch-size": "2", **dict(zip(change[::2], change[1::2], strict=True))}
    extra = [x for kv in flags.items() for x in kv]
    assert main(_args(data, out, "--epochs", "1", *extra, "--resume")) == 2
    err = capsys.readouterr().err
    assert named in err and "Resume with the same settings" in err
    assert (out / "state.pt").read_bytes() == before  # nothing touched


def test_a_resume_on_other_data_of_the_same_shape_exits_2(finished_run, tmp_path, capsys):
    _, out = finished_run
    other = make_dataset(tmp_path / "other", shards=1, per_shard=6, seed=9, gains=False)
    assert main(_args(other, out, "--epochs", "1", "--batch-size", "2", "--resume")) == 2
    assert "--data (its files are not the ones the run started on)" in capsys.readouterr().err


def test_a_second_run_into_the_same_out_exits_2_unless_overwrite(finished_run, tmp_path, capsys):
    data, out = finished_run
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(out, copy)
    before = {p.name: p.read_bytes() for p in copy.iterdir()}
    assert main(_args(data, copy, "--epochs", "1", "--batch-size", "2", "--seed", "4")) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in copy.iterdir()} == before
    assert main(_args(data, copy, "--epochs", "1", "--batch-size", "2", "--seed", "4", "--overwrite")) == 0
    assert _logged_steps(copy) == _logged_steps(out)  # the old metrics are gone, not appended to
    assert (copy / "state.pt").read_bytes() != before["state.pt"]


def test_a_state_file_that_is_not_one_is_refused_by_name(finished_run, tmp_path, capsys):
    data, _ = finished_run
    out = tmp_path / "bad"
    out.mkdir()
    (out / "state.pt").write_bytes(b"not a state")
    assert main(_args(data, out, "--epochs", "1", "--batch-size", "2", "--resume")) == 2
    assert "is not a state this version can continue" in capsys.readouterr().err


@pytest.mark.slow
def test_state_is_saved_inside_an_epoch_so_a_kill_loses_little(tmp_path):
    data = make_dataset(tmp_path / "npd", shards=1, per_shard=12, gains=False)
    # The paper's Swin-T makes each step take a while, so the kill lands inside the epoch.
    common = [
        "--epochs",
        "1",
        "--batch-size",
        "2",
        "--lr",
        "1e-3",
        "--save-every-minutes",
        "0.0001",
        "--arch",
        "paper",
    ]
    straight = train_process(*_args(data, tmp_path / "straight", *common))
    killed = train_process(*_args(data, tmp_path / "cut", *common))
    state = tmp_path / "cut" / "state.pt"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert killed.poll() is None, killed.communicate()[1][-3000:]
        if state.exists() and torch.load(state, weights_only=True)["position"]["global_step"] >= 2:
            break
        time.sleep(0.1)
    killed.kill()  # kill -9: no handler runs
    killed.communicate()
    saved = torch.load(state, weights_only=True)["position"]
    assert saved["epoch"] == 0 and 2 <= saved["step"] < 5  # mid-epoch
    resumed = train_process(*_args(data, tmp_path / "cut", *common, "--resume"))
    for process in (straight, resumed):
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
    _assert_same_weights(_final(tmp_path / "cut"), _final(tmp_path / "straight"), rel=1e-6)
    assert _logged_steps(tmp_path / "cut") == _logged_steps(tmp_path / "straight")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _rank_of(pid: int) -> int | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    ranks = [e.split(b"=", 1)[1] for e in environ if e.startswith(b"RANK=")]
    return int(ranks[0]) if ranks else None


@pytest.mark.slow
def test_a_stopped_peer_ends_a_torchrun_run_within_the_timeout(tmp_path):
    data = make_dataset(tmp_path / "npd", shards=1, per_shard=40, gains=False)
    args = _args(data, tmp_path / "out", "--epochs", "500", "--batch-size", "2", "--dist-timeout", "10")
    process = train_process(*args, torchrun=2, start_new_session=True)
    metrics = tmp_path / "out" / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (metrics.exists() and metrics.read_text().count("\n") >= 2):
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()[1][-3000:]
        time.sleep(0.2)
    workers = [p for p in _children(process.pid) if _rank_of(p) is not None]
    rank1 = [p for p in workers if _rank_of(p) == 1]
    assert rank1, workers
    os.kill(rank1[0], signal.SIGSTOP)
    stopped_at = time.monotonic()
    try:
        _, err = process.communicate(timeout=180)
    finally:
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert process.returncode != 0
    assert time.monotonic() - stopped_at < 120
    assert "another process stopped answering" in err and "--dist-timeout 10" in err, err[-3000:]


@pytest.mark.slow
def test_one_and_two_processes_give_the_same_corrections_at_the_official_shape(tmp_path):
    """What torchrun keeps: the gradients are averaged exactly, so the trained networks' corrections
    (output - input) agree closely. The weights themselves agree less: AdamW turns near-zero gradient
    components into +-lr steps whose sign the summation order decides (2.97e-3 relative, measured)."""
    config = npnet.OFFICIAL["sdxl"]
    data = make_dataset(tmp_path / "npd", shards=1, per_shard=20, config=config, gains=False)
    common = ["--epochs", "1", "--batch-size", "4", "--lr", "1e-3", "--val-fraction", "0.2"]
    single = train_process("--data", str(data), "--out", str(tmp_path / "one"), *common)
    _, err = single.communicate(timeout=900)
    assert single.returncode == 0, err[-3000:]
    double = train_process("--data", str(data), "--out", str(tmp_path / "two"), *common, torchrun=2)
    _, err = double.communicate(timeout=900)
    assert double.returncode == 0, err[-3000:]
    one, two = (
        npnet.load(tmp_path / "one" / "npnet.safetensors"),
        npnet.load(tmp_path / "two" / "npnet.safetensors"),
    )
    g = torch.Generator().manual_seed(11)
    x = torch.randn(2, *config.latent_shape, generator=g)
    e = torch.randn(2, config.tokens, config.embed_dim, generator=g)
    with torch.no_grad():
        c1, c2 = one(x, e) - x, two(x, e) - x
    relative = ((c2 - c1).norm() / c1.norm()).item()
    print(f"corrections {c1.norm().item():.4g}, relative difference {relative:.3g}")
    assert c1.norm() > 1e-3 * x.norm()  # training moved the network away from the identity
    assert relative < 1e-4


@pytest.mark.slow
def test_sigterm_during_a_long_step_stops_after_it_and_saves_it(tmp_path):
    """The paper's Swin-T runs at 224x224 whatever the latent: a step of batch 8 takes seconds here. The
    signal handler only sets a flag: the step in progress ends, its state is saved, and the process exits
    within about a step's time instead of running on."""
    data = make_dataset(tmp_path / "npd", shards=1, per_shard=40, gains=False)
    args = _args(data, tmp_path / "out", "--arch", "paper", "--batch-size", "8", "--epochs", "5")
    process = train_process(*args)
    metrics = tmp_path / "out" / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (metrics.exists() and metrics.read_text().count("\n") >= 1):
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()[1][-3000:]
        time.sleep(0.05)
    logged = _logged_steps(tmp_path / "out")[-1]  # --log-every 1: the next step has just started
    process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130 and "state saved" in err, err[-3000:]
    assert time.monotonic() - signalled < 60  # a step here takes seconds; 5 epochs would take minutes
    saved = torch.load(tmp_path / "out" / "state.pt", weights_only=True)["position"]["global_step"]
    assert saved == logged + 1  # the step in progress finished and is in the saved state
    assert _logged_steps(tmp_path / "out")[-1] == saved and "Traceback" not in err


def test_opening_the_data_reads_it_once_fingerprints_every_byte_and_can_be_interrupted(tmp_path):
    import hashlib

    from npnet.learning.loop import Stopped

    folder = make_dataset(tmp_path / "npd", shards=3, per_shard=4)
    expected = hashlib.sha256()
    for path in sorted(folder.glob("*.safetensors")):
        expected.update(path.name.encode() + b"\0" + path.read_bytes())
    calls = []
    dataset = NoisePromptDataset(folder, interrupt=lambda: calls.append(1))
    assert dataset.sha256 == expected.hexdigest()
    assert len(calls) >= 3 * 4  # between shards and blocks: a stop is seen within one block

    def stop_at_the_second_shard():
        calls.append(1)
        if len(calls) > 1:
            raise Stopped("asked")

    calls.clear()
    with pytest.raises(Stopped):
        NoisePromptDataset(folder, interrupt=stop_at_the_second_shard)
    assert len(calls) == 2


@pytest.mark.slow
def test_a_signal_during_set_up_stops_it_at_once(tmp_path):
    """Set-up reads every byte of the data; SIGINT / SIGTERM end it within a block, exit 130, and nothing
    is written (they used to wait for the whole pass)."""
    data = tmp_path / "npd"
    data.mkdir()
    g = torch.Generator().manual_seed(0)
    for i in range(4000):  # random shards (the teacher would take minutes): the pass takes seconds
        x = torch.randn(1, *SMALL.latent_shape, generator=g)
        write_shard(
            data / f"{i:05d}.safetensors", x, x.clone(), torch.randn(1, SMALL.tokens, SMALL.embed_dim)
        )
    for signum in (signal.SIGINT, signal.SIGTERM):
        out = tmp_path / f"out-{signum}"
        process = train_process(*_args(data, out))
        line = process.stderr.readline()
        assert "checking the data" in line, line + process.communicate()[1][-3000:]
        process.send_signal(signum)
        started = time.monotonic()
        _, err = process.communicate(timeout=60)
        assert process.returncode == 130 and "stopped before the first step" in err, err[-3000:]
        assert time.monotonic() - started < 5.0
        assert "Traceback" not in err and not out.exists()


def test_an_out_that_is_a_file_or_under_one_is_refused_before_any_work(tmp_path):
    data = make_dataset(tmp_path / "npd", shards=1, per_shard=6)
    (tmp_path / "file").write_text("mine")
    for out, wording in ((tmp_path / "file", "is a file"), (tmp_path / "file" / "run", "lies under")):
        process = train_process(*_args(data, out))
        _, err = process.communicate(timeout=120)
        assert process.returncode == 2 and wording in err and "choose a folder" in err, err[-2000:]
        assert "Traceback" not in err and "checking the data" not in err  # refused before reading
    assert (tmp_path / "file").read_text() == "mine"


def test_a_full_disk_while_saving_ends_with_an_error_and_no_half_written_file(tmp_path):
    """Saves that fail (writes past 200 kB fail, as on a full disk): exit 2 naming the file, no traceback,
    and no file in --out is half-written or left as a partial one."""
    from tests.npnet.test_export import _full_disk

    data = make_dataset(tmp_path / "npd", shards=1, per_shard=10, gains=False)
    out = tmp_path / "out"
    flags = ["--epochs", "1", "--batch-size", "4", "--arch", "latent"]
    process = train_process(*_args(data, out, *flags), preexec_fn=_full_disk(200_000))
    _, err = process.communicate(timeout=300)
    assert process.returncode == 2 and f"cannot write {out}" in err and "--resume continues" in err, err[
        -2000:
    ]
    assert "Traceback" not in err
    left = sorted(p.name for p in out.iterdir())
    assert left == ["metrics.jsonl"], left  # the weights and state were never put in place half-written


def test_drop_path_masks_belong_to_samples_not_to_the_batch_they_run_in():
    """Stochastic depth decided by per-sample draws: a batch of two gives, row by row, what each sample
    gives alone with its own row of draws, so splitting a global batch over processes changes nothing."""
    torch.manual_seed(0)
    model = npnet.NPNet(SMALL.with_architecture("paper")).train()
    with torch.no_grad():
        model.beta.fill_(1.0)  # the Swin branch's gate open (shut in a new network)
    swin = model.unet_embedding.swin
    swin.set_drop_path(0.5)  # high, so that masks differ between the samples
    x, e = torch.randn(2, *SMALL.latent_shape), torch.randn(2, SMALL.tokens, SMALL.embed_dim)
    draws = torch.rand(2, swin.drop_path_columns, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        swin.set_drop_path_draws(draws)
        both = model(x, e)
        alone = []
        for i in range(2):
            swin.set_drop_path_draws(draws[i : i + 1])
            torch.manual_seed(100 + i)  # torch's RNG no longer decides anything
            alone.append(model(x[i : i + 1], e[i : i + 1]))
        swin.set_drop_path_draws(draws.flip(0))
        swapped = model(x, e)
    assert torch.allclose(both, torch.cat(alone), atol=1e-5)
    assert not torch.allclose(both, swapped, atol=1e-3)  # the draws do decide the masks


@pytest.mark.slow
def test_one_and_two_processes_agree_with_the_papers_drop_path_on(tmp_path):
    """--arch paper trains with DropPath 0.1 by default; its masks are drawn per sample of the global batch,
    so one and two processes learn the same corrections (they differed by 3e-3 relative when each process
    drew its own masks)."""
    data = make_dataset(tmp_path / "npd", shards=1, per_shard=20, gains=False)
    common = ["--epochs", "1", "--batch-size", "4", "--arch", "paper", "--seed", "5"]
    runs = {}
    for name, torchrun in (("one", None), ("two", 2)):
        process = train_process(*_args(data, tmp_path / name, *common), torchrun=torchrun)
        _, err = process.communicate(timeout=900)
        assert process.returncode == 0, err[-3000:]
        runs[name] = npnet.load(tmp_path / name / "npnet.safetensors")
    g = torch.Generator().manual_seed(11)
    x = torch.randn(2, *SMALL.latent_shape, generator=g)
    e = torch.randn(2, SMALL.tokens, SMALL.embed_dim, generator=g)
    with torch.no_grad():
        c1, c2 = runs["one"](x, e) - x, runs["two"](x, e) - x
    assert c1.norm() > 1e-3 * x.norm()
    assert ((c2 - c1).norm() / c1.norm()).item() < 1e-4


def test_a_trained_file_records_its_architecture_and_older_files_load_as_the_papers(tmp_path):
    import json

    from safetensors.torch import save_file as save_raw

    latent = npnet.NPNetConfig(4, 8, 8, 8, 32, family=None).with_architecture("latent")
    torch.manual_seed(0)
    model = npnet.NPNet(latent)
    with torch.no_grad():
        model.prompt_map.decode[-1].weight.normal_()  # a non-zero map, so the round trip is visible
    npnet.save(model, tmp_path / "latent.safetensors")
    loaded = npnet.load(tmp_path / "latent.safetensors")
    assert loaded.config == latent and loaded.config.architecture == "latent"
    x, e = torch.randn(2, 4, 8, 8), torch.randn(2, 8, 32)
    with torch.no_grad():
        assert torch.allclose(loaded(x, e), model(x, e), atol=1e-6)
    # A file written before the architecture fields existed: its metadata lacks them.
    paper = npnet.NPNetConfig(4, 8, 8, 8, 32, family=None)
    old = {k: v.contiguous() for k, v in npnet.NPNet(paper).state_dict().items()}
    fields = {k: v for k, v in json.loads(paper.to_json()).items() if k not in ("noise_branch", "prompt_map")}
    save_raw(old, tmp_path / "old.safetensors", metadata={"npnet": json.dumps(fields), "format": "pt"})
    assert npnet.load(tmp_path / "old.safetensors").config.architecture == "paper"
    assert npnet.OFFICIAL["sdxl"].architecture == "paper"


def test_overwrite_with_an_init_that_cannot_be_used_deletes_nothing(finished_run, tmp_path):
    """The CLI as a user runs it: --overwrite with a missing --init file exits 2 naming it, and the previous
    run is still there (everything is checked before anything is deleted)."""
    import shutil

    data, out = finished_run
    copy = tmp_path / "kept"
    shutil.copytree(out, copy)
    before = {p.name: p.read_bytes() for p in copy.iterdir()}
    process = train_process(
        *_args(
            data,
            copy,
            "--epochs",
            "1",
            "--batch-size",
            "2",
            "--overwrite",
            "--init",
            str(tmp_path / "no.safetensors"),
        )
    )
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 2 and "--init" in stderr and "Traceback" not in stderr
    assert {p.name: p.read_bytes() for p in copy.iterdir()} == before


@pytest.mark.parametrize(
    "flags, message",
    [
        (("--min-gain", "1000"), "--min-gain 1000 kept 0 of the samples"),
        (("--min-gain", "nan"), "--min-gain must be a finite number"),
        (("--seed", "18446744073709551616"), "--seed must be an integer in 0 .. 2**63 - 1"),
    ],
)
def test_a_filter_that_keeps_nothing_or_an_overflowing_seed_is_named(tmp_path, flags, message):
    data = make_dataset(tmp_path / "data", shards=1, per_shard=6)
    process = train_process(*_args(data, tmp_path / "out", "--epochs", "1", "--batch-size", "2", *flags))
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 2 and message in stderr and "Traceback" not in stderr
    assert not (tmp_path / "out").exists()
