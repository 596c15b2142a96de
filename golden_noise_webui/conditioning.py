"""The positive prompt's token states, per image, out of the webui's conditioning structures.

Forge and Automatic1111 (`modules/prompt_parser.py`) hand the sampler a `MulticondLearnedConditioning`:
`batch[i]` holds image i's AND-parts, each a `ComposableScheduledPromptConditioning` whose `schedules`
list the prompt-editing steps as `ScheduledPromptConditioning(end_at_step, cond)`. For SDXL `cond` is a
dict whose "crossattn" entry is the [77·k, 2048] CLIP-L + bigG hidden states (SD1.x gives a plain
[77·k, 768] tensor). NPNet reads one sequence per image: the first AND-part at the first schedule step,
which is the whole prompt when it uses neither AND nor [from:to:when] editing.
"""

from __future__ import annotations

import torch


def token_states(conditioning, image: int) -> torch.Tensor:
    """[1, L, D] token states of image `image` (first AND-part, first schedule step)."""
    cond = conditioning.batch[image][0].schedules[0].cond
    states = cond["crossattn"] if isinstance(cond, dict) else cond
    return states.unsqueeze(0) if states.ndim == 2 else states


def batch_size(conditioning) -> int:
    return len(conditioning.batch)
