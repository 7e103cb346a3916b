"""Push hints, the pure parts: the refs topic, hint payloads, Git-server webhooks, the rate gate.

A hint says "the ref may have moved to this commit". It is never trusted: the
device answers it by running its normal sync (ls-remote, commit signatures,
every policy), so the worst a forged hint can do is cause one extra poll, and
the gate below caps that at one per ``min_gap_s`` however many arrive.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_BAD_TOPIC = re.compile(r"[#+\x00]")
REFS_LEAF = "refs"  # <prefix>/refs/<ref>: a device may not be called this


def short_ref(ref: str) -> str:
    """``refs/heads/main`` and ``main`` name the same topic; so do ``refs/tags/v1`` and ``v1``."""
    for head in ("refs/heads/", "refs/tags/"):
        if ref.startswith(head):
            return ref[len(head) :]
    return ref


def ref_topic(prefix: str, ref: str) -> str:
    """The retained topic carrying the newest commit of ``ref``; ValueError for refs MQTT cannot name."""
    name = short_ref(ref.strip())
    if not name or _BAD_TOPIC.search(name) or name.startswith("/") or name.endswith("/"):
        raise ValueError(f"ref {ref!r} cannot be an MQTT topic (no '+', '#', or leading/trailing '/')")
    return f"{prefix}/{REFS_LEAF}/{name}"


def parse_hint(payload: bytes) -> str | None:
    """The commit a refs-topic message names (a full sha, hex), or None for anything else."""
    text = payload.decode("ascii", "replace").strip().lower()
    return text if _SHA.fullmatch(text) else None


def same_ref(configured: str, pushed: str) -> bool:
    """Does a push to ``pushed`` (``refs/heads/x`` in webhooks) move the device's ``configured`` ref?"""
    return short_ref(configured) == short_ref(pushed)


# -- Git-server webhooks (GitHub, Gitea/Forgejo, GitLab) ------------------------------------


@dataclass(frozen=True)
class PushEvent:
    ref: str
    revision: str | None  # None when the body did not say (e.g. a deleted branch)


def _hmac_hex(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def webhook_authentic(secret: bytes, headers: Mapping[str, str], body: bytes) -> bool:
    """True only when the request carries a valid signature or token for ``secret``.

    ``headers`` are keyed by lower-case names (HTTP header names are case-insensitive).
    GitHub: ``X-Hub-Signature-256: sha256=<hmac hex>``; Gitea/Forgejo: ``X-Gitea-Signature``
    (or ``X-Forgejo-Signature``): ``<hmac hex>``; GitLab: ``X-Gitlab-Token: <secret>``.
    Every comparison is constant-time. An empty secret authenticates nothing.
    """
    if not secret:
        return False
    github = headers.get("x-hub-signature-256")
    if github is not None:
        return hmac.compare_digest(github.strip().encode(), b"sha256=" + _hmac_hex(secret, body).encode())
    gitea = headers.get("x-gitea-signature") or headers.get("x-forgejo-signature")
    if gitea is not None:
        return hmac.compare_digest(gitea.strip().lower().encode(), _hmac_hex(secret, body).encode())
    gitlab = headers.get("x-gitlab-token")
    if gitlab is not None:
        return hmac.compare_digest(gitlab.strip().encode(), secret)
    return False


def push_event(body: bytes) -> PushEvent | None:
    """``ref`` and ``after`` of a push event body (the three servers agree on both); None otherwise."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("ref"), str):
        return None
    after = data.get("after")
    revision = after.lower() if isinstance(after, str) and _SHA.fullmatch(after.lower()) else None
    if revision is not None and set(revision) == {"0"}:
        revision = None  # the branch was deleted: still worth a poll, which reports it
    return PushEvent(ref=data["ref"], revision=revision)


# -- the gate: when may a hint start a poll ---------------------------------------------------


@dataclass
class HintGate:
    """Decides when a hinted poll runs; times are the caller's monotonic clock, in seconds.

    ``offer`` returns the time to run the poll, or None when the hint adds nothing: the
    device already saw that commit, or a hinted poll is already due. Hinted polls are at
    least ``min_gap_s`` apart; a hint inside the gap is not lost, it runs when the gap ends.
    """

    spread_s: float
    min_gap_s: float
    due_at: float | None = None  # the hinted poll not yet started
    last_at: float = float("-inf")  # when the last hinted poll was due

    def offer(self, revision: str | None, seen: frozenset[str], now: float, jitter: float) -> float | None:
        """``jitter`` is a random number in [0, 1) from the caller, spreading the fleet over ``spread_s``."""
        if revision is not None and revision in seen:
            return None
        if self.due_at is not None and self.due_at >= now:
            return None  # one is coming: a flood of hints is one poll
        at = max(now + jitter * self.spread_s, self.last_at + self.min_gap_s)
        self.due_at = self.last_at = at
        return at

    def started(self) -> None:
        """A sync began: the pending hinted poll (if any) is being served."""
        self.due_at = None
