"""What `import npnet` costs an inference-only host, and that adapters use only public names."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.support import REPO_ROOT


def test_import_npnet_adds_only_its_declared_dependencies():
    """Beyond torch itself (which imports tqdm through torch.hub when tqdm is installed), `import npnet`
    loads einops and safetensors only: no matplotlib, no huggingface_hub, no learning framework, no
    process group, and it leaves matplotlib's backend alone."""
    code = (
        "import sys, torch\n"
        "before = set(sys.modules)\n"
        "import npnet\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(sorted(new))\n"
        "print(sorted(m for m in sys.modules if m.startswith('npnet.learning')))\n"
        "print(torch.distributed.is_available() and torch.distributed.is_initialized())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    added, learning, initialised = done.stdout.splitlines()
    assert added == "['einops', 'npnet', 'safetensors']"
    assert learning == "[]" and initialised == "False"


def test_the_learning_framework_sets_no_matplotlib_backend():
    code = (
        "import matplotlib\n"
        "matplotlib.use('svg')\n"
        "import numpy as np\n"
        "from npnet.learning import PairScore, evaluation_chart\n"
        "evaluation_chart([PairScore('p', 1, 0.1, 0.3), PairScore('p', 2, 0.2, 0.1)], 'r', 256, 160)\n"
        "print(matplotlib.get_backend())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "svg"


def _npnet_imports(path: Path) -> list[str]:
    """Modules of npnet a file imports (`npnet.x`, `..npnet.x`), by their dotted name below npnet."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if "npnet" in parts:
                found.append(".".join(parts[parts.index("npnet") :]))
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "npnet"]
    return found


def test_adapters_use_only_the_public_packages():
    adapters = [
        *REPO_ROOT.glob("nodes/*.py"),
        *REPO_ROOT.glob("golden_noise_webui/*.py"),
        REPO_ROOT / "scripts" / "golden_noise.py",
    ]
    internal = {
        str(path.relative_to(REPO_ROOT)): module
        for path in adapters
        for module in _npnet_imports(path)
        if module not in ("npnet", "npnet.learning")
    }
    assert not internal, internal
