"""Moved to ``gitops_edge.core.image_ref`` (pure); kept so in-flight imports still work."""

from gitops_edge.core.image_ref import ImageRef, familiar, is_pinned, parse, repo_digest_for

__all__ = ["ImageRef", "familiar", "is_pinned", "parse", "repo_digest_for"]
