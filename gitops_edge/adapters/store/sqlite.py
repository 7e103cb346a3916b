"""The device's memory: SQLite in ``state_dir`` (WAL).

Holds the applied revision per stack, the history of syncs and (for
crash-safety) the journal. One writer at a time: the agent runs one sync
at a time and the CLI takes the same file lock (``gitops_edge.wiring.sync_lock``).

Flash wear: writes use ``synchronous=NORMAL`` (a power cut may lose the last
commits, never corrupts); the switch journal is written with ``FULL``, whose
fsync of the WAL also makes everything before it durable. Reads never write,
and a value written again unchanged is not written. History keeps changes,
failures and refusals only (the engine records no unchanged sync), a repeat of
the same failure bumps ``repeats`` of its row instead of adding one, and rows
beyond ``history_keep`` or older than ``history_days`` are pruned.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from gitops_edge.errors import StateStoreError
from gitops_edge.model.evidence import Evidence
from gitops_edge.model.status import AppliedStack, Outcome, SyncRecord
from gitops_edge.model.step import Step, step_or_none

if TYPE_CHECKING:  # read back by stack_outcomes only (status): a quick sync need not create these classes
    from gitops_edge.model.condition import StackOutcome

SCHEMA = """
CREATE TABLE IF NOT EXISTS syncs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  started_at REAL NOT NULL,
  finished_at REAL,
  revision TEXT,
  outcome TEXT,
  reason TEXT NOT NULL DEFAULT '',
  actions TEXT NOT NULL DEFAULT '[]',
  step TEXT,
  repeats INTEGER NOT NULL DEFAULT 1,
  last_at REAL,
  evidence TEXT
);
CREATE TABLE IF NOT EXISTS applied (
  stack TEXT PRIMARY KEY,
  revision TEXT NOT NULL,
  applied_at REAL NOT NULL,
  specs_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS good_revisions (
  stack TEXT NOT NULL,
  revision TEXT NOT NULL,
  applied_at REAL NOT NULL,
  specs_json TEXT NOT NULL,
  images TEXT NOT NULL DEFAULT '{}',
  PRIMARY KEY (stack, revision)
);
CREATE TABLE IF NOT EXISTS quarantine (
  stack TEXT NOT NULL,
  revision TEXT NOT NULL,
  reason TEXT NOT NULL,
  at REAL NOT NULL,
  PRIMARY KEY (stack, revision)
);
CREATE TABLE IF NOT EXISTS stopped (
  stack TEXT PRIMARY KEY,
  reason TEXT NOT NULL,
  at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS journal (
  stack TEXT PRIMARY KEY,
  revision TEXT NOT NULL,
  phase TEXT NOT NULL,
  data TEXT NOT NULL,
  updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  payload TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS queue (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS kv (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS images (
  ref TEXT PRIMARY KEY,
  image_id TEXT NOT NULL,
  size INTEGER NOT NULL DEFAULT 0,
  pulled_at REAL NOT NULL
);
"""

HISTORY_KEEP = 1000  # rows
HISTORY_DAYS = 90.0
KEEP_REVISIONS = 5  # good revisions per stack (manual rollback; their images are kept)
_FOLDED = ("error", "refused", "skipped")  # outcomes whose identical repeats share one row


INTERRUPTED = "interrupted: the agent stopped before this sync finished"


def _int(value: object) -> int:
    """A column SQLite typed INTEGER (its rows are untyped to Python's type checker)."""
    if isinstance(value, int | float | str):
        return int(value)
    raise StateStoreError(f"state store: expected a number, found {value!r}")


def _float(value: object) -> float:
    """A column SQLite typed REAL."""
    if isinstance(value, int | float | str):
        return float(value)
    raise StateStoreError(f"state store: expected a number, found {value!r}")


class StateStore:
    """``history_keep`` rows at most, none older than ``history_days``.

    The connection may be used from any thread (the daemon keeps one store open
    across polls, its syncs run on scheduler and control-socket threads); the
    sync lock makes the use one at a time.
    """

    def __init__(self, state_dir: Path, *, history_keep: int = HISTORY_KEEP,
                 history_days: float = HISTORY_DAYS, keep_revisions: int = KEEP_REVISIONS) -> None:
        self.path = state_dir / "state.db"
        self.history_keep = history_keep
        self.history_days = history_days
        self.keep_revisions = keep_revisions
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            self._enable_wal()
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise StateStoreError(f"cannot open state store {self.path}: {exc}") from exc

    def _migrate(self) -> None:
        """Bring a database written by an older agent up to ``SCHEMA`` (added columns are nullable)."""
        added = {"step": "TEXT", "repeats": "INTEGER NOT NULL DEFAULT 1", "last_at": "REAL", "evidence": "TEXT"}

        def missing(db: sqlite3.Connection) -> list[str]:
            have = {str(row[1]) for row in db.execute("PRAGMA table_info(syncs)")}
            return [col for col in added if col not in have]

        if not missing(self._db):  # the usual case: no write lock taken
            return
        with self._tx() as db:  # checked again under the write lock: two openers never add one twice
            for col in missing(db):
                db.execute(f"ALTER TABLE syncs ADD COLUMN {col} {added[col]}")

    def _enable_wal(self) -> None:
        """Switching a new database to WAL needs it to itself; a second opener at the
        same moment (the status publisher beside the first sync) gets "locked" at once,
        without the busy timeout, so wait and retry a little."""
        for attempt in range(50):
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 49:
                    raise
                time.sleep(0.1)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction; ``durable``: fsync at commit (``synchronous=FULL``), for the journal."""
        try:
            if durable:
                self._db.execute("PRAGMA synchronous=FULL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            finally:
                if durable:
                    self._db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            raise StateStoreError(f"state store {self.path}: {exc}") from exc

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        try:
            return list(self._db.execute(sql, args).fetchall())
        except sqlite3.Error as exc:
            raise StateStoreError(f"state store {self.path}: {exc}") from exc

    # -- syncs ---------------------------------------------------------------
    def start_sync(self, started_at: float | None = None) -> int:
        """A new running sync; one still running now was cut short (one sync at a time per device)."""
        with self._tx() as db:
            db.execute(
                "UPDATE syncs SET finished_at=started_at, outcome=?, reason=? WHERE finished_at IS NULL",
                (Outcome.ERROR.value, INTERRUPTED),
            )
            cur = db.execute("INSERT INTO syncs (started_at) VALUES (?)", (started_at or time.time(),))
            return int(cur.lastrowid or 0)

    def close_interrupted(self) -> int:
        """Rows a dead process left running; the caller holds the sync lock, so none is live."""
        if not self._query("SELECT 1 FROM syncs WHERE finished_at IS NULL LIMIT 1"):
            return 0  # the usual case reads and writes nothing (an idle poll stays write-free)
        with self._tx() as db:
            cur = db.execute(
                "UPDATE syncs SET finished_at=started_at, outcome=?, reason=? WHERE finished_at IS NULL",
                (Outcome.ERROR.value, INTERRUPTED),
            )
            return int(cur.rowcount)

    def finish_sync(
        self,
        sync_id: int,
        *,
        revision: str | None,
        outcome: Outcome,
        reason: str,
        actions: list[str],
        step: Step | None = None,
        evidence: list[Evidence] | None = None,
    ) -> None:
        now = time.time()
        row = (
            revision, outcome.value, reason, json.dumps(actions), step.value if step is not None else None,
            json.dumps([e.to_data() for e in evidence]) if evidence else None,
        )
        with self._tx() as db:
            prev = db.execute(
                "SELECT id, revision, outcome, reason, actions, step, evidence FROM syncs WHERE id < ? "
                "ORDER BY id DESC LIMIT 1",
                (sync_id,),
            ).fetchone()
            if outcome.value in _FOLDED and not actions and prev is not None and tuple(prev[1:]) == row:
                # the same failure again: one row says since when, how often, and when last
                db.execute("UPDATE syncs SET last_at=?, repeats = repeats + 1 WHERE id=?", (now, prev[0]))
                db.execute("DELETE FROM syncs WHERE id=?", (sync_id,))
            else:
                db.execute(
                    "UPDATE syncs SET finished_at=?, revision=?, outcome=?, reason=?, actions=?, step=?, evidence=? "
                    "WHERE id=?",
                    (now, *row, sync_id),
                )
            self._prune(db, now)

    def _prune(self, db: sqlite3.Connection, now: float) -> None:
        """History retention: the newest ``history_keep`` rows of the last ``history_days``."""
        db.execute("DELETE FROM syncs WHERE started_at < ?", (now - self.history_days * 86400,))
        db.execute(
            "DELETE FROM syncs WHERE id <= (SELECT id FROM syncs ORDER BY id DESC LIMIT 1 OFFSET ?)",
            (max(self.history_keep, 1),),
        )

    def history(self, limit: int = 50) -> list[SyncRecord]:
        rows = self._query(
            "SELECT id, started_at, finished_at, revision, outcome, reason, actions, step, repeats, last_at, evidence "
            "FROM syncs ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        out = []
        for id_, start, end, rev, outcome, reason, actions, step, repeats, last, evidence in rows:
            found = (Evidence.from_data(e) for e in json.loads(str(evidence))) if evidence else ()
            out.append(
                SyncRecord(
                    id=_int(id_),
                    started_at=_float(start),
                    finished_at=_float(end) if end is not None else None,
                    revision=str(rev) if rev else None,
                    outcome=Outcome(str(outcome)) if outcome else None,
                    reason=str(reason),
                    actions=tuple(json.loads(str(actions))),
                    duration_s=(_float(end) - _float(start)) if end is not None else None,
                    step=step_or_none(step),
                    repeats=_int(repeats) if repeats is not None else 1,
                    last_at=_float(last) if last is not None else None,
                    evidence=tuple(e for e in found if e is not None),
                )
            )
        return out

    def last_sync(self) -> SyncRecord | None:
        h = self.history(1)
        return h[0] if h else None

    # -- applied stacks -------------------------------------------------------
    def applied(self) -> dict[str, AppliedStack]:
        rows = self._query("SELECT stack, revision, applied_at, specs_json FROM applied")
        return {
            str(s): AppliedStack(str(s), str(r), _float(a), str(j))
            for s, r, a, j in rows
        }

    def record_applied(self, stack: str, revision: str, specs_json: str, images: dict[str, str]) -> None:
        now = time.time()
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO applied (stack, revision, applied_at, specs_json) VALUES (?,?,?,?)",
                (stack, revision, now, specs_json),
            )
            db.execute(
                "INSERT OR REPLACE INTO good_revisions (stack, revision, applied_at, specs_json, images) "
                "VALUES (?,?,?,?,?)",
                (stack, revision, now, specs_json, json.dumps(images, sort_keys=True)),
            )
            # keep the last few good revisions per stack (their images stay for `rollback`)
            db.execute(
                "DELETE FROM good_revisions WHERE stack=? AND revision NOT IN "
                "(SELECT revision FROM good_revisions WHERE stack=? ORDER BY applied_at DESC LIMIT ?)",
                (stack, stack, self.keep_revisions),
            )

    def forget_stack(self, stack: str) -> None:
        """A stack that left Git: no row of it remains (its good revisions stay for nothing to use)."""
        with self._tx() as db:
            db.execute("DELETE FROM applied WHERE stack=?", (stack,))
            db.execute("DELETE FROM quarantine WHERE stack=?", (stack,))
            db.execute("DELETE FROM stopped WHERE stack=?", (stack,))
            db.execute("DELETE FROM kv WHERE key=?", (f"outcome:{stack}",))

    # -- the last outcome per stack (core.conditions reads it) -------------------------
    def record_stack_outcome(self, outcome: StackOutcome) -> None:
        self.put(f"outcome:{outcome.stack}", json.dumps(outcome.to_data(), sort_keys=True))

    def stack_outcomes(self) -> dict[str, StackOutcome]:
        rows = self._query("SELECT value FROM kv WHERE key LIKE 'outcome:%'")
        from gitops_edge.model.condition import StackOutcome

        found = (StackOutcome.from_data(json.loads(str(v))) for (v,) in rows)
        return {o.stack: o for o in found if o is not None}

    def good_revisions(self, stack: str) -> list[tuple[str, str, dict[str, str]]]:
        """(revision, specs_json, images) of the stack's last good revisions, newest first."""
        rows = self._query(
            "SELECT revision, specs_json, images FROM good_revisions WHERE stack=? ORDER BY applied_at DESC",
            (stack,),
        )
        return [(str(r), str(j), json.loads(str(i))) for r, j, i in rows]

    def good_stacks(self) -> list[str]:
        return [str(r[0]) for r in self._query("SELECT DISTINCT stack FROM good_revisions ORDER BY stack")]

    # -- images the agent pulled ------------------------------------------------
    def image_pulled(self, ref: str, image_id: str, size: int) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO images (ref, image_id, size, pulled_at) VALUES (?,?,?,?)",
                (ref, image_id, size, time.time()),
            )

    def pulled_images(self) -> dict[str, tuple[str, int, float]]:
        rows = self._query("SELECT ref, image_id, size, pulled_at FROM images ORDER BY pulled_at, ref")
        return {str(r): (str(i), _int(z), _float(t)) for r, i, z, t in rows}

    def forget_image(self, ref: str, freed: int = 0) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM images WHERE ref=?", (ref,))
            if freed:
                db.execute(
                    "INSERT INTO kv (key, value) VALUES ('images:freed_bytes', ?) ON CONFLICT(key) "
                    "DO UPDATE SET value = CAST(CAST(value AS INTEGER) + ? AS TEXT)",
                    (str(freed), freed),
                )

    def image_usage(self) -> tuple[int, int, int]:
        """(images the agent pulled and still has, their bytes, bytes freed so far)."""
        rows = self._query("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM images")
        return _int(rows[0][0]), _int(rows[0][1]), int(self.get("images:freed_bytes") or 0)

    # -- quarantine / stopped automation -------------------------------------
    def quarantine(self, stack: str, revision: str, reason: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO quarantine (stack, revision, reason, at) VALUES (?,?,?,?)",
                (stack, revision, reason, time.time()),
            )

    def quarantined(self) -> dict[str, tuple[str, str]]:
        """stack -> (revision, reason)."""
        rows = self._query("SELECT stack, revision, reason FROM quarantine ORDER BY at")
        return {str(s): (str(r), str(why)) for s, r, why in rows}

    def clear_quarantine(self, stack: str) -> bool:
        with self._tx() as db:
            cur = db.execute("DELETE FROM quarantine WHERE stack=?", (stack,))
            return cur.rowcount > 0

    def stop_automation(self, stack: str, reason: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO stopped (stack, reason, at) VALUES (?,?,?)",
                (stack, reason, time.time()),
            )

    def stopped(self) -> dict[str, str]:
        return {str(s): str(r) for s, r in self._query("SELECT stack, reason FROM stopped")}

    def resume_automation(self, stack: str) -> bool:
        with self._tx() as db:
            return db.execute("DELETE FROM stopped WHERE stack=?", (stack,)).rowcount > 0

    # -- journal ---------------------------------------------------------------
    def journal_write(self, stack: str, revision: str, phase: str, data: dict[str, object]) -> None:
        with self._tx(durable=True) as db:
            db.execute(
                "INSERT OR REPLACE INTO journal (stack, revision, phase, data, updated_at) VALUES (?,?,?,?,?)",
                (stack, revision, phase, json.dumps(data, sort_keys=True), time.time()),
            )

    def journal(self) -> dict[str, tuple[str, str, dict[str, object]]]:
        """stack -> (revision, phase, data) for every switch in progress."""
        rows = self._query("SELECT stack, revision, phase, data FROM journal")
        return {str(s): (str(r), str(p), json.loads(str(d))) for s, r, p, d in rows}

    def journal_clear(self, stack: str) -> None:
        with self._tx(durable=True) as db:
            db.execute("DELETE FROM journal WHERE stack=?", (stack,))

    # -- small values ----------------------------------------------------------
    def get(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM kv WHERE key=?", (key,))
        return str(rows[0][0]) if rows else None

    def put(self, key: str, value: str) -> None:
        if self.get(key) == value:
            return  # polls that change nothing write nothing
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?,?)", (key, value))

    # -- operator controls: device lock, suspended stacks ------------------------------
    def set_lock(self, who: str, reason: str) -> None:
        self.put("lock", json.dumps({"who": who, "reason": reason, "at": time.time()}))

    def clear_lock(self) -> bool:
        with self._tx() as db:
            return db.execute("DELETE FROM kv WHERE key='lock'").rowcount > 0

    def lock(self) -> dict[str, object] | None:
        raw = self.get("lock")
        return dict(json.loads(raw)) if raw else None

    def suspend(self, stack: str, reason: str) -> None:
        self.put(f"suspended:{stack}", reason)

    def resume(self, stack: str) -> bool:
        with self._tx() as db:
            return db.execute("DELETE FROM kv WHERE key=?", (f"suspended:{stack}",)).rowcount > 0

    def suspended(self) -> dict[str, str]:
        rows = self._query("SELECT key, value FROM kv WHERE key LIKE 'suspended:%'")
        return {str(k).split(":", 1)[1]: str(v) for k, v in rows}

    # -- notification outbox (survives being offline and restarts) -------------------------
    def outbox_add(self, payload: str) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO outbox (payload, next_at) VALUES (?, ?)", (payload, time.time()))

    def outbox_due(self, now: float) -> list[tuple[int, str, int]]:
        rows = self._query("SELECT id, payload, attempts FROM outbox WHERE next_at <= ? ORDER BY id", (now,))
        return [(_int(i), str(p), _int(a)) for i, p, a in rows]

    def outbox_done(self, item_id: int) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM outbox WHERE id=?", (item_id,))

    def outbox_retry(self, item_id: int, next_at: float) -> None:
        with self._tx() as db:
            db.execute("UPDATE outbox SET attempts = attempts + 1, next_at = ? WHERE id=?", (next_at, item_id))

    # -- named FIFO queues (e.g. MQTT events waiting for the broker) ----------------------
    def queue_add(self, name: str, payload: str) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO queue (name, payload) VALUES (?, ?)", (name, payload))

    def queue_items(self, name: str, limit: int = 100) -> list[tuple[int, str]]:
        rows = self._query("SELECT id, payload FROM queue WHERE name=? ORDER BY id LIMIT ?", (name, limit))
        return [(_int(i), str(p)) for i, p in rows]

    def queue_remove(self, item_id: int) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM queue WHERE id=?", (item_id,))
