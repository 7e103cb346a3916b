"""The test bench itself: engine, registry and the Compose oracle answer."""

import subprocess

import docker


def test_images_are_pushed_and_distinct(docker_client: docker.DockerClient, test_images: dict[str, str]) -> None:
    ids = {docker_client.images.get(ref).id for ref in test_images.values()}
    assert len(ids) == 3
    data = docker_client.images.get_registry_data(test_images["v1"])
    assert data.id.startswith("sha256:")


def test_compose_oracle_runs(compose_bin: str) -> None:
    out = subprocess.run([compose_bin, "version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    assert "v2." in out.stdout
