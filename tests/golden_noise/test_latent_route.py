"""The latent route and the KSampler drop-in, in-process against ComfyUI's real model objects.

`probe_model` is a real ComfyUI BaseModel + ModelPatcher (real SDXL model_sampling and latent format)
whose network predicts zero noise; no checkpoint is needed for the arithmetic checked here.
"""

from __future__ import annotations

import importlib

import torch

from dev.checkpoints import expected_golden

SEED = 2024


def golden_args(weights, strength=1.0, resolution_mode="strict"):
    return dict(npnet=weights, token_policy="first_chunk", strength=strength, resolution_mode=resolution_mode)


def test_to_latent_is_golden_noise_at_the_starting_sigma(gn_nodes, probes, inprocess_checkpoint):
    model = probes.probe_model("sdxl")
    cond = probes.probe_conditioning(5, "sdxl")
    weights = gn_nodes.GoldenNoiseLoader.execute("test-sdxl.safetensors").args[0]
    latent = {"samples": torch.zeros(1, 4, 128, 128)}

    out = gn_nodes.GoldenNoiseToLatent.execute(
        model=model, latent_image=latent, seed=SEED, positive=cond, **golden_args(weights)
    ).args[0]

    sampling = model.get_model_object("model_sampling")
    scale = torch.sqrt(1.0 + sampling.sigma_max**2)
    golden = model.get_model_object("process_latent_in")(out["samples"]) / scale
    expected = expected_golden(inprocess_checkpoint, SEED, (1, 4, 128, 128), cond[0][0])
    assert (golden - expected).abs().max().item() <= 1e-5
    assert latent["samples"].count_nonzero() == 0, "the input latent dict was modified"


def test_to_latent_keeps_a_non_empty_latent_as_the_sampler_would(gn_nodes, probes, inprocess_checkpoint):
    model = probes.probe_model("sdxl")
    cond = probes.probe_conditioning(5, "sdxl")
    weights = gn_nodes.GoldenNoiseLoader.execute("test-sdxl.safetensors").args[0]
    init = torch.randn(1, 4, 128, 128, generator=torch.Generator().manual_seed(1))
    out = gn_nodes.GoldenNoiseToLatent.execute(
        model=model, latent_image={"samples": init}, seed=SEED, positive=cond, **golden_args(weights)
    ).args[0]
    process_in = model.get_model_object("process_latent_in")
    scale = torch.sqrt(1.0 + model.get_model_object("model_sampling").sigma_max ** 2)
    golden = (process_in(out["samples"]) - process_in(init)) / scale
    expected = expected_golden(inprocess_checkpoint, SEED, (1, 4, 128, 128), cond[0][0])
    assert (golden - expected).abs().max().item() <= 1e-4


def test_ksampler_advanced_from_to_latent_equals_the_golden_ksampler(gn_nodes, probes, inprocess_checkpoint):
    """Both KSampler routes start from the same golden point (the zero-noise model keeps the start)."""
    import nodes as core_nodes

    model = probes.probe_model("sdxl")
    cond = probes.probe_conditioning(5, "sdxl")
    weights = gn_nodes.GoldenNoiseLoader.execute("test-sdxl.safetensors").args[0]
    empty = {"samples": torch.zeros(1, 4, 128, 128)}

    drop_in = gn_nodes.GoldenNoiseKSampler.execute(
        model=model,
        seed=SEED,
        steps=3,
        cfg=7.0,
        sampler_name="euler",
        scheduler="karras",
        positive=cond,
        negative=cond,
        latent_image=empty,
        denoise=1.0,
        **golden_args(weights),
    ).args[0]["samples"]
    start = gn_nodes.GoldenNoiseToLatent.execute(
        model=model, latent_image=empty, seed=SEED, positive=cond, **golden_args(weights)
    ).args[0]
    advanced = core_nodes.KSamplerAdvanced().sample(
        model, "disable", SEED, 3, 7.0, "euler", "karras", cond, cond, start, 0, 10000, "disable"
    )[0]["samples"]
    plain = core_nodes.KSampler().sample(model, SEED, 3, 7.0, "euler", "karras", cond, cond, empty)[0][
        "samples"
    ]

    scale = torch.sqrt(1.0 + model.get_model_object("model_sampling").sigma_max ** 2)
    expected = model.get_model_object("process_latent_out")(
        expected_golden(inprocess_checkpoint, SEED, (1, 4, 128, 128), cond[0][0]) * scale
    )
    assert torch.allclose(drop_in, expected, rtol=1e-5, atol=1e-4)
    assert torch.allclose(advanced, drop_in, rtol=1e-5, atol=1e-4)
    assert not torch.allclose(plain, drop_in, atol=1e-1), "the drop-in sampled from plain noise"


