"""Host-free NPNet ("Golden Noise for Diffusion Models"): network, checkpoint loading, weights download,
prompt conditioning and the other-resolution helper. Imports only torch, einops, safetensors and
huggingface_hub, never the host application."""

from .checkpoint import ACCEPTED_FORMATS, load
from .conditioning import POLICIES, broadcast_prompt, fit_tokens
from .hub import DownloadError, download
from .model import NPNet
from .resolution import perturbation_transfer
from .variants import FAMILIES, LATENT_SIZE, TOKENS, VARIANTS

__all__ = [
    "ACCEPTED_FORMATS",
    "FAMILIES",
    "LATENT_SIZE",
    "POLICIES",
    "TOKENS",
    "VARIANTS",
    "DownloadError",
    "NPNet",
    "broadcast_prompt",
    "download",
    "fit_tokens",
    "load",
    "perturbation_transfer",
]
