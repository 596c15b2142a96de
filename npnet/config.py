"""The shape of one NPNet: latent channels and size, prompt tokens and text width.

Every layer size of the network follows from these five numbers (see `npnet.model` for the rules), so a
network for Flux (16 channels), SD1.5 (64x64 latents) or a non-square SDXL resolution is the same code
with another `NPNetConfig`. The released checkpoints are `OFFICIAL[family]`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace

from .variants import FAMILIES, LATENT_CHANNELS, LATENT_SIZE, TOKENS

METADATA_KEY = "npnet"
NOISE_BRANCHES = ("swin", "conv", "none")
# Named architectures: (noise_branch, prompt_map). "latent" is what `python -m npnet.train` builds unless
# told otherwise; "paper" is the released one; the others are the ablation of the learning benchmark (docs/learning.md).
ARCHITECTURES = {
    "paper": ("swin", False),
    "latent": ("conv", True),
    "conv": ("conv", False),
    "map": ("none", True),
    "text-only": ("none", False),
}
"""The safetensors metadata key under which our files store their `NPNetConfig` as JSON."""


@dataclass(frozen=True)
class NPNetConfig:
    """channels C, height H, width W of the latent; tokens T and width D of the prompt's token states.

    family: "sdxl" or "dit" for the released families (their conditioning rules apply), None for a
    network trained on any other model.
    """

    channels: int = LATENT_CHANNELS
    height: int = LATENT_SIZE
    width: int = LATENT_SIZE
    tokens: int = TOKENS
    embed_dim: int = 2048
    family: str | None = "sdxl"
    # The architecture (see `npnet.model`): the paper's by default, so the released checkpoints and every
    # file written before these fields existed load as what they are.
    noise_branch: str = (
        "swin"  # "swin" (the paper's Swin-T at 224x224), "conv" (at the latent's size), "none"
    )
    prompt_map: bool = False  # the prompt-dependent spatial term (`npnet.latent_branches.PromptMap`)

    def __post_init__(self) -> None:
        for name in ("channels", "height", "width", "tokens", "embed_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"NPNet {name} must be a whole number >= 1, got {value!r}.")
        if self.noise_branch not in NOISE_BRANCHES:
            raise ValueError(
                f"NPNet noise_branch must be one of {', '.join(NOISE_BRANCHES)}, got {self.noise_branch!r}."
            )
        if not isinstance(self.prompt_map, bool):
            raise ValueError(f"NPNet prompt_map must be true or false, got {self.prompt_map!r}.")
        if self.family is not None and self.family not in FAMILIES:
            raise ValueError(f"NPNet family must be one of {sorted(FAMILIES)} or None, got {self.family!r}.")
        if self.family is not None and FAMILIES[self.family].embed_dim != self.embed_dim:
            raise ValueError(
                f"NPNet family {self.family!r} conditions on {FAMILIES[self.family].embed_dim}-wide tokens, "
                f"not {self.embed_dim}."
            )

    @property
    def grid(self) -> tuple[int, int]:
        """How the SVD branch tiles the C channels: (rows, columns), rows the largest divisor <= sqrt(C).

        4 -> 2x2 (the released networks), 16 -> 4x4, 8 -> 2x4, 1 -> 1x1, 3 -> 1x3.
        """
        rows = max(d for d in range(1, math.isqrt(self.channels) + 1) if self.channels % d == 0)
        return rows, self.channels // rows

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return self.channels, self.height, self.width

    @property
    def is_official(self) -> bool:
        """The shape of a released checkpoint (their files carry no metadata and use these key names)."""
        return self.family is not None and self == OFFICIAL[self.family]

    @property
    def architecture(self) -> str:
        """The name of this network's architecture in ARCHITECTURES."""
        return next(k for k, v in ARCHITECTURES.items() if v == (self.noise_branch, self.prompt_map))

    def with_architecture(self, name: str) -> NPNetConfig:
        if name not in ARCHITECTURES:
            raise ValueError(f"NPNet architecture must be one of {', '.join(ARCHITECTURES)}, got {name!r}.")
        noise_branch, prompt_map = ARCHITECTURES[name]
        return replace(self, noise_branch=noise_branch, prompt_map=prompt_map)

    def describe(self) -> str:
        """'4x128x128 latents, 77x2048 prompt tokens' for messages (and the architecture if not the paper's)."""
        c, h, w = self.latent_shape
        arch = "" if self.architecture == "paper" else f", {self.architecture} architecture"
        return f"{c}x{h}x{w} latents, {self.tokens}x{self.embed_dim} prompt tokens{arch}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: object = "the file") -> NPNetConfig:
        try:
            fields = json.loads(text)
            if not isinstance(fields, dict):
                raise TypeError("not a JSON object")
            return cls(**fields)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"{source}: its '{METADATA_KEY}' metadata is not an NPNet configuration ({error})."
            ) from None


OFFICIAL = {name: NPNetConfig(embed_dim=family.embed_dim, family=name) for name, family in FAMILIES.items()}
"""The shape of the released checkpoints: SDXL / DreamShaper-XL (D = 2048) and Hunyuan-DiT (D = 1024)."""
