"""Fetch the released NPNet weights from the Hugging Face Hub into a folder, once, as .safetensors."""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from .checkpoint import read_checked, save_safetensors
from .golden import Cancelled
from .variants import FAMILIES, OFFICIAL_REPO, VARIANTS, Variant

logger = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
_WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt")
_TRUE = {"1", "on", "yes", "true"}

Progress = Callable[[int, "int | None"], None]


def _hub():
    """huggingface_hub, imported at the first download: it imports tqdm, which `import npnet` must not
    (inference-only hosts never download through it)."""
    import huggingface_hub
    import huggingface_hub.constants  # a submodule its lazy __init__ does not always expose as an attribute

    return huggingface_hub


class DownloadError(RuntimeError):
    """No source could provide the weights; the message says where to get them by hand."""


class HubStalled(DownloadError):
    """The Hub stopped answering: no progress for the stall timeout."""


STALL_ENV = "GOLDEN_NOISE_HUB_TIMEOUT"
DEFAULT_STALL_S = 60.0


def stall_timeout() -> float:
    """Seconds without any progress after which a Hub call is given up ($GOLDEN_NOISE_HUB_TIMEOUT, default
    60); a value that is not a number of seconds > 0 is a DownloadError, not a silent default."""
    raw = os.environ.get(STALL_ENV, "").strip()
    if not raw:
        return DEFAULT_STALL_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise DownloadError(
            f"{STALL_ENV}={raw!r}: give the seconds to wait for a Hub that sends nothing, a number > 0 "
            f"(unset, it is {DEFAULT_STALL_S:g})."
        )
    return value


class _Watch:
    """Runs each blocking Hub call on a daemon thread and waits for it here, so that a Hub which accepts
    the connection and never answers cannot hold the caller (huggingface_hub's own timeouts did not bound
    every call): the call is abandoned after `stall_timeout()` seconds without progress, or within a
    fraction of a second once should_cancel() returns True. Once cancelled, no new call starts. An
    abandoned call writes only into its staging folder, which is removed, never moved into place. An
    abandoned plain-HTTP transfer stops at its next progress report; a Xet one (hf_xet) cannot be
    stopped from here: hf_xet prints what a progress callback raises and carries on, so it runs to its
    end (`_reporter`)."""

    def __init__(self, should_cancel: Callable[[], bool] | None):
        self.should_cancel = should_cancel
        self.timeout = stall_timeout()
        self.last = time.monotonic()
        self.abandoned = False

    def touch(self) -> None:
        self.last = time.monotonic()

    def alive(self) -> None:
        """Bytes arrived: the stall clock starts again. Once the call is abandoned it raises instead,
        inside the transfer that reported, which ends a plain-HTTP one; nobody waits for it."""
        if self.abandoned:
            raise Cancelled("download abandoned")
        self.touch()

    def progress(self, progress: Progress | None) -> Progress:
        def forward(done: int, total: int | None) -> None:
            self.alive()
            if progress is not None:
                progress(done, total)

        return forward

    def cancelled(self) -> bool:
        return self.should_cancel is not None and self.should_cancel()

    def call(self, fn: Callable[[], object], what: str):
        if self.cancelled():
            raise Cancelled(f"download cancelled ({what})")
        box: dict = {}

        def run() -> None:
            try:
                box["value"] = fn()
            except BaseException as error:  # noqa: BLE001 - handed to the waiting thread below
                box["error"] = error

        worker = threading.Thread(target=run, daemon=True, name="npnet-hub")
        self.touch()
        worker.start()
        while worker.is_alive():
            worker.join(0.1)
            if self.cancelled():
                self.abandoned = True
                raise Cancelled(f"download cancelled ({what})")
            if worker.is_alive() and time.monotonic() - self.last > self.timeout:
                self.abandoned = True
                raise HubStalled(
                    f"{what}: the Hub sent nothing for {self.timeout:g} s; check the network or HF_ENDPOINT "
                    f"(set {STALL_ENV} to wait longer)"
                )
        if "error" in box:
            raise box["error"]
        return box.get("value")


