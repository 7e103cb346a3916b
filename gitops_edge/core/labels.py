"""Device label text: shared by the agent config's parser and fleet selectors.

Its own module so that reading the agent config does not import the fleet
file's parser (``core.fleet``: its dataclasses, expressions and the Compose
problems) on every start of a one-shot command.
"""

from __future__ import annotations

import math

ID_KEY = "id"  # in a selector: the device id, not a label


def scalar_text(value: object) -> str | None:
    """A YAML scalar as label/value text (``true`` -> ``"true"``); None for anything else.

    Booleans are spelled as written in YAML, not as Python's ``True``, so a
    label ``debug: true`` matches a selector ``debug: "true"``.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float):
        return str(value)
    return None
