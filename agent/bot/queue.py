"""One URL picks where the bot keeps its queue and its job records, with the same code above it.

- `sqlite:///path/queue.db` (the default, `sqlite://bot/queue.db` relative to the working
  folder): huey's SqliteHuey on one file, and the job records in a table of the same file. Zero
  setup; `serve` and `worker` on one machine.
- `redis://host:6379/0`: huey's RedisHuey, and the job records as keys of the same server. Many
  worker machines.

Why huey: a small, maintained task queue whose SQLite and Redis storages share one API, with a
consumer (worker threads, graceful shutdown, delayed re-scheduling) we would otherwise write.
What it lacks is a lease: a task it handed to a worker that dies is gone. So the job records
live beside it in a store with real transactions (`KV.transact`: SQLite's BEGIN IMMEDIATE,
Redis' WATCH/MULTI), where jobs.py keeps leases, idempotency and the per-repository limit, and
the queue only carries job ids.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from agent.errors import IntegrateError

T = TypeVar("T")
DEFAULT_QUEUE_URL = "sqlite://bot/queue.db"
Updates = dict[str, "str | tuple[str, float] | None"]  # key -> new value, (value, seconds to live), None deletes
PREFIX = "integrate:bot:"


class KV:
    """A small key-value store with multi-key transactions and expiring keys."""

    def get(self, key: str) -> str | None:
        raise NotImplementedError

    def transact(self, keys: list[str], fn: Callable[[dict[str, str | None]], tuple[Updates, T]]) -> T:
        """Read `keys`, let fn decide the writes, apply them atomically (re-run on a conflict)."""
        raise NotImplementedError

    def add(self, key: str, value: str, ttl_s: float) -> bool:
        """Set key only if it is absent (or expired): True when this call set it."""
        raise NotImplementedError

    def scan(self, prefix: str) -> dict[str, str]:
        raise NotImplementedError

    def count(self, prefix: str) -> int:
        return len(self.scan(prefix))


class SqliteKV(KV):
    """Rows of one table. Each thread keeps its own connection (threads and processes share the
    file; WAL lets readers run beside the one writer). Writers of this process take turns on a
    lock first, so they queue here in microseconds instead of in SQLite's busy handler, which
    sleeps up to 100 ms a try; other processes (workers, huey) still meet the busy timeout."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._write = threading.Lock()
        self._connect().execute(
            "create table if not exists integrate_bot_kv (key text primary key, value text not null, expires real)")

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=True)
            db.execute("pragma journal_mode=wal")
            db.execute("pragma synchronous=normal")  # WAL + normal: durable at checkpoints, no fsync per commit
            self._local.db = db
        return db

    def get(self, key: str) -> str | None:
        row = self._connect().execute("select value, expires from integrate_bot_kv where key = ?", (key,)).fetchone()
        return row[0] if row and (row[1] is None or row[1] > time.time()) else None

    def transact(self, keys, fn):
        db = self._connect()
        with self._write:
            return self._transact(db, keys, fn)

    def _transact(self, db, keys, fn):
        try:
            db.execute("begin immediate")
            now = time.time()
            current = {}
            for key in keys:
                row = db.execute("select value, expires from integrate_bot_kv where key = ?", (key,)).fetchone()
                current[key] = row[0] if row and (row[1] is None or row[1] > now) else None
            updates, result = fn(current)
            for key, value in updates.items():
                if value is None:
                    db.execute("delete from integrate_bot_kv where key = ?", (key,))
                else:
                    value, expires = (value[0], now + value[1]) if isinstance(value, tuple) else (value, None)
                    db.execute("insert or replace into integrate_bot_kv (key, value, expires) values (?, ?, ?)", (key, value, expires))
            db.execute("commit")
            return result
        except BaseException:
            if db.in_transaction:
                db.execute("rollback")
            raise

    def add(self, key: str, value: str, ttl_s: float) -> bool:
        def fn(current):
            return ({}, False) if current[key] is not None else ({key: (value, ttl_s)}, True)

        return self.transact([key], fn)

    def scan(self, prefix: str) -> dict[str, str]:
        rows = self._connect().execute(
            "select key, value from integrate_bot_kv where substr(key, 1, ?) = ? and (expires is null or expires > ?)",
            (len(prefix), prefix, time.time())).fetchall()
        return dict(rows)


class RedisKV(KV):
    """Plain string keys under one prefix; transactions with WATCH/MULTI/EXEC."""

    def __init__(self, url: str) -> None:
        import redis

        self.r = redis.Redis.from_url(url, decode_responses=True)

    def get(self, key: str) -> str | None:
        return self.r.get(PREFIX + key)

    def transact(self, keys, fn):
        import redis

        full = [PREFIX + k for k in keys]
        with self.r.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(*full)
                    values = pipe.mget(full) if full else []
                    updates, result = fn(dict(zip(keys, values, strict=True)))
                    pipe.multi()
                    for key, value in updates.items():
                        if value is None:
                            pipe.delete(PREFIX + key)
                        elif isinstance(value, tuple):
                            pipe.set(PREFIX + key, value[0], px=int(value[1] * 1000))
                        else:
                            pipe.set(PREFIX + key, value)
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue

    def add(self, key: str, value: str, ttl_s: float) -> bool:
        return bool(self.r.set(PREFIX + key, value, nx=True, px=int(ttl_s * 1000)))

    def scan(self, prefix: str) -> dict[str, str]:
        keys = list(self.r.scan_iter(match=PREFIX + prefix.replace("*", r"\*") + "*", count=500))
        values = self.r.mget(keys) if keys else []
        return {k[len(PREFIX):]: v for k, v in zip(keys, values, strict=True) if v is not None}


def sqlite_path(url: str) -> Path:
    rest = url[len("sqlite://"):]
    if not rest or rest == "/":
        raise IntegrateError(f"queue URL {url!r} names no file (sqlite:///abs/path.db or sqlite://relative.db)")
    return Path(rest)


def check_url(url: str) -> str:
    scheme = urlsplit(url).scheme
    if scheme not in ("sqlite", "redis", "rediss"):
        raise IntegrateError(f"queue URL must start with sqlite:// or redis://, not {url!r}")
    if scheme == "sqlite":
        sqlite_path(url)
    return url


def open_backend(url: str, name: str = "integrate-bot") -> tuple[Any, KV]:
    """(huey instance, job-record store) for a queue URL."""
    from huey import RedisHuey, SqliteHuey

    check_url(url)
    if url.startswith("sqlite://"):
        path = sqlite_path(url)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            kv = SqliteKV(path)
        except (OSError, sqlite3.Error) as exc:
            raise IntegrateError(f"queue: cannot open {path}: {exc}") from None
        # huey's own connection per thread; results are not kept (the job records are the results)
        return SqliteHuey(name, filename=str(path), results=False, utc=True), kv
    import redis

    kv = RedisKV(url)
    try:
        kv.r.ping()
    except redis.RedisError as exc:
        raise IntegrateError(f"queue: cannot reach {display_url(url)}: {exc}") from None
    return RedisHuey(name, url=url, results=False, utc=True), kv


def display_url(url: str) -> str:
    """A queue URL without its password."""
    parts = urlsplit(url)
    host = f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname or ""
    return parts._replace(netloc=host).geturl()


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
