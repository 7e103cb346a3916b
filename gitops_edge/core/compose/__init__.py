"""Compose files to the desired-state model, as pure functions.

The YAML adapter parses files and hands over plain data with a line map;
everything here is deterministic and does no I/O except through the
``read_text`` callback it is given.
"""

from gitops_edge.core.compose.problems import StackErrors, format_path
from gitops_edge.core.compose.stack import build_stack, is_project_name

__all__ = ["StackErrors", "build_stack", "format_path", "is_project_name"]
