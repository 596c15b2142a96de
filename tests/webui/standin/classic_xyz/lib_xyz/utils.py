"""Stands for Forge Classic (1f95d717) extensions-builtin/xyz/lib_xyz/utils.py: boolean_choice lives here,
and the X/Y/Z script does not import it into its own module."""


def boolean_choice(reverse: bool = False):
    def choice():
        return ["False", "True"] if reverse else ["True", "False"]

    return choice


def csv_string_to_list_strip(data_str):
    return [part.strip() for part in data_str.split(",") if part.strip()]
