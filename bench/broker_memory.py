"""Mosquitto's memory per connected device: plain MQTT against TLS with client certificates.

The fleet bench measures the broker with plain connections; a fleet connects over
TLS (docs/fleet.md), where each connection also holds OpenSSL's buffers. Here
``--clients`` paho clients (as a device's: clean session, a Last Will, keepalive
30 s) connect to a real Mosquitto, once in plain MQTT and once over TLS with a
client certificate (``tests.support.mosquitto.SecureMosquitto``, the TLS test's
broker), and the broker's RSS is read from /proc before and after. One process
holds all clients: keep ``--clients`` under ~300 (paho's select() cannot watch a
descriptor above 1023).

Usage: ``.venv/bin/python -m bench.broker_memory [--clients 300]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.fleet import rss_kib
from bench.rollback import ROOT


def connect_all(port: int, n: int, tls: tuple[Path, Path, Path] | None) -> list[Any]:
    """``n`` connected clients (TLS: ca, cert, key); raises if they do not all get through."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    done = threading.Semaphore(0)
    clients = []
    for i in range(n):
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"mem-{i:05d}", clean_session=True)
        c.will_set(f"gitops-edge/mem-{i:05d}/online", b"false", qos=1, retain=True)
        if tls is not None:
            c.tls_set(ca_certs=str(tls[0]), certfile=str(tls[1]), keyfile=str(tls[2]))
            c.username_pw_set("device", "device-password")
        c.on_connect = lambda *_a: done.release()
        c.connect_async("127.0.0.1", port, keepalive=30)
        c.loop_start()
        clients.append(c)
    for _ in range(n):
        if not done.acquire(timeout=120):
            raise RuntimeError("not every client connected")
    return clients


def measure(broker: Any, n: int, tls: tuple[Path, Path, Path] | None) -> tuple[int, int]:
    broker.start()
    try:
        time.sleep(1)
        empty = rss_kib(broker.proc.pid)
        clients = connect_all(broker.port, n, tls)
        time.sleep(2)
        full = rss_kib(broker.proc.pid)
        for c in clients:
            c.disconnect()
            c.loop_stop()
        return empty, full
    finally:
        broker.stop()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.broker_memory")
    p.add_argument("--clients", type=int, default=300)
    p.add_argument("--reps", type=int, help=argparse.SUPPRESS)  # bench/run passes it to every benchmark
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from tests.support.mosquitto import Mosquitto, SecureMosquitto
    from tests.support.tls import CertAuthority

    with tempfile.TemporaryDirectory(prefix="gebench-brokermem-") as tmp:
        work = Path(tmp)
        plain = measure(Mosquitto(work / "plain"), args.clients, None)
        ca = CertAuthority(work / "pki")
        server, client = ca.issue("broker", server=True), ca.issue("device")
        secure = SecureMosquitto(work / "tls", ca=ca.pem, cert=server.cert, key=server.key,
                                 passwords={"device": "device-password"}, acl="pattern readwrite gitops-edge/#\n")
        tls = measure(secure, args.clients, (ca.pem, client.cert, client.key))
    print(f"| Mosquitto RSS, {args.clients} device connections | empty | connected | per connection |")
    print("|---|---|---|---|")
    for name, (empty, full) in (("plain MQTT", plain), ("TLS + client certificate", tls)):
        print(f"| {name} | {empty / 1024:.1f} MiB | {full / 1024:.1f} MiB | {(full - empty) / args.clients:.1f} KiB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
