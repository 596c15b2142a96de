"""A small stand-in for `comfy_api.latest.io`/`ui` on ComfyUI cores older than 0.3.48.

Our nodes are written once, in the V3 style (`define_schema()` + classmethod `execute()`). On a core
without the V3 API, `comfy_host` hands them this module instead, and each `ComfyNode` subclass gets
the classic V1 attributes (`INPUT_TYPES`, `RETURN_TYPES`, `FUNCTION`, `CATEGORY`...) derived from its
schema. Only the part of the V3 API that this pack uses is covered; it holds no ComfyUI code.
"""

from __future__ import annotations

import os
import types
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Hidden(str, Enum):
    unique_id = "UNIQUE_ID"
    prompt = "PROMPT"
    extra_pnginfo = "EXTRA_PNGINFO"


class NumberDisplay(str, Enum):
    number = "number"
    slider = "slider"


class _Input:
    def __init__(self, id: str, display_name: str | None = None, optional: bool = False,
                 tooltip: str | None = None, options: list | None = None, **widget_options: Any):
        self.id, self.optional, self.options = id, optional, options
        extra = {"display_name": display_name, "tooltip": tooltip, **widget_options}
        if isinstance(extra.get("display_mode"), Enum):
            extra["display"] = extra.pop("display_mode").value
        self.extra = {k: v for k, v in extra.items() if v is not None}


class _Output:
    def __init__(self, id: str | None = None, display_name: str | None = None, tooltip: str | None = None,
                 is_output_list: bool = False):
        self.id, self.display_name, self.tooltip, self.is_output_list = id, display_name, tooltip, is_output_list


def Custom(io_type: str) -> type:  # noqa: N802 (mirrors the V3 name)
    input_cls = type("Input", (_Input,), {"io_type": io_type})
    output_cls = type("Output", (_Output,), {"io_type": io_type})
    return type(io_type, (), {"io_type": io_type, "Input": input_cls, "Output": output_cls})


Boolean, Int, Float, String = Custom("BOOLEAN"), Custom("INT"), Custom("FLOAT"), Custom("STRING")


class _ComboInput(_Input):
    io_type = "COMBO"

    def __init__(self, id: str, options: list | None = None, **kwargs: Any):  # options second, as in V3
        super().__init__(id, options=list(options or []), **kwargs)


Combo = type("COMBO", (), {"io_type": "COMBO", "Input": _ComboInput, "Output": Custom("COMBO").Output})
Image, Mask, Latent, Conditioning = Custom("IMAGE"), Custom("MASK"), Custom("LATENT"), Custom("CONDITIONING")
Noise, Guider, Sampler, Sigmas = Custom("NOISE"), Custom("GUIDER"), Custom("SAMPLER"), Custom("SIGMAS")
Model, Clip, Vae = Custom("MODEL"), Custom("CLIP"), Custom("VAE")


@dataclass
class Schema:
    node_id: str
    display_name: str | None = None
    category: str = "sd"
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    hidden: list = field(default_factory=list)
    description: str = ""
    is_output_node: bool = False
    is_experimental: bool = False
    not_idempotent: bool = False
    search_aliases: list = field(default_factory=list)


class NodeOutput:
    def __init__(self, *values: Any, ui: Any = None):
        self.values, self.ui = values, ui


def _input_types(schema: Schema) -> dict:
    sections: dict[str, dict] = {"required": {}, "optional": {}}
    for inp in schema.inputs:
        kind = inp.options if inp.io_type == "COMBO" else inp.io_type
        sections["optional" if inp.optional else "required"][inp.id] = (kind, inp.extra)
    if schema.hidden:
        sections["hidden"] = {h.name: h.value for h in schema.hidden}
    return sections


class ComfyNode:
    """Base class: V3-style nodes become V1 nodes through the attributes set in `__init_subclass__`."""

    hidden = types.SimpleNamespace(unique_id=None, prompt=None, extra_pnginfo=None)

    @classmethod
    def define_schema(cls) -> Schema:
        raise NotImplementedError

    @classmethod
    def GET_SCHEMA(cls) -> Schema:  # noqa: N802 (the V3 name)
        return cls.define_schema()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "define_schema" not in cls.__dict__:  # an intermediate base class, not a node
            return
        schema = cls.define_schema()
        cls.INPUT_TYPES = classmethod(lambda c: _input_types(c.GET_SCHEMA()))
        cls.RETURN_TYPES = tuple(o.io_type for o in schema.outputs)
        cls.RETURN_NAMES = tuple(o.display_name or o.id or o.io_type for o in schema.outputs)
        cls.OUTPUT_TOOLTIPS = tuple(o.tooltip for o in schema.outputs)
        cls.OUTPUT_IS_LIST = tuple(o.is_output_list for o in schema.outputs)
        cls.CATEGORY = schema.category
        cls.DESCRIPTION = schema.description
        cls.OUTPUT_NODE = schema.is_output_node
        cls.NOT_IDEMPOTENT = schema.not_idempotent
        cls.FUNCTION = "run_v1"
        if "validate_inputs" in cls.__dict__:
            cls.VALIDATE_INPUTS = classmethod(lambda c, **kw: c.validate_inputs(**kw))
        if "fingerprint_inputs" in cls.__dict__:
            cls.IS_CHANGED = classmethod(lambda c, **kw: c.fingerprint_inputs(**kw))

    def run_v1(self, **kwargs):
        cls = type(self)
        hidden = {h.name: kwargs.pop(h.name, None) for h in cls.GET_SCHEMA().hidden}
        # A per-call subclass carries the hidden values, as V3's cloned class does, so concurrent
        # calls never share them.
        call_cls = type(cls.__name__, (cls,), {"hidden": types.SimpleNamespace(**hidden)})
        out = call_cls.execute(**kwargs)
        if out.ui is None:
            return out.values
        return {"ui": out.ui.as_dict(), "result": out.values}


class _PreviewImage:
    def __init__(self, image, cls=None, **kwargs):
        import numpy as np
        from PIL import Image as PILImage

        from .comfy_host import folder_paths

        folder = folder_paths.get_temp_directory()
        os.makedirs(folder, exist_ok=True)
        self.images = []
        for index, frame in enumerate(image):
            name = f"golden_noise_preview_{os.getpid()}_{id(self)}_{index}.png"
            array = np.clip(frame.cpu().numpy() * 255.0, 0, 255).astype(np.uint8)
            PILImage.fromarray(array).save(os.path.join(folder, name))
            self.images.append({"filename": name, "subfolder": "", "type": "temp"})

    def as_dict(self) -> dict:
        return {"images": self.images}


class _PreviewText:
    def __init__(self, value: str, **kwargs):
        self.value = value

    def as_dict(self) -> dict:
        return {"text": (self.value,)}


io = types.SimpleNamespace(
    Hidden=Hidden, NumberDisplay=NumberDisplay, Custom=Custom, Schema=Schema, NodeOutput=NodeOutput,
    ComfyNode=ComfyNode, Boolean=Boolean, Int=Int, Float=Float, String=String, Combo=Combo, Image=Image,
    Mask=Mask, Latent=Latent, Conditioning=Conditioning, Noise=Noise, Guider=Guider, Sampler=Sampler,
    Sigmas=Sigmas, Model=Model, Clip=Clip, Vae=Vae,
)
ui = types.SimpleNamespace(PreviewImage=_PreviewImage, PreviewText=_PreviewText)
