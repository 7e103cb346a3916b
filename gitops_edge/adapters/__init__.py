"""Adapters: the only code that touches the world (git, docker, registry, SQLite)."""
