"""Check the extension in a real webui tree (Forge, Forge Classic, Automatic1111), the way users run it.

A manual check: no webui can be installed in CI, so this runs on a developer's machine against a tree
and a Python environment prepared by hand (docs/webui-check.md: how to prepare them on a CPU
machine). Given the tree, it:

1. installs the extension as users do, `git clone` of this repository into `<tree>/extensions/golden-noise`
   (the committed HEAD, or --revision), plus a small probe extension that records the `x` each real
   `KDiffusionSampler.sample` receives (and, with --skip-sampling, returns it without running the UNet);
2. starts the real server on 127.0.0.1 (`launch.py --api`, CPU flags for the host);
3. checks through the HTTP API: the script loads; both X/Y/Z axes are registered; and, given --ckpt (an
   SDXL checkpoint the webui accepts, random weights are fine), txt2img with the same seed off, at
   strength 0 and at strength 1: the sampler's starting noise at 0 equals the plain run's bit for bit, at
   1 differs and keeps unit variance; the infotext is written only when golden noise was applied; PNG Info
   reads it back; an X/Y/Z grid over strength gives plain then golden noise.

It prints one Markdown table row (host, commit, date, result) for the table in docs/webui.md and exits 1 when a check
fails.

    python dev/webui_real_check.py --tree /path/to/webui --python /path/to/webui/venv/bin/python \\
        --commit 1f95d717 [--ckpt sdxl.safetensors] [--skip-sampling]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

PROBE = '''"""Records the starting noise each KDiffusionSampler.sample receives (Golden Noise's real-webui check)."""
import os
import torch
from modules import sd_samplers_kdiffusion

_sample = sd_samplers_kdiffusion.KDiffusionSampler.sample


def sample(self, p, x, *args, **kwargs):
    folder = os.environ.get("GOLDEN_NOISE_PROBE_DIR")
    if folder:
        n = len([f for f in os.listdir(folder) if f.startswith("noise_")])
        torch.save(x.detach().float().cpu().clone(), os.path.join(folder, f"noise_{n:03d}.pt"))
        if os.path.exists(os.path.join(folder, "SKIP_SAMPLING")):
            return x
    return _sample(self, p, x, *args, **kwargs)


sd_samplers_kdiffusion.KDiffusionSampler.sample = sample
'''


def random_sdxl_npnet(path: Path) -> Path:
    """A seeded random NPNet of the released SDXL shape with its text and Swin branches on (the released
    init, alpha = beta = 0, would switch them off and make golden noise a function of the noise alone)."""
    import torch

    import npnet

    torch.manual_seed(7)
    model = npnet.NPNet(npnet.OFFICIAL["sdxl"])
    with torch.no_grad():
        model.alpha.fill_(0.7)
        model.beta.fill_(0.4)
    return npnet.save(model, path)


def host_of(tree: Path) -> str:
    if (tree / "backend").is_dir():
        return "forge"
    if (tree / "modules_forge").is_dir():
        return "classic"
    return "a1111"


def launch_command(python: str, host: str, port: int) -> list[str]:
    common = [
        python,
        "launch.py",
        "--skip-prepare-environment",
        "--skip-torch-cuda-test",
        "--skip-version-check",
        "--skip-python-version-check",
        "--no-download-sd-model",
        "--api",
        "--port",
        str(port),
    ]
    if host == "a1111":
        return common + ["--use-cpu", "all", "--precision", "half", "--no-hashing", "--disable-nan-check"]
    return common + ["--always-cpu", "--unet-in-bf16", "--clip-in-fp16"]


def install(tree: Path, npnet_file: Path | None, revision: str = "HEAD") -> None:
    target = tree / "extensions" / "golden-noise"
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(target)], check=True)
    subprocess.run(["git", "-C", str(target), "checkout", "-q", revision], check=True)
    probe = tree / "extensions" / "zz-golden-noise-probe" / "scripts"
    probe.mkdir(parents=True, exist_ok=True)
    (probe / "probe.py").write_text(PROBE)
    folder = tree / "models" / "npnet"
    folder.mkdir(parents=True, exist_ok=True)
    if npnet_file is not None:
        shutil.copy(npnet_file, folder / "npnet-check.safetensors")


class Api:
    def __init__(self, url: str) -> None:
        self.url = url

    def call(self, path: str, payload=None, timeout: float = 3600):
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            self.url + path, data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return json.loads(reply.read())

    def wait(self, process: subprocess.Popen, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"the webui exited with status {process.returncode} before answering")
            try:
                self.call("/sdapi/v1/scripts", timeout=5)
                return
            except (urllib.error.URLError, OSError, ValueError):
                time.sleep(3)
        raise SystemExit(f"the webui did not answer within {seconds:.0f} s")


def checks(api: Api, probe_dir: Path, with_model: bool, size: int) -> dict[str, bool]:
    import torch

    found: dict[str, bool] = {}
    info = api.call("/sdapi/v1/script-info")
    found["extension loaded"] = any(s["name"] == "golden noise" and not s["is_img2img"] for s in info)
    xyz = [s for s in info if s["name"] == "x/y/z plot" and not s["is_img2img"]]
    choices = xyz[0]["args"][0]["choices"] if xyz else []
    found["X/Y/Z axes"] = {"[Golden Noise] Enabled", "[Golden Noise] Strength"} <= set(choices)
    if not with_model:
        return found

    def txt2img(args, extra=None):
        payload = dict(
            prompt="a photo of a red fox in the snow",
            negative_prompt="",
            seed=1234,
            steps=1,
            cfg_scale=1.0,
            width=size,
            height=size,
            sampler_name="Euler",
            send_images=True,
            save_images=False,
        )
        if args is not None:
            payload["alwayson_scripts"] = {"Golden Noise": {"args": args}}
        payload.update(extra or {})
        before = set(probe_dir.glob("noise_*.pt"))
        reply = api.call("/sdapi/v1/txt2img", payload)
        new = sorted(set(probe_dir.glob("noise_*.pt")) - before)
        return reply, [torch.load(path) for path in new]

    def settings(strength):
        return [True, "npnet-check.safetensors", strength, "first_chunk", "perturbation_transfer"]

    off, (x_off,) = txt2img(None)
    zero, (x_zero,) = txt2img(settings(0.0))
    one, (x_one,) = txt2img(settings(1.0))
    found["strength 0 = plain, bit for bit"] = torch.equal(x_zero, x_off)
    found["strength 1 golden (differs, unit variance)"] = (
        not torch.equal(x_one, x_off) and abs(float(x_one.std()) - 1.0) < 0.1
    )
    texts = [json.loads(r["info"])["infotexts"][0] for r in (off, zero, one)]
    applied = not torch.equal(x_one, x_off)
    # The claim must follow what the sampler started from: none when off, and at strength 1 only if the
    # noise really changed (strength 0 is golden noise at strength 0: the plain noise, said truthfully).
    found["infotext only when applied"] = (
        "Golden Noise" not in texts[0]
        and "Golden Noise" in texts[1]
        and ("Golden Noise" in texts[2]) == applied
    )
    image = "data:image/png;base64," + one["images"][0]
    read = api.call("/sdapi/v1/png-info", {"image": image})
    found["PNG Info round trip"] = "npnet-check.safetensors, strength 1" in json.dumps(read)
    if found["X/Y/Z axes"]:
        axis = choices.index("[Golden Noise] Strength")
        args = [axis, "0,1", [], 0, "", [], 0, "", [], True, True, False, False, 0, 0, 0, 0, False]
        _, grid = txt2img(
            settings(1.0), {"script_name": "x/y/z plot", "script_args": args[: len(xyz[0]["args"])]}
        )
        found["X/Y/Z grid: plain then golden"] = (
            len(grid) == 2
            and torch.equal(grid[0], x_off)
            and not torch.equal(grid[1], x_off)
            and torch.allclose(grid[1], x_one)
        )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tree", type=Path, required=True, help="the webui tree")
    parser.add_argument("--python", required=True, help="the Python of the tree's environment")
    parser.add_argument("--commit", required=True, help="the tree's commit, for the report")
    parser.add_argument("--ckpt", type=Path, help="an SDXL checkpoint the webui accepts (random weights do)")
    parser.add_argument(
        "--npnet", type=Path, help="NPNet weights (default: a random released-shape SDXL net)"
    )
    parser.add_argument("--skip-sampling", action="store_true", help="the probe returns x without the UNet")
    parser.add_argument("--revision", default="HEAD", help="the extension's commit to install (default HEAD)")
    parser.add_argument("--port", type=int, default=8301)
    parser.add_argument("--size", type=int, default=256, help="image size of the txt2img runs")
    parser.add_argument("--start-timeout", type=float, default=1800)
    args = parser.parse_args(argv)
    tree = args.tree.resolve()
    host = host_of(tree)
    npnet_file = args.npnet
    if npnet_file is None:
        npnet_file = random_sdxl_npnet(tree / "golden-noise-check-npnet.safetensors")
    install(tree, npnet_file, args.revision)
    if args.ckpt is not None:
        stable = tree / "models" / "Stable-diffusion"
        stable.mkdir(parents=True, exist_ok=True)
        link = stable / args.ckpt.name
        if not link.exists():
            link.symlink_to(args.ckpt.resolve())
    probe_dir = tree / "golden-noise-probe"
    shutil.rmtree(probe_dir, ignore_errors=True)
    probe_dir.mkdir()
    if args.skip_sampling:
        (probe_dir / "SKIP_SAMPLING").touch()
    env = dict(
        os.environ, GOLDEN_NOISE_PROBE_DIR=str(probe_dir), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1"
    )
    log = (tree / "golden-noise-check.log").open("w")
    process = subprocess.Popen(
        launch_command(args.python, host, args.port), cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        api = Api(f"http://127.0.0.1:{args.port}")
        api.wait(process, args.start_timeout)
        if args.ckpt is not None:
            api.call(
                "/sdapi/v1/options", {"sd_model_checkpoint": args.ckpt.name, "live_previews_enable": False}
            )
        found = checks(api, probe_dir, args.ckpt is not None, args.size)
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
    result = "; ".join(f"{name}: {'yes' if ok else 'NO'}" for name, ok in found.items())
    today = datetime.date.today().isoformat()
    sys.stdout.write(f"| {host} | {args.commit} | {today} | {result} |\n")
    return 0 if all(found.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
