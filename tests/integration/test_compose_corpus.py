"""Real-world compose files nobody here wrote, loaded by us and by ``docker compose config``.

The corpus (``<repo>/../shared/corpus/compose``; CI keeps ``shared/`` beside
the clone; ``GITOPS_EDGE_COMPOSE_CORPUS`` points elsewhere) holds one stack
directory per case. Each case has one explicit expectation:

- Compose refuses it (``COMPOSE_REFUSES``): we must refuse it too;
- a service builds its image and names none (``BUILD_ONLY``): we refuse it
  with ``file:line: services.<svc>.build``;
- gitops-edge refuses it on purpose (``GITOPS_EDGE_REFUSES``, see
  docs/compose.md): the error names the file, line and key;
- otherwise it must load with exactly the fields ``docker compose config``
  emits, except the cases in ``KNOWN_DIFFERENCES`` (case -> what differs),
  which must still differ that way: fixing one fails the test until its entry
  is removed, so the list only shrinks.

Compose runs once per case, in a thread pool, for the whole module; its
answers are cached (pytest's cache) until the case's files change.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from gitops_edge.adapters.files.stack_files import load_stack
from gitops_edge.errors import DesiredStateError
from gitops_edge.model.spec import StackSpec
from tests.integration.test_compose_oracle import (
    COMPARED_SERVICE_KEYS,
    compose_env,
    compose_resources,
    from_compose_service,
    from_spec_service,
    run_compose,
    spec_resources,
    unescape,
)

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("GITOPS_EDGE_COMPOSE_CORPUS") or REPO.parent / "shared" / "corpus" / "compose")
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir()) if CORPUS.is_dir() else []

# Compose refuses these (case -> a phrase of its error); so must we.
COMPOSE_REFUSES = {
    "cg-depends-on-self": "dependency cycle",
    "cg-empty": "empty compose file",
    "cg-env-file": "compose-with-env-file.yaml",  # .env names a COMPOSE_FILE that is absent
    "cg-env-files": "compose-with-env-file.yaml",
    "cg-extends-base": "must be a mapping",
    "cg-using-variables": "",  # every value an unset variable: several schema errors
    "dc-env-file": "/doesnotexist/.env",
    "dc-wrong-composefile": "wrongField",
    "depends-on-cycle": "dependency cycle",
}

# A service with ``build:`` and no ``image:``: case -> the location we must name.
BUILD_ONLY = {
    "ac-angular": "ac-angular/compose.yaml:3: services.web.build",
    "ac-apache-php": "ac-apache-php/compose.yaml:3: services.web.build",
    "ac-aspnet-mssql": "ac-aspnet-mssql/compose.yaml:3: services.web.build",
    "ac-django": "ac-django/compose.yaml:3: services.web.build",
    "ac-fastapi": "ac-fastapi/compose.yaml:3: services.api.build",
    "ac-flask": "ac-flask/compose.yaml:3: services.web.build",
    "ac-flask-redis": "ac-flask-redis/compose.yaml:7: services.web.build",
    "ac-nginx-aspnet-mysql": "ac-nginx-aspnet-mysql/compose.yaml:3: services.backend.build",
    "ac-nginx-flask-mongo": "ac-nginx-flask-mongo/compose.yaml:15: services.backend.build",
    "ac-nginx-flask-mysql": "ac-nginx-flask-mysql/compose.yaml:28: services.backend.build",
    "ac-nginx-golang": "ac-nginx-golang/compose.yaml:15: services.backend.build",
    "ac-nginx-golang-mysql": "ac-nginx-golang-mysql/compose.yaml:3: services.backend.build",
    "ac-nginx-golang-postgres": "ac-nginx-golang-postgres/compose.yaml:3: services.backend.build",
    "ac-nginx-nodejs-redis": "ac-nginx-nodejs-redis/compose.yaml:9: services.web1.build",
    "ac-nginx-wsgi-flask": "ac-nginx-wsgi-flask/compose.yaml:3: services.nginx-proxy.build",
    "ac-react-express-mongodb": "ac-react-express-mongodb/compose.yaml:3: services.frontend.build",
    "ac-react-express-mysql": "ac-react-express-mysql/compose.yaml:3: services.backend.build",
    "ac-react-java-mysql": "ac-react-java-mysql/compose.yaml:3: services.backend.build",
    "ac-react-nginx": "ac-react-nginx/compose.yaml:3: services.frontend.build",
    "ac-sparkjava": "ac-sparkjava/compose.yaml:3: services.sparkjava.build",
    "ac-sparkjava-mysql": "ac-sparkjava-mysql/compose.yaml:3: services.backend.build",
    "ac-spring-postgres": "ac-spring-postgres/compose.yaml:3: services.backend.build",
    "ac-traefik-golang": "ac-traefik-golang/compose.yaml:14: services.backend.build",
    "ac-vuejs": "ac-vuejs/compose.yaml:3: services.web.build",
    "compose-test-with-version": "compose-test-with-version/compose.yaml:13: services.web.build",
    "dc-volume-test": "dc-volume-test/compose.yaml:3: services.nginx.build",
    "dc-watch": "dc-watch/compose.yaml:15: services.alpine.build",
    "react-rust-postgres": "react-rust-postgres/compose.yaml:4: services.frontend.build",
}

# Cases Compose refuses that we still load: case -> Compose's reason.
KNOWN_LENIENT: dict[str, str] = {}

# Cases Compose loads that we do not load identically yet: case -> what differs.
KNOWN_DIFFERENCES: dict[str, str] = {
}

# Compose loads these; gitops-edge refuses them on purpose (case -> the location it names).
GITOPS_EDGE_REFUSES: dict[str, str] = {}


def _oracle(compose_bin: str, case: str) -> tuple[str, dict[str, Any] | str]:
    out = run_compose(compose_bin, CORPUS / case)
    if out.returncode != 0:
        return case, out.stderr.strip() or f"exit {out.returncode}"
    return case, unescape(json.loads(out.stdout))


def _fingerprint(compose_bin: str, case: str) -> str:
    """Changes when the case's files, the Compose binary or its environment change."""
    digest = hashlib.sha256()
    stat = os.stat(compose_bin)
    digest.update(f"{compose_bin}:{stat.st_size}:{stat.st_mtime_ns}:{sorted(compose_env().items())}".encode())
    for path in sorted((CORPUS / case).rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(CORPUS)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def oracle(compose_bin: str, request: pytest.FixtureRequest) -> dict[str, dict[str, Any] | str]:
    """``docker compose config`` of every case: its JSON, or its error text.

    Compose runs in a thread pool for the cases whose files (or whose Compose
    binary) changed since the last run; the others come from pytest's cache.
    """
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    prints = {case: _fingerprint(compose_bin, case) for case in CASES}
    results: dict[str, dict[str, Any] | str] = {}
    for case in CASES:
        hit = cache.get(f"compose-corpus/{case}", None) if cache is not None else None
        if isinstance(hit, dict) and hit.get("fingerprint") == prints[case]:
            results[case] = hit["result"]
    missing = [case for case in CASES if case not in results]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for case, result in pool.map(lambda c: _oracle(compose_bin, c), missing):
            results[case] = result
            if cache is not None:
                cache.set(f"compose-corpus/{case}", {"fingerprint": prints[case], "result": result})
    return results


def difference(expected: dict[str, Any], ours: StackSpec) -> str | None:
    """The first field where our spec differs from Compose's, or ``None``."""
    names = sorted(s.name for s in ours.services)
    if names != sorted(expected["services"]):
        return f"services: ours {names}, compose {sorted(expected['services'])}"
    for name, svc in sorted(expected["services"].items()):
        unmodelled = set(svc) - COMPARED_SERVICE_KEYS
        if svc.get("image") is not None:
            unmodelled.discard("build")  # a named image is pulled; the build section is ignored
        if unmodelled:
            return f"services.{name}: compose emits keys we do not compare: {sorted(unmodelled)}"
        want, got = from_compose_service(svc), from_spec_service(ours.service(name))
        for key in want:
            if got[key] != want[key]:
                return f"services.{name}.{key}: ours {got[key]!r}, compose {want[key]!r}"
        sources = {m.target: m.source for m in ours.service(name).mounts if m.origin == "config"}
        sources.update({f.target: f.content for f in ours.service(name).files})
        for ref in svc.get("configs", []):
            cfg = expected["configs"][ref["source"]]
            if "environment" in cfg:  # compose prints the variable's name, not its value
                continue
            target = ref.get("target") or "/" + ref["source"]
            target = target if target.startswith("/") else "/" + target
            if sources.get(target) != cfg.get("file", cfg.get("content")):
                return f"services.{name}.configs {target}: ours {sources.get(target)!r}, compose {cfg!r}"
    for section in ("networks", "volumes"):
        want_r, got_r = compose_resources(expected, section), spec_resources(ours, section)
        if got_r != want_r:
            return f"{section}: ours {got_r!r}, compose {want_r!r}"
    return None


def test_corpus_is_there() -> None:
    """Every case has an expectation; a missing corpus fails rather than passing empty."""
    assert len(CASES) >= 70, f"compose corpus not found at {CORPUS}"
    explicit = (set(COMPOSE_REFUSES) | set(BUILD_ONLY) | set(KNOWN_DIFFERENCES) | set(KNOWN_LENIENT)
                | set(GITOPS_EDGE_REFUSES))
    assert explicit <= set(CASES), f"expectations for absent cases: {sorted(explicit - set(CASES))}"
    assert not set(COMPOSE_REFUSES) & set(BUILD_ONLY)


@pytest.mark.parametrize("case", CASES)
def test_corpus_case(case: str, oracle: dict[str, dict[str, Any] | str]) -> None:
    expected = oracle[case]
    try:
        ours: StackSpec | DesiredStateError = load_stack(CORPUS, CORPUS / case)
    except DesiredStateError as exc:
        ours = exc
    if case in KNOWN_LENIENT:
        assert isinstance(expected, str) and KNOWN_LENIENT[case] in expected, expected
        assert not isinstance(ours, DesiredStateError), f"{case}: now refused: remove it from KNOWN_LENIENT"
        return
    if case in COMPOSE_REFUSES:
        assert isinstance(expected, str), f"{case}: compose now accepts it; move it out of COMPOSE_REFUSES"
        assert COMPOSE_REFUSES[case] in expected, expected
        assert isinstance(ours, DesiredStateError), f"{case}: compose refuses it ({expected}), we loaded it"
        return
    assert not isinstance(expected, str), f"{case}: compose refuses it: {expected}"
    refused_at = BUILD_ONLY.get(case) or GITOPS_EDGE_REFUSES.get(case)
    if refused_at is not None:
        assert isinstance(ours, DesiredStateError), f"{case}: loaded, but we refuse it on purpose"
        lines = [str(e) for e in getattr(ours, "errors", (ours,))]
        assert any(line.startswith(refused_at) for line in lines), lines
        return
    problem = str(ours) if isinstance(ours, DesiredStateError) else difference(expected, ours)
    if case in KNOWN_DIFFERENCES:
        assert problem is not None, f"{case} now matches compose: remove it from KNOWN_DIFFERENCES"
        assert KNOWN_DIFFERENCES[case] in problem, problem
    else:
        assert problem is None, f"{case}: {problem}"
