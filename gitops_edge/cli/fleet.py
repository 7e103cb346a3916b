"""``gitops-edge fleet status``: every device's retained status, read from the MQTT broker."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from gitops_edge.errors import UsageError
from gitops_edge.model.config import MqttConfig


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("fleet", help="the fleet as the devices report it over MQTT")
    fsub = p.add_subparsers(dest="fleet_command", metavar="FLEET_COMMAND")
    sp = fsub.add_parser("status", help="device, online, revision per stack, health, last sync")
    sp.add_argument("--broker", required=True, help="mqtt://HOST:PORT or mqtts://HOST:PORT")
    prefix = MqttConfig.topic_prefix
    sp.add_argument("--prefix", default=prefix, help=f"topic prefix (default: {prefix})")
    sp.add_argument("--wait", default="2s", help="how long to collect retained messages (default: 2s)")
    sp.add_argument("--username")
    sp.add_argument("--password-file")
    sp.add_argument("--ca-file", help="TLS: trust this CA bundle")
    sp.add_argument("--json", action="store_true", help="machine-readable output")


def cmd_fleet(args: argparse.Namespace) -> int:
    from gitops_edge.adapters.mqtt.link import read_retained
    from gitops_edge.core.config import parse_duration
    from gitops_edge.core.config_mqtt import check_prefix, parse_broker
    from gitops_edge.core.fleet_report import collect, fleet_rows

    if args.fleet_command != "status":
        raise UsageError("usage: gitops-edge fleet status --broker URL [--prefix P] [--json] [--wait 2s]")
    try:
        host, port, tls = parse_broker(args.broker)
        prefix = check_prefix(args.prefix)
        wait_s = parse_duration(args.wait)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    config = MqttConfig(
        host=host, port=port, tls=tls or args.ca_file is not None, topic_prefix=prefix,
        username=args.username, password_file=Path(args.password_file) if args.password_file else None,
        ca_file=Path(args.ca_file) if args.ca_file else None,
    )  # fmt: skip
    messages = read_retained(
        config, (f"{prefix}/+/status", f"{prefix}/+/online"), wait_s, f"gitops-edge-fleet-{os.getpid()}"
    )
    entries = collect(messages, prefix)
    if args.json:
        print(json.dumps(entries, indent=2, sort_keys=True))
        return 0
    if not entries:
        print(f"no devices have reported under {prefix}/ on {args.broker}")
        return 0
    rows = fleet_rows(entries, time.time())
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0
