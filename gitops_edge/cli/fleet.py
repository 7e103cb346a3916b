"""``gitops-edge fleet status`` (every device's retained status, read from the MQTT broker) and
``gitops-edge fleet notify`` (publish a ref's newest commit: devices poll at once)."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from gitops_edge.errors import UsageError
from gitops_edge.model.config import MqttConfig

USAGE = (
    "usage: gitops-edge fleet status --broker URL [--prefix P] [--json] [--wait 2s]\n"
    "       gitops-edge fleet notify --broker URL --ref REF (--revision SHA | --repo URL) [--prefix P]"
)


def _broker_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--broker", required=True, help="mqtt://HOST:PORT or mqtts://HOST:PORT")
    prefix = MqttConfig.topic_prefix
    sp.add_argument("--prefix", default=prefix, help=f"topic prefix (default: {prefix})")
    sp.add_argument("--username")
    sp.add_argument("--password-file")
    sp.add_argument("--ca-file", help="TLS: trust this CA bundle")
    sp.add_argument("--cert-file", help="TLS: client certificate (PEM), with --key-file")
    sp.add_argument("--key-file", help="TLS: the client certificate's private key (PEM)")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("fleet", help="the fleet as the devices report it over MQTT")
    fsub = p.add_subparsers(dest="fleet_command", metavar="FLEET_COMMAND")
    sp = fsub.add_parser("status", help="device, online, revision per stack, health, last sync")
    _broker_args(sp)
    sp.add_argument("--wait", default="2s", help="how long to collect retained messages (default: 2s)")
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp = fsub.add_parser("notify", help="tell the devices following REF that it moved (for the repo's CI)")
    _broker_args(sp)
    sp.add_argument("--ref", required=True, help="the branch or tag the devices follow (source.ref)")
    sp.add_argument("--revision", help="the new commit (full sha)")
    sp.add_argument("--repo", help="no --revision: ask this Git URL where REF points (git ls-remote)")


def _mqtt_config(args: argparse.Namespace) -> MqttConfig:
    from gitops_edge.core.config_mqtt import check_prefix, parse_broker

    try:
        host, port, tls = parse_broker(args.broker)
        prefix = check_prefix(args.prefix)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if (args.cert_file is None) != (args.key_file is None):
        raise UsageError("--cert-file and --key-file go together")
    return MqttConfig(
        host=host, port=port, tls=tls or args.ca_file is not None or args.cert_file is not None,
        topic_prefix=prefix, username=args.username,
        password_file=Path(args.password_file) if args.password_file else None,
        ca_file=Path(args.ca_file) if args.ca_file else None,
        cert_file=Path(args.cert_file) if args.cert_file else None,
        key_file=Path(args.key_file) if args.key_file else None,
    )  # fmt: skip


def cmd_fleet(args: argparse.Namespace) -> int:
    if args.fleet_command == "notify":
        return _notify(args)
    if args.fleet_command != "status":
        raise UsageError(USAGE)
    return _status(args)


def _notify(args: argparse.Namespace) -> int:
    """Publish the ref's newest commit, retained, on ``<prefix>/refs/<ref>``."""
    from gitops_edge.adapters.mqtt.link import publish_retained
    from gitops_edge.core.push import parse_hint, ref_topic

    config = _mqtt_config(args)
    try:
        topic = ref_topic(config.topic_prefix, args.ref)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.revision is not None:
        revision = parse_hint(args.revision.encode())
        if revision is None:
            raise UsageError(f"--revision {args.revision!r}: give the full commit id (40 or 64 hex digits)")
    elif args.repo is not None:
        revision = _remote_revision(args.repo, args.ref)
    else:
        raise UsageError("fleet notify needs --revision SHA, or --repo URL to read it with git ls-remote")
    publish_retained(config, topic, revision.encode(), f"gitops-edge-notify-{os.getpid()}")
    print(f"{topic} {revision}")
    return 0


def _remote_revision(url: str, ref: str) -> str:
    """Where ``ref`` points in ``url`` (the device's own ls-remote code: same URL forms and errors)."""
    import tempfile

    from gitops_edge.adapters.git.source import GitRepoSource
    from gitops_edge.model.config import SourceConfig

    with tempfile.TemporaryDirectory(prefix="gitops-edge-notify-") as tmp:
        return GitRepoSource(SourceConfig(url=url, ref=ref), Path(tmp)).remote_revision()


def _status(args: argparse.Namespace) -> int:
    from gitops_edge.adapters.mqtt.link import read_retained
    from gitops_edge.core.config import parse_duration
    from gitops_edge.core.fleet_report import collect, fleet_rows

    config = _mqtt_config(args)
    prefix = config.topic_prefix
    try:
        wait_s = parse_duration(args.wait)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
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
