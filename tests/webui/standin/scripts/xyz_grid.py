"""Stands for scripts/xyz_grid.py of Forge main (dfdcbab6) and A1111 1.10.1: AxisOption and boolean_choice are defined in the script module itself."""


def apply_field(field):
    def fun(p, x, xs):
        setattr(p, field, x)

    return fun


def boolean_choice(reverse: bool = False):
    def choice():
        return ["False", "True"] if reverse else ["True", "False"]

    return choice


class AxisOption:
    def __init__(
        self, label, type, apply, format_value=None, confirm=None, cost=0.0, choices=None, prepare=None
    ):
        self.label = label
        self.type = type
        self.apply = apply
        self.choices = choices


axis_options = [
    AxisOption("Nothing", str, lambda p, x, xs: None),
    AxisOption("Seed", int, apply_field("seed")),
]


class Script:
    """The X/Y/Z plot script class (here only so scripts_data can name its module)."""