def default_dir() -> Path:
    """Where `download` keeps weights when no folder is given: $XDG_CACHE_HOME/golden_noise."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "golden_noise"


def download(
    variant: str,
    dest_dir: str | os.PathLike | None = None,
    progress: Progress | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> Path:
    """Path of `dest_dir`/npnet-<variant>.safetensors, fetching and converting it first if needed.

    variant: "sdxl" (SDXL base and its distilled variants), "dreamshaper" (DreamShaper XL v2 turbo) or
    "dit" (Hunyuan-DiT v1.2). A file already in `dest_dir` is used without any network request:
    npnet-<variant>.safetensors, <variant>.safetensors (LucipherDev's name), or the official <variant>.pth,
    which is converted once to npnet-<variant>.safetensors beside it.

    Otherwise the weights come from the official repo (Klayand/GoldenNoiseModel, whose file is found by
    listing the repo), then from the public safetensors mirrors, through huggingface_hub. HF_ENDPOINT,
    HF_TOKEN and HF_HUB_OFFLINE are read at call time. The download goes to a temporary folder inside
    `dest_dir` and the result is checked strictly and written under a temporary name before an atomic
    rename, so an interrupted download never leaves a file a later call or `npnet.load` would use.
    progress(downloaded_bytes, total_bytes) is called as bytes arrive (total_bytes None if unknown).

    should_cancel() is polled several times a second during network calls and raises `Cancelled`; a
    Hub that sends nothing for `stall_timeout()` seconds raises `HubStalled` (a DownloadError).

    Raises DownloadError (offline, stalled, or every source failed) with the URL to fetch by hand and
    where to put the file.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}.")
    spec = VARIANTS[variant]
    dest = Path(dest_dir).expanduser() if dest_dir is not None else default_dir()
    target = dest / spec.local_name

    local = _local_file(spec, dest)
    if local is not None:
        return local

    endpoint = _endpoint()
    if _offline():
        raise DownloadError(
            f"NPNet weights for {variant!r} are not in {dest} and downloads are off (HF_HUB_OFFLINE is set). "
            + _manual_instructions(spec, dest, endpoint)
        )
    token = _token()
    watch = _Watch(should_cancel)
    dest.mkdir(parents=True, exist_ok=True)
    failures = []
    for repo, filename in _sources(spec, endpoint, token, failures, watch):
        try:
            _fetch(spec, repo, filename, target, endpoint, token, progress, watch)
        except (Cancelled, HubStalled) as error:
            if isinstance(error, HubStalled):  # every source is on the same endpoint: do not wait again
                raise HubStalled(f"{error}. " + _manual_instructions(spec, dest, endpoint)) from None
            raise
        except Exception as error:  # noqa: BLE001 - any failure of one source moves on to the next; all are reported
            logger.warning("NPNet %s: %s/%s failed: %s", variant, repo, filename, error)
            failures.append(f"{repo}/{filename}: {type(error).__name__}: {error}")
            continue
        logger.info("NPNet %s weights from %s/%s saved to %s", variant, repo, filename, target)
        return target
    raise DownloadError(
        f"could not download NPNet weights for {variant!r}:\n  "
        + "\n  ".join(failures)
        + "\n"
        + _manual_instructions(spec, dest, endpoint)
    )


def _local_file(spec: Variant, dest: Path) -> Path | None:
    target = dest / spec.local_name
    ours, lucipher, official_name = spec.local_names
    for candidate in (dest / ours, dest / lucipher):
        if candidate.is_file():
            return candidate
    official = dest / official_name
    if official.is_file():
        logger.info("converting %s to %s (once; later loads read the .safetensors)", official, target)
        _convert(spec, official, target)
        return target
    return None


def _endpoint() -> str:
    # Read at call time, like HF_TOKEN and HF_HUB_OFFLINE: a host may set them after importing us.
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def _token() -> str | None:
    return os.environ.get("HF_TOKEN") or None


def _offline() -> bool:
    # huggingface_hub reads HF_HUB_OFFLINE once at import; the caller's current environment wins here.
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE or _hub().constants.HF_HUB_OFFLINE


def _sources(spec: Variant, endpoint: str, token: str | None, failures: list[str], watch: _Watch):
    """(repo, path) pairs to try, official first; a listing failure is recorded and skipped."""
    try:
        files = watch.call(
            lambda: _hub().HfApi(endpoint=endpoint, token=token).list_repo_files(OFFICIAL_REPO),
            f"listing {OFFICIAL_REPO}",
        )
    except HubStalled as error:
        raise HubStalled(f"{error}. " + _manual_instructions(spec, Path("."), endpoint)) from None
    except Cancelled:
        raise  # not a listing failure: the mirrors must not be tried after Cancel
    except Exception as error:  # noqa: BLE001 - the mirrors may still work; the reason is reported
        failures.append(f"{OFFICIAL_REPO}: listing files failed: {type(error).__name__}: {error}")
    else:
        match = variant_file(files, spec.name)
        if match is None:
            failures.append(f"{OFFICIAL_REPO}: no file for {spec.name!r} among {files}")
        else:
            yield OFFICIAL_REPO, match
    yield from spec.mirror_files


