"""Golden Noise nodes (NPNet): loader, NOISE wrapper, KSampler drop-in, latent route.

Each node turns its inputs into the small objects of `noise_objects` / `npnet_weights` and returns
ComfyUI types; the network itself is `npnet`. Node ids are a public contract (saved workflows
refer to them): never rename one.
"""

from __future__ import annotations

from ..npnet import POLICIES, RESOLUTION_MODES
from .comfy_host import (
    MENU,
    Noise_RandomNoise,
    comfy_sample,
    comfy_samplers,
    comfy_utils,
    fix_empty_latent,
    io,
    latent_preview,
)
from .noise_objects import Origin, golden_maker, start_latent
from .npnet_weights import NPNetWeights, load_weights, weight_choices
from .rendering import ksampler_widgets

# Imported only inside ComfyUI (extension.node_classes), so `io` is the host's schema API here.
CATEGORY = f"{MENU}/noise"
NPNET = io.Custom("NPNET")


def golden_inputs() -> list:
    """The NPNET input and Golden Noise widgets every golden node shares."""
    return [
        NPNET.Input(
            "npnet",
            tooltip="The NPNet network from Golden Noise Loader; its variant must match "
            "the base model (SDXL family or Hunyuan-DiT).",
        ),
        io.Combo.Input(
            "token_policy",
            options=list(POLICIES),
            default="first_chunk",
            tooltip="Prompts longer than 75 tokens: 'first_chunk' feeds NPNet the first 77 "
            "tokens (what it was trained on); 'chunk_average' averages SDXL's 77-token chunks; "
            "'chain' runs NPNet chunk after chunk (LucipherDev's pack, asagi4's 'recurse'); "
            "'average_outputs' averages NPNet's outputs over the chunks (asagi4's 'average').",
        ),
        io.Float.Input(
            "strength",
            default=1.0,
            min=0.0,
            max=1.0,
            step=0.01,
            tooltip="0 = the plain seeded noise, 1 = the golden noise; in between, a blend "
            "rescaled so its spread lies between the two noises' (it does not shrink).",
        ),
        io.Combo.Input(
            "resolution_mode",
            options=list(RESOLUTION_MODES),
            default="strict",
            tooltip="'strict': only 128x128 latents (1024x1024 px), what NPNet was trained on; "
            "other sizes are an error. 'perturbation_transfer': any size, NPNet's correction of "
            "a 128x128 resampling carried to the native noise (an approximation, weaker effect).",
        ),
    ]


def seed_input():
    """The seed widget, as on core KSampler (full 64-bit range, changed after each run)."""
    return io.Int.Input(
        "seed",
        default=0,
        min=0,
        max=0xFFFFFFFFFFFFFFFF,
        control_after_generate=True,
        tooltip="The random seed of the noise that NPNet refines.",
    )


def node_id(cls) -> str | None:
    """This node's id in the running graph (None when a test calls `execute` directly)."""
    return cls.hidden.unique_id if cls.hidden is not None else None


class GoldenNoiseLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="GoldenNoiseLoader",
            display_name="Golden Noise Loader",
            category=CATEGORY,
            description="Loads an NPNet (Golden Noise) network. The released variants download on first "
            "use into models/golden_noise; files there, in models/npnet (other NPNet packs' folder) and "
            "in `golden_noise:` / `npnet:` folders of extra_model_paths.yaml are listed too. Kept loaded "
            "across runs.",
            inputs=[
                io.Combo.Input(
                    "weights",
                    options=weight_choices(),
                    default="SDXL",
                    tooltip="SDXL (also SDXL-Lightning, LCM, PCM), DreamShaper-XL or Hunyuan-DiT "
                    "weights (downloaded if missing), or a .safetensors/.pth file from models/golden_noise or "
                    "models/npnet.",
                ),
            ],
            outputs=[
                NPNET.Output(display_name="npnet", tooltip="The loaded network, for the Golden Noise nodes.")
            ],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, weights: str) -> io.NodeOutput:
        return io.NodeOutput(load_weights(weights, node_id(cls)))


