"""The pack as the ecosystem meets it: registration in a real ComfyUI, packaging, install hook."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from dev.comfy_harness import pack_import_failures, quick_import_check
from dev.comfyui_setup import PACK_FOLDER_NAME
from tests.support import REPO_ROOT

MENU = "golden_noise"


@pytest.fixture(scope="module")
def declared_nodes(comfy_inprocess) -> dict[str, type]:
    extension = sys.modules[comfy_inprocess.pack.__name__ + ".nodes.extension"]
    return {cls.GET_SCHEMA().node_id: cls for cls in extension.node_classes()}


@pytest.fixture(scope="module")
def object_info(comfy_server) -> dict:
    return comfy_server.object_info()


def ours(object_info: dict) -> dict[str, dict]:
    return {k: v for k, v in object_info.items() if v["python_module"] == f"custom_nodes.{PACK_FOLDER_NAME}"}


@pytest.mark.server
def test_every_declared_node_is_served_by_the_real_server(declared_nodes, object_info):
    assert declared_nodes, "the pack declares no nodes"
    assert set(ours(object_info)) == set(declared_nodes)


@pytest.mark.server
def test_nodes_sit_under_one_menu_with_descriptions_and_tooltips(object_info):
    for node_id, info in ours(object_info).items():
        assert info["category"].split("/")[0] == MENU, node_id
        assert info["description"].strip(), f"{node_id} has no description"
        for section in ("required", "optional"):
            for name, spec in info["input"].get(section, {}).items():
                options = spec[1] if len(spec) > 1 else {}
                assert options.get("tooltip", "").strip(), f"{node_id}.{name} has no tooltip"


def test_every_node_has_a_help_page(declared_nodes):
    missing = [n for n in declared_nodes if not (REPO_ROOT / "web" / "docs" / f"{n}.md").is_file()]
    assert not missing, f"no web/docs/<NodeId>.md for {missing}"


def _table_names(page: str, heading: str) -> list[str]:
    """First-column names (in backticks) of the first table under `## heading`."""
    section = page.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    table = section.split("\n|", 1)[1].split("\n\n", 1)[0]
    rows = [line for line in ("|" + table).splitlines() if line.startswith("| `")]
    return [name for row in rows for name in re.findall(r"`([^`]+)`", row.split("|")[1])]


def test_help_pages_share_one_layout_and_list_exactly_the_nodes_sockets(declared_nodes):
    """A title, a what-it-does paragraph, then one table of inputs and one of outputs, named as on the node."""
    for node_id, cls in declared_nodes.items():
        schema = cls.GET_SCHEMA()
        page = (REPO_ROOT / "web" / "docs" / f"{node_id}.md").read_text()
        lines = page.splitlines()
        assert lines[0] == f"# {schema.display_name}", node_id
        assert lines[1] == "" and lines[2] and not lines[2].startswith(("#", "|", "-", "`")), node_id
        headings = [line[3:] for line in lines if line.startswith("## ")]
        assert headings[:2] == ["Inputs", "Outputs"], (node_id, headings)
        inputs = [i.id for i in schema.inputs]
        outputs = [o.display_name or o.io_type for o in schema.outputs]
        assert _table_names(page, "Inputs") == inputs, node_id
        assert _table_names(page, "Outputs") == outputs, node_id


@pytest.mark.server
def test_a_broken_init_is_caught(tmp_path):
    """ComfyUI keeps running when a pack fails to import; our check must notice."""
    broken = tmp_path / "broken_copy"
    shutil.copytree(
        REPO_ROOT,
        broken,
        ignore=shutil.ignore_patterns(
            ".venv", ".comfyui", ".git", "test-artifacts", "tests", "benchmarks", "__pycache__"
        ),
    )
    init = broken / "__init__.py"
    init.write_text(init.read_text() + "\nraise RuntimeError('broken on purpose')\n")
    log = quick_import_check(tmp_path / "base_broken", {PACK_FOLDER_NAME: broken})
    failures = pack_import_failures(log)
    assert failures, log[-3000:]
    assert "broken on purpose" in log

    good_log = quick_import_check(tmp_path / "base_good", {PACK_FOLDER_NAME: REPO_ROOT})
    assert pack_import_failures(good_log) == [], good_log[-3000:]


def test_pyproject_carries_the_registry_fields():
    meta = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    project, comfy = meta["project"], meta["tool"]["comfy"]
    assert "comfyui" not in project["name"].lower()
    major, minor, patch = project["version"].split(".")
    assert all(part.isdigit() for part in (major, minor, patch))
    assert project["license"] == {"file": "LICENSE"}
    assert "Apache License" in (REPO_ROOT / "LICENSE").read_text()[:200]
    assert project["requires-python"] == ">=3.10"
    assert project["urls"]["Repository"].startswith("https://")
    # the keys comfy-cli's publish payload reads; others (e.g. "Bug Tracker") are dropped
    assert set(project["urls"]) <= {"Homepage", "Documentation", "Repository", "Issues"}
    assert project["urls"]["Issues"].startswith("https://")
    assert "test" in project["optional-dependencies"]
    for key in ("PublisherId", "DisplayName", "Icon", "requires-comfyui"):
        assert comfy[key], key
    # The Registry shows the icon from the repository; it must exist there, square and <= 400 px.
    from PIL import Image

    icon = REPO_ROOT / comfy["Icon"].split("/main/", 1)[1]
    width, height = Image.open(icon).size
    assert width == height <= 400
    runtime = {"torch", "numpy", "safetensors", "huggingface_hub", "einops", "matplotlib"}
    assert set(project["dependencies"]) == runtime
    requirements = {
        line.split("#")[0].strip() for line in (REPO_ROOT / "requirements.txt").read_text().splitlines()
    } - {""}
    assert requirements == runtime, "requirements.txt (ComfyUI-Manager) and pyproject must agree"


def test_comfyignore_keeps_development_files_out_of_the_published_zip():
    ignored = (REPO_ROOT / ".comfyignore").read_text().split()
    for path in ("tests/", "benchmarks/"):
        assert path in ignored


# A stand-in for Forge/Automatic1111's `launch` module (Forge cannot be installed here). It mimics the
# two functions install.py uses: `is_installed(name)` and `run_pip(args, desc)`, and records the calls.
FAKE_LAUNCH = """
import json, os
MISSING = set(json.loads(os.environ["FAKE_MISSING"]))
def is_installed(name):
    return name not in MISSING
