"""Helpers shared by the test folders (no test folder imports another's): Hub stand-ins, NPNet checkpoints
and datasets the tests write, the independent reference network, the DPSL example graphs."""

from dev.comfyui_setup import REPO_ROOT

__all__ = ["REPO_ROOT"]
