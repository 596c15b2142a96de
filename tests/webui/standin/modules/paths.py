"""Stands for modules/paths.py (Forge main, A1111 1.10): `models_path` is the webui's models folder."""

import os

models_path = os.environ.get("WEBUI_STANDIN_MODELS", "models")
