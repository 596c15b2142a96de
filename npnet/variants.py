"""The released NPNet checkpoints and the base-model families they were trained for."""

from __future__ import annotations

from dataclasses import dataclass

TOKENS = 77
"""Prompt tokens the released networks read: their text Linear takes exactly 77 * D inputs."""

LATENT_CHANNELS = 4
LATENT_SIZE = 128
"""The released weights' latent: 4 x 128 x 128, i.e. 1024x1024 pixels."""


@dataclass(frozen=True)
class Family:
    """A base-model family: the text encoder whose hidden states condition NPNet."""

    name: str
    embed_dim: int
    encoder: str


FAMILIES = {
    "sdxl": Family("sdxl", 2048, "SDXL CLIP-L + OpenCLIP-bigG penultimate hidden states"),
    "dit": Family("dit", 1024, "Hunyuan-DiT bilingual BERT last hidden state"),
}


@dataclass(frozen=True)
class Variant:
    """One released checkpoint: which family it conditions on and where its files are published."""

    name: str
    label: str
    """How hosts show it (the ComfyUI loader's combo, the webui's dropdown)."""
    family: str
    base_model: str
    mirror_files: tuple[tuple[str, str], ...]
    """(repo, path) of the public safetensors conversions, tried after the official repo."""

    @property
    def local_name(self) -> str:
        """File name `download` stores the weights under (asagi4's mirror uses the same name)."""
        return f"npnet-{self.name}.safetensors"

    @property
    def local_names(self) -> tuple[str, ...]:
        """Files in a folder that `download` uses without a request: ours, LucipherDev's, the official .pth."""
        return (self.local_name, f"{self.name}.safetensors", f"{self.name}.pth")


OFFICIAL_REPO = "Klayand/GoldenNoiseModel"

VARIANTS = {
    "sdxl": Variant(
        "sdxl",
        "SDXL",
        "sdxl",
        "SDXL base 1.0 (also used for SDXL-Lightning, LCM-SDXL, PCM)",
        (("LucipherDev/Golden-Noise-NPNets", "sdxl.safetensors"), ("asagi4/NPNet", "npnet-sdxl.safetensors")),
    ),
    "dreamshaper": Variant(
        "dreamshaper",
        "DreamShaper-XL",
        "sdxl",
        "DreamShaper XL v2 turbo",
        (
            ("LucipherDev/Golden-Noise-NPNets", "dreamshaper.safetensors"),
            ("asagi4/NPNet", "npnet-dreamshaper.safetensors"),
        ),
    ),
    "dit": Variant(
        "dit",
        "Hunyuan-DiT",
        "dit",
        "Hunyuan-DiT v1.2",
        (("LucipherDev/Golden-Noise-NPNets", "dit.safetensors"), ("asagi4/NPNet", "npnet-dit.safetensors")),
    ),
}


def family_for_embed_dim(embed_dim: int) -> Family:
    """The family whose encoder produces `embed_dim`-wide tokens; ValueError for any other width."""
    for family in FAMILIES.values():
        if family.embed_dim == embed_dim:
            return family
    accepted = ", ".join(f"{f.embed_dim} ({f.name})" for f in FAMILIES.values())
    raise ValueError(
        f"NPNet weights with a {embed_dim}-wide prompt embedding do not match any released checkpoint; "
        f"accepted widths: {accepted}."
    )
