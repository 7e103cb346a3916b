# gitops-edge as a container. Multi-stage: the builder makes a venv with the
# project installed from its wheel; the runtime copies only that venv onto the
# same base, plus git and ssh for the Git source. No architecture-specific
# downloads: the same file builds for linux/amd64, linux/arm64 and linux/arm/v7.
#
#   docker build -t gitops-edge .                    # online: python:3.11-slim and PyPI
#   scripts/build-image --offline -t gitops-edge     # no registry: local Debian base + host-built wheels
#
# Run (deploy/compose.yaml does the same):
#   docker run -d --name gitops-edge --read-only --tmpfs /tmp \
#     -v /var/run/docker.sock:/var/run/docker.sock \
#     -v gitops-edge-state:/var/lib/gitops-edge \
#     -v /etc/gitops-edge:/etc/gitops-edge:ro gitops-edge
#
# User: the agent runs as root by default because it needs the Docker socket
# (root:docker, mode 660), and whoever holds that socket is root on the host
# anyway. To run it as the unprivileged `gitops-edge` user (uid 10001), give
# it the socket's group: `--user 10001 --group-add $(stat -c %g /var/run/docker.sock)`
# (compose: `user: "10001"`, `group_add: ["<gid>"]`). The state directory is
# owned by 10001 with group root (0770): a new named volume copies that, so it
# is writable both by that user and by root without capabilities (cap_drop ALL).
#
# BASE must provide python3 (>= 3.11) with the venv module; Debian-based
# images get git, openssh-client and ca-certificates from apt when they lack them.
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
# Offline builds (scripts/build-image --offline) bring wheelhouse/, every dependency's
# wheel, and dist/, the project's own. The dependencies go in first, in a layer of their
# own, so a change to the project's code reuses it (under QEMU, for a foreign platform,
# installing them takes minutes). The glob keeps this COPY valid without a wheelhouse.
COPY pyproject.toml wheelhous[e] /deps/
RUN set -eu; \
    python3 -m venv /opt/gitops-edge; \
    if ls /deps/*.whl >/dev/null 2>&1; then /opt/gitops-edge/bin/pip install -q --no-index /deps/*.whl; fi
# pyproject.toml, README.md, gitops_edge/ and, offline, dist/: see .dockerignore.
COPY . /src
RUN set -eu; \
    if [ -d /src/dist ]; then \
      /opt/gitops-edge/bin/pip install --no-index --find-links /deps /src/dist/gitops_edge-*.whl; \
    else \
      /opt/gitops-edge/bin/pip wheel --no-deps --wheel-dir /tmp/dist /src; \
      /opt/gitops-edge/bin/pip install /tmp/dist/gitops_edge-*.whl; \
    fi; \
    /opt/gitops-edge/bin/pip uninstall -q -y pip setuptools; \
    /opt/gitops-edge/bin/gitops-edge --help >/dev/null

FROM ${BASE}
ARG EXTRA_PACKAGES=""
RUN set -eu; \
    pkgs="git openssh-client ca-certificates ${EXTRA_PACKAGES}"; \
    if ! dpkg -s $pkgs >/dev/null 2>&1; then \
      apt-get update; \
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $pkgs; \
      rm -rf /var/lib/apt/lists/*; \
    fi; \
    useradd --system --uid 10001 --home-dir /var/lib/gitops-edge --no-create-home --shell /usr/sbin/nologin gitops-edge; \
    mkdir -p /var/lib/gitops-edge /etc/gitops-edge; \
    chown 10001:0 /var/lib/gitops-edge; \
    chmod 0770 /var/lib/gitops-edge
COPY --from=build /opt/gitops-edge /opt/gitops-edge
# Read-only root file system: bytecode is compiled at install time and never
# written; state lives in the volume; /tmp must be a tmpfs (--tmpfs /tmp).
ENV PATH=/opt/gitops-edge/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GITOPS_EDGE_CONFIG=/etc/gitops-edge/config.yaml \
    GITOPS_EDGE_HEALTH_URL=http://127.0.0.1:9469/healthz
VOLUME /var/lib/gitops-edge
WORKDIR /var/lib/gitops-edge
# /healthz of `gitops-edge run` (status.listen, default 127.0.0.1:9469): set
# GITOPS_EDGE_HEALTH_URL when the config listens elsewhere.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['GITOPS_EDGE_HEALTH_URL'], timeout=4)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["gitops-edge"]
CMD ["run"]
