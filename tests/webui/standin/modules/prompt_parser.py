"""Stands for modules/prompt_parser.py: the conditioning structures the sampler receives.

get_multicond_learned_conditioning splits each prompt on AND, encodes each part with the model's
get_learned_conditioning (a dict {"crossattn", "vector"} per prompt for SDXL, a tensor for SD1.x), and
returns MulticondLearnedConditioning(shape, batch) with one list of ComposableScheduledPromptConditioning
per image. Prompt editing ([from:to:when]) is not parsed here: every part has one schedule step.
"""

import re
from collections import namedtuple

ScheduledPromptConditioning = namedtuple("ScheduledPromptConditioning", ["end_at_step", "cond"])


class ComposableScheduledPromptConditioning:
    def __init__(self, schedules, weight=1.0):
        self.schedules = schedules
        self.weight = weight


class MulticondLearnedConditioning:
    def __init__(self, shape, batch):
        self.shape = shape
        self.batch = batch


re_AND = re.compile(r"\bAND\b")


def get_multicond_learned_conditioning(model, prompts, steps, hires_steps=None, use_old_scheduling=False):
    batch = []
    for prompt in prompts:
        parts = []
        for text in re_AND.split(prompt):
            conds = model.get_learned_conditioning([text.strip()])
            cond = {k: v[0] for k, v in conds.items()} if isinstance(conds, dict) else conds[0]
            parts.append(ComposableScheduledPromptConditioning([ScheduledPromptConditioning(steps, cond)]))
        batch.append(parts)
    return MulticondLearnedConditioning(shape=(len(prompts),), batch=batch)
