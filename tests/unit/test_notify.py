"""Webhook messages: deduplicated per problem, queued while offline (real SQLite store)."""

from __future__ import annotations

import json
from pathlib import Path

from gitops_edge.adapters.store.sqlite import StateStore
from gitops_edge.model.config import NotifyConfig
from gitops_edge.model.status import Outcome
from gitops_edge.report.webhook import Notifier
from tests.support.store import outbox_size


class Receiver:
    def __init__(self) -> None:
        self.online = True
        self.got: list[dict[str, object]] = []

    def __call__(self, url: str, body: bytes, timeout_s: float) -> None:
        if not self.online:
            raise OSError("network unreachable")
        self.got.append(json.loads(body))


def make(tmp_path: Path, rx: Receiver, repeat_after: int = 3) -> tuple[Notifier, StateStore]:
    store = StateStore(tmp_path)
    return Notifier(NotifyConfig(webhook="http://hook", repeat_after=repeat_after), store, "dev-1", rx), store


def test_one_message_per_distinct_problem(tmp_path: Path) -> None:
    rx = Receiver()
    n, _ = make(tmp_path, rx)
    n.after_sync(Outcome.ROLLED_BACK, "abc", "web unhealthy")
    n.after_sync(Outcome.ROLLED_BACK, "abc", "web unhealthy")
    n.after_sync(Outcome.SKIPPED, "abc", "quarantined")
    assert [m["event"] for m in rx.got] == ["rollback"]
    n.after_sync(Outcome.ROLLED_BACK, "def", "web unhealthy")  # a new commit is a new problem
    assert len(rx.got) == 2
    n.after_sync(Outcome.APPLIED, "ghi", "")
    n.after_sync(Outcome.ROLLED_BACK, "def", "web unhealthy")  # it came back after being fixed
    assert len(rx.got) == 3


def test_repeated_failure_after_n_errors_once(tmp_path: Path) -> None:
    rx = Receiver()
    n, _ = make(tmp_path, rx, repeat_after=3)
    for _ in range(6):
        n.after_sync(Outcome.ERROR, None, "source unreachable")
    assert [m["event"] for m in rx.got] == ["repeated_failure"]
    assert rx.got[0]["consecutive_failures"] == 3


def test_offline_messages_wait_in_the_outbox_across_restarts(tmp_path: Path) -> None:
    rx = Receiver()
    rx.online = False
    n, store = make(tmp_path, rx)
    n.after_sync(Outcome.REFUSED, "abc", "unsigned image")
    assert rx.got == [] and outbox_size(store) == 1
    store.close()
    rx.online = True
    n2, store2 = make(tmp_path, rx)  # a new process, the same state dir
    with store2._db:  # make the retry due now
        store2._db.execute("UPDATE outbox SET next_at = 0")
    assert n2.flush() == 1
    assert [m["event"] for m in rx.got] == ["refusal"] and outbox_size(store2) == 0


def test_no_webhook_configured_sends_nothing(tmp_path: Path) -> None:
    rx = Receiver()
    store = StateStore(tmp_path)
    Notifier(NotifyConfig(), store, "dev", rx).after_sync(Outcome.ROLLED_BACK, "a", "x")
    assert rx.got == [] and outbox_size(store) == 0


def test_a_rollback_carries_the_evidence_scrubbed(tmp_path: Path) -> None:
    """The webhook and the MQTT event say why the gate failed, without leaking a secret from a log line."""
    from gitops_edge.core.config import parse_config
    from gitops_edge.model.evidence import Evidence
    from gitops_edge.model.result import SyncResult
    from gitops_edge.report.mqtt_status import QUEUE, record_sync

    ev = Evidence("web", "s-web-1", 3, "", ("connecting to https://user:hunter2@db.lan/", "exit"))
    rx = Receiver()
    n, store = make(tmp_path, rx)
    n.after_sync(Outcome.ROLLED_BACK, "abc", "web exited", [ev])
    [msg] = rx.got
    assert msg["evidence"] == [{"service": "web", "container": "s-web-1", "exit_code": 3, "health_log": "",
                                "logs": ["connecting to https://***@db.lan/", "exit"]}]

    cfg = parse_config({"source": {"url": "/r"}, "mqtt": {"broker": "mqtt://b"}}, file="a.yaml")
    record_sync(cfg, store, SyncResult(Outcome.ROLLED_BACK, "abc", "web exited", evidence=[ev]))
    [(_, payload)] = store.queue_items(QUEUE)
    event = json.loads(payload)
    assert event["event"] == "rollback" and event["evidence"][0]["exit_code"] == 3
    assert "hunter2" not in payload
