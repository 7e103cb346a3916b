"""Compose's lifecycle hooks around the containers the agent starts and stops (docs/compose.md).

``post_start``: each hook is exec'd in order right after the agent starts a
container. As with ``docker compose up`` (2.40), the first hook that exits
non-zero fails the start; here that is a failed health gate, so the stack
rolls back, with the hook, its exit code and its output as evidence. A hook
still running after the health timeout fails the same way.

``pre_stop``: before the agent stops a running container (replaced, removed
with its service or stack, set aside by a rollback), the hooks it was created
with run in order. They come from the container's own label, so a rollback
or a crash recovery that never saw its spec still runs them. Unlike
``docker compose down``, a failing pre_stop hook does not keep the container
running: it is logged and the stop goes on, because an unattended device
must still be able to replace (or roll back) a service whose hook is broken.
"""

from __future__ import annotations

import logging
import shlex

from gitops_edge.errors import EdgeError, EngineUnavailableError
from gitops_edge.model.evidence import LOG_LINES, Evidence
from gitops_edge.model.observed import HookRun
from gitops_edge.model.spec import ServiceHook, ServiceSpec
from gitops_edge.ports.runtime import ContainerRuntime

log = logging.getLogger("gitops_edge.engine.hooks")


def describe(kind: str, index: int, hook: ServiceHook, run: HookRun, timeout_s: float) -> str:
    """``post_start[0] (sh -c 'exit 3') exited with status 3: <output>``."""
    status = (f"still running after {timeout_s:.0f}s" if run.exit_code is None
              else "could not run" if run.exit_code < 0 else f"exited with status {run.exit_code}")
    output = f": {run.output}" if run.output else ""
    return f"{kind}[{index}] ({shlex.join(hook.command)}) {status}{output}"


def post_start(rt: ContainerRuntime, spec: ServiceSpec, cid: str, timeout_s: float) -> tuple[str, Evidence] | None:
    """Run the service's post_start hooks in ``cid``; the reason and evidence of the first failure."""
    for i, hook in enumerate(spec.post_start):
        try:
            run = rt.run_hook(cid, hook, timeout_s)
        except EngineUnavailableError:
            raise
        except EdgeError as exc:  # e.g. the container exited before its hook could be exec'd
            run = HookRun(-1, str(exc))
        if run.exit_code == 0:
            continue
        what = describe("post_start", i, hook, run, timeout_s)
        name, lines = cid[:12], tuple[str, ...]()
        try:
            name = rt.inspect_state(cid).name or name
            lines = tuple(rt.logs(cid, LOG_LINES))
        except EngineUnavailableError:
            raise
        except EdgeError as exc:
            log.warning("%s: no container logs for the evidence of its failed hook: %s", spec.name, exc)
        return f"service {spec.name} failed to start: hook {what}", Evidence(
            service=spec.name, container=name, exit_code=run.exit_code if run.exit_code != -1 else None, logs=lines,
            hook=what,
        )
    return None


def pre_stop(rt: ContainerRuntime, cid: str, timeout_s: float) -> None:
    """Run the pre_stop hooks ``cid`` was created with, if it runs; failures are logged, never raised
    (except the engine going away, which every step treats alike)."""
    try:
        state = rt.inspect_state(cid)
    except EngineUnavailableError:
        raise
    except EdgeError:
        return  # gone already: the stop that follows says so, or does not care
    if not state.pre_stop or state.status != "running":
        return
    for i, hook in enumerate(state.pre_stop):
        try:
            run = rt.run_hook(cid, hook, timeout_s)
        except EngineUnavailableError:
            raise
        except EdgeError as exc:
            log.warning("%s: pre_stop[%d] hook could not run: %s; stopping it anyway", state.name, i, exc)
            return
        if run.exit_code != 0:
            log.warning("%s: hook %s; stopping it anyway", state.name, describe("pre_stop", i, hook, run, timeout_s))
            return  # like Compose: the first failing hook ends the list
        log.info("%s: pre_stop[%d] hook done", state.name, i)
