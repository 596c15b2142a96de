"""python -m npnet.export: each format loads under that tool's own loading rules (re-implemented here from
their code, named below) and gives the same golden noise as the source file in this pack."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

import npnet
from dev.checkpoints import write_tiny_checkpoint
from dev.npnet_reference import build_reference

PARTS = ("unet_svd", "unet_embedding", "embeeding")


def authors_rules(path) -> dict[str, torch.Tensor]:
    """xie-lab-ml/Golden-Noise-for-Diffusion-Models inference/npnet_pipeline.py (aa7103e): torch.load, then
    each part's load_state_dict (strict) and alpha/beta taken as they are. Returned as flat keys."""
    raw = torch.load(path, weights_only=True)
    assert isinstance(raw, dict) and set(raw) == {*PARTS, "alpha", "beta"}
    flat = {f"{part}.{key}": value for part in PARTS for key, value in raw[part].items()}
    return {**flat, "alpha": raw["alpha"], "beta": raw["beta"]}


def asagi4_rules(path) -> dict[str, torch.Tensor]:
    """asagi4/ComfyUI-NPNet __init__.py NPNet.__init__ (abc6fb1): safetensors load_file; a top-level
    "embeeding" entry would be converted, flat keys are not; then sd["text_embedding.linear.weight"] sizes
    the text branch and one strict load_state_dict takes the rest."""
    sd = load_file(path)
    assert "embeeding" not in sd
    te_shape = sd["text_embedding.linear.weight"].shape[1]  # KeyError on any other layout, as there
    assert te_shape in (77 * 2048, 77 * 1024)
    return {
        ("embeeding." + k.removeprefix("text_embedding.")) if k.startswith("text_embedding.") else k: v
        for k, v in sd.items()
    }


def lucipher_rules(path) -> dict[str, torch.Tensor]:
    """LucipherDev/ComfyUI-Golden-Noise (05247db): load_file, then per-part state dicts cut by prefix
    ("unet_svd.", "unet_embedding.", "embeeding.") and alpha/beta; strict loads."""
    sd = load_file(path)
    for part in PARTS:
        assert any(k.startswith(part + ".") for k in sd)
    assert {"alpha", "beta"} <= set(sd)
    return sd


RULES = {
    "official": (authors_rules, ".pth"),
    "asagi4": (asagi4_rules, ".safetensors"),
    "lucipher": (lucipher_rules, ".safetensors"),
}


@pytest.mark.parametrize("fmt", list(RULES))
def test_each_format_loads_under_that_tools_rules_and_gives_the_same_golden_noise(
    fmt, checkpoint_files, sdxl_model, tmp_path
):
    rules, suffix = RULES[fmt]
    dest = tmp_path / f"exported{suffix}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "npnet.export",
            "--format",
            fmt,
            str(checkpoint_files["embeeding"]),
            str(dest),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    state_dict = rules(dest)
    theirs = build_reference(state_dict)
    noise = torch.randn(1, 4, 128, 128, generator=torch.Generator().manual_seed(3))
    prompt = torch.randn(1, 77, 2048, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        expected = sdxl_model(noise, prompt)
        got = theirs(noise, prompt)
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()
    assert torch.allclose(npnet.load(dest)(noise, prompt), expected, atol=1e-5)  # and it comes back here


def test_a_shape_those_tools_cannot_build_is_refused_and_nothing_is_written(tmp_path):
    source = write_tiny_checkpoint(tmp_path / "tiny.safetensors")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "npnet.export",
            "--format",
            "asagi4",
            str(source),
            str(tmp_path / "out.safetensors"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "builds only the released network" in done.stderr
    assert not (tmp_path / "out.safetensors").exists()


def test_the_wrong_suffix_and_an_existing_file_are_refused(checkpoint_files, tmp_path):
    from npnet.export import export

    with pytest.raises(ValueError, match="must end in .pth"):
        export(checkpoint_files["embeeding"], tmp_path / "x.safetensors", "official")
    (tmp_path / "taken.safetensors").write_bytes(b"mine")
    with pytest.raises(ValueError, match="never overwrites"):
        export(checkpoint_files["embeeding"], tmp_path / "taken.safetensors", "lucipher")
    assert (tmp_path / "taken.safetensors").read_bytes() == b"mine"


def _full_disk(limit_bytes: int):
    """A child process whose writes fail past `limit_bytes` per file, as on a full disk (EFBIG, not
    SIGXFSZ: the signal is ignored), whoever runs the tests (root ignores read-only folders)."""
    import resource
    import signal

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return limit


@pytest.mark.parametrize("fmt", ["official", "lucipher"])
def test_export_into_a_missing_folder_or_onto_a_full_disk_fails_cleanly(fmt, checkpoint_files, tmp_path):
    suffix = ".pth" if fmt == "official" else ".safetensors"
    command = [sys.executable, "-m", "npnet.export", "--format", fmt, str(checkpoint_files["embeeding"])]
    missing = subprocess.run([*command, str(tmp_path / "no" / f"x{suffix}")], capture_output=True, text=True)
    assert missing.returncode == 2 and "does not exist" in missing.stderr, missing.stderr
    assert missing.stderr.startswith("npnet.export: ") and "Traceback" not in missing.stderr
    dest = tmp_path / f"full{suffix}"
    full = subprocess.run(
        [*command, str(dest)], capture_output=True, text=True, preexec_fn=_full_disk(1 << 20)
    )
    assert full.returncode == 2 and f"cannot write {dest}" in full.stderr, full.stderr
    assert "Traceback" not in full.stderr
    assert list(tmp_path.iterdir()) == []  # neither the file nor a partial one is left
