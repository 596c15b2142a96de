"""The Forge / Automatic1111 extension on the webui stand-in (Forge main, Forge Classic, A1111 1.10 and
1.6-1.9; see standin/README.md): the first-pass noise made golden through each host's way in, everything
else untouched, refusals that stop the run, infotext written only when golden noise was applied, X/Y/Z."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import npnet
from tests.support import REPO_ROOT
from tests.support.fake_hub import FakeHub

ON = (True, "my-sdxl.safetensors", 1.0, "first_chunk", "strict")
OFF = (False, "my-sdxl.safetensors", 1.0, "first_chunk", "strict")
PROMPTS = ["a lighthouse at dusk", "a bowl of ramen"]


def txt2img(webui, prompts=PROMPTS, **fields):
    return webui.processing.StableDiffusionProcessingTxt2Img(
        prompt=list(prompts), seed=100, steps=20, **fields
    )


def expected_golden(webui, npnet_file, prompts, seeds, strength=1.0):
    """npnet called directly on the noise the webui draws and each prompt's own SDXL states."""
    model = npnet.load(npnet_file)
    sdxl = webui.models.StableDiffusionXL()
    out = []
    for prompt, seed in zip(prompts, seeds, strict=True):
        plain = torch.randn((1, 4, 128, 128), generator=torch.Generator().manual_seed(seed))
        states = sdxl.get_learned_conditioning([prompt])["crossattn"]
        out.append(npnet.golden_noise(model, plain, states, strength=strength))
    return torch.cat(out)


def test_the_first_pass_starts_from_each_prompts_golden_noise(webui, npnet_file):
    outputs, infotext = webui.run(txt2img(webui), *ON)
    expected = expected_golden(webui, npnet_file, PROMPTS, [100, 101])
    assert torch.allclose(outputs[0]["first"], expected, atol=1e-5)
    assert not torch.allclose(expected[0:1], expected[1:2])  # different prompts, different refinements
    assert 'Golden Noise: "my-sdxl.safetensors, strength 1, first_chunk, strict"' in infotext


def test_strength_zero_starts_bit_for_bit_from_the_webuis_noise(webui):
    alone, _ = webui.run(txt2img(webui))
    zero, infotext = webui.run(txt2img(webui), True, "my-sdxl.safetensors", 0.0, "first_chunk", "strict")
    assert torch.equal(zero[0]["first"], alone[0]["first"])
    assert "Golden Noise" not in infotext  # the noise is the plain noise: the image claims nothing


def test_the_infotext_says_golden_only_when_the_sampler_started_from_golden_noise(webui, monkeypatch):
    """A host that never calls the hook (or a pass the extension leaves alone) gets no claim."""
    p = txt2img(webui)
    outputs, infotext = webui.run(p, *ON)
    assert p.golden_noise_applied is True and "Golden Noise" in infotext
    if webui.host == "a1111_19":
        return  # its way in is p.rng, not the hook
    monkeypatch.setattr(
        webui.scripts.ScriptRunner, "process_before_every_sampling", lambda self, p, **kw: None
    )
    alone, _ = webui.run(txt2img(webui))
    p = txt2img(webui)
    outputs, infotext = webui.run(p, *ON)
    assert torch.equal(outputs[0]["first"], alone[0]["first"])
    assert p.golden_noise_applied is False and "Golden Noise" not in infotext


def test_off_hires_and_img2img_are_byte_identical_to_the_webui_alone(webui):
    alone, _ = webui.run(txt2img(webui, enable_hr=True))
    off, _ = webui.run(txt2img(webui, enable_hr=True), *OFF)
    on, _ = webui.run(txt2img(webui, enable_hr=True), *ON)
    assert torch.equal(off[0]["first"], alone[0]["first"]) and torch.equal(off[0]["hires"], alone[0]["hires"])
    assert not torch.equal(on[0]["first"], alone[0]["first"])
    assert torch.equal(on[0]["hires"], alone[0]["hires"])  # the second pass keeps the webui's noise
    p = webui.processing.StableDiffusionProcessingImg2Img(
        prompt=list(PROMPTS), seed=100, init_latent=torch.zeros(2, 4, 128, 128)
    )
    img2img, infotext = webui.run(p, *ON)
    plain, _ = webui.run(
        webui.processing.StableDiffusionProcessingImg2Img(
            prompt=list(PROMPTS), seed=100, init_latent=torch.zeros(2, 4, 128, 128)
        )
    )
    assert torch.equal(img2img[0]["img2img"], plain[0]["img2img"]) and "Golden Noise" not in infotext