class GoldenNoiseApply(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="GoldenNoiseApply",
            display_name="Golden Noise",
            category=CATEGORY,
            description="Turns a NOISE (e.g. RandomNoise) into golden noise for the positive prompt, for "
            "SamplerCustomAdvanced. Keeps the seed; runs NPNet on ComfyUI's device when the "
            "sampler asks for the noise.",
            inputs=[
                io.Noise.Input(
                    "noise", tooltip="The noise to refine, e.g. from RandomNoise (its seed is kept)."
                ),
                io.Conditioning.Input(
                    "positive",
                    tooltip="The positive prompt's conditioning; NPNet reads its first entry's token states.",
                ),
                *golden_inputs(),
            ],
            outputs=[
                io.Noise.Output(display_name="noise", tooltip="Golden noise, for SamplerCustomAdvanced.")
            ],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(
        cls, noise, positive, npnet: NPNetWeights, token_policy: str, strength: float, resolution_mode: str
    ) -> io.NodeOutput:
        origin = Origin("Golden Noise (GoldenNoiseApply)", node_id(cls))
        return io.NodeOutput(
            golden_maker(origin, npnet, token_policy, strength, resolution_mode)(noise, positive)
        )


class GoldenNoiseKSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        # KSampler's own widgets and defaults (cfg 8.0, its first scheduler), in its order.
        ksampler = ksampler_widgets(cfg=8.0, scheduler=comfy_samplers.KSampler.SCHEDULERS[0], min_steps=1)
        return io.Schema(
            node_id="GoldenNoiseKSampler",
            display_name="KSampler (Golden Noise)",
            category=CATEGORY,
            description="KSampler that starts from golden noise: the same inputs and widgets as the core "
            "KSampler, plus an NPNET and the Golden Noise widgets. Replace a KSampler with it.",
            inputs=[
                io.Model.Input("model", tooltip="The model used for denoising the input latent."),
                seed_input(),
                *(ksampler[name] for name in ("steps", "cfg", "sampler_name", "scheduler")),
                io.Conditioning.Input("positive", tooltip="What to include; NPNet also reads it."),
                io.Conditioning.Input("negative", tooltip="What to exclude."),
                io.Latent.Input(
                    "latent_image",
                    tooltip="The latent to denoise (an empty 1024x1024 latent for text-to-image).",
                ),
                io.Float.Input(
                    "denoise",
                    default=1.0,
                    min=0.0,
                    max=1.0,
                    step=0.01,
                    tooltip="How much to denoise; below 1 keeps the input latent's structure.",
                ),
                *golden_inputs(),
            ],
            outputs=[io.Latent.Output(tooltip="The denoised latent.")],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(
        cls,
        model,
        seed,
        steps,
        cfg,
        sampler_name,
        scheduler,
        positive,
        negative,
        latent_image,
        denoise,
        npnet,
        token_policy,
        strength,
        resolution_mode,
    ) -> io.NodeOutput:
        # common_ksampler, with the golden noise in place of prepare_noise.
        latent = fix_empty_latent(model, latent_image)
        origin = Origin("KSampler (Golden Noise)", node_id(cls))
        make = golden_maker(origin, npnet, token_policy, strength, resolution_mode)
        golden = make(Noise_RandomNoise(seed), positive)
        noise = golden.generate_noise(latent)
        samples = comfy_sample.sample(
            model,
            noise,
            steps,
            cfg,
            sampler_name,
            scheduler,
            positive,
            negative,
            latent["samples"],
            denoise=denoise,
            noise_mask=latent.get("noise_mask"),
            seed=seed,
            callback=latent_preview.prepare_callback(model, steps),
            disable_pbar=not comfy_utils.PROGRESS_BAR_ENABLED,
        )
        latent["samples"] = samples
        return io.NodeOutput(latent)


class GoldenNoiseToLatent(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="GoldenNoiseToLatent",
            display_name="Golden Noise to Latent",
            category=CATEGORY,
            description="For KSamplerAdvanced graphs: the latent noised with golden noise at the model's "
            "starting sigma. Feed it to KSamplerAdvanced with add_noise = disable and "
            "start_at_step = 0.",
            inputs=[
                io.Model.Input(
                    "model", tooltip="The model the KSamplerAdvanced uses (for its sigma and latent scaling)."
                ),
                io.Latent.Input(
                    "latent_image",
                    tooltip="The latent to start from (usually Empty Latent Image, 1024x1024).",
                ),
                seed_input(),
                io.Conditioning.Input(
                    "positive",
                    tooltip="The positive prompt's conditioning; NPNet reads its first entry's token states.",
                ),
                *golden_inputs(),
            ],
            outputs=[
                io.Latent.Output(
                    tooltip="Noisy latent: connect to KSamplerAdvanced (add_noise = "
                    "disable, start_at_step = 0)."
                )
            ],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(
        cls, model, latent_image, seed, positive, npnet, token_policy, strength, resolution_mode
    ) -> io.NodeOutput:
        latent = fix_empty_latent(model, latent_image)
        origin = Origin("Golden Noise to Latent (GoldenNoiseToLatent)", node_id(cls))
        make = golden_maker(origin, npnet, token_policy, strength, resolution_mode)
        golden = make(Noise_RandomNoise(seed), positive)
        latent["samples"] = start_latent(model, golden.generate_noise(latent), latent["samples"])
        return io.NodeOutput(latent)


NODES: list[type] = [GoldenNoiseLoader, GoldenNoiseApply, GoldenNoiseKSampler, GoldenNoiseToLatent]
