"""What the learning nodes (Collect, Evaluate, Train Golden Noise (reward)) share: their inputs, and what
those become (the prompt list, the renderer a run samples with), checked once here.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

from ..npnet import InputError, learning
from . import host_files
from .comfy_host import io
from .errors import GoldenNoiseError
from .rendering import Redenoise, Renderer, Sampling

REWARD = io.Custom("REWARD_MODEL")
NO_FILE = host_files.NO_FILE
PROMPT_SUFFIXES = (".txt", ".jsonl")
DATASETS = "npd"  # collections go to output/npd/<dataset_name>/


@contextmanager
def on_node(node: str, nid: str | None):
    """npnet's InputError, raised under the node's name and the input the user can change."""
    try:
        yield
    except InputError as error:
        raise GoldenNoiseError(node, nid, error.input, str(error)) from error


def prompt_files() -> list[str]:
    return [NO_FILE, *host_files.input_files(PROMPT_SUFFIXES)]


def read_prompts(node: str, nid: str | None, prompts: str, prompt_file: str) -> list[str]:
    """The prompt list from the text box or the input-folder file (not both: one source is unambiguous)."""
    typed = learning.read_prompts(prompts)
    if prompt_file == NO_FILE:
        if not typed:
            raise GoldenNoiseError(
                node, nid, "prompts", "no prompts: write one prompt per line, or pick a prompt_file."
            )
        return typed
    if typed:
        raise GoldenNoiseError(
            node,
            nid,
            "prompt_file",
            "both prompts and prompt_file are set; clear the prompts box or pick (none).",
        )
    path = host_files.input_file(prompt_file, PROMPT_SUFFIXES, "prompt_file", _errors(node, nid))
    with on_node(node, nid):
        read = learning.read_prompt_file(path)
    if not read:
        raise GoldenNoiseError(node, nid, "prompt_file", f"{prompt_file} holds no prompts.")
    return read


def _errors(node: str, nid: str | None):
    return lambda input_name, cause: GoldenNoiseError(node, nid, input_name, cause)


def shared_inputs() -> list:
    """The inputs Collect and Evaluate share, in this order: what renders and scores, and the prompts."""
    return [
        io.Model.Input("model", tooltip="The diffusion model (any model ComfyUI samples)."),
        io.Clip.Input("clip", tooltip="Its text encoder; the positive prompt's token states are used."),
        io.Vae.Input("vae", tooltip="Its VAE, to decode the images the reward scores."),
        REWARD.Input("reward", tooltip="From Reward Model Loader."),
        io.String.Input(
            "prompts",
            multiline=True,
            default="",
            tooltip="One prompt per line (blank lines and lines starting with # are skipped). "
            "Leave empty to use prompt_file.",
        ),
        io.Combo.Input(
            "prompt_file",
            options=prompt_files(),
            default=NO_FILE,
            tooltip='A .txt (one prompt per line) or .jsonl ({"prompt": ..., "seed": ...} per line, '
            "seed optional) file in ComfyUI's input folder, instead of the prompts box.",
        ),
        io.String.Input(
            "negative_prompt",
            multiline=True,
            default="",
            tooltip="The negative prompt of every rendered image (leave empty when `negative` is connected).",
        ),
        io.Conditioning.Input(
            "negative",
            optional=True,
            tooltip="A negative CONDITIONING instead of the negative_prompt text, for every image and "
            "both re-denoise steps. ConditioningZeroOut gives the authors' zero embeddings.",
        ),
    ]


def size_inputs() -> list:
    return [
        io.Int.Input(
            "width",
            default=1024,
            min=16,
            max=16384,
            step=8,
            tooltip="Image width in pixels: any size the model samples (a multiple of the VAE's 8).",
        ),
        io.Int.Input("height", default=1024, min=16, max=16384, step=8, tooltip="Image height in pixels."),
    ]


def preview_input(default: int) -> io.Int.Input:
    return io.Int.Input(
        "preview_pairs",
        default=default,
        min=0,
        max=64,
        optional=True,
        tooltip="Plain/golden image pairs kept for the image output (the first ones made); the rest are "
        "scored and dropped, so memory does not grow with the run.",
    )


@dataclass(frozen=True)
class RenderSetup:
    """What a Collect or Evaluate run renders with: the renderer, the reward and the prompt list."""

    renderer: Renderer
    reward: object
    prompts: list[str]


def render_setup(
    node,
    nid,
    model,
    clip,
    vae,
    reward,
    prompts,
    prompt_file,
    negative_prompt,
    width,
    height,
    negative=None,
    zero_negative=False,
    redenoise: Redenoise | None = None,
    batch_size: int = 1,
    **sampler,
) -> RenderSetup:
    prompt_list = read_prompts(node, nid, prompts, prompt_file)
    if negative is not None and negative_prompt.strip():
        raise GoldenNoiseError(
            node,
            nid,
            "negative_prompt",
            "both negative_prompt and a negative CONDITIONING are given; clear the text or disconnect "
            "`negative`.",
        )
    sampling = Sampling(
        negative_prompt, width, height, **sampler, negative=negative, zero_negative=zero_negative
    )
    renderer = Renderer(node, nid, model, clip, vae, sampling, redenoise or Redenoise(), batch_size)
    return RenderSetup(renderer, reward, prompt_list)


def is_zero(negative) -> bool:
    """No negative CONDITIONING, or a zeroed one (ConditioningZeroOut's: the authors' zero embeddings)."""
    return negative is None or all(not cond.any() for cond, _ in negative)


def batch_input(default: int) -> io.Int.Input:
    return io.Int.Input(
        "batch_size",
        default=default,
        min=1,
        max=256,
        optional=True,
        tooltip="Samples rendered at once. Larger is faster until the device is busy; memory grows with "
        "it: a batch samples 2 x batch_size latents at once (its plain and golden images), then decodes and "
        "scores them. Changes speed, never results: the same seeds give the same samples at any batch size.",
    )
