"""Fixtures of the learning-framework tests: in-process ComfyUI, the pack's nodes, the tiny models."""

from __future__ import annotations

import importlib

import pytest


@pytest.fixture(scope="module")
def learning(comfy_inprocess):
    return importlib.import_module(comfy_inprocess.pack.__name__ + ".nodes.learning")


@pytest.fixture(scope="module")
def rendering(comfy_inprocess):
    return importlib.import_module(comfy_inprocess.pack.__name__ + ".nodes.rendering")


@pytest.fixture(scope="module")
def tiny(comfy_inprocess):
    from dev import tiny_models

    return tiny_models


class ScriptedReward:
    """The reward interface (score(images, prompts) -> one float per image) with a fixed rule, and an
    optional ComfyUI Cancel pressed during the n-th call, as a user would press it mid-collection."""

    name = "mean-brightness"

    def __init__(self, cancel_on_call: int | None = None):
        self.calls = 0
        self.cancel_on_call = cancel_on_call

    def score(self, images, prompts):
        import comfy.model_management

        self.calls += 1
        if self.calls == self.cancel_on_call:
            comfy.model_management.interrupt_current_processing(True)
        return images.float().mean(dim=(1, 2, 3))


@pytest.fixture
def scripted_reward():
    return ScriptedReward
