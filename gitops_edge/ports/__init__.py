"""Ports: the small interfaces the engine needs from the world, one module per role.

Adapters in ``gitops_edge.adapters`` implement them; ``gitops_edge.ports.fakes``
holds in-memory implementations that drive the engine in fast tests. Every
method raises only errors from ``gitops_edge.errors``.
"""
