"""``gitops-edge demo``: the whole story on this machine, with no network.

Builds tiny local images, makes a local Git "fleet" repository with one
stack, and walks through a deploy, an update, a broken update that rolls
itself back, and the removal of the stack, printing plan, status and
history as a device would show them.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path

from gitops_edge.demo.tinyimage import SERVE
from gitops_edge.errors import EngineError

STACK = "edge-demo"

COMPOSE = """\
services:
  web:
    image: gitops-edge-demo/web:{version}
    command: {command}
    ports:
      - "127.0.0.1:18089:8080"
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 1s
      timeout: 2s
      retries: 3
    restart: unless-stopped
  worker:
    image: gitops-edge-demo/web:1
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    depends_on:
      web:
        condition: service_healthy
    restart: unless-stopped
"""

GOOD = json.dumps(SERVE)  # the image's own default, spelled out so the broken commit can differ
BROKEN = '["sh", "-c", "echo starting; sleep 1; echo config error >&2; exit 3"]'


def _git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "operator", "GIT_AUTHOR_EMAIL": "ops@example.com",
           "GIT_COMMITTER_NAME": "operator", "GIT_COMMITTER_EMAIL": "ops@example.com",
           "PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(repo)}
    out = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def _commit(repo: Path, message: str, compose: str | None) -> str:
    readme = repo / "devices" / "demo" / "README.md"
    readme.parent.mkdir(parents=True, exist_ok=True)
    readme.write_text("Stacks of the demo device: one directory per Compose project.\n")
    path = repo / "devices" / "demo" / STACK / "compose.yaml"
    if compose is None:
        path.unlink()
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(compose)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "--short", "HEAD")


def _say(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def run_demo(main: Callable[[list[str]], int], workdir: Path | None = None) -> int:
    """``main`` is the command line's entry point: the demo types the commands a user would."""
    from gitops_edge.demo.tinyimage import build_image

    try:
        import docker

        client = docker.DockerClient(timeout=60)
        client.ping()
    except Exception as exc:
        raise EngineError(f"the demo needs a running Docker engine ({exc}); run scripts/bootstrap") from None

    work = workdir or Path(tempfile.mkdtemp(prefix="gitops-edge-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    repo = work / "fleet"
    if not (repo / ".git").exists():
        repo.mkdir(exist_ok=True)
        _git(repo, "init", "-q", "-b", "main")
    config = work / "agent.yaml"
    config.write_text(textwrap.dedent(f"""\
        device: {{id: demo-device, labels: {{site: lab}}}}
        source:
          url: {repo}
          ref: main
          path: devices/demo
          interval: 30s
        state_dir: {work / "state"}
        health: {{timeout: 60s, stable_for: 3s}}
        """))
    cfg = ["--config", str(config)]

    _say("building tiny local images (busybox) gitops-edge-demo/web:1 and :2")
    for v in ("1", "2"):
        build_image(client, "gitops-edge-demo/web", v, version=f"demo v{v}")

    rev = _commit(repo, "deploy web v1", COMPOSE.format(version=1, command=GOOD))
    _say(f"1. deploy: commit {rev} adds stack {STACK}; `gitops-edge sync`")
    rc = main([*cfg, "sync"])
    main([*cfg, "status"])

    rev = _commit(repo, "web v2", COMPOSE.format(version=2, command=GOOD))
    _say(f"2. update: commit {rev} moves web to v2; `gitops-edge sync` prints the plan it carried out "
         "(`gitops-edge plan` shows the same before, changing nothing)")
    rc |= main([*cfg, "--log-level", "warning", "sync"])

    rev = _commit(repo, "web v2 with a broken command", COMPOSE.format(version=2, command=BROKEN))
    _say(f"3. a bad release: commit {rev} breaks web; the health gate fails and the stack rolls back")
    bad = main([*cfg, "sync"])
    print(f"(sync exited {bad}: 1 means the update failed and the old version runs again)")
    main([*cfg, "status"])
    _say("the same commit again: skipped quickly while it is quarantined")
    main([*cfg, "sync"])

    rev = _commit(repo, "remove the demo stack", None)
    _say(f"4. remove: commit {rev} deletes the stack directory; its containers go")
    rc |= main([*cfg, "sync"])
    _say("history")
    main([*cfg, "history"])
    print(f"\ndemo files (repo, config, state) are in {work}")
    return 0 if rc == 0 and bad == 1 else 1
