"""Stands for modules/scripts.py: Script, AlwaysVisible, scripts_data and the ScriptRunner calls the
extension uses (Forge main dfdcbab6 modules/scripts.py:194 and :848; Classic 1f95d717; A1111 1.10.1
modules/scripts.py:190). `process_before_every_sampling(self, p, *args, **kwargs)` is on the base class
and the runner everywhere but A1111 1.6-1.9 (`a1111_19`). Like the real runner, each callback's
exception is reported and swallowed, never raised into the generation."""

import logging
import os
from collections import namedtuple

HOST = os.environ.get("WEBUI_STANDIN", "forge")
HOSTS = ("forge", "classic", "a1111", "a1111_19")
assert HOST in HOSTS, HOST
HAS_HOOK = HOST != "a1111_19"
AlwaysVisible = object()
ScriptClassData = namedtuple("ScriptClassData", ["script_class", "path", "basedir", "module"])
scripts_data = []
log = logging.getLogger("standin.scripts")


class Script:
    alwayson = False
    infotext_fields = None
    paste_field_names = None
    sorting_priority = 0

    def title(self):
        raise NotImplementedError()

    def show(self, is_img2img):
        pass

    def ui(self, is_img2img):
        pass

    def process(self, p, *args):
        pass

    def before_process_batch(self, p, *args, **kwargs):
        pass

    def process_batch(self, p, *args, **kwargs):
        pass


if HAS_HOOK:

    def _process_before_every_sampling(self, p, *args, **kwargs):
        """Similar to process(), called before every sampling. If you use high-res fix, this will be called two times."""

    Script.process_before_every_sampling = _process_before_every_sampling


class ScriptRunner:
    def __init__(self, scripts_with_args):
        self.alwayson_scripts = [s for s, _ in scripts_with_args]
        self.args = {id(s): a for s, a in scripts_with_args}
        self.errors = []

    def _each(self, name, p, **kwargs):
        for script in self.alwayson_scripts:
            try:
                getattr(script, name)(p, *self.args[id(script)], **kwargs)
            except Exception as error:  # errors.report(f"Error running {name}: ...", exc_info=True)
                self.errors.append((name, error))
                log.exception("Error running %s", name)

    def before_process_batch(self, p, **kwargs):
        self._each("before_process_batch", p, **kwargs)

    def process_batch(self, p, **kwargs):
        self._each("process_batch", p, **kwargs)

    if HAS_HOOK:

        def process_before_every_sampling(self, p, **kwargs):  # called with p positional or p=self
            self._each("process_before_every_sampling", p, **kwargs)
