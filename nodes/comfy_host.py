"""The one place that imports ComfyUI.

Every other module of `nodes/` takes the host's API from here, so a change in ComfyUI's API touches
this file alone. Only what the supported cores share is used (0.3.75, the oldest the suite runs on, and
the newer ones the pack was also run on). Outside ComfyUI (plain Python, the webui, the cores' tests)
`HOST_API` is None and nothing is registered.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..npnet import Cancelled

# One top-level menu for the whole pack; families add their own sub-menu.
MENU = "golden_noise"

try:
    import comfy.model_management as model_management
    import comfy.utils as comfy_utils
    import folder_paths
    from comfy_api.latest import ComfyExtension, io, ui
except ImportError:  # not running inside ComfyUI
    model_management = comfy_utils = folder_paths = None
    io = ui = ComfyExtension = None
    HOST_API = None
else:
    HOST_API = "v3"

# Sampling internals for the Golden Noise nodes (KSampler drop-in, latent route, NPNet offloading).
# Separate guard: a core that moved one of these still registers the other nodes.
try:
    import comfy.k_diffusion.sampling as k_diffusion_sampling
    import comfy.model_patcher as model_patcher
    import comfy.model_sampling as comfy_model_sampling
    import comfy.sample as comfy_sample
    import comfy.samplers as comfy_samplers
    import latent_preview
    from comfy_extras.nodes_custom_sampler import Noise_RandomNoise

    from nodes import ConditioningZeroOut
except ImportError:
    model_patcher = comfy_model_sampling = comfy_sample = comfy_samplers = latent_preview = None
    k_diffusion_sampling = None
    Noise_RandomNoise = ConditioningZeroOut = None

Progress = Callable[[int, "int | None"], None]


@contextmanager
def progress_and_cancel(
    total: int, node_id: str | None = None
) -> Iterator[tuple[Progress, Callable[[], bool]]]:
    """(progress, should_cancel) for a core's long loop, wired to ComfyUI's progress bar and Cancel.

    The cores poll `should_cancel` and stop with their own `Cancelled`; ComfyUI must see its own
    interrupt exception to report the prompt as interrupted (not failed), so whatever the core raised
    while Cancel was pressed becomes that exception.
    """
    bar = comfy_utils.ProgressBar(total, node_id=node_id)

    def progress(done: int, total: int | None) -> None:
        # A download may not know its size: the bar then shows the bytes so far as the whole.
        bar.update_absolute(done, total or max(done, 1))

    try:
        yield progress, model_management.processing_interrupted
    except Cancelled as cancelled:  # the core stopped for Cancel (or `interrupt_as_cancel` saw the host's)
        raise model_management.InterruptProcessingException() from cancelled
    except Exception:
        model_management.throw_exception_if_processing_interrupted()
        raise


@contextmanager
def interrupt_as_cancel() -> Iterator[None]:
    """The host's Cancel, raised from inside its own work (the text encoder, a sampler), as the cores'
    `Cancelled`: ComfyUI clears its flag as it raises, so a core could not tell a cancel from a failure."""
    try:
        yield
    except model_management.InterruptProcessingException as interrupt:
        raise Cancelled("cancelled") from interrupt


def register_model_folder(name: str, default: str, extensions: set[str]) -> None:
    """Declare the model folder type `name`: `default` plus any folders an `name:` entry of
    extra_model_paths.yaml gave it. Such an entry, read before this pack loaded, creates the type with
    only the user's paths and no extension filter: keep those paths, add the default, set the filter."""
    paths, _ = folder_paths.folder_names_and_paths.get(name, ([], set()))
    folder_paths.folder_names_and_paths[name] = (
        [*paths, *([] if default in paths else [default])],
        set(extensions),
    )


def serve_json(path: str, payload: Callable[[], object]) -> bool:
    """Answer GET `path` (and /api`path`, as ComfyUI mirrors its routes) with `payload()` as JSON, for
    the pack's front end. False outside a running server (plain Python, in-process tests)."""
    try:
        from aiohttp import web
        from server import PromptServer
    except ImportError:
        return False
    instance = getattr(PromptServer, "instance", None)
    if instance is None:
        return False

    async def answer(request):
        return web.json_response(payload())

    instance.routes.get(path)(answer)
    return True


_RATIO_KEYS = ("downscale_ratio_spacial", "downscale_ratio_temporal")


def fix_empty_latent(model, latent: dict) -> dict:
    """A copy of `latent` whose samples fit the model, as core's `common_ksampler` prepares it.

    Newer cores keep `downscale_ratio_spacial` / `downscale_ratio_temporal` in the latent dict and pass
    them to `fix_empty_latent_channels`, which then takes them as extra arguments; 0.3.75 takes
    (model, samples) only. The keys stay in the copy, as core keeps them.
    """
    extra = len(inspect.signature(comfy_sample.fix_empty_latent_channels).parameters) - 2
    out = dict(latent)
    args = [latent.get(key) for key in _RATIO_KEYS[: max(extra, 0)]]
    out["samples"] = comfy_sample.fix_empty_latent_channels(model, latent["samples"], *args)
    return out