def test_the_two_hosts_ways_in_give_the_same_golden_noise(webui, npnet_file, tmp_path):
    """Forge's hook and the Automatic1111 p.rng wrapper both equal npnet on the webui's own noise."""
    outputs, _ = webui.run(txt2img(webui, n_iter=2), *ON)
    seeds = [100, 101, 102, 103]
    expected = expected_golden(webui, npnet_file, PROMPTS * 2, seeds)
    got = torch.cat([outputs[0]["first"], outputs[1]["first"]])
    assert torch.allclose(got, expected, atol=1e-5), webui.host
    assert ("process_before_every_sampling" in vars(webui.scripts.Script)) == (webui.host != "a1111_19")
    assert hasattr(txt2img(webui), "modified_noise") == (webui.host in ("forge", "classic"))


@pytest.mark.parametrize("model, kind", [("StableDiffusion", "SD 1.x"), ("Flux", "Flux")])
def test_a_non_sdxl_checkpoint_stops_the_generation_with_the_reason(webui, model, kind, caplog):
    webui.shared.sd_model = getattr(webui.models, model)()
    p = txt2img(webui)
    with pytest.raises(
        RuntimeError, match=f"loaded checkpoint is {kind}.*SDXL-family.*Nothing was generated"
    ):
        webui.run(p, *ON)
    assert p.started_from == {}  # no sampling happened
    assert f"checkpoint is {kind}" in caplog.text  # and the console says so


REFUSED_SDXL = {
    "forge": [
        ("StableDiffusionXLRefiner", "SDXL refiner"),
        ("ForgeStableDiffusionXLInpaint", "SDXL inpainting"),
    ],
    "classic": [("SgmStableDiffusionXLRefiner", "SDXL refiner")],
    "a1111": [("SgmStableDiffusionXLRefiner", "SDXL refiner")],
    "a1111_19": [("SgmStableDiffusionXLRefiner", "SDXL refiner")],
}


def test_the_sdxl_refiner_and_inpainting_models_are_refused_before_sampling(webui):
    for model, kind in REFUSED_SDXL[webui.host]:
        webui.shared.sd_model = getattr(webui.models, model)()
        p = txt2img(webui)
        with pytest.raises(
            RuntimeError, match=f"loaded checkpoint is (the|an) {kind}.*Nothing was generated"
        ):
            webui.run(p, *ON)
        assert p.started_from == {}, model


@pytest.mark.parametrize(
    "clip_l", ["FrozenCLIPEmbedder", "FrozenCLIPEmbedderForSDXLWithCustomWords", "CLIP_SD_XL_L"]
)
def test_an_sgm_loaded_sdxl_base_is_served(webui, npnet_file, clip_l):
    webui.shared.sd_model = webui.models.SgmStableDiffusionXL(clip_l)
    outputs, _ = webui.run(txt2img(webui), *ON)
    assert torch.allclose(
        outputs[0]["first"], expected_golden(webui, npnet_file, PROMPTS, [100, 101]), atol=1e-5
    )


def test_missing_weights_stop_the_generation_naming_the_file(webui, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="Golden Noise.*DreamShaper|Golden Noise.*dreamshaper"):
        webui.run(txt2img(webui), True, "DreamShaper-XL", 1.0, "first_chunk", "strict")
    with pytest.raises(RuntimeError, match="Golden Noise.*nothing-here.safetensors"):
        webui.run(txt2img(webui), True, "nothing-here.safetensors", 1.0, "first_chunk", "strict")
    with pytest.raises(RuntimeError, match="not a path"):
        webui.run(txt2img(webui), True, "../npnet/my-sdxl.safetensors", 1.0, "first_chunk", "strict")


def test_infotext_is_read_back_to_the_same_settings(webui):
    _, infotext = webui.run(
        txt2img(webui), True, "my-sdxl.safetensors", 0.35, "chunk_average", "perturbation_transfer"
    )
    params = webui.infotext_utils.parse_generation_parameters(infotext)
    fields = webui.module.extension.infotext_fields("enabled", "weights", "strength", "policy", "mode")
    restored = {component: read(params) for component, read in fields}
    assert restored == {
        "enabled": True,
        "weights": "my-sdxl.safetensors",
        "strength": 0.35,
        "policy": "chunk_average",
        "mode": "perturbation_transfer",
    }
    _, plain_infotext = webui.run(txt2img(webui), *OFF)
    plain = {c: read(webui.infotext_utils.parse_generation_parameters(plain_infotext)) for c, read in fields}
    assert plain["enabled"] is False and plain["weights"] is None  # off, the rest left as it is


