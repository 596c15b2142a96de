"""API-format graphs the Golden Noise server tests queue (node ids are strings, as /prompt expects)."""

from __future__ import annotations

LOADER, APPLY, COND, NOISE, MODEL, GUIDER, SAMPLER, SIGMAS, LATENT, SAMPLE, SAVE = (
    "10",
    "11",
    "12",
    "13",
    "14",
    "15",
    "16",
    "17",
    "18",
    "19",
    "20",
)


def noise_route(
    *,
    weights: str,
    record_as: str,
    seed: int = 1234,
    cond_seed: int = 3,
    family: str = "sdxl",
    model_family: str = "sdxl",
    width: int = 1024,
    height: int = 1024,
    batch: int = 1,
    strength: float = 1.0,
    resolution_mode: str = "strict",
) -> dict:
    """RandomNoise -> GoldenNoiseApply -> SamplerCustomAdvanced with the recording guider."""
    return {
        LOADER: {"class_type": "GoldenNoiseLoader", "inputs": {"weights": weights}},
        COND: {
            "class_type": "GoldenNoiseProbeConditioning",
            "inputs": {"seed": cond_seed, "family": family, "chunks": 1},
        },
        NOISE: {"class_type": "RandomNoise", "inputs": {"noise_seed": seed}},
        APPLY: {
            "class_type": "GoldenNoiseApply",
            "inputs": {
                "noise": [NOISE, 0],
                "positive": [COND, 0],
                "npnet": [LOADER, 0],
                "token_policy": "first_chunk",
                "strength": strength,
                "resolution_mode": resolution_mode,
            },
        },
        MODEL: {"class_type": "GoldenNoiseProbeModel", "inputs": {"family": model_family}},
        GUIDER: {"class_type": "GoldenNoiseProbeGuider", "inputs": {"model": [MODEL, 0], "name": record_as}},
        SAMPLER: {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
        SIGMAS: {
            "class_type": "BasicScheduler",
            "inputs": {"model": [MODEL, 0], "scheduler": "normal", "steps": 2, "denoise": 1.0},
        },
        LATENT: {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": width, "height": height, "batch_size": batch},
        },
        SAMPLE: {
            "class_type": "SamplerCustomAdvanced",
            "inputs": {
                "noise": [APPLY, 0],
                "guider": [GUIDER, 0],
                "sampler": [SAMPLER, 0],
                "sigmas": [SIGMAS, 0],
                "latent_image": [LATENT, 0],
            },
        },
        SAVE: {
            "class_type": "GoldenNoiseProbeSaveLatent",
            "inputs": {"latent": [SAMPLE, 0], "name": record_as + "_latent"},
        },
    }
