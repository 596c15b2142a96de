"""Stands for Forge Classic (1f95d717) extensions-builtin/xyz/lib_xyz/classes.py: AxisOption, same
constructor as Forge main's and A1111's."""


def format_value_add_label(p, opt, x):
    return f"{opt.label}: {x}"


class AxisOption:
    def __init__(
        self,
        label,
        type,
        apply,
        format_value=format_value_add_label,
        confirm=None,
        cost=0.0,
        choices=None,
        prepare=None,
    ):
        self.label = label
        self.type = type
        self.apply = apply
        self.format_value = format_value
        self.confirm = confirm
        self.cost = cost
        self.prepare = prepare
        self.choices = choices
