"""Golden noise in a webui generation: which model families it serves, and the ways in.

Forge, Forge Classic and Automatic1111 1.10 call every always-on script's
`process_before_every_sampling(p, x=, noise=, c=, uc=)` just after txt2img draws the first pass's noise
(`x = p.rng.next()`, passed as both `x` and `noise`). What the sampler then starts from differs:
- Forge and Classic sample from `p.modified_noise` when a script set it (the attribute exists from
  `StableDiffusionProcessing.__init__`), so the golden noise goes there;
- Automatic1111 1.10 has the hook but no `modified_noise`: the sampler is handed that very `x`, so the
  golden noise is written into it.
The hires-fix second pass calls the hook again with `x` the upscaled samples and a fresh noise, and
img2img with `x` the init latent: only `x is noise` on a txt2img processing object is the first pass, the
one NPNet was trained for. Automatic1111 1.6-1.9 have no hook; their txt2img `sample()` draws the same
first noise from `p.rng`, which `process_images_inner` builds before the scripts' `process_batch`, so
there a thin wrapper around `p.rng` turns its first draw golden (`GoldenRNG`). Hires fix builds a new
`p.rng` for its pass, which stays plain. Every way calls `BatchGolden.golden` on the noise the webui drew, so the
same seed and settings give the same image, and plain noise is exactly what the webui would have drawn.
`BatchGolden.golden` is also where the infotext is written and `p.golden_noise_applied` set: an image says it
started from golden noise only when it did.
"""

from __future__ import annotations

from dataclasses import asdict

import torch

import npnet

from .conditioning import batch_size, token_states
from .settings import INFOTEXT_KEY, Settings
from .weights import on_device

SUPPORTED = "SDXL-family checkpoints (SDXL, DreamShaper XL, Pony, Illustrious and other SDXL fine-tunes)"
APPLIED_ATTRIBUTE = "golden_noise_applied"  # on p: whether this batch's first pass started from golden noise
# Class names of SDXL's CLIP-L text embedder in sgm's conditioner: sgm's own, A1111's hijacked wrapper
# (modules/sd_hijack.py:220 at v1.10.1) and Classic's (modules_forge/forge_loader.py at 1f95d717).
CLIP_L_EMBEDDERS = ("FrozenCLIPEmbedder", "FrozenCLIPEmbedderForSDXLWithCustomWords", "CLIP_SD_XL_L")


class GoldenNoiseStop(RuntimeError):
    """Golden Noise is on but cannot serve this generation; the message says why and what to do."""


def is_sdxl_refiner(sd_model) -> bool:
    """Every host flags the refiner `is_sdxl`. Forge main gives it its own engine class; A1111 and Classic
    load it through sgm, whose conditioner then has no CLIP-L text embedder (only OpenCLIP-bigG)."""
    if type(sd_model).__name__ == "StableDiffusionXLRefiner":
        return True
    embedders = getattr(getattr(sd_model, "conditioner", None), "embedders", None)
    return embedders is not None and not any(type(e).__name__ in CLIP_L_EMBEDDERS for e in embedders)


def is_inpainting(sd_model) -> bool:
    """A1111: `is_sdxl_inpaint`; Forge main and Neo: `is_inpaint`; Classic: a hybrid/concat conditioning key."""
    return bool(
        getattr(sd_model, "is_sdxl_inpaint", False)
        or getattr(sd_model, "is_inpaint", False)
        or getattr(getattr(sd_model, "model", None), "conditioning_key", None) in ("hybrid", "concat")
    )


def model_kind(sd_model) -> str | None:
    """None for an SDXL-family base model, else a name for the checkpoint type (for the error message)."""
    if getattr(sd_model, "is_sdxl", False):
        if is_sdxl_refiner(sd_model):
            return "the SDXL refiner (its 1280-wide prompt states are not what NPNet reads)"
        if is_inpainting(sd_model):
            return "an SDXL inpainting model"
        return None
    for attribute, name in (("is_sd1", "SD 1.x"), ("is_sd2", "SD 2.x"), ("is_sd3", "SD 3")):
        if getattr(sd_model, attribute, False):
            return name
    return type(sd_model).__name__  # Forge's engines: Flux, Chroma, ...


def unsupported_message(kind: str) -> str:
    return (
        f"Golden Noise is on, but the loaded checkpoint is {kind}. The NPNet networks serve {SUPPORTED} in "
        "this webui (Hunyuan-DiT and networks trained for other models run in the ComfyUI nodes). Turn Golden "
        "Noise off for this checkpoint, or load an SDXL checkpoint. Nothing was generated."
    )


class BatchGolden:
    """One batch's golden noise: the network and the settings, applied to the first pass only."""

    def __init__(self, model: npnet.NPNet, settings: Settings, p):
        self.model, self.settings, self.p = model, settings, p
        self.used = False

    def golden(self, noise: torch.Tensor, conditioning) -> torch.Tensor:
        """Each image's noise refined by NPNet for that image's own prompt; device and dtype kept."""
        if batch_size(conditioning) != noise.shape[0]:
            raise GoldenNoiseStop(
                f"Golden Noise: {noise.shape[0]} noises but {batch_size(conditioning)} prompts in the batch"
            )
        s = self.settings
        if s.strength == 0.0:
            # Strength 0 is the webui's own noise, bit for bit: the image claims no golden noise.
            self.used = True
            return noise
        out = []
        with on_device(self.model, noise.device):
            for i in range(noise.shape[0]):
                states = token_states(conditioning, i).to(noise.device, torch.float32)
                try:
                    out.append(npnet.golden_noise(self.model, noise[i : i + 1], states, **asdict(s.golden())))
                except npnet.InputError as error:
                    raise GoldenNoiseStop(f"Golden Noise ({error.input}): {error}") from error
        self.used = True
        # Written only now: the infotext says golden noise when the sampler is about to start from it.
        self.p.extra_generation_params[INFOTEXT_KEY] = s.infotext()
        setattr(self.p, APPLIED_ATTRIBUTE, True)
        return torch.cat(out).to(noise.dtype)

    def before_sampling(self, p, x, noise, c) -> None:
        """The hook: the first txt2img pass only. Forge / Classic: into `p.modified_noise`, chained on a
        noise another script already set there; A1111 1.10: into the `x` its sampler is handed."""
        if self.used or x is not noise:
            return
        if hasattr(p, "modified_noise"):
            current = p.modified_noise if p.modified_noise is not None else noise
            p.modified_noise = self.golden(current, c)
        else:
            x.copy_(self.golden(x, c))


class GoldenRNG:
    """Automatic1111's `p.rng` with its first draw made golden for `p.c`; everything else passes through."""

    def __init__(self, rng, p, job: BatchGolden):
        self._rng, self._p, self._job = rng, p, job

    def next(self):
        x = self._rng.next()
        if self._job.used:
            return x
        return self._job.golden(x, self._p.c)

    def __getattr__(self, name):
        return getattr(self._rng, name)


def stop_sampling(p, message: str) -> None:
    """Make `p.sample` raise `GoldenNoiseStop(message)`: the webui wraps script callbacks and only logs
    their errors, but the sampling call is its own, so this stops the generation with the message."""

    def refuse(*args, **kwargs):
        raise GoldenNoiseStop(message)

    p.sample = refuse
