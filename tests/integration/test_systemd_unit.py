"""deploy/gitops-edge.service is hardened, and the agent works inside that confinement.

``systemd-analyze security --offline`` scores the unit (scripts/bootstrap
installs it). The machines here run no systemd, so the confinement the agent
itself must tolerate is reproduced with the kernel's own switches: an empty
capability bounding set and no-new-privileges (``setpriv``), and the kernel's
memory-deny-write-execute (``PR_SET_MDWE``, what ``MemoryDenyWriteExecute=``
asks of seccomp), inherited by git and every child. A real sync then fetches,
deploys on the engine through the Docker socket, and verifies a signature.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from gitops_edge.demo import tinyimage
from tests.integration.agent_harness import ROOT, Device

UNIT = ROOT / "deploy/gitops-edge.service"
MAX_EXPOSURE = 3.0  # systemd-analyze's "OK" band

# Runs the agent after making its own process (and every child) refuse W+X memory.
CONFINED = textwrap.dedent("""
    import ctypes, runpy, sys
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
        sys.exit(f"PR_SET_MDWE failed: errno {ctypes.get_errno()}")
    libc.mmap.restype = ctypes.c_void_p
    wx = libc.mmap(None, 4096, 7, 0x22, -1, 0)  # PROT_READ|WRITE|EXEC, MAP_PRIVATE|ANONYMOUS
    if wx not in (None, ctypes.c_void_p(-1).value):
        sys.exit("control: a W+X mapping was still allowed")
    caps = [l for l in open("/proc/self/status") if l.startswith(("CapBnd", "CapEff", "NoNewPrivs"))]
    if any(l.split()[1] not in ("0000000000000000", "1") for l in caps):
        sys.exit(f"not confined: {caps}")
    import cryptography.hazmat.primitives.asymmetric.ec as ec
    from cryptography.hazmat.primitives import hashes
    key = ec.generate_private_key(ec.SECP256R1())
    key.public_key().verify(key.sign(b"x", ec.ECDSA(hashes.SHA256())), b"x", ec.ECDSA(hashes.SHA256()))
    import sigstore.verify  # noqa: F401  (the keyless stack loads)
    sys.argv = ["gitops-edge", *sys.argv[1:]]
    runpy.run_module("gitops_edge", run_name="__main__")
""")


def _analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.fail("systemd-analyze is not installed; run scripts/bootstrap")
    out = subprocess.run([tool, "security", "--offline=yes", "--no-pager", str(UNIT)],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_unit_exposure_is_ok() -> None:
    report = _analyze()
    m = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", report)
    assert m is not None, report
    assert float(m.group(1)) <= MAX_EXPOSURE and m.group(2) == "OK", report
    for must in ("CapabilityBoundingSet=~CAP_SYS_ADMIN", "MemoryDenyWriteExecute=", "SystemCallFilter=~@mount",
                 "RestrictNamespaces=~user", "ProtectKernelModules=", "NoNewPrivileges="):  # fmt: skip
        line = next((x for x in report.splitlines() if must in x), "")
        assert line.lstrip().startswith("✓"), f"{must} not enforced: {line}"


def test_unit_keeps_only_the_state_dir_writable() -> None:
    text = UNIT.read_text()
    assert "ProtectSystem=strict" in text
    assert re.findall(r"^ReadWritePaths=(.*)$", text, re.M) == ["/var/lib/gitops-edge"]
    assert re.search(r"^CapabilityBoundingSet=$", text, re.M)
    assert re.search(r"^RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6$", text, re.M)


def test_agent_syncs_inside_the_units_confinement(
    device: Device, stack_name: str, test_images: dict[str, str]
) -> None:
    if shutil.which("setpriv") is None:
        pytest.fail("setpriv (util-linux) is missing")
    s = stack_name
    device.cleanup.append(s)  # type: ignore[attr-defined]
    device.commit({f"{s}/compose.yaml": f"services:\n  web:\n    image: {test_images['v1']}\n"
                                        f"    command: {json.dumps(tinyimage.SERVE)}\n"})  # fmt: skip
    out = subprocess.run(
        ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs",
         sys.executable, "-c", CONFINED, "--config", str(device.config), "sync"],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    (web,) = device.containers(s).values()
    assert web.status == "running"
