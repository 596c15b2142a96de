"""Stands for modules/rng.py: ImageRNG(shape, seeds, ...) draws one unit-variance noise per seed.

The real one draws with the "random number source" setting (CPU by default); this one with torch's CPU
generator seeded per image, then moves it to `devices.device`, as the real `next()` does.
"""

import torch

from modules import devices


class ImageRNG:
    def __init__(
        self, shape, seeds, subseeds=None, subseed_strength=0.0, seed_resize_from_h=0, seed_resize_from_w=0
    ):
        self.shape = tuple(map(int, shape))
        self.seeds = seeds
        self.is_first = True
        self.draws = 0

    def first(self):
        noise = [torch.randn(self.shape, generator=torch.Generator().manual_seed(int(s))) for s in self.seeds]
        return torch.stack(noise).to(devices.device)

    def next(self):
        self.draws += 1
        if self.is_first:
            self.is_first = False
            return self.first()
        return torch.randn(
            (len(self.seeds), *self.shape), generator=torch.Generator().manual_seed(self.draws)
        ).to(devices.device)