def run_pip(command, desc=None):
    with open(os.environ["FAKE_PIP_LOG"], "a") as f:
        f.write(json.dumps([command, desc]) + "\\n")
"""


def run_install_py(tmp_path: Path, with_launch: bool, missing: list[str]) -> list[list[str]]:
    log = tmp_path / "pip.log"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(FAKE_PIP_LOG=str(log), FAKE_MISSING=json.dumps(missing))
    if with_launch:
        (tmp_path / "launch.py").write_text(FAKE_LAUNCH)
        env["PYTHONPATH"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "install.py")],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_install_py_under_forge_installs_only_what_is_missing(tmp_path):
    calls = run_install_py(tmp_path, with_launch=True, missing=["einops", "huggingface_hub"])
    assert [c[0] for c in calls] == ['install "huggingface_hub"', 'install "einops"']


def test_install_py_under_comfyui_manager_does_nothing(tmp_path):
    assert run_install_py(tmp_path, with_launch=False, missing=["einops"]) == []


def test_cores_import_without_comfyui():
    code = (
        "import sys, npnet, dpsl\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('comfy', 'comfy_api', 'folder_paths')]\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_pack_imports_outside_comfyui_and_registers_nothing():
    code = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('pack', '__init__.py', submodule_search_locations=['.'])\n"
        "pack = importlib.util.module_from_spec(spec); sys.modules['pack'] = pack\n"
        "spec.loader.exec_module(pack)\n"
        "assert pack.HOST_API is None\n"
        "assert not hasattr(pack, 'NODE_CLASS_MAPPINGS') and not hasattr(pack, 'comfy_entrypoint')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("where", ["beside", "inside", "env"])
def test_a_users_comfyui_tree_is_started_with_its_own_python(tmp_path, where):
    """`COMFYUI_DIR=... make run`: the tree's interpreter, not the pack's pinned .venv (a current core
    needs packages that venv lacks)."""
    tree = tmp_path / "ComfyUI"
    tree.mkdir()
    (tree / "main.py").write_text("")
    home = {"beside": tmp_path, "inside": tree, "env": tmp_path / "elsewhere"}[where]
    python = home / ("python_bin" if where == "env" else ".venv/bin/python")
    python.parent.mkdir(parents=True, exist_ok=True)
    record = tmp_path / "argv.txt"
    python.write_text(f'#!/bin/sh\necho "$@" > {record}\n')
    python.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "COMFYUI_PYTHON"}
    if where == "env":
        env["COMFYUI_PYTHON"] = str(python)
    done = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "dev" / "comfyui_setup.py"),
            "serve",
            "--comfyui-dir",
            str(tree),
            "--port",
            "8999",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert f"runs with {python}" in done.stdout
    assert record.read_text().split()[0] == str(tree / "main.py")


def test_the_suite_runs_in_a_clone_whose_folder_is_not_a_python_name(tmp_path):
    """Custom-node folders are often named like ComfyUI-GoldenNoise; pytest imports the repository root's
    `__init__.py` (the pack is a package) from such a folder without a parent package."""
    clone = tmp_path / "ComfyUI-GoldenNoise"
    skip = shutil.ignore_patterns(".git", ".venv", ".comfyui", ".gpu", "test-artifacts", "__pycache__")
    shutil.copytree(REPO_ROOT, clone, ignore=skip)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/dpsl/test_theory.py"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert re.search(r"\b\d+ passed\b", done.stdout), done.stdout[-3000:]
