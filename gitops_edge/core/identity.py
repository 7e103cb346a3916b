"""``${DEVICE_ID}`` and ``${label:NAME}`` in the agent config: one config file for a whole fleet.

They expand from the device's own identity (``device.id``, ``device.labels``)
once the ``device`` section is parsed, so ``ref: release/${label:ring}`` or
``path: devices/${DEVICE_ID}`` need no per-device copy of the config.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from gitops_edge.errors import ConfigError, Location
from gitops_edge.model.config import DeviceConfig

IDENTITY_VAR = "DEVICE_ID"
_IDENTITY = re.compile(r"\$\{(?:(DEVICE_ID)(?::-[^}]*)?|label:([^}]*))\}")  # DEVICE_ID is always set


def expand_identity(text: str, device: DeviceConfig, where: Callable[[], Location]) -> str:
    """Replace ``${DEVICE_ID}`` and ``${label:NAME}``; an unknown label is a ConfigError."""
    labels = dict(device.labels)

    def sub(m: re.Match[str]) -> str:
        if m.group(1):
            return device.id
        name = m.group(2)
        if name not in labels:
            known = ", ".join(sorted(labels)) or "none"
            raise ConfigError(f"${{label:{name}}}: device.labels has no {name!r} (labels: {known})", where())
        return labels[name]

    return _IDENTITY.sub(sub, text)
