"""The webui stand-in imported under the real module names, once per host flavour, with the extension
loaded the way the webui loads it (its folder on sys.path, scripts/golden_noise.py by file name)."""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

import pytest

from dev.checkpoints import write_checkpoint
from tests.support import REPO_ROOT

STANDIN = Path(__file__).parent / "standin"
OWN = ("modules", "golden_noise_webui", "golden_noise.py", "xyz_grid.py", "lib_xyz")
HOSTS = ("forge", "classic", "a1111", "a1111_19")


def xyz_script(host: str) -> Path:
    """Forge main and A1111 keep the X/Y/Z script in scripts/; Classic in its builtin xyz extension."""
    return STANDIN / ("classic_xyz" if host == "classic" else "") / "scripts" / "xyz_grid.py"


def _forget() -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in OWN:
            del sys.modules[name]


@pytest.fixture(scope="session")
def npnet_file(tmp_path_factory) -> Path:
    """A random network of the released SDXL shape (every branch live)."""
    return write_checkpoint(tmp_path_factory.mktemp("webui_weights") / "my-sdxl.safetensors", 2048, seed=5)


@pytest.fixture(params=HOSTS)
def webui(request, monkeypatch, tmp_path, npnet_file):
    """namespace(host, modules..., script (the extension's Script instance), run(p) -> outputs)."""
    monkeypatch.setenv("WEBUI_STANDIN", request.param)
    monkeypatch.setenv("WEBUI_STANDIN_MODELS", str(tmp_path / "models"))
    (tmp_path / "models" / "npnet").mkdir(parents=True)
    (tmp_path / "models" / "npnet" / "my-sdxl.safetensors").symlink_to(npnet_file)
    monkeypatch.syspath_prepend(str(STANDIN))
    if request.param == "classic":  # the webui puts an extension's folder on sys.path for its scripts
        monkeypatch.syspath_prepend(str(STANDIN / "classic_xyz"))
    monkeypatch.syspath_prepend(str(REPO_ROOT))  # the webui puts the extension's folder first
    _forget()
    modules = {
        name: importlib.import_module(f"modules.{name}")
        for name in (
            "scripts",
            "processing",
            "shared",
            "script_callbacks",
            "script_loading",
            "infotext_utils",
        )
    }
    xyz = modules["script_loading"].load_module(str(xyz_script(request.param)))
    script_class = xyz.XYZ if request.param == "classic" else xyz.Script
    modules["scripts"].scripts_data.append(
        modules["scripts"].ScriptClassData(script_class, "xyz_grid.py", str(STANDIN), xyz)
    )
    loaded = modules["script_loading"].load_module(str(REPO_ROOT / "scripts" / "golden_noise.py"))
    from tests.webui import standin_models

    modules["shared"].sd_model = standin_models.StableDiffusionXL()
    script = loaded.GoldenNoiseScript()

    def run(p, *args):
        p.scripts = modules["scripts"].ScriptRunner([(script, args)] if args else [])
        return modules["processing"].process_images(p)

    yield types.SimpleNamespace(
        host=request.param, script=script, run=run, models=standin_models, xyz=xyz, module=loaded, **modules
    )
    _forget()
