"""The command line (README.md lists it): parse, dispatch, map errors to exit codes.

Every error a user can cause ends here as one line on stderr and the exit
code of its class; tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from gitops_edge import __version__
from gitops_edge.cli.fleet import add_parser as add_fleet_parser
from gitops_edge.cli.fleet import cmd_fleet
from gitops_edge.errors import EdgeError, UsageError
from gitops_edge.model.config import AgentConfig
from gitops_edge.model.evidence import FAILED_SUFFIX

if TYPE_CHECKING:
    from gitops_edge.adapters.store.sqlite import StateStore
    from gitops_edge.daemon.control import Handler, Reply
    from gitops_edge.daemon.loop import Agent
    from gitops_edge.model.result import SyncResult
    from gitops_edge.wiring import Wiring

log = logging.getLogger("gitops_edge")


def _global_flags(p: argparse.ArgumentParser, defaults: bool) -> None:
    """The flags every command takes, before or after the command name."""

    def d(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    p.add_argument("--config", default=d(None),
                   help="agent config file (default: $GITOPS_EDGE_CONFIG or /etc/gitops-edge/config.yaml)")
    p.add_argument("--log-level", default=d("info"), choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-format", default=d("human"), choices=["human", "json"], help="json: one object per line")
    p.add_argument("--no-daemon", action="store_true", default=d(False),
                   help="work standalone even when a daemon runs (it is otherwise asked over its control socket)")


EXAMPLES = {
    "run": "gitops-edge run --config /etc/gitops-edge/config.yaml\n"
           "  (what the systemd unit runs; status on the address of status.listen)",
    "sync": "gitops-edge sync && echo converged\n"
            "exit codes: 0 converged, 1 rolled back, 3 refused, 2 invalid, 4 unreachable;\n"
            "with several stacks failing, the first of those that applies",
    "plan": "gitops-edge plan            # what the next sync would change, per stack and service\n"
            "gitops-edge plan --json | jq '.stacks[].actions'",
    "status": "gitops-edge status         # READY and REASON per stack, then every service\n"
              "gitops-edge status --json | jq '.stacks[] | select(.ready != \"True\")'",
    "history": "gitops-edge history --since 2h\n"
               "gitops-edge history --json --limit 5 | jq '.[0].evidence'",
    "validate": "gitops-edge validate .     # in the desired-state repository's CI\n"
                "gitops-edge validate . --device-id pump-7 --label site=north",
    "rollback": "gitops-edge rollback web   # the stack's previous good revision, now",
    "retry": "gitops-edge retry web      # try a quarantined commit again, or resume stopped automation",
    "lock": "gitops-edge lock --reason 'replacing the modem'",
    "unlock": "gitops-edge unlock",
    "suspend": "gitops-edge suspend web --reason 'debugging on site'",
    "resume": "gitops-edge resume web",
    "verify": "gitops-edge verify registry.example/app:1.4 --json",
    "fleet": "gitops-edge fleet status --broker mqtt://broker.lan:1883",
    "demo": "gitops-edge demo --workdir /tmp/edge-demo",
    "completion": "source <(gitops-edge completion bash)     # in ~/.bashrc\n"
                  "gitops-edge completion zsh > \"${fpath[1]}/_gitops-edge\"",
}
"""One example per command, shown as the epilog of its ``--help``."""


class _SubParsers(argparse._SubParsersAction):  # type: ignore[type-arg]
    """Every sub-command also takes the global flags, so they may follow the command name;
    its ``--help`` repeats the one-line help as description and shows an example."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        if name in EXAMPLES:
            kwargs.setdefault("description", kwargs.get("help"))
            kwargs.setdefault("epilog", "example:\n  " + EXAMPLES[name].replace("\n", "\n  "))
            kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        sp: argparse.ArgumentParser = super().add_parser(name, **kwargs)
        _global_flags(sp, defaults=False)
        return sp


