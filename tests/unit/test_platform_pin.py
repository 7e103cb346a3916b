"""The reconciler's platform pin: an index digest becomes the device's platform manifest, remembered.

Pure bookkeeping over two ports (a registry listing platforms, the state
store's key-value cache); the real registry and engine are in
tests/integration/test_platform_sync.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from gitops_edge.core.config import parse_config
from gitops_edge.engine.reconcile import Reconciler
from gitops_edge.errors import ImagePlatformError, RegistryError

INDEX = "sha256:" + "1" * 64
ARM64 = "sha256:" + "2" * 64


class Registry:
    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.fail = fail

    def platform_manifest(self, repository: str, reference: str, platform: str) -> str:
        self.calls.append((repository, reference, platform))
        if self.fail is not None:
            raise self.fail
        return ARM64 if reference == INDEX else reference


class Store:
    def __init__(self) -> None:
        self.kv: dict[str, str] = {}
        self.journal_write = self.journal_clear = lambda *a, **k: None

    def get(self, key: str) -> str | None:
        return self.kv.get(key)

    def put(self, key: str, value: str) -> None:
        self.kv[key] = value


def reconciler(registry: Registry, store: Store) -> Reconciler:
    config = parse_config({"source": {"url": "file:///fleet"}}, file="c.yaml", lines={}, environ={}, hostname="h")
    none: Any = None
    return Reconciler(config, none, none, store, loader=lambda root, path, rev: none,  # type: ignore[arg-type]
                      platforms=registry)


def test_an_index_digest_becomes_the_platform_manifest_once() -> None:
    reg, store = Registry(), Store()
    r = reconciler(reg, store)
    assert r._platform_pin(f"reg/app@{INDEX}", "linux/arm64") == f"reg/app@{ARM64}"
    assert r._platform_pin(f"reg/app@{INDEX}", "linux/arm64") == f"reg/app@{ARM64}"
    assert reg.calls == [("reg/app", INDEX, "linux/arm64")]  # the second poll asked nothing
    assert store.kv == {f"platform:reg/app@{INDEX}:linux/arm64": ARM64}


def test_local_image_ids_are_left_alone() -> None:
    reg = Registry()
    assert reconciler(reg, Store())._platform_pin(INDEX, "linux/arm64") == INDEX
    assert reg.calls == []


def test_an_unreachable_registry_keeps_the_digest_as_named_and_remembers_nothing() -> None:
    reg, store = Registry(RegistryError("registry reg unreachable")), Store()
    assert reconciler(reg, store)._platform_pin(f"reg/app@{INDEX}", "linux/arm64") == f"reg/app@{INDEX}"
    assert store.kv == {}


def test_a_missing_platform_is_not_hidden_by_the_fallback() -> None:
    reg = Registry(ImagePlatformError("image reg/app has no linux/arm64 variant (it offers linux/amd64)"))
    with pytest.raises(ImagePlatformError, match="no linux/arm64 variant"):
        reconciler(reg, Store())._platform_pin(f"reg/app@{INDEX}", "linux/arm64")

