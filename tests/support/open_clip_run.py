"""A tiny open_clip CLIP checkpoint made by open_clip itself, with its own scores: the reference for the
HPSv2.1 conversion. open_clip is installed for the tests only (into a temporary folder, imported in a
subprocess), never into the pack's environment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

OPEN_CLIP = ("open_clip_torch==3.3.0", "ftfy==6.3.1", "wcwidth==0.9.4")
# A tiny ViT CLIP of open_clip's own classes: exact GELU and 16 heads per tower, as ViT-H-14 (HPSv2.1).
TINY = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 4, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 16, "layers": 2},
}
OPEN_CLIP_SIDE = """
import json, sys, torch, open_clip
cfg, out = json.loads(sys.argv[1]), sys.argv[2]
torch.manual_seed(0)
model = open_clip.CLIP(**cfg).eval()
with torch.no_grad():
    for p in model.parameters():  # every weight live, biases included
        p.add_(torch.randn_like(p) * 0.02)
pixels = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
tokens = torch.zeros(3, 77, dtype=torch.long)
for i, n in enumerate((5, 9, 14)):
    tokens[i, 0] = 49406
    tokens[i, 1 : n - 1] = torch.randint(1, 49000, (n - 2,), generator=torch.Generator().manual_seed(2 + i))
    tokens[i, n - 1] = 49407
with torch.no_grad():
    image = torch.nn.functional.normalize(model.encode_image(pixels), dim=-1)
    text = torch.nn.functional.normalize(model.encode_text(tokens), dim=-1)
torch.save({"state_dict": model.state_dict()}, out + "/HPS_tiny.pt")
torch.save({"pixels": pixels, "tokens": tokens, "cosine": (image * text).sum(-1)}, out + "/expected.pt")
"""


def open_clip_run(target: Path, out: Path) -> Path:
    """Install open_clip into `target`, and write HPS_tiny.pt ({"state_dict": ...}) and expected.pt into `out`."""
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), *OPEN_CLIP],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", OPEN_CLIP_SIDE, json.dumps(TINY), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out