def _parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or (``only``) the global flags and that one command: building
    every sub-command's parser costs a one-shot ``status`` or ``sync`` more than parsing does."""
    p = argparse.ArgumentParser(prog="gitops-edge", description="Pull-based GitOps for Docker edge devices.")
    _global_flags(p, defaults=True)
    p.add_argument("--version", action="version", version=f"gitops-edge {__version__}")
    p.register("action", "parsers", _SubParsers)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, build in _COMMAND_PARSERS.items():
        if only is None or name == only:
            build(sub)
    return p


def _command_in(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names, when it is plain to see (global flags spelled out, before it);
    None whenever in doubt: the whole parser then parses (and explains) it."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        name = arg.split("=", 1)[0]
        if name in _VALUE_FLAGS:
            i += 1 if "=" in arg else 2
        elif arg == "--no-daemon":
            i += 1
        elif arg.startswith("-"):
            return None  # --help, --version, an abbreviation, a mistake
        else:
            return arg if arg in _COMMAND_PARSERS else None
    return None


_VALUE_FLAGS = frozenset({"--config", "--log-level", "--log-format"})
Sub: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"  # (not subscriptable at run time)


def _p_run(sub: Sub) -> None:
    sub.add_parser("run", help="the daemon: sync on the schedule until SIGTERM/SIGINT")


def _p_sync(sub: Sub) -> None:
    sp = sub.add_parser("sync", help="one cycle now, then exit")
    sp.add_argument("--full", action="store_true",
                    help="every step even when nothing moved since the last full sync (standalone, that one's "
                         "answer is otherwise given after one ls-remote and one container list)")


def _p_plan(sub: Sub) -> None:
    sp = sub.add_parser("plan", help="what a sync would do, changing nothing")
    sp.add_argument("--json", action="store_true", help="machine-readable output")


def _p_status(sub: Sub) -> None:
    sp = sub.add_parser("status", help="revision per stack, health per service, last sync")
    sp.add_argument("--json", action="store_true", help="machine-readable output")


def _p_history(sub: Sub) -> None:
    sp = sub.add_parser("history", help="past syncs, newest first")
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.add_argument("--limit", type=int, default=50, help="at most this many syncs (default 50)")
    sp.add_argument("--since", help="only syncs since a duration ago (90s, 2h, 7d) or an RFC 3339 time")


def _p_validate(sub: Sub) -> None:
    sp = sub.add_parser("validate", help="check a desired-state tree offline (for the repo's own CI)")
    sp.add_argument("path", help="directory holding stack directories (the repository root with fleet.yaml)")
    sp.add_argument("--device-id", help="show the stacks and values this device would get (docs/fleet.md)")
    sp.add_argument("--label", action="append", default=[], metavar="NAME=VALUE", help="a device label (repeat)")


def _p_rollback(sub: Sub) -> None:
    sp = sub.add_parser("rollback", help="go back to the stack's previous good revision")
    sp.add_argument("stack")


def _p_retry(sub: Sub) -> None:
    sp = sub.add_parser("retry", help="clear a stack's quarantined commit or stopped automation")
    sp.add_argument("stack")


def _p_lock(sub: Sub) -> None:
    sp = sub.add_parser("lock", help="defer updates on this device (maintenance); status shows who and why")
    sp.add_argument("--reason", required=True)


def _p_unlock(sub: Sub) -> None:
    sub.add_parser("unlock", help="let updates run again")


def _p_suspend(sub: Sub) -> None:
    sp = sub.add_parser("suspend", help="leave one stack alone until resumed")
    sp.add_argument("stack")
    sp.add_argument("--reason", default="suspended by hand")


def _p_resume(sub: Sub) -> None:
    sp = sub.add_parser("resume", help="manage a suspended stack again")
    sp.add_argument("stack")


def _p_verify(sub: Sub) -> None:
    sp = sub.add_parser("verify", help="check one image reference against the trust policy")
    sp.add_argument("image")
    sp.add_argument("--json", action="store_true", help="machine-readable output")


def _p_demo(sub: Sub) -> None:
    sp = sub.add_parser("demo", help="a self-contained walk-through on a local Git repo")
    sp.add_argument("--workdir", help="where to keep the demo's repo and state (default: a temp dir)")


def _p_completion(sub: Sub) -> None:
    sp = sub.add_parser("completion", help="print a shell completion script (bash or zsh)")
    sp.add_argument("shell", choices=["bash", "zsh"])


_COMMAND_PARSERS = {  # in the order --help lists them
    "run": _p_run, "sync": _p_sync, "plan": _p_plan, "status": _p_status, "history": _p_history,
    "validate": _p_validate, "rollback": _p_rollback, "retry": _p_retry, "lock": _p_lock, "unlock": _p_unlock,
    "suspend": _p_suspend, "resume": _p_resume, "verify": _p_verify, "fleet": add_fleet_parser, "demo": _p_demo,
    "completion": _p_completion,
}


# Commands that, when a daemon runs, it carries out itself: one writer per device.
DAEMON_COMMANDS = frozenset({"sync", "plan", "status", "history", "lock", "unlock", "suspend", "resume", "retry",
                             "rollback"})


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser(_command_in(argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage line
        return 0 if exc.code == 0 else 2
    from gitops_edge.logs import setup_logging

    setup_logging(args.log_level, args.log_format)
    if not args.command:
        parser.print_help(sys.stderr)
        return 2
    try:
        if args.command in DAEMON_COMMANDS and not args.no_daemon:
            code = _ask_daemon(args, argv)
            if code is not None:
                return code
        return _run(args)
    except BrokenPipeError:  # `gitops-edge status --json | head`: the reader left, which is not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _run(args: argparse.Namespace) -> int:
    """Run one parsed command; every error a user can cause becomes one line and its exit code."""
    try:
        return int(COMMANDS[args.command](args))
    except EdgeError as exc:
        print(f"gitops-edge: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        raise
    except Exception as exc:  # a bug: say so in one line; the traceback is for --log-level debug
        log.debug("internal error", exc_info=True)
        print(f"gitops-edge: internal error (please report): {type(exc).__name__}: {exc}", file=sys.stderr)
        return 70


def _ask_daemon(args: argparse.Namespace, argv: list[str]) -> int | None:
    """The daemon's answer when one runs for this config's state_dir, else None (work standalone)."""
    from gitops_edge.daemon.control import request, socket_path

    try:
        config = _config(args)
    except EdgeError:
        return None  # standalone reports the config error
    return request(socket_path(config.state_dir), [*argv, f"--as={_who()}"], sys.stdout, sys.stderr)


def daemon_commands(agent: Agent) -> Handler:
    """The control socket's handler: the same commands, carried out inside the daemon."""
    import contextlib
    import threading

    from gitops_edge.logs import human_formatter

    printing = threading.Lock()  # commands print to sys.stdout, redirected per client: one at a time

    def handle(argv: list[str], reply: Reply) -> int:
        who = next((a.removeprefix("--as=") for a in argv if a.startswith("--as=")), None)
        argv = [a for a in argv if not a.startswith("--as=")]
        out, err = reply.stream("out"), reply.stream("err")
        with printing, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                args = _parser().parse_args(argv)
            except SystemExit as exc:
                return 0 if exc.code == 0 else 2
        if args.command not in DAEMON_COMMANDS:
            reply.err(f"gitops-edge: {args.command} is not run by the daemon\n")
            return 2
        args.wiring = agent.wiring
        args.who = who
        args.unchanged = agent.unchanged_polls()
        if args.command == "sync":
            progress = logging.StreamHandler(err)
            progress.setFormatter(human_formatter())
            progress.addFilter(_NoSummary())  # the client prints the outcome itself
            result = agent.sync_now(progress)
            if result is None:
                reply.err("gitops-edge: the daemon is stopping; no sync was run\n")
                return 4
            with printing, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                return _print_sync(result)
        with printing, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            return _run(args)

    return handle


def _config(args: argparse.Namespace) -> AgentConfig:
    """The agent config, read once per command (asking the daemon and working standalone share it)."""
    loaded = getattr(args, "loaded_config", None)
    if loaded is None:
        from gitops_edge.adapters.files.config_file import config_path, load_config

        loaded = args.loaded_config = load_config(config_path(args.config))
    return cast("AgentConfig", loaded)


def _wiring(args: argparse.Namespace) -> Wiring:
    """The daemon's own wiring when it runs the command for a client, else one for this config."""
    given = getattr(args, "wiring", None)
    if given is not None:
        return cast("Wiring", given)
    from gitops_edge.wiring import Wiring

    return Wiring(_config(args))


def cmd_sync(args: argparse.Namespace) -> int:
    wiring = _wiring(args)
    quiet = _NoSummary()  # the outcome line on stdout says it: not once more in the log
    for handler in logging.getLogger().handlers:
        handler.addFilter(quiet)
    try:
        with wiring.sync_lock():
            store = wiring.open_store()
            started = time.monotonic()
            # a fresh process's idle short-circuit (the daemon's lives in its reconciler)
            quick = None if args.full or getattr(args, "wiring", None) is not None else wiring.quick_sync(store)
            result = quick if quick is not None else wiring.reconciler(store).sync()
            took = time.monotonic() - started
            wiring.report(store, result)
            _push_metrics(wiring.config, store, result, took)
    finally:
        for handler in logging.getLogger().handlers:
            handler.removeFilter(quiet)
    return _print_sync(result)


def _push_metrics(config: AgentConfig, store: StateStore, result: SyncResult, took_s: float) -> None:
    """With ``metrics.pushgateway``, a one-shot sync pushes what the daemon would after the same
    sync, to the same group (this device's id): a device run from cron or a systemd timer has no
    daemon, and behind NAT the gateway is its only way to Prometheus. A failed push is a warning."""
    gateway = config.metrics.pushgateway
    if not gateway:
        return
    from gitops_edge.daemon.metrics import Metrics
    from gitops_edge.daemon.pushgateway import push_metrics

    metrics = Metrics()
    metrics.observe(result, took_s, store)
    push_metrics(metrics.registry, gateway, config.device.id, config.metrics.timeout_s)


class _NoSummary(logging.Filter):
    """Drops the engine's end-of-sync summary record (``extra={"summary": True}``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "summary", False)


def _print_sync(result: SyncResult) -> int:
    from gitops_edge.core.outcome import exit_code

    if result.plan is not None and result.plan.stacks:
        from gitops_edge.core.plan import format_plan

        for line in format_plan(result.plan):
            print(line)
    # the outcome once, on stdout; the error itself was logged (stderr) where it happened
    print(f"{result.outcome.value}: {(result.revision or '-')[:12]}" + (f" ({result.reason})" if result.reason else ""))
    return exit_code(result)


def cmd_plan(args: argparse.Namespace) -> int:
    from gitops_edge.cli.targeting import describe_device
    from gitops_edge.core.plan import format_plan, shown_image
    from gitops_edge.core.serialize import to_data
    wiring = _wiring(args)
    config = wiring.config
    with wiring.sync_lock():
        store = wiring.open_store()
        prep = wiring.reconciler(store).prepare()
    selected = [st.name for st in prep.desired.stacks]
    if args.json:
        out = {
            "device": {"id": config.device.id, "labels": dict(config.device.labels)},
            "selected": selected,
            "revision": prep.revision,
            "noop": prep.plan.is_noop,
            "skipped": dict(prep.skipped),
            "stacks": [
                {
                    "stack": sp.stack,
                    "remove_stack": sp.remove_stack,
                    "unchanged": list(sp.unchanged),
                    "actions": [
                        {"action": a.kind.value, "service": a.service, "reason": a.reason, "image": a.image,
                         "shown": shown_image(a.spec.image if a.spec else None, a.image),
                         "wave": a.wave, "replica": a.number}
                        for a in sp.actions
                    ],
                }
                for sp in prep.plan.stacks
            ],
        }
        print(json.dumps(to_data(out), indent=2))
        return 0
    print(f"{describe_device(config.device)}: stacks {', '.join(selected) or '(none)'}")
    print(f"revision {prep.revision[:12]}")
    for line in format_plan(prep.plan):
        print(line)
    for stack, why in sorted(prep.skipped.items()):
        print(f"{stack}: skipped ({why})")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from gitops_edge.report.status_view import device_status
    wiring = _wiring(args)
    runtime, _err = wiring.runtime_or_none()  # shown once, as the status's engine_error
    st = device_status(wiring.config, wiring.open_store(), runtime, unchanged=getattr(args, "unchanged", None))
    if args.json:
        print(json.dumps(st, indent=2))
        return 0
    print(f"device {st['device']}  source {st['source']['url']} @ {st['source']['ref']}  path {st['source']['path']}")
    print(f"trust: {st['trust']}")
    if st["engine_error"]:
        print(f"engine: {st['engine_error']}")
    if st["lock"]:
        print(f"LOCKED by {st['lock']['who']}: {st['lock']['reason']} (updates wait; `gitops-edge unlock`)")
    last = st["last_sync"]
    if last:  # its reason, unless a stack below already says why it is not ready
        why = last["reason"] and all(s["ready"] == "True" for s in st["stacks"])
        print(f"last sync: {last['outcome']} {(last['revision'] or '-')[:12]} {last['age_s']:.0f}s ago"
              + (f" ({last['reason']})" if why else ""))
    img = st["images"]
    if img["pulled"] or img["freed_bytes"]:
        print(f"images: {img['pulled']} pulled and kept, {img['bytes'] / 1e6:.1f} MB; "
              f"{img['freed_bytes'] / 1e6:.1f} MB freed by retention")
    polls = st["unchanged_polls"]
    if polls and polls["count"]:
        ago = f", last {time.time() - polls['last_at']:.0f}s ago" if polls["last_at"] else ""
        print(f"unchanged polls since the daemon started: {polls['count']}{ago} (not kept in history)")
    if not st["stacks"]:
        print("no stacks on this device yet")
        return 0
    print()
    _table([("STACK", "READY", "REASON", "REVISION", "MESSAGE")] + [
        (s["stack"], s["ready"], s["reason"], (s["revision"] or "-")[:12], s["message"]) for s in st["stacks"]
    ])
    services = [(s["stack"], svc["service"], svc["status"], svc["health"], (svc["revision"] or "-")[:12])
                for s in st["stacks"] for svc in s["services"]]
    if services:
        print()
        _table([("STACK", "SERVICE", "STATUS", "HEALTH", "REVISION"), *services])
    for s in st["stacks"]:
        if s["evidence"]:
            print()
            _print_evidence(s["stack"], s["evidence"])
    return 0


def _print_evidence(stack: str, ev: Mapping[str, Any]) -> None:
    """Why a gate failed: exit code, health output, the container's last log lines."""
    code = f", exit code {ev['exit_code']}" if ev.get("exit_code") is not None else ""
    print(f"{stack}/{ev['service']} failed its health gate{code}"
          f" (container kept stopped: docker logs {ev['container']}{FAILED_SUFFIX})")
    if ev.get("health_log"):
        print(f"  health check: {ev['health_log']}")
    if ev.get("hook"):
        print(f"  hook: {ev['hook']}")
    for line in ev.get("logs") or ():
        print(f"  | {line}")


def _known_stack(args: argparse.Namespace, store: StateStore | None = None) -> str:
    """``args.stack`` when this device knows it (applied, held back, or in its checkout), else exit 2."""
    wiring = _wiring(args)
    store = store or wiring.open_store()
    known = set(store.applied()) | set(store.quarantined()) | set(store.stopped()) | set(store.suspended())
    try:
        from gitops_edge.adapters.files.stack_files import find_stack_dirs

        checkout = wiring.config.state_dir / "source"
        if checkout.is_dir():
            known |= {d.name for d in find_stack_dirs(checkout, wiring.config.source.path)}
    except EdgeError:
        pass  # no readable checkout yet: the store's names are all there is
    if args.stack not in known:
        names = ", ".join(sorted(known)) or "none yet"
        raise UsageError(f"no stack named {args.stack!r} on this device (known: {names})")
    return str(args.stack)


def cmd_history(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    records = _wiring(args).open_store().history(args.limit)
    if args.since:
        since = _since(args.since)
        records = [r for r in records if r.started_at >= since]
    if args.json:
        print(json.dumps([
            {"id": r.id, "started_at": r.started_at, "started": _rfc3339(r.started_at), "revision": r.revision,
             "outcome": r.outcome.value if r.outcome else None, "duration_s": r.duration_s,
             "step": r.step.value if r.step else None, "reason": r.reason, "actions": list(r.actions),
             "repeats": r.repeats, "last_at": r.last_at, "evidence": [e.to_data() for e in r.evidence]}
            for r in records], indent=2))
        return 0
    rows = [("WHEN", "REVISION", "OUTCOME", "DURATION", "REASON")]
    for r in records:
        rows.append((
            _rfc3339(r.started_at),
            (r.revision or "-")[:12],
            (r.outcome.value if r.outcome else "running") + (f" x{r.repeats}" if r.repeats > 1 else ""),
            f"{r.duration_s:.1f}s" if r.duration_s is not None else "-",
            r.reason or "; ".join(r.actions),
        ))
    _table(rows)
    for r in records:  # why a gate failed, under the table (all of it: `history --json`, `status`)
        for e in r.evidence:
            code = f" exit code {e.exit_code};" if e.exit_code is not None else ""
            last = f" last log line: {e.logs[-1]}" if e.logs else " no log output"
            health = f" health check: {e.health_log};" if e.health_log else ""
            health += f" hook {e.hook};" if e.hook else ""
            print(f"{_rfc3339(r.started_at)} {e.service}:{code}{health}{last}")
    return 0


def _rfc3339(ts: float) -> str:
    """Local time with its zone, to the second: unambiguous for a technician and a log search."""
    from datetime import datetime

    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def _since(text: str) -> float:
    from datetime import datetime

    from gitops_edge.core.config import parse_duration

    days = text[:-1] if text.endswith("d") else None
    try:
        return time.time() - (float(days) * 86400 if days else parse_duration(text))
    except (ValueError, EdgeError):
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--since {text!r}: expected a duration (90s, 2h, 7d) or an RFC 3339 time") from None
    return (when if when.tzinfo else when.astimezone()).timestamp()


def cmd_validate(args: argparse.Namespace) -> int:
    from gitops_edge.adapters.files.desired_state import validate_tree

    path = Path(args.path)
    if not path.is_dir():
        raise UsageError(f"{path}: not a directory")
    if args.label and not args.device_id:
        raise UsageError("--label needs --device-id")
    device = None
    if args.device_id:
        from gitops_edge.cli.targeting import device_from_args, target_lines

        device = device_from_args(args.device_id, args.label)
        print("\n".join(target_lines(path, ".", device)))
    problems = validate_tree(path, device=device)
    for p in problems:
        print(str(p), file=sys.stderr)
    if problems:
        return 2
    if not _holds_stacks(path):
        raise UsageError(
            f"{path}: no stack found: expected sub-directories holding compose.yaml (or compose.yml, "
            "docker-compose.yaml, docker-compose.yml), or fleet.yaml at the repository root; is the path one level off?"
        )
    print(f"{path}: valid")
    return 0


def _holds_stacks(path: Path) -> bool:
    from gitops_edge.adapters.files.fleet_state import has_fleet
    from gitops_edge.adapters.files.stack_files import find_stack_dirs

    return has_fleet(path) or bool(find_stack_dirs(path, "."))


def cmd_rollback(args: argparse.Namespace) -> int:
    from gitops_edge.engine.manual_rollback import rollback_stack
    wiring = _wiring(args)
    with wiring.sync_lock():
        store = wiring.open_store()
        print(rollback_stack(wiring.reconciler(store), _known_stack(args, store)))
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    store = _wiring(args).open_store()
    stack = _known_stack(args, store)
    cleared = store.clear_quarantine(stack) | store.resume_automation(stack)
    print(f"{args.stack}: {'cleared; the next sync tries again' if cleared else 'nothing to clear'}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from gitops_edge.errors import TrustError
    wiring = _wiring(args)
    config = wiring.config
    policy = wiring.image_policy(wiring.open_store())
    if policy is None:
        print(f"{args.image}: no trust policy in {config.config_file}: it would run unverified")
        return 0
    try:
        verdict = policy.check(args.image)
    except TrustError as exc:
        if args.json:
            print(json.dumps({"image": args.image, "allowed": False, "reason": exc.message,
                              "retryable": exc.retryable}))
        print(f"refused: {exc.message}", file=sys.stderr)
        return exc.exit_code
    if args.json:
        print(json.dumps({
            "image": verdict.image, "digest": verdict.digest, "allowed": verdict.allowed, "rule": verdict.rule,
            "reason": verdict.reason,
            # one entry per acceptable signature: what format, whose identity, which log, which clock
            "evidence": [{"format": e.format, "identity": e.signer, "log": e.log or None,
                          "time_source": e.time_source or None, "detail": e.detail} for e in verdict.evidence],
        }, indent=2))
        return 0
    print(f"allowed: {args.image}")
    print(f"  digest: {verdict.digest}")
    print(f"  rule:   {verdict.rule or '(none: trust.default is allow)'}")
    for e in verdict.evidence:
        print(f"  evidence: {e.format} signed by {e.signer}" + (f" ({e.detail})" if e.detail else ""))
        if e.log:
            print(f"    log:  {e.log}")
        if e.time_source:
            print(f"    time: {e.time_source}")
    return 0


def _who(args: argparse.Namespace | None = None) -> str:
    """Who asked: the client's user when the daemon runs the command for it."""
    import getpass

    given = getattr(args, "who", None) if args is not None else None
    return given or os.environ.get("SUDO_USER") or getpass.getuser()


def cmd_lock(args: argparse.Namespace) -> int:
    _wiring(args).open_store().set_lock(_who(args), args.reason)
    print(f"locked: updates wait until `gitops-edge unlock` ({args.reason})")
    return 0


def cmd_unlock(args: argparse.Namespace) -> int:
    was = _wiring(args).open_store().clear_lock()
    print("unlocked" if was else "was not locked")
    return 0


def cmd_suspend(args: argparse.Namespace) -> int:
    _wiring(args).open_store().suspend(_known_stack(args), f"{args.reason} ({_who(args)})")
    print(f"{args.stack}: suspended; syncs leave it as it is until `gitops-edge resume {args.stack}`")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    was = _wiring(args).open_store().resume(_known_stack(args))
    print(f"{args.stack}: {'resumed' if was else 'was not suspended'}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from gitops_edge.daemon.loop import run_daemon

    wiring = _wiring(args)
    return run_daemon(wiring.config, wiring, daemon_commands)


def cmd_demo(args: argparse.Namespace) -> int:
    from gitops_edge.demo.walkthrough import run_demo

    return run_demo(main, Path(args.workdir) if args.workdir else None)


def cmd_completion(args: argparse.Namespace) -> int:
    from gitops_edge.cli.completion import SHELLS

    print(SHELLS[args.shell](_parser()), end="")
    return 0


def _table(rows: Sequence[Sequence[object]]) -> None:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


COMMANDS = {
    "sync": cmd_sync,
    "plan": cmd_plan,
    "status": cmd_status,
    "history": cmd_history,
    "validate": cmd_validate,
    "rollback": cmd_rollback,
    "retry": cmd_retry,
    "run": cmd_run,
    "verify": cmd_verify,
    "lock": cmd_lock,
    "unlock": cmd_unlock,
    "suspend": cmd_suspend,
    "resume": cmd_resume,
    "demo": cmd_demo,
    "fleet": cmd_fleet,
    "completion": cmd_completion,
}
