"""The SQLite state store: mapping UUIDs (hence consumer groups), configs and last known status.

One file (default ``.triggerfish/state.db`` next to the config). A mapping declared in the config
file keeps its UUID across restarts because it is looked up by its identity (event source,
function, topic); mappings created through the control API are stored with ``origin='api'`` and
are started again on the next run. ``triggerfish status`` reads the status rows the engine writes, and
the ``processes`` rows each running engine keeps fresh (``esm/presence.py``). Rows are never deleted
because one process's config lacks a mapping: the UUID is the mapping's consumer group.
WAL mode lets the status command read while the engine writes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid as uuidlib
from pathlib import Path
from typing import Any

from triggerfish.errors import ConfigError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS mappings (
    uuid TEXT PRIMARY KEY,
    identity TEXT NOT NULL,
    origin TEXT NOT NULL,
    config TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS mappings_identity ON mappings(identity);
CREATE TABLE IF NOT EXISTS status (
    uuid TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS processes (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started REAL NOT NULL,
    heartbeat REAL NOT NULL,
    info TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


def _open(path: str) -> sqlite3.Connection:
    """The state file, opened and its schema in place; one that cannot be is a ConfigError naming StateFile."""
    if path != ":memory:":
        _check_real_disk(Path(path))
        parent = Path(path).parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError("StateFile", f"{path}: cannot create the directory {parent} ({exc.strerror}); "
                                           f"{_FIX}") from None
    db = None
    try:
        db = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
    except (OSError, sqlite3.Error) as exc:
        if db is not None:
            db.close()
        raise _unusable(path, exc) from None
    return db


_FIX = "point StateFile (or --state) at a writable file on a local disk, e.g. .triggerfish/state.db"


def _check_real_disk(path: Path) -> None:
    resolved = path.expanduser().resolve()
    for virtual in ("/proc", "/sys", "/dev"):
        if resolved.is_relative_to(virtual):
            raise ConfigError("StateFile", f"{path} is under {virtual}, a virtual file system that cannot hold a "
                                           f"database; {_FIX}")


def _unusable(path: str, exc: OSError | sqlite3.Error) -> ConfigError:
    detail = str(exc)
    if isinstance(exc, sqlite3.DatabaseError) and "not a database" in detail:
        return ConfigError("StateFile", f"{path} is not a triggerfish state file (SQLite: {detail}); move that file "
                                        f"away, or {_FIX}")
    return ConfigError("StateFile", f"{path} cannot be opened for writing (SQLite: {detail}); {_FIX}")


class Store:
    """Thread-safe access to the state file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = _open(str(path))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- mappings ------------------------------------------------------------------------------
    def uuid_for(self, identity: str, origin: str = "config") -> str:
        """The UUID of the mapping with this identity and origin, minted (and stored) on first use.

        Atomic across processes sharing the file: two instances started together get one UUID,
        hence one consumer group.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT uuid FROM mappings WHERE identity=? AND origin=? ORDER BY created LIMIT 1", (identity, origin)
                ).fetchone()
                if row:
                    uuid = str(row[0])
                else:
                    uuid = str(uuidlib.uuid4())
                    now = time.time()
                    self._db.execute(
                        "INSERT INTO mappings(uuid, identity, origin, config, created, updated) VALUES (?,?,?,?,?,?)",
                        (uuid, identity, origin, "{}", now, now),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return uuid

    def save_mapping(self, uuid: str, identity: str, origin: str, config: dict[str, Any]) -> None:
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO mappings(uuid, identity, origin, config, created, updated) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT(uuid) DO UPDATE SET identity=excluded.identity, origin=excluded.origin, "
                "config=excluded.config, updated=excluded.updated",
                (uuid, identity, origin, json.dumps(config), now, now),
            )

    def delete_mapping(self, uuid: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM mappings WHERE uuid=?", (uuid,))
            self._db.execute("DELETE FROM status WHERE uuid=?", (uuid,))

    def mappings(self, origin: str | None = None) -> list[dict[str, Any]]:
        """Rows as dicts: uuid, identity, origin, config (Lambda-named dict), created, updated."""
        query = "SELECT uuid, identity, origin, config, created, updated FROM mappings"
        args: tuple[Any, ...] = ()
        if origin is not None:
            query += " WHERE origin=?"
            args = (origin,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY created", args).fetchall()
        return [
            {"uuid": r[0], "identity": r[1], "origin": r[2], "config": json.loads(r[3]), "created": r[4], "updated": r[5]}
            for r in rows
        ]

    # -- status --------------------------------------------------------------------------------
    def save_status(self, uuid: str, status: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO status(uuid, status, updated) VALUES (?,?,?) "
                "ON CONFLICT(uuid) DO UPDATE SET status=excluded.status, updated=excluded.updated",
                (uuid, json.dumps(status), time.time()),
            )

    def status(self, uuid: str) -> tuple[dict[str, Any], float] | None:
        with self._lock:
            row = self._db.execute("SELECT status, updated FROM status WHERE uuid=?", (uuid,)).fetchone()
        return (json.loads(row[0]), row[1]) if row else None

    # -- processes using the file (esm/presence.py keeps its own row fresh) -----------------------
    def put_process(self, pid: str, host: str, os_pid: int, started: float, info: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO processes(id, host, pid, started, heartbeat, info) VALUES (?,?,?,?,?,?)",
                (pid, host, os_pid, started, time.time(), json.dumps(info)),
            )

    def beat(self, pid: str, info: dict[str, Any]) -> bool:
        """Refresh a process's heartbeat and info; False if its row is gone."""
        with self._lock:
            cur = self._db.execute("UPDATE processes SET heartbeat=?, info=? WHERE id=?",
                                   (time.time(), json.dumps(info), pid))
        return cur.rowcount > 0

    def remove_process(self, pid: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM processes WHERE id=?", (pid,))

    def processes(self) -> list[dict[str, Any]]:
        """Rows as dicts: id, host, pid, started, heartbeat, and the info the process recorded."""
        with self._lock:
            rows = self._db.execute("SELECT id, host, pid, started, heartbeat, info FROM processes ORDER BY started").fetchall()
        return [{"id": r[0], "host": r[1], "pid": r[2], "started": r[3], "heartbeat": r[4], **json.loads(r[5])}
                for r in rows]

    # -- small values (e.g. the running engine's pid) -------------------------------------------
    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO kv(key, value) VALUES (?,?)", (key, json.dumps(value)))

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default
