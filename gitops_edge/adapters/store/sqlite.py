"""The device's memory: SQLite in ``state_dir`` (WAL, synchronous FULL).

Holds the applied revision per stack, the history of syncs and (for
crash-safety) the journal. One writer at a time: the agent runs one sync
at a time and the CLI takes the same file lock (``gitops_edge.wiring.sync_lock``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gitops_edge.errors import StateStoreError
from gitops_edge.model.status import AppliedStack, Outcome, SyncRecord
from gitops_edge.model.step import Step, step_or_none

SCHEMA = """
CREATE TABLE IF NOT EXISTS syncs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  started_at REAL NOT NULL,
  finished_at REAL,
  revision TEXT,
  outcome TEXT,
  reason TEXT NOT NULL DEFAULT '',
  actions TEXT NOT NULL DEFAULT '[]',
  step TEXT
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
"""


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
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "state.db"
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self._enable_wal()
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise StateStoreError(f"cannot open state store {self.path}: {exc}") from exc

    def _migrate(self) -> None:
        """Bring a database written by an older agent up to ``SCHEMA`` (added columns are nullable)."""
        def has_step(db: sqlite3.Connection) -> bool:
            return "step" in {str(row[1]) for row in db.execute("PRAGMA table_info(syncs)")}

        if has_step(self._db):  # the usual case: no write lock taken
            return
        with self._tx() as db:  # checked again under the write lock: two openers never add it twice
            if not has_step(db):
                db.execute("ALTER TABLE syncs ADD COLUMN step TEXT")

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
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StateStoreError(f"state store {self.path}: {exc}") from exc

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        try:
            return list(self._db.execute(sql, args).fetchall())
        except sqlite3.Error as exc:
            raise StateStoreError(f"state store {self.path}: {exc}") from exc

    # -- syncs ---------------------------------------------------------------
    def start_sync(self) -> int:
        with self._tx() as db:
            cur = db.execute("INSERT INTO syncs (started_at) VALUES (?)", (time.time(),))
            return int(cur.lastrowid or 0)

    def finish_sync(
        self,
        sync_id: int,
        *,
        revision: str | None,
        outcome: Outcome,
        reason: str,
        actions: list[str],
        step: Step | None = None,
    ) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE syncs SET finished_at=?, revision=?, outcome=?, reason=?, actions=?, step=? WHERE id=?",
                (time.time(), revision, outcome.value, reason, json.dumps(actions),
                 step.value if step is not None else None, sync_id),
            )

    def history(self, limit: int = 50) -> list[SyncRecord]:
        rows = self._query(
            "SELECT id, started_at, finished_at, revision, outcome, reason, actions, step "
            "FROM syncs ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        out = []
        for id_, start, end, rev, outcome, reason, actions, step in rows:
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
                "(SELECT revision FROM good_revisions WHERE stack=? ORDER BY applied_at DESC LIMIT 5)",
                (stack, stack),
            )

    def forget_stack(self, stack: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM applied WHERE stack=?", (stack,))

    def good_revisions(self, stack: str) -> list[tuple[str, str, dict[str, str]]]:
        """(revision, specs_json, images) of the stack's last good revisions, newest first."""
        rows = self._query(
            "SELECT revision, specs_json, images FROM good_revisions WHERE stack=? ORDER BY applied_at DESC",
            (stack,),
        )
        return [(str(r), str(j), json.loads(str(i))) for r, j, i in rows]

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
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO journal (stack, revision, phase, data, updated_at) VALUES (?,?,?,?,?)",
                (stack, revision, phase, json.dumps(data, sort_keys=True), time.time()),
            )

    def journal(self) -> dict[str, tuple[str, str, dict[str, object]]]:
        """stack -> (revision, phase, data) for every switch in progress."""
        rows = self._query("SELECT stack, revision, phase, data FROM journal")
        return {str(s): (str(r), str(p), json.loads(str(d))) for s, r, p, d in rows}

    def journal_clear(self, stack: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM journal WHERE stack=?", (stack,))

    # -- small values ----------------------------------------------------------
    def get(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM kv WHERE key=?", (key,))
        return str(rows[0][0]) if rows else None

    def put(self, key: str, value: str) -> None:
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