def variant_file(files: list[str], variant: str) -> str | None:
    """The repo file holding `variant`'s weights: a weight file whose name has the variant as a word
    ("weights/sdxl.pth", "npnet-sdxl.safetensors") and no other variant's name; .safetensors preferred."""
    others = set(VARIANTS) - {variant}
    candidates = []
    for name in files:
        path = PurePosixPath(name)
        words = set(re.split(r"[^a-z0-9]+", path.stem.lower()))
        if path.suffix in _WEIGHT_SUFFIXES and variant in words and not words & others:
            candidates.append(name)
    candidates.sort(key=lambda name: (not name.endswith(".safetensors"), name.count("/"), len(name), name))
    return candidates[0] if candidates else None


def _fetch(
    spec: Variant,
    repo: str,
    filename: str,
    target: Path,
    endpoint: str,
    token: str | None,
    progress: Progress | None,
    watch: _Watch,
) -> None:
    _fetch_into(
        repo, filename, target, endpoint, token, progress, lambda path: _convert(spec, path, target), watch
    )


def _fetch_into(
    repo, filename, target: Path, endpoint, token, progress, place: Callable[[Path], None], watch: _Watch
) -> None:
    """Download repo/filename into a staging folder beside `target` and `place(downloaded_path)` it."""
    staging = Path(tempfile.mkdtemp(prefix=".npnet-download-", dir=target.parent))
    try:
        place(_hub_file(repo, filename, staging, endpoint, token, progress, watch))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _hub_file(
    repo, filename, folder: Path, endpoint, token, progress: Progress | None, watch: _Watch
) -> Path:
    """One file of a Hub repo downloaded into `folder`, watched (stall timeout, Cancel) and reporting its
    bytes to `progress`: the one place the pack calls `hf_hub_download`."""
    return Path(
        watch.call(
            lambda: _hub().hf_hub_download(
                repo,
                filename,
                local_dir=folder,
                endpoint=endpoint,
                token=token,
                tqdm_class=_reporter(progress, watch),
            ),
            f"downloading {repo}/{filename}",
        )
    )


IMAGENET_SWIN = ("timm/swin_tiny_patch4_window7_224.ms_in1k", "model.safetensors")
"""timm's ImageNet Swin-T on the Hub; its key names are the ones our Swin uses."""


