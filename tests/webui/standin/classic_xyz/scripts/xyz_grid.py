"""Stands for Forge Classic (1f95d717) extensions-builtin/xyz/scripts/xyz_grid.py: the builtin X/Y/Z
extension, split into lib_xyz (imported from the extension's folder on sys.path). Its module namespace has
AxisOption and axis_options, but no boolean_choice."""

from lib_xyz.classes import AxisOption
from lib_xyz.utils import csv_string_to_list_strip  # noqa: F401 - what the real script imports from utils


def apply_field(field):
    def fun(p, x, xs):
        setattr(p, field, x)

    return fun


axis_options = [
    AxisOption("Nothing", str, lambda p, x, xs: None),
    AxisOption("Seed", int, apply_field("seed")),
]


class XYZ:
    """The X/Y/Z plot script class (here only so scripts_data can name its module)."""