def test_xyz_axes_are_registered_and_override_the_accordion(webui, npnet_file):
    webui.script_callbacks.before_ui_callback()
    webui.script_callbacks.before_ui_callback()  # a UI reload does not add them twice
    labels = [o.label for o in webui.xyz.axis_options]
    assert labels.count("[Golden Noise] Enabled") == 1 and "[Golden Noise] Strength" in labels
    enabled = next(o for o in webui.xyz.axis_options if o.label == "[Golden Noise] Enabled")
    strength = next(o for o in webui.xyz.axis_options if o.label == "[Golden Noise] Strength")
    assert enabled.choices() == ["False", "True"]
    p = txt2img(webui)
    enabled.apply(p, "False", ["False", "True"])
    off, _ = webui.run(p, *ON)
    alone, _ = webui.run(txt2img(webui))
    assert torch.equal(off[0]["first"], alone[0]["first"])
    p = txt2img(webui)
    strength.apply(p, 0.5, [0.5, 1.0])
    half, infotext = webui.run(p, *ON)
    assert torch.allclose(
        half[0]["first"], expected_golden(webui, npnet_file, PROMPTS, [100, 101], 0.5), atol=1e-5
    )
    assert "strength 0.5" in infotext


def test_weights_list_the_folder_and_download_through_the_hub_with_progress(
    webui, monkeypatch, npnet_file, capsys
):
    folder = Path(webui.module.host.models_folder())
    (folder / "npnet-sdxl.safetensors").unlink(missing_ok=True)
    assert webui.module.extension.weight_choices() == ["SDXL", "DreamShaper-XL", "my-sdxl.safetensors"]
    hub = FakeHub()
    hub.add("Klayand/GoldenNoiseModel", "weights/sdxl.safetensors", npnet_file.read_bytes())
    server = hub.serve()
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        outputs, _ = webui.run(txt2img(webui), True, "SDXL", 1.0, "first_chunk", "strict")
    finally:
        server.shutdown()
        server.server_close()
    assert (folder / "npnet-sdxl.safetensors").is_file()
    assert "Golden Noise: SDXL" in capsys.readouterr().err  # the console progress bar
    assert webui.module.extension.weight_choices() == ["SDXL", "DreamShaper-XL", "my-sdxl.safetensors"]


def test_interrupt_during_the_weights_download_stops_it_and_the_generation(webui, monkeypatch):
    import threading
    import time

    from tests.support.fake_hub import SilentHub

    (Path(webui.module.host.models_folder()) / "npnet-sdxl.safetensors").unlink(missing_ok=True)
    hub = SilentHub()
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("GOLDEN_NOISE_HUB_TIMEOUT", "600")
    timer = threading.Timer(0.5, webui.shared.state.interrupt)  # the user presses Interrupt
    try:
        timer.start()
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="Golden Noise: the download of SDXL was interrupted"):
            webui.run(txt2img(webui), True, "SDXL", 1.0, "first_chunk", "strict")
        assert time.monotonic() - started < 10  # not the 600 s stall timeout
    finally:
        timer.cancel()
        hub.close()
    assert not list(Path(webui.module.host.models_folder()).glob("npnet-sdxl*"))


def test_the_network_does_not_stay_on_the_sampling_device(webui):
    webui.run(txt2img(webui), *ON)
    model = webui.module.extension.CACHE._model
    assert next(model.parameters()).device.type == "cpu"


def test_neither_adapter_imports_the_other_host(tmp_path):
    standin = Path(__file__).parent / "standin"
    webui_side = (
        "import sys; sys.path[:0] = [%r, %r]\n"
        "from modules import script_loading\n"
        "script_loading.load_module(%r)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('comfy', 'comfy_api', 'folder_paths', 'nodes')]\n"
        "assert not bad, bad\n"
    ) % (str(REPO_ROOT), str(standin), str(REPO_ROOT / "scripts" / "golden_noise.py"))
    comfy_side = (
        "import sys, pathlib; sys.path.insert(0, %r)\n"
        "from dev.comfy_harness import import_inprocess\n"
        "ns = import_inprocess(pathlib.Path(%r), 'golden_noise_pack')\n"
        "import importlib; importlib.import_module('golden_noise_pack.nodes.extension').node_classes()\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('golden_noise_webui', 'modules', 'gradio')]\n"
        "assert not bad, bad\n"
    ) % (str(REPO_ROOT), str(tmp_path))
    for code in (webui_side, comfy_side):
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize(
    "value", ["SDXL, strength abc, first_chunk, strict", "SDXL, strength , x, y", "garbage"]
)
def test_a_garbled_infotext_restores_nothing_and_raises_nothing(webui, value):
    fields = webui.module.extension.infotext_fields("enabled", "weights", "strength", "policy", "mode")
    restored = {component: read({"Golden Noise": value}) for component, read in fields}
    assert restored == dict.fromkeys(("enabled", "weights", "strength", "policy", "mode"))


@pytest.mark.parametrize("value", [None, "abc", float("nan"), 2.0])
def test_a_bad_xyz_strength_stops_the_generation_with_the_reason(webui, value):
    webui.script_callbacks.before_ui_callback()
    strength = next(o for o in webui.xyz.axis_options if o.label == "[Golden Noise] Strength")
    p = txt2img(webui)
    strength.apply(p, value, [value])
    with pytest.raises(RuntimeError, match="Golden Noise.*strength must be"):
        webui.run(p, *ON)
    assert p.started_from == {}
