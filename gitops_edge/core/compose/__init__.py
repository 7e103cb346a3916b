"""Compose files to the desired-state model, as pure functions.

The YAML adapter parses files and hands over plain data with a line map;
everything here is deterministic and does no I/O except through the
``read_text`` callback it is given.
"""

from typing import TYPE_CHECKING, Any

from gitops_edge.core.compose.problems import StackErrors, format_path

if TYPE_CHECKING:
    from gitops_edge.core.compose.stack import build_stack, is_project_name


def __getattr__(name: str) -> Any:
    """The loader on first use: the agent config parser and ``status`` need only ``problems``."""
    if name in ("build_stack", "is_project_name"):
        from gitops_edge.core.compose import stack

        return getattr(stack, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["StackErrors", "build_stack", "format_path", "is_project_name"]
