"""On a ComfyUI core without the V3 API (< 0.3.48) the pack registers as classic V1 nodes.

No such core can be installed here, so a subprocess imports the real ComfyUI 0.3.75 modules with
`comfy_api.latest` made unimportable, which is what an older core looks like to the pack. What it
registers is compared with what the real V3 server shows for the same nodes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.comfy_harness import comfyui_dir

REPO_ROOT = Path(__file__).resolve().parent.parent
# Nodes that work from their widget defaults alone (others need files or upstream results).
RUN_WITH_DEFAULTS = {"DPSLScenario"}

PROBE = r"""
import importlib.util, json, sys
sys.path.insert(0, sys.argv[1])
sys.modules["comfy_api.latest"] = None  # what a core older than 0.3.48 looks like
from comfy.cli_args import args
args.cpu = True
spec = importlib.util.spec_from_file_location("pack_v1", sys.argv[2] + "/__init__.py",
                                              submodule_search_locations=[sys.argv[2]])
pack = importlib.util.module_from_spec(spec); sys.modules["pack_v1"] = pack; spec.loader.exec_module(pack)
assert pack.HOST_API == "v1" and not hasattr(pack, "comfy_entrypoint")
out = {}
for node_id, cls in pack.NODE_CLASS_MAPPINGS.items():
    inputs = cls.INPUT_TYPES()
    info = {"input": inputs, "output": list(cls.RETURN_TYPES), "category": cls.CATEGORY,
            "display_name": pack.NODE_DISPLAY_NAME_MAPPINGS[node_id], "ran": None}
    required = inputs.get("required", {})
    if node_id in %r:
        kwargs = {name: (spec[1].get("default", spec[0][0] if isinstance(spec[0], list) else None))
                  for name, spec in required.items()}
        result = getattr(cls(), cls.FUNCTION)(**kwargs)
        values = result["result"] if isinstance(result, dict) else result
        info["ran"] = len(values)
    out[node_id] = info
print("JSON" + json.dumps(out, default=str))
""" % (RUN_WITH_DEFAULTS,)


@pytest.fixture(scope="module")
def v1_nodes() -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, str(comfyui_dir()), str(REPO_ROOT)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-4000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("JSON"))
    return json.loads(line[4:])


@pytest.mark.server
def test_v1_registration_matches_what_the_v3_server_shows(v1_nodes, comfy_server):
    v3 = comfy_server.object_info()
    assert v1_nodes, "nothing registered through the V1 fallback"
    for node_id, v1 in v1_nodes.items():
        server = v3[node_id]
        assert v1["output"] == server["output"], node_id
        assert v1["category"] == server["category"], node_id
        assert v1["display_name"] == server["display_name"], node_id
        for section in ("required", "optional"):
            got = v1["input"].get(section, {})
            want = server["input"].get(section, {})
            assert list(got) == list(want), (node_id, section)
            for name in want:
                if want[name][0] == "COMBO":  # V3 sends a combo's choices as options, V1 as the type
                    # The server may list more: model files other tests put in its models folder.
                    choices = want[name][1]["options"]
                    assert got[name][0] == choices[: len(got[name][0])], (node_id, name)
                else:
                    assert got[name][0] == want[name][0], (node_id, name)
                assert got[name][1].get("tooltip") == want[name][1].get("tooltip"), (node_id, name)
                assert got[name][1].get("default") == want[name][1].get("default"), (node_id, name)


def test_nodes_execute_through_the_v1_call_path(v1_nodes):
    for node_id in RUN_WITH_DEFAULTS:
        assert v1_nodes[node_id]["ran"] == len(v1_nodes[node_id]["output"]), node_id
