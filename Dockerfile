# gitops-edge as a container: needs the Docker socket and a state volume.
#   docker run -d --name gitops-edge --read-only \
#     -v /var/run/docker.sock:/var/run/docker.sock \
#     -v gitops-edge-state:/var/lib/gitops-edge \
#     -v /etc/gitops-edge:/etc/gitops-edge:ro gitops-edge run
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gitops_edge ./gitops_edge
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends git ca-certificates openssh-client \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
ENV GITOPS_EDGE_CONFIG=/etc/gitops-edge/config.yaml
VOLUME /var/lib/gitops-edge
ENTRYPOINT ["gitops-edge"]
CMD ["run"]
