"""The shape of one NPNet: latent channels and size, prompt tokens and text width.

Every layer size of the network follows from these five numbers (see `npnet.model` for the rules), so a
network for Flux (16 channels), SD1.5 (64x64 latents) or a non-square SDXL resolution is the same code
with another `NPNetConfig`. The released checkpoints are `OFFICIAL[family]`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

from .variants import FAMILIES, LATENT_CHANNELS, LATENT_SIZE, TOKENS

METADATA_KEY = "npnet"
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

    def __post_init__(self) -> None:
        for name in ("channels", "height", "width", "tokens", "embed_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"NPNet {name} must be a whole number >= 1, got {value!r}.")
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

    def describe(self) -> str:
        """'4x128x128 latents, 77x2048 prompt tokens' for messages."""
        c, h, w = self.latent_shape
        return f"{c}x{h}x{w} latents, {self.tokens}x{self.embed_dim} prompt tokens"

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