def download_imagenet_swin(
    dest_dir: str | os.PathLike | None = None,
    progress: Progress | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> Path:
    """Path of timm's ImageNet Swin-T weights in `dest_dir` (default `default_dir()`), downloaded once.

    Used by `python -m npnet.train --init imagenet`, as the authors initialise NPNet's Swin branch.
    Same rules as `download`: no request when the file is there, HF_ENDPOINT / HF_TOKEN /
    HF_HUB_OFFLINE read at call time, an atomic move so an interrupted download leaves nothing used.
    """
    repo, filename = IMAGENET_SWIN
    dest = Path(dest_dir).expanduser() if dest_dir is not None else default_dir()
    target = dest / "swin_tiny_patch4_window7_224.ms_in1k.safetensors"
    if target.is_file():
        return target
    endpoint = _endpoint()
    manual = f"Download {endpoint}/{repo}/resolve/main/{filename} and save it as {target}."
    if _offline():
        raise DownloadError(f"the ImageNet Swin-T weights are not in {dest} and downloads are off. {manual}")
    watch = _Watch(should_cancel)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        _fetch_into(
            repo,
            filename,
            target,
            endpoint,
            _token(),
            progress,
            lambda path: shutil.move(str(path), target),
            watch,
        )
    except Cancelled:
        raise
    except Exception as error:  # noqa: BLE001 - any failure needs the user; the message says what to do
        raise DownloadError(
            f"could not download {repo}/{filename}: {type(error).__name__}: {error}. {manual}"
        ) from error
    return target


def download_folder(
    repo: str,
    dest: str | os.PathLike,
    pick: Callable[[list[str]], list[str]],
    progress: Progress | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> Path:
    """The files `pick(repo_files)` of a Hub repo, in the folder `dest`, downloaded once.

    For models other than NPNet that hosts fetch on first use (the reward models). The files land in a
    staging folder beside `dest` that is renamed into place when all are there, so `dest` existing means
    complete and an interrupted download leaves nothing a later run would take for a model. Same rules
    as `download`: HF_ENDPOINT / HF_TOKEN / HF_HUB_OFFLINE are read at call time, and a failure says
    which files to fetch by hand.
    """
    dest = Path(dest).expanduser()
    if dest.is_dir():
        return dest
    endpoint = _endpoint()
    manual = f"Download the model files of {endpoint}/{repo} into {dest}."
    if _offline():
        raise DownloadError(f"{dest} does not exist and downloads are off (HF_HUB_OFFLINE). {manual}")
    token = _token()
    watch = _Watch(should_cancel)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-download-", dir=dest.parent))
    try:
        files = pick(
            watch.call(
                lambda: _hub().HfApi(endpoint=endpoint, token=token).list_repo_files(repo), f"listing {repo}"
            )
        )
        if not files:
            raise DownloadError(f"{repo} has none of the files this model needs")
        done = [0]

        def forward(n: int, _total: int | None) -> None:
            if progress is not None:
                progress(done[0] + n, None)

        for name in files:
            path = _hub_file(repo, name, staging, endpoint, token, forward, watch)
            done[0] += path.stat().st_size
        os.replace(staging, dest)
    except (DownloadError, Cancelled):
        raise
    except Exception as error:  # noqa: BLE001 - any failure needs the user; the message says what to do
        raise DownloadError(
            f"could not download {repo}: {type(error).__name__}: {error}. {manual}"
        ) from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def _convert(spec: Variant, source: Path, target: Path) -> None:
    """Check `source` strictly as `spec`'s weights and write them to `target` as .safetensors."""
    state_dict, model = read_checked(source)
    expected = FAMILIES[spec.family].embed_dim
    if model.embed_dim != expected:
        raise ValueError(
            f"{source} holds weights for D={model.embed_dim}, but {spec.name!r} conditions on D={expected}."
        )
    save_safetensors(state_dict, target, model.config)


def _reporter(progress: Progress | None, watch: _Watch) -> type:
    """A tqdm stand-in for huggingface_hub that forwards the bytes written to `progress`.

    Two download paths use it. Plain HTTP (`http_get`) calls `update` per chunk written, inside its
    transfer loop. Xet-backed files (`xet_get`, taken when hf_xet is installed, as huggingface_hub
    installs it) go through `XetDownloadProgressReporter`: because this class has `update_transfer`, the
    reporter keeps one bar, counts bytes written with `update` and network bytes with `update_transfer`,
    which only restart the stall clock, so that `progress` sees one monotonic count. The display calls
    of either path are accepted and ignored (without them the Xet path printed an AttributeError and
    stopped reporting). Once the call is abandoned, an HTTP bar raises, which ends that transfer; a Xet
    bar (made with a `bar_format`) goes quiet instead: hf_xet would only print the exception and carry
    on with the transfer."""
    forward = watch.progress(progress)

    class Reporter:
        def __init__(self, *args, total: int | None = None, initial: int = 0, **kwargs) -> None:
            self.n, self.total = initial, total
            self.format_dict: dict = {}
            self.xet = "bar_format" in kwargs

        def update(self, n: int = 1) -> None:
            self.n += n
            if not (self.xet and watch.abandoned):
                forward(self.n, self.total)

        def update_transfer(self, n: int = 1) -> None:
            if not (self.xet and watch.abandoned):
                watch.alive()

        def set_postfix_str(self, *args, **kwargs) -> None:
            pass

        set_transfer_postfix_str = set_description = refresh = set_postfix_str

        def close(self) -> None:
            pass

        def __enter__(self) -> Reporter:
            return self

        def __exit__(self, *exc_info) -> None:
            return None

    return Reporter


def _manual_instructions(spec: Variant, dest: Path, endpoint: str) -> str:
    repo, path = next(
        ((r, p) for r, p in spec.mirror_files if PurePosixPath(p).name == spec.local_name),
        spec.mirror_files[0],
    )
    return (
        f"Download {endpoint}/{repo}/resolve/main/{path} and save it as {dest / spec.local_name} "
        f"(or put the official {spec.name}.pth from {endpoint}/{OFFICIAL_REPO} into {dest})."
    )
