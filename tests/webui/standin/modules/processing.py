"""Stands for modules/processing.py: the processing objects and the generation loop, in the real order.

process_images: per batch, `p.rng = ImageRNG(...)` -> before_process_batch -> process_batch ->
setup_conds (p.c) -> p.sample(...). Txt2img `sample()` draws `x = p.rng.next()`, then, by host:
- forge (dfdcbab6 modules/processing.py:1371-1389) and classic (1f95d717 :1234-1250): the hook
  `process_before_every_sampling(self, x=x, noise=x, c=, uc=)`, and the sampler starts from
  `p.modified_noise` when a script set it (the attribute is set to None in
  `StableDiffusionProcessing.__init__`, forge :253, classic :265);
- a1111 (1.10.1 :1336-1346): the hook called with `p=self, x=x, noise=x, c=, uc=`; there is no
  `modified_noise`, the sampler is handed that very `x`;
- a1111_19 (1.6-1.9): no hook.
Hires fix draws a fresh ImageRNG noise for its second pass and calls the hook with `x` = the samples
(forge twice: once with `p=self` (:1504-1511), once positional (:1521-1526); classic once; a1111 once with
`p=self`). Img2img passes `x` = the init latent. The sampler returns the noise it started from, so
`p.started_from` records what each pass began with.
"""

from dataclasses import dataclass, field

from modules import infotext_utils, prompt_parser, rng, scripts, shared

FORGE_LIKE = scripts.HOST in ("forge", "classic")


@dataclass(repr=False)
class StableDiffusionProcessing:
    prompt: str = ""
    seed: int = 0
    batch_size: int = 1
    n_iter: int = 1
    steps: int = 20
    width: int = 1024
    height: int = 1024
    scripts: object = None
    extra_generation_params: dict = field(default_factory=dict)
    prompts: list = None
    seeds: list = None
    c: object = None
    started_from: dict = field(default_factory=dict)

    def __post_init__(self):
        if FORGE_LIKE:
            self.modified_noise = None  # Forge's __init__; A1111 has no such attribute

    @property
    def sd_model(self):
        return shared.sd_model

    def setup_conds(self):
        self.c = prompt_parser.get_multicond_learned_conditioning(self.sd_model, self.prompts, self.steps)

    def _hook(self, keyword_p=False, **kwargs):
        if self.scripts is None or not scripts.HAS_HOOK:
            return
        if keyword_p:
            self.scripts.process_before_every_sampling(p=self, **kwargs)
        else:
            self.scripts.process_before_every_sampling(self, **kwargs)

    def _take_modified(self, x):
        if FORGE_LIKE and self.modified_noise is not None:
            x, self.modified_noise = self.modified_noise, None
        return x


@dataclass(repr=False)
class StableDiffusionProcessingTxt2Img(StableDiffusionProcessing):
    enable_hr: bool = False

    def sample(self, conditioning, unconditional_conditioning, seeds, subseeds, subseed_strength, prompts):
        x = self.rng.next()
        self._hook(keyword_p=not FORGE_LIKE, x=x, noise=x, c=conditioning, uc=unconditional_conditioning)
        x = self._take_modified(x)
        self.started_from["first"] = x.clone()
        samples = x  # the stand-in sampler leaves its start unchanged
        if not self.enable_hr:
            return samples
        self.rng = rng.ImageRNG(samples.shape[1:], self.seeds)
        noise = self.rng.next()
        hr = dict(x=samples, noise=noise, c=conditioning, uc=unconditional_conditioning)
        if scripts.HOST in ("forge", "a1111"):
            self._hook(keyword_p=True, **hr)
        if FORGE_LIKE:
            self._hook(**hr)
        noise = self._take_modified(noise)
        self.started_from["hires"] = noise.clone()
        return samples


@dataclass(repr=False)
class StableDiffusionProcessingImg2Img(StableDiffusionProcessing):
    init_latent: object = None

    def sample(self, conditioning, unconditional_conditioning, seeds, subseeds, subseed_strength, prompts):
        x = self.rng.next()
        self._hook(
            keyword_p=not FORGE_LIKE,
            x=self.init_latent,
            noise=x,
            c=conditioning,
            uc=unconditional_conditioning,
        )
        x = self._take_modified(x)
        self.started_from["img2img"] = x.clone()
        return x


def create_infotext(p) -> str:
    params = {"Steps": p.steps, "Seed": p.seed, **p.extra_generation_params}
    line = ", ".join(
        k if k == v else f"{k}: {infotext_utils.quote(v)}" for k, v in params.items() if v is not None
    )
    return f"{p.prompt}\n{line}"


def process_images(p):
    """What each image started from (by pass) and its infotext; GoldenNoiseStop etc. propagate from p.sample."""
    latent_shape = (4, p.height // 8, p.width // 8)
    outputs = []
    for n in range(p.n_iter):
        if shared.state.interrupted:
            break
        p.prompts = [p.prompt] * p.batch_size if isinstance(p.prompt, str) else list(p.prompt)
        p.seeds = [p.seed + n * len(p.prompts) + i for i in range(len(p.prompts))]
        p.rng = rng.ImageRNG(latent_shape, p.seeds)
        if p.scripts is not None:
            p.scripts.before_process_batch(
                p, batch_number=n, prompts=p.prompts, seeds=p.seeds, subseeds=p.seeds
            )
            p.scripts.process_batch(p, batch_number=n, prompts=p.prompts, seeds=p.seeds, subseeds=p.seeds)
        p.setup_conds()
        p.sample(
            conditioning=p.c,
            unconditional_conditioning=None,
            seeds=p.seeds,
            subseeds=p.seeds,
            subseed_strength=0,
            prompts=p.prompts,
        )
        outputs.append(dict(p.started_from))
    return outputs, create_infotext(p)
