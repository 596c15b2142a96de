"""Stands for modules/script_loading.py: a script file is imported under its file name ("golden_noise.py")."""

import importlib.util
import os


def load_module(path):
    spec = importlib.util.spec_from_file_location(os.path.basename(path), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
