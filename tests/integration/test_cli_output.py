"""`status`, `plan` and `history` as a field technician reads them: tables, not JSON."""

from __future__ import annotations

from datetime import datetime

from tests.integration.agent_harness import Device

STACK = """\
services:
  web:
    image: {image}
    command: ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 1s
      retries: 5
  worker:
    image: {image}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
"""


def rows(text: str, header: str) -> list[list[str]]:
    """The table whose header row starts with the words of ``header``, split on runs of spaces,
    down to the next empty line."""
    lines = text.splitlines()
    want = header.split()
    [start] = [i for i, line in enumerate(lines) if line.split()[: len(want)] == want]
    out = []
    for line in lines[start:]:
        if not line.strip():
            break
        out.append(line.split())
    return out


def test_status_plan_history_tables(device: Device, stack_name: str, test_images: dict[str, str]) -> None:
    s = stack_name
    device.cleanup.append(s)  # type: ignore[attr-defined]
    device.health = "{timeout: 30s, stable_for: 1s}"
    rev = device.commit({"README.md": "d1\n", f"{s}/compose.yaml": STACK.format(image=test_images["v1"])})
    out = device.cli("sync")
    assert out.returncode == 0, out.stderr

    st = device.cli("status")
    assert st.returncode == 0, st.stderr
    assert "Traceback" not in st.stderr
    assert "device test-device" in st.stdout
    assert "last sync: applied " + rev[:12] in st.stdout
    table = rows(st.stdout, "STACK READY")
    assert table[0] == ["STACK", "READY", "REASON", "REVISION", "MESSAGE"]
    [mine] = [r for r in table[1:] if r[0] == s]
    assert mine[:4] == [s, "True", "Ready", rev[:12]], st.stdout
    table = rows(st.stdout, "STACK SERVICE")
    assert table[0] == ["STACK", "SERVICE", "STATUS", "HEALTH", "REVISION"]
    mine = sorted(r for r in table[1:] if r[0] == s)
    assert mine == [[s, "web", "running", "healthy", rev[:12]],
                    [s, "worker", "running", "running", rev[:12]]], st.stdout

    plan = device.cli("plan")
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.splitlines()[0] == f"device test-device: stacks {s}"  # the selection comes first
    assert plan.stdout.splitlines()[1] == f"revision {rev[:12]}"
    assert f"{s}: up to date (2 services)" in plan.stdout.splitlines()

    # a pending change shows up in the plan, by service and reason, and changes nothing
    rev2 = device.commit({f"{s}/compose.yaml": STACK.format(image=test_images["v2"])}, "v2")
    plan = device.cli("plan")
    assert plan.returncode == 0, plan.stderr
    lines = plan.stdout.splitlines()
    assert lines[1] == f"revision {rev2[:12]}"
    i = lines.index(f"{s}:")
    # neither service holds a fixed port, device or volume: both may start beside the old one
    assert lines[i + 1].startswith("  recreate web (start-first): image changed: ")
    assert f"-> {test_images['v2']}@sha256:" in lines[i + 1], lines[i + 1]  # the tag beside the digest
    assert lines[i + 2].startswith("  recreate worker (start-first): image changed: ")
    assert {c.labels["io.gitops-edge.revision"] for c in device.containers(s).values()} == {rev}

    hist = device.cli("history")
    assert hist.returncode == 0, hist.stderr
    table = rows(hist.stdout, "WHEN")
    assert table[0] == ["WHEN", "REVISION", "OUTCOME", "DURATION", "REASON"]
    # WHEN is one RFC 3339 time with its zone (e.g. 2026-11-28T08:03:51+00:00)
    [row] = [r for r in table[1:] if r[1] == rev[:12]]
    assert datetime.fromisoformat(row[0]).tzinfo is not None
    assert row[2] == "applied"
    assert row[3].endswith("s") and float(row[3][:-1]) > 0
    assert any(s in cell for cell in row[4:]) or len(row) == 4
