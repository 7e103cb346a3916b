"""What one device gets from a repository: the stacks and their resolved values, for people.

``validate --device-id`` and ``plan`` print this so a fleet.yaml change can
be checked for a given identity before any device pulls it. Values whose
name looks secret are masked.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from gitops_edge.adapters.files.fleet_state import ResolvedStack, has_fleet, read_fleet, resolve, stack_values
from gitops_edge.adapters.files.stack_files import find_stack_dirs
from gitops_edge.core.fleet import Selection, display_value
from gitops_edge.errors import DesiredStateError, UsageError
from gitops_edge.model.config import DeviceConfig


def device_from_args(device_id: str, labels: Sequence[str]) -> DeviceConfig:
    """``--device-id ID --label K=V ...`` to a DeviceConfig."""
    pairs = []
    for item in labels:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--label {item!r}: use NAME=VALUE")
        if key == "id":
            raise UsageError("--label id=...: 'id' is reserved; use --device-id")
        pairs.append((key, value))
    return DeviceConfig(id=device_id, labels=tuple(sorted(pairs)))


def describe_device(device: DeviceConfig) -> str:
    labels = ", ".join(f"{k}={v}" for k, v in device.labels)
    return f"device {device.id}" + (f" ({labels})" if labels else "")


def targets(root: Path, subpath: str, device: DeviceConfig) -> tuple[str, list[ResolvedStack]]:
    """A headline and the stacks ``device`` gets; raises the first DesiredStateError."""
    if has_fleet(root):
        found, errors = resolve(root, read_fleet(root, subpath), device)
        if errors:
            raise errors[0]
        return f"{describe_device(device)}: {len(found)} stack(s) selected by fleet.yaml", found
    out = []
    for d in find_stack_dirs(root, subpath):
        rel = d.relative_to(root.absolute()).as_posix()
        out.append(ResolvedStack(d.name, rel, stack_values(root.absolute(), Selection(d.name, rel, ()), {})))
    return f"{describe_device(device)}: no fleet.yaml, every stack under {subpath!r} applies", out


def target_lines(root: Path, subpath: str, device: DeviceConfig) -> list[str]:
    """The report ``validate --device-id`` prints; problems are left to the validation itself."""
    try:
        headline, found = targets(root, subpath, device)
    except DesiredStateError:
        return [describe_device(device)]
    lines = [headline]
    for st in found:
        lines.append(f"  {st.name}  ({st.compose_dir})")
        if not st.values:
            lines.append("    (no values)")
        rows = [(n, display_value(n, v), src) for n, (v, src) in sorted(st.values.items())]
        width = max((len(r[0]) for r in rows), default=0)
        vwidth = max((len(r[1]) for r in rows), default=0)
        lines += [f"    {n.ljust(width)} = {v.ljust(vwidth)}  [{src}]" for n, v, src in rows]
    return lines
