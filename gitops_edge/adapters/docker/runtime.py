"""``ContainerRuntime`` on the Docker Engine API (docker SDK; no CLI, no compose).

The request bodies come from ``docker_translate`` (pure, Compose-equivalent);
this class only talks to the engine and translates its failures, once, into
the project's error tree:

- engine unreachable / timed out            -> ``EngineError`` (transient)
- engine says 404                            -> ``EngineNotFoundError``
- engine refuses (other 4xx: conflict, bad)  -> ``EngineConflictError``
- engine 5xx                                 -> ``EngineError`` (transient)
- registry unreachable / refuses             -> ``RegistryError`` (transient)
- image unknown to the registry              -> ``ImageNotFoundError``

Every call carries the client's timeout, so a stuck daemon becomes an error.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gitops_edge.adapters.docker import exec_output
from gitops_edge.adapters.docker import read as docker_read
from gitops_edge.adapters.docker import translate as t
from gitops_edge.adapters.docker.engine_http import EngineHTTP, EngineHTTPError
from gitops_edge.adapters.docker.pull_progress import PullProgress
from gitops_edge.core import image_ref
from gitops_edge.core.platform import (
    Platform,
    choose,
    describe,
    from_descriptor,
    from_machine,
    normalize,
    parse_platform,
)
from gitops_edge.errors import (
    DesiredStateError,
    EdgeError,
    EngineConflictError,
    EngineError,
    EngineNotFoundError,
    EngineUnavailableError,
    ImageNotFoundError,
    ImagePlatformError,
    RegistryError,
)
from gitops_edge.model.evidence import FAILED_SUFFIX
from gitops_edge.model.observed import KEPT_SUFFIX, ContainerState, HookRun, ObservedContainer, ObservedState

if TYPE_CHECKING:
    import docker

    from gitops_edge.model.spec import NetworkSpec, ServiceHook, ServiceSpec, StackSpec, VolumeSpec

log = logging.getLogger("gitops_edge.docker")

DEFAULT_TIMEOUT_S = 60.0
# the container events that can change a health verdict (exec_* of every probe are not among them)
_STATE_EVENTS = ("health_status", "start", "restart", "die", "oom", "kill", "stop", "destroy", "pause", "unpause")


def _status(exc: BaseException) -> tuple[int, str] | None:
    """(HTTP status, the engine's message) of an engine error answer, from either client."""
    if isinstance(exc, EngineHTTPError):
        return exc.status, exc.message
    if "docker" in sys.modules:  # an SDK error can only come from a loaded SDK
        import docker.errors

        if isinstance(exc, docker.errors.APIError):
            return int(exc.status_code or 500), str(exc.explanation or exc).strip()
    return None


def _unreachable(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return True
    if "docker" in sys.modules:
        import docker.errors
        import requests

        return isinstance(exc, requests.exceptions.RequestException | docker.errors.DockerException)
    return False


@contextmanager
def _engine(what: str) -> Iterator[None]:
    """Translate docker SDK / transport failures of one engine call."""
    try:
        yield
    except EdgeError:
        raise
    except Exception as exc:
        answer = _status(exc)
        if answer is not None:
            code, message = answer
            if code == 404:
                raise EngineNotFoundError(f"{what}: {message}") from exc
            if 400 <= code < 500:
                raise EngineConflictError(f"{what}: {message}") from exc
            raise EngineError(f"{what}: Docker engine error: {message}") from exc
        if _unreachable(exc):
            raise EngineUnavailableError(f"{what}: Docker engine unreachable or not answering ({exc})") from exc
        raise


@contextmanager
def _registry(ref: str) -> Iterator[None]:
    """Translate failures of calls where the engine talks to a registry for us."""
    try:
        yield
    except EdgeError:
        raise
    except Exception as exc:
        answer = _status(exc)
        if answer is not None:
            code, message = answer
            if code == 404:
                raise ImageNotFoundError(f"image {ref} not found in its registry: {message}") from exc
            raise RegistryError(f"registry for {ref} unreachable or refused: {message}") from exc
        if _unreachable(exc):
            raise EngineUnavailableError(
                f"resolving {ref}: Docker engine unreachable or not answering ({exc})"
            ) from exc
        raise


class DockerRuntime:
    """The Docker engine as the agent sees it. Construct once; cheap until first use."""

    def __init__(
        self,
        client: docker.DockerClient | None = None,
        *,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self._client = client
        self._base_url = base_url
        self._timeout = timeout
        # reads over the Unix socket without the SDK, unless a client was handed in
        self._http = EngineHTTP.for_host(base_url, timeout) if client is None else None
        self._platform: str | None = None

    @property
    def client(self) -> docker.DockerClient:
        """Connect lazily: an agent must start (and report) even while dockerd is down.
        The SDK is imported here, on the first write (or read of a non-Unix host)."""
        if self._client is None:
            import docker

            with _engine("connecting to the Docker engine"):
                if self._base_url:
                    self._client = docker.DockerClient(base_url=self._base_url, timeout=self._timeout)
                else:
                    self._client = docker.from_env(timeout=self._timeout)
        return self._client

    @property
    def _api(self) -> docker.APIClient:
        return self.client.api

    @property
    def _reads(self) -> Any:
        """The client for reads: ``EngineHTTP`` on a Unix socket, else the SDK's (same call shapes)."""
        return self._http if self._http is not None else self._api

    # -- observe -----------------------------------------------------------

    def observe_containers(self) -> ObservedState:
        """Compose-labelled containers only (no networks or volumes): one list call.

        Health comes from the summary's status text; the restart count is read
        (by inspect) only for containers that are restarting right now, so a
        steady poll costs no per-container calls. Use ``inspect_state`` for exact
        counts (the health gate does).
        """
        flt = {"label": [t.PROJECT]}
        with _engine("listing containers"):
            summaries = self._reads.containers(all=True, filters=flt)
        containers: list[ObservedContainer] = []
        for s in summaries:
            restarts = 0
            if s.get("State") == "restarting":
                try:
                    restarts = self.inspect_state(s["Id"]).restart_count
                except EngineNotFoundError:
                    continue  # removed between list and inspect
            oc = docker_read.observed_container(s, restart_count=restarts)
            if oc is not None:
                containers.append(oc)
        return ObservedState(containers=tuple(sorted(containers, key=lambda c: (c.stack, c.service, c.name))))

    def observe(self) -> ObservedState:
        """Compose-labelled containers, networks and volumes: three list calls in all."""
        containers = self.observe_containers().containers
        flt = {"label": [t.PROJECT]}
        with _engine("listing networks"):
            networks = self._reads.networks(filters=flt)
        with _engine("listing volumes"):
            volumes = (self._reads.volumes(filters=flt) or {}).get("Volumes") or []
        return ObservedState(
            containers=containers,
            networks=tuple(sorted(n["Name"] for n in networks)),
            network_projects=tuple(sorted((n["Name"], (n.get("Labels") or {}).get(t.PROJECT, "")) for n in networks)),
            volumes=tuple(sorted(v["Name"] for v in volumes)),
        )

    def fingerprint(self, stacks: Collection[str]) -> str:
        """A digest of the containers of ``stacks``, from one list call (the idle poll)."""
        with _engine("listing containers"):
            summaries = self._reads.containers(all=True, filters={"label": [t.PROJECT]})
        wanted = set(stacks)
        return docker_read.containers_digest(
            [s for s in summaries if (s.get("Labels") or {}).get(t.PROJECT) in wanted]
        )

    def container_project(self, name: str) -> str | None:
        """Who holds ``name`` (a ``container_name`` the repo asks for), labelled by compose or not."""
        with _engine(f"looking up container {name}"):
            found = self._reads.containers(all=True, filters={"name": [f"^/{re.escape(name)}$"]})
        exact = [c for c in found if f"/{name}" in (c.get("Names") or [])]
        if not exact:
            return None
        return str((exact[0].get("Labels") or {}).get(t.PROJECT, ""))

    def inspect_state(self, container_id: str) -> ContainerState:
        with _engine(f"inspecting container {container_id[:12]}"):
            return docker_read.container_state(self._reads.inspect_container(container_id))

    def event_mark(self) -> float:
        """Now, on the engine's event timeline (Unix time: the socket is on this host)."""
        return time.time()

    def wait_for_change(self, container_ids: Collection[str], since: float, timeout_s: float) -> bool:
        """Block until the engine logs a state event (health, start, die, OOM, ...) of one of
        ``container_ids`` at or after ``since``: True; False when ``timeout_s`` passed first.
        Through the SDK (a TCP host, a client handed in) the engine ends the stream at the
        timeout (``until``)."""
        flt = {"type": ["container"], "container": sorted(container_ids), "event": list(_STATE_EVENTS)}
        with _engine("waiting for container events"):
            if self._http is not None:
                return self._http.wait_event(flt, since, timeout_s)
            stream = self._api.events(since=f"{since:.9f}", until=f"{time.time() + max(timeout_s, 0.0):.9f}",
                                      filters=flt, decode=True)
            try:
                return next(iter(stream), None) is not None
            finally:
                stream.close()

    def logs(self, container_id: str, tail: int) -> list[str]:
        with _engine(f"reading the log of container {container_id[:12]}"):
            raw = self._api.logs(container_id, stdout=True, stderr=True, tail=tail, timestamps=False)
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        return text.splitlines()[-tail:]

    # -- images ------------------------------------------------------------

    def _local_image(self, ref: str) -> dict[str, Any] | None:
        try:
            with _engine(f"inspecting image {ref}"):
                return dict(self._reads.inspect_image(ref))
        except EngineNotFoundError:
            return None

    def platform(self) -> str:
        """The engine's own platform (``linux/amd64``): what ``docker pull`` chooses by default."""
        if self._platform is None:
            with _engine("reading the engine's platform"):
                info = self._reads.info()
            self._platform = str(from_machine(str(info.get("OSType") or "linux"), str(info.get("Architecture") or "")))
        return self._platform

    def _registry_data(self, ref: str, wanted: Platform | None) -> str:
        """The registry's digest for ``ref`` (an index's, for a multi-arch image), refusing an
        image that has no variant for ``wanted``: nothing is pulled or stopped for it."""
        with _registry(ref):
            data = self.client.images.get_registry_data(ref)
        if wanted is not None:
            offered = [from_descriptor(p) for p in data.attrs.get("Platforms") or [] if isinstance(p, dict)]
            if offered and choose(wanted, offered) is None:
                raise ImagePlatformError(f"image {ref} has no {wanted} variant (it offers {describe(offered)})")
        return str(data.id)

    @staticmethod
    def _local_platform(local: Mapping[str, Any]) -> Platform:
        return normalize(str(local.get("Os") or ""), str(local.get("Architecture") or ""),
                         str(local.get("Variant") or ""))

    def _fits(self, local: Mapping[str, Any] | None, wanted: Platform | None) -> bool:
        return local is not None and (wanted is None or choose(wanted, [self._local_platform(local)]) is not None)

    def resolve_image(self, ref: str, pull_policy: str, platform: str | None = None) -> str:
        """Pin ``ref`` to exact content, as Compose's pull policies would choose it.

        ``always``: the registry's manifest digest (``repo@sha256:..``).
        ``missing`` (default): the local image if present (its registry digest
        for this repository if known, else its image id), else the registry.
        ``never``: the local image or ``ImageNotFoundError``. Other policies
        (``if_not_present``, ``build``, ``daily``...) behave like ``missing``.

        With ``platform`` (``linux/arm64``), a local image counts only when it
        is of that platform, and a registry image must offer it (a multi-arch
        index is pinned by its own digest, the one cosign signs; the engine
        picks the platform's manifest from it when pulling). An image without
        the platform is an ``ImagePlatformError`` before anything changes.
        """
        wanted = parse_platform(platform) if platform else None
        parsed = image_ref.parse(ref)
        pinned = image_ref.is_pinned(ref)
        if pinned and wanted is None:
            return ref
        local = None if pull_policy == "always" and not pinned else self._local_image(ref)
        if self._fits(local, wanted):
            assert local is not None
            if pinned:
                return ref
            pinned_ref = image_ref.repo_digest_for(parsed.repository, local.get("RepoDigests") or [])
            return pinned_ref or str(local["Id"])
        if pull_policy == "never":
            if local is not None:
                raise ImagePlatformError(f"image {ref} is {self._local_platform(local)} locally, not {wanted}, "
                                         "and pull_policy is never")
            raise ImageNotFoundError(f"image {ref} is not present locally and pull_policy is never")
        digest = self._registry_data(ref, wanted)
        return ref if pinned else parsed.pinned(digest)

    def pull_image(self, pinned: str, platform: str | None = None) -> bool:
        """Pull ``pinned`` by digest (for ``platform``, from a multi-arch index) unless it is present;
        True when pulled now."""
        wanted = parse_platform(platform) if platform else None
        if self._fits(self._local_image(pinned), wanted):
            return False
        parsed = image_ref.parse(pinned)
        if parsed.digest is None:
            raise ImageNotFoundError(f"image {pinned} is not present locally and is not pullable by digest")
        progress = PullProgress(pinned)
        with _registry(pinned):
            for line in self._api.pull(parsed.repository, tag=parsed.digest, stream=True, decode=True,
                                       platform=str(wanted) if wanted else None):
                if isinstance(line, dict) and line.get("error"):
                    raise RegistryError(f"pulling {pinned}: {line['error']}")
                if isinstance(line, dict):
                    progress.feed(line)
        log.info("pulled %s: %s", pinned, progress.summary())
        local = self._local_image(pinned)
        if local is None:
            raise RegistryError(f"pulling {pinned} finished but the image is not present")
        if not self._fits(local, wanted):
            raise ImagePlatformError(f"pulling {pinned} for {wanted} gave a {self._local_platform(local)} image")
        return True

    def image_info(self, ref: str) -> tuple[str, int] | None:
        local = self._local_image(ref)
        return (str(local["Id"]), int(local.get("Size") or 0)) if local is not None else None

    def images_in_use(self) -> set[str]:
        with _engine("listing containers"):
            return {str(c.get("ImageID")) for c in self._reads.containers(all=True)}

    def remove_image(self, ref: str) -> bool:
        try:
            with _engine(f"removing image {ref}"):
                self._api.remove_image(ref, force=False, noprune=False)
        except (EngineNotFoundError, EngineConflictError):
            return False
        return True

    def free_space(self) -> int | None:
        """statvfs of ``DockerRootDir``: right when the agent runs on the engine's host."""
        with _engine("reading engine info"):
            root = str(self._reads.info().get("DockerRootDir") or "")
        try:
            st = os.statvfs(root) if root else None
        except OSError:
            return None
        return st.f_bavail * st.f_frsize if st is not None else None

    # -- networks and volumes ---------------------------------------------

    def ensure_network(self, stack: str, net: NetworkSpec) -> None:
        """Create the stack's network with Compose's labels; an external one must exist."""
        existing = self._network(net.name)
        if net.external:
            if existing is None:
                raise EngineNotFoundError(f"network {net.name} is declared external but does not exist")
            return
        if existing is not None:
            found = (existing.get("Labels") or {}).get(t.NETWORK)
            if found is not None and found != net.key:
                raise EngineConflictError(
                    f"network {net.name} exists with label {t.NETWORK}={found!r}, expected {net.key!r}"
                )
            return
        with _engine(f"creating network {net.name}"):
            self._api.create_network(**t.network_create_args(stack, net))

    def _network(self, name: str) -> dict[str, Any] | None:
        # Inspect matches id prefixes too, so list by name and match exactly.
        with _engine(f"looking up network {name}"):
            found = self._reads.networks(filters={"name": [name]})
        exact = [n for n in found if n.get("Name") == name]
        return dict(exact[0]) if exact else None

    def ensure_volume(self, stack: str, vol: VolumeSpec) -> None:
        """Create the stack's volume with Compose's labels; an external one must exist."""
        try:
            with _engine(f"inspecting volume {vol.name}"):
                self._reads.inspect_volume(vol.name)
            return
        except EngineNotFoundError:
            if vol.external:
                raise EngineNotFoundError(
                    f"volume {vol.name} is declared external but does not exist"
                ) from None
        with _engine(f"creating volume {vol.name}"):
            self._api.create_volume(**t.volume_create_args(stack, vol))

    def remove_network(self, name: str) -> None:
        """Remove a network; already gone is fine (idempotent for crash recovery)."""
        try:
            with _engine(f"removing network {name}"):
                self._api.remove_network(name)
        except EngineNotFoundError:
            pass

    # -- containers --------------------------------------------------------

    def _service_container(self, stack: str, service: str) -> str:
        """The id of a service's current container (``service:x`` modes, ``volumes_from``): of a
        scaled service, the first by name (replica 1), as Compose 2.40 picks it."""
        flt = {"label": [f"{t.PROJECT}={stack}", f"{t.SERVICE}={service}", f"{t.ONEOFF}=False"]}
        with _engine(f"looking up service {service} of {stack}"):
            found = self._api.containers(all=True, filters=flt)
        live = [c for c in found if not any(n.endswith((KEPT_SUFFIX, FAILED_SUFFIX)) for n in c.get("Names") or [])]
        # Compose takes the first container by name (replica 1 of a scaled service); a running one first.
        live.sort(key=lambda c: (c.get("State") != "running", _canonical_name(c)))
        if not live:
            raise EngineNotFoundError(
                f"service {service} of stack {stack} has no container (another service shares its "
                "namespaces or volumes)"
            )
        return str(live[0]["Id"])

    def create_container(
        self,
        stack: StackSpec,
        spec: ServiceSpec,
        *,
        image: str,
        config_hash: str,
        revision: str,
        name: str | None = None,
        number: int = 1,
    ) -> str:
        """Create (not start) the container Compose would create for replica ``number``, joined to all
        its networks."""
        local = self._local_image(image)
        if local is None:
            raise EngineNotFoundError(f"image {image} is not present locally (pull it first)")
        refs = {svc: self._service_container(stack.name, svc) for svc in t.referenced_services(spec)}
        try:
            req = t.container_create_args(
                stack,
                spec,
                image=image,
                image_id=str(local["Id"]),
                config_hash=config_hash,
                revision=revision,
                name=name,
                number=number,
                service_containers=refs,
            )
        except ValueError as exc:
            raise DesiredStateError(f"service {spec.name}: {exc}") from exc
        with _engine(f"creating container {req.name}"):
            cid = str(self._api.create_container_from_config(req.body, req.name, platform=req.platform)["Id"])
        try:
            if req.files:
                with _engine(f"copying configs into {req.name}"):
                    self._api.put_archive(cid, "/", t.files_archive(req.files))
            for ep in req.connect:
                with _engine(f"connecting {req.name} to network {ep.network}"):
                    # The endpoint body as create sends it: docker-py's helper would sort the links.
                    url = self._api._url("/networks/{0}/connect", ep.network)
                    res = self._api._post_json(url, data={"Container": cid, "EndpointConfig": ep.settings()})
                    self._api._raise_for_status(res)
        except EdgeError:
            self.remove_container(cid)  # never leave a half-wired container behind
            raise
        return cid

    def start_container(self, container_id: str) -> None:
        with _engine(f"starting container {container_id[:12]}"):
            self._api.start(container_id)

    def stop_container(self, container_id: str, timeout_s: float | None = None) -> None:
        """Stop with the given grace (else the container's own StopTimeout, default 10 s).

        The grace is always passed explicitly so the HTTP timeout covers it:
        a 2-minute stop_grace_period must not read as a stuck daemon.
        """
        with _engine(f"stopping container {container_id[:12]}"):
            if timeout_s is None:
                config = self._api.inspect_container(container_id).get("Config") or {}
                timeout_s = float(config.get("StopTimeout") or 10)
            self._api.stop(container_id, timeout=max(0, round(timeout_s)))

    def run_hook(self, container_id: str, hook: ServiceHook, timeout_s: float) -> HookRun:
        """Exec ``hook`` in the running container and wait for it, at most ``timeout_s``.

        An exec still running at the deadline is left to die with its container
        (the engine cannot kill an exec); its exit code is then None.
        """
        what = f"running a hook in container {container_id[:12]}"
        deadline = time.monotonic() + timeout_s
        with _engine(what):
            exec_id = str(self._api.exec_create(container_id, **t.exec_create_args(hook))["Id"])
            sock = self._api.exec_start(exec_id, socket=True)
            try:
                output = exec_output.tail(exec_output.read_until(sock, deadline))
            finally:
                sock.close()
            while True:  # the output ends as the process does; its exit code may trail a moment
                info = self._api.exec_inspect(exec_id)
                if not info.get("Running"):
                    return HookRun(int(info.get("ExitCode") or 0), output)
                if time.monotonic() >= deadline:
                    return HookRun(None, output)
                time.sleep(0.05)

    def remove_container(self, container_id: str) -> None:
        """Remove (forcefully, if it still runs); never its volumes. Gone already is fine."""
        try:
            with _engine(f"removing container {container_id[:12]}"):
                self._api.remove_container(container_id, v=False, force=True)
        except EngineNotFoundError:
            pass

    def rename_container(self, container_id: str, new_name: str) -> None:
        with _engine(f"renaming container {container_id[:12]} to {new_name}"):
            self._api.rename(container_id, new_name)

    def set_restart_policy(self, container_id: str, policy: str) -> None:
        """``no``, ``always``, ``unless-stopped`` or ``on-failure[:N]``; e.g. off for a kept container."""
        try:
            rp = t.restart_policy(policy)
        except ValueError as exc:
            raise DesiredStateError(str(exc)) from exc
        with _engine(f"updating restart policy of {container_id[:12]}"):
            self._api.update_container(container_id, restart_policy=rp)

    def events(
        self,
        since: datetime | float,
        until: datetime | float,
        filters: Mapping[str, Any] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Engine events in ``[since, until]``, decoded.

        ``until`` is required so the stream ends: keep it no later than now +
        the client timeout, or a quiet engine reads as a timeout error.
        """
        with _engine("reading engine events"):
            stream = self._api.events(since=since, until=until, filters=dict(filters or {}), decode=True)
            try:
                yield from stream
            finally:
                stream.close()


def _canonical_name(summary: Mapping[str, Any]) -> str:
    """A container's own name (not a link alias ``/other/alias``), as Compose sorts containers."""
    names = [n for n in summary.get("Names") or [] if n.count("/") == 1]
    return names[0].lstrip("/") if names else ""
