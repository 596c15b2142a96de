"""Golden Noise nodes (NPNet): loader, NOISE wrapper, KSampler drop-in, latent route."""

NODES: list[type] = []
