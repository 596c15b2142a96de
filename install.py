"""Install hook, run by both ComfyUI-Manager and Forge/Automatic1111 from the pack's root.

- Forge / Automatic1111 (their module `launch` is importable): they do not read requirements.txt,
  so install what is missing with `launch.run_pip`, which honours the webui's pip settings.
- ComfyUI-Manager: it already installed requirements.txt before running this file; do nothing.

Nothing here runs at import time of the pack: this file is only executed as a script by the host.
"""

from __future__ import annotations

import re
from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().parent / "requirements.txt"


def requirements() -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in REQUIREMENTS.read_text().splitlines())
    return [line for line in lines if line]


def distribution_name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]


def install_for_webui(launch) -> list[str]:
    """Install the requirements the webui lacks; returns what was installed."""
    installed = []
    for requirement in requirements():
        name = distribution_name(requirement)
        if not launch.is_installed(name):
            launch.run_pip(f'install "{requirement}"', f"{name} for Golden Noise")
            installed.append(requirement)
    return installed


def main() -> list[str]:
    try:
        import launch  # only Forge / Automatic1111 have it
    except ImportError:
        return []  # ComfyUI-Manager: requirements.txt is already installed
    return install_for_webui(launch)


if __name__ == "__main__":
    main()
