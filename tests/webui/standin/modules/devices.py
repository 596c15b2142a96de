"""Stands for modules/devices.py: the device the webui samples on (the CPU here)."""

import torch

device = torch.device("cpu")
cpu = torch.device("cpu")
