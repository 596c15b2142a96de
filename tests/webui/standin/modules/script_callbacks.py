"""Stands for modules/script_callbacks.py: the on_before_ui callback list, run when the UI is built."""

callbacks_before_ui = []


def on_before_ui(callback):
    callbacks_before_ui.append(callback)


def before_ui_callback():
    for callback in callbacks_before_ui:
        callback()
