"""What the webui's script callbacks do: check, load, and set up golden noise for each batch."""

from __future__ import annotations

import npnet

from . import host
from .generation import (
    APPLIED_ATTRIBUTE,
    BatchGolden,
    GoldenNoiseStop,
    GoldenRNG,
    model_kind,
    stop_sampling,
    unsupported_message,
)
from .settings import INFOTEXT_KEY, XYZ_ATTRIBUTE, Settings, SettingsError, parse_infotext
from .weights import NetworkCache, choices, resolve

JOB_ATTRIBUTE = "golden_noise_job"
CACHE = NetworkCache()
NOTE = (
    "NPNet refines the first pass's starting noise of txt2img for SDXL-family checkpoints. "
    "The hires-fix second pass and img2img are left as they are."
)


def weight_choices() -> list[str]:
    return choices(host.models_folder())


def process_batch(p, enabled, weights, strength, token_policy, resolution_mode) -> None:
    """Per batch, before its conditioning and sampling: refuse what cannot run, else prepare the job."""
    setattr(p, JOB_ATTRIBUTE, None)
    setattr(p, APPLIED_ATTRIBUTE, False)
    p.extra_generation_params.pop(INFOTEXT_KEY, None)  # written again only if this batch is made golden
    settings = Settings(bool(enabled), weights, strength, token_policy, resolution_mode)
    try:
        settings = settings.with_xyz(getattr(p, XYZ_ATTRIBUTE, None))
        if not settings.enabled or not host.is_txt2img(p):
            return
        settings.checked()
        kind = model_kind(host.sd_model())
        if kind is not None:
            raise GoldenNoiseStop(unsupported_message(kind))
        try:
            path = resolve(settings.weights, host.models_folder(), should_cancel=host.interrupted)
        except npnet.Cancelled:
            raise GoldenNoiseStop(
                f"Golden Noise: the download of {settings.weights} was interrupted; nothing was generated"
            ) from None
        model = CACHE.get(path)
        if model.embed_dim != npnet.FAMILIES["sdxl"].embed_dim:
            raise GoldenNoiseStop(
                f"Golden Noise weights {settings.weights!r} condition on {model.embed_dim}-wide prompt states; "
                "this webui feeds SDXL's 2048-wide ones. Choose an SDXL-family network."
            )
    except (GoldenNoiseStop, SettingsError, npnet.DownloadError, OSError, ValueError) as error:
        message = str(error) if str(error).startswith("Golden Noise") else f"Golden Noise: {error}"
        host.report(message)
        stop_sampling(p, message)
        return
    job = BatchGolden(model, settings, p)
    setattr(p, JOB_ATTRIBUTE, job)
    if not host.has_sampling_hook():
        p.rng = GoldenRNG(p.rng, p, job)


def before_every_sampling(p, x=None, noise=None, c=None) -> None:
    """Forge's hook. Its errors would only be logged by the webui, so a failure also stops the run."""
    job = getattr(p, JOB_ATTRIBUTE, None)
    if job is None:
        return
    try:
        job.before_sampling(p, x, noise, c)
    except Exception as error:
        host.report(f"Golden Noise failed, generation stopped: {error}")
        host.interrupt()
        raise


def infotext_fields(enabled, weights, strength, token_policy, resolution_mode) -> list:
    """(component, reader) pairs for "send to txt2img" and PNG Info: an infotext without the key turns
    Golden Noise off; one with it restores every setting."""

    def reader(name):
        def read(params: dict):
            value = params.get(INFOTEXT_KEY)
            if value is None:
                return False if name == "enabled" else None
            try:
                return getattr(parse_infotext(value), name)
            except SettingsError:
                return None

        return read

    components = dict(
        enabled=enabled,
        weights=weights,
        strength=strength,
        token_policy=token_policy,
        resolution_mode=resolution_mode,
    )
    return [(component, reader(name)) for name, component in components.items()]


def register_xyz() -> None:
    """X/Y/Z plot axes "[Golden Noise] Enabled" and "[Golden Noise] Strength" (once per UI build)."""
    xyz = host.xyz_grid()
    if xyz is None or any(o.label.startswith("[Golden Noise]") for o in xyz.axis_options):
        return

    def override(key):
        def apply(p, value, values):
            overrides = dict(getattr(p, XYZ_ATTRIBUTE, None) or {})
            overrides[key] = value
            setattr(p, XYZ_ATTRIBUTE, overrides)

        return apply

    xyz.axis_options.extend(
        [
            # Our own choices: Classic's X/Y/Z module has no boolean_choice (it lives in lib_xyz.utils).
            xyz.AxisOption(
                "[Golden Noise] Enabled", str, override("enabled"), choices=lambda: ["False", "True"]
            ),
            xyz.AxisOption("[Golden Noise] Strength", float, override("strength")),
        ]
    )
