"""Host-free NPNet ("Golden Noise for Diffusion Models"): network of any latent shape, checkpoint loading,
weights download, prompt conditioning and the golden-noise entry point. `import npnet` imports torch,
einops and safetensors only (huggingface_hub at the first download), never the host application; the
learning framework (datasets, collection, evaluation, training) is the subpackage `npnet.learning`,
imported only by those who use it.

A host calls `golden_noise(model, noise, prompt_embeds, ...)`, or `condition(model, prompt_embeds, ...)`
when the prompt is known before the noise and then calls the result on the noise; everything else is for
building, loading and training networks.
"""

from .checkpoint import ACCEPTED_FORMATS, load, save, written_by_this_pack
from .conditioning import POLICIES, broadcast_prompt, first_tokens, fit_tokens
from .config import OFFICIAL, NPNetConfig
from .files import atomic_write
from .golden import RESOLUTION_MODES, Cancelled, ConditionedNPNet, GoldenSettings, condition, golden_noise
from .hub import DownloadError, download, download_folder
from .inputs import InputError, describe_width, shown, variants_for_width
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
    "GoldenSettings",
    "InputError",
    "NPNet",
    "NPNetConfig",
    "atomic_write",
    "broadcast_prompt",
    "condition",
    "describe_width",
    "download",
    "download_folder",
    "first_tokens",
    "fit_tokens",
    "golden_noise",
    "load",
    "save",
    "shown",
    "variants_for_width",
    "written_by_this_pack",
]