def test_ksampler_drop_in_has_every_core_ksampler_input(gn_nodes):
    import nodes as core_nodes

    core = core_nodes.KSampler.INPUT_TYPES()["required"]
    ours = gn_nodes.GoldenNoiseKSampler.INPUT_TYPES()["required"]
    assert list(ours)[: len(core)] == list(core)
    for name, (kind, *options) in core.items():
        if isinstance(kind, list):  # a V1 combo is its option list; V3 says COMBO with "options"
            assert ours[name][0] == "COMBO" and ours[name][1]["options"] == kind, name
        else:
            assert ours[name][0] == kind, name
        if options and "default" in options[0]:
            assert ours[name][1]["default"] == options[0]["default"], name


def test_batch_index_draws_the_same_noise_per_index(gn_nodes, probes, inprocess_checkpoint):
    from comfy_extras.nodes_custom_sampler import Noise_RandomNoise

    cond = probes.probe_conditioning(5, "sdxl")
    weights = gn_nodes.GoldenNoiseLoader.execute("test-sdxl.safetensors").args[0]
    noise = gn_nodes.GoldenNoiseApply.execute(
        noise=Noise_RandomNoise(SEED), positive=cond, **golden_args(weights)
    ).args[0]
    batch = noise.generate_noise({"samples": torch.zeros(2, 4, 128, 128), "batch_index": [2, 0]})
    expected = expected_golden(inprocess_checkpoint, SEED, (2, 4, 128, 128), cond[0][0], batch_index=[2, 0])
    assert noise.seed == SEED and batch.device.type == "cpu"
    assert (batch - expected).abs().max().item() <= 1e-5


def test_partial_strength_blend_keeps_the_noise_spread_and_the_latent_dtype(
    gn_nodes, probes, inprocess_checkpoint
):
    from comfy_extras.nodes_custom_sampler import Noise_RandomNoise

    cond = probes.probe_conditioning(5, "sdxl")
    weights = gn_nodes.GoldenNoiseLoader.execute("test-sdxl.safetensors").args[0]
    latent = {"samples": torch.zeros(1, 4, 128, 128, dtype=torch.float16)}
    half = (
        gn_nodes.GoldenNoiseApply.execute(
            noise=Noise_RandomNoise(SEED), positive=cond, **golden_args(weights, strength=0.5)
        )
        .args[0]
        .generate_noise(latent)
    )
    assert half.dtype == torch.float16 and half.device.type == "cpu"
    # The blend keeps the endpoints' spread: unit variance for real noise (this random test network's
    # output is wider than 1, so the target is interpolated).
    golden = expected_golden(inprocess_checkpoint, SEED, (1, 4, 128, 128), cond[0][0])
    plain = Noise_RandomNoise(SEED).generate_noise({"samples": torch.zeros(1, 4, 128, 128)})
    target = 0.5 * plain.std() + 0.5 * golden.std()
    assert abs(half.float().std().item() - target.item()) < 0.01


def test_loader_keeps_one_network_per_file_and_device(gn_nodes, inprocess_checkpoint):
    first = gn_nodes.GoldenNoiseLoader.execute("test-sdxl.safetensors").args[0]
    again = gn_nodes.GoldenNoiseLoader.execute("test-sdxl.safetensors").args[0]
    assert again is first
    assert first.family == "sdxl" and first.embed_dim == 2048
    assert first.patcher.model is first.on_device()  # loaded through ComfyUI's model management


def test_the_host_owns_the_loaded_network(gn_nodes, inprocess_checkpoint, comfy_inprocess):
    # Nothing of ours keeps a network alive: once ComfyUI drops the loader's output (its cache reset on
    # "free memory") and model management unloads it, the network is freed.
    import gc
    import weakref

    import comfy.model_management

    weights_module = importlib.import_module(comfy_inprocess.pack.__name__ + ".nodes.npnet_weights")
    loaded = gn_nodes.GoldenNoiseLoader.execute("test-sdxl.safetensors").args[0]
    loaded.on_device()
    network = weakref.ref(loaded.patcher.model)
    del loaded
    comfy.model_management.unload_all_models()
    gc.collect()
    assert network() is None, "the NPNet outlived every reference ComfyUI held"
    assert len(weights_module.CACHE) == 0
