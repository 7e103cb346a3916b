"""Webhook notifications: rollback, refusal, repeated failure.

Deduplicated: one message per distinct problem until it changes (a new
reason, a new commit) or goes away. Messages wait in the state store's
outbox and are retried with backoff, so a device that is offline for a day
still reports what happened once it is back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from gitops_edge.adapters.store.sqlite import StateStore
from gitops_edge.logs import scrub
from gitops_edge.model.config import NotifyConfig
from gitops_edge.model.evidence import Evidence
from gitops_edge.model.status import Outcome

log = logging.getLogger("gitops_edge.report.webhook")

KINDS = ("rollback", "refusal", "repeated_failure")
MAX_BACKOFF_S = 3600.0

Post = Callable[[str, bytes, float], None]


def http_post(url: str, body: bytes, timeout_s: float) -> None:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:
        if resp.status >= 300:
            raise OSError(f"HTTP {resp.status}")


def scrub_evidence(e: Evidence) -> dict[str, Any]:
    """The evidence of a failed gate as sent off the device: log lines may hold credentials."""
    data = e.to_data()
    data["health_log"] = scrub(e.health_log)
    data["logs"] = [scrub(line) for line in e.logs]
    if e.hook:
        data["hook"] = scrub(e.hook)
    return data


class Notifier:
    def __init__(self, config: NotifyConfig, store: StateStore, device_id: str, post: Post = http_post) -> None:
        self.config, self.store, self.device_id, self.post = config, store, device_id, post

    def after_sync(self, outcome: Outcome, revision: str | None, reason: str,
                   evidence: Sequence[Evidence] = ()) -> None:
        """Queue what is news; a rollback carries the evidence of the failed gate (exit code, logs)."""
        if not self.config.webhook:
            return
        failures = int(self.store.get("notify:failures") or 0)
        failures = failures + 1 if outcome is Outcome.ERROR else 0
        self.store.put("notify:failures", str(failures))
        events: list[str] = []
        if outcome is Outcome.ROLLED_BACK:
            events.append("rollback")
        elif outcome is Outcome.REFUSED:
            events.append("refusal")
        elif outcome is Outcome.ERROR and failures >= self.config.repeat_after:
            events.append("repeated_failure")
        elif outcome in (Outcome.APPLIED, Outcome.UNCHANGED):
            for kind in KINDS:  # the problem went away: the next one is news again
                self.store.put(f"notify:last:{kind}", "")
        for kind in events:
            # "repeated failure" is one problem however many times it repeats, per reason
            fingerprint = hashlib.sha256(f"{kind}\0{revision if kind != 'repeated_failure' else ''}\0{reason}"
                                         .encode()).hexdigest()
            if self.store.get(f"notify:last:{kind}") == fingerprint:
                continue
            self.store.put(f"notify:last:{kind}", fingerprint)
            payload = {
                "event": kind,
                "device": self.device_id,
                "revision": revision,
                "reason": scrub(reason),
                "at": time.time(),
                **({"consecutive_failures": failures} if kind == "repeated_failure" else {}),
                **({"evidence": [scrub_evidence(e) for e in evidence]} if kind == "rollback" and evidence else {}),
            }
            self.store.outbox_add(json.dumps(payload))
        self.flush()

    def flush(self) -> int:
        """Send what is due; returns how many were delivered."""
        if not self.config.webhook:
            return 0
        sent = 0
        now = time.time()
        for item_id, payload, attempts in self.store.outbox_due(now):
            try:
                self.post(self.config.webhook, payload.encode(), self.config.timeout_s)
            except (OSError, urllib.error.URLError) as exc:
                delay = min(MAX_BACKOFF_S, 5.0 * 2**attempts)
                log.info("webhook not delivered (%s); retry in %.0fs", scrub(str(exc)), delay)
                self.store.outbox_retry(item_id, now + delay)
                break  # keep order: later messages wait behind this one
            self.store.outbox_done(item_id)
            sent += 1
        return sent
