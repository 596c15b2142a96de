"""Host-free NPNet ("Golden Noise for Diffusion Models"): network of any latent shape, checkpoint loading,
weights download, prompt conditioning, the golden-noise entry point, and training (`npnet.train`).
Imports only torch, einops, safetensors and huggingface_hub, never the host application.

A host calls `golden_noise(model, noise, prompt_embeds, ...)`, or `condition(model, prompt_embeds, ...)`
when the prompt is known before the noise and then calls the result on the noise; everything else is for
building, loading and training networks.
"""

from .checkpoint import ACCEPTED_FORMATS, load, save
from .conditioning import POLICIES, broadcast_prompt, fit_tokens
from .config import OFFICIAL, NPNetConfig
from .golden import RESOLUTION_MODES, Cancelled, ConditionedNPNet, condition, golden_noise
from .hub import DownloadError, download
from .inputs import InputError, describe_width, variants_for_width
from .model import NPNet
from .variants import FAMILIES, LATENT_SIZE, TOKENS, VARIANTS

__all__ = [
    "ACCEPTED_FORMATS",
    "FAMILIES",
    "LATENT_SIZE",
    "OFFICIAL",
    "POLICIES",
    "RESOLUTION_MODES",
    "TOKENS",
    "VARIANTS",
    "Cancelled",
    "ConditionedNPNet",
    "DownloadError",
    "InputError",
    "NPNet",
    "NPNetConfig",
    "broadcast_prompt",
    "condition",
    "describe_width",
    "download",
    "fit_tokens",
    "golden_noise",
    "load",
    "save",
    "variants_for_width",
]
