"""Stands for modules/infotext_utils.py (Forge main; A1111 1.10's generation_parameters_copypaste.py):
values with commas, colons or newlines are written JSON-quoted and read back unquoted."""

import json
import re

re_param = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def quote(text):
    if "," not in str(text) and "\n" not in str(text) and ":" not in str(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def unquote(text):
    if len(text) == 0 or text[0] != '"' or text[-1] != '"':
        return text
    try:
        return json.loads(text)
    except Exception:
        return text


def parse_generation_parameters(x: str) -> dict:
    """The parameter line (the last line of an infotext) as a dict."""
    lastline = x.strip().split("\n")[-1]
    return {k: unquote(v) for k, v in re_param.findall(lastline)}
