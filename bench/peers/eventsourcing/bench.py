"""The peers benchmark's workload on the Python `eventsourcing` library (9.x) with its SQLite recorder.

Run by `cargo xtask bench peers` in a virtual environment it creates (`pip install 'eventsourcing>=9.5,<10'`);
by hand: `python bench.py MODE DB [N]`. Each mode prints `ROW name events seconds peak_rss_kib` lines.

Durability: the library opens SQLite in WAL mode and leaves `synchronous` at SQLite's build default
(printed as `DEFAULT synchronous=N`). Every connection is forced to `synchronous=FULL` (2) here, as
Ducha's store runs, and the setting is read back (`FORCED synchronous=N`).

Modes (the same workload as `backend/examples/bench_peers.rs` and `bench/peers/cqrs`):
- single DB N       one writer, N appends of one event each (one durable transaction per event),
                    round-robin over 100 aggregates created first (not timed)
- concurrent DB N   8 writer threads, N appends in all, each thread on its own 100 aggregates
- generate DB N     N events over 1,000 aggregates, 1,000 events per transaction (not timed)
- replay DB         every event in log order (notifications, pages of 5,000), each turned back
                    into its domain event and folded into a count: events/s and peak RSS
- aggregate DB N    one aggregate of N events written (not timed), then rebuilt from its events,
                    full and as of version N/2, best of 3 each
"""

import resource
import sqlite3
import sys
import threading
import time

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing import sqlite as es_sqlite

TEXT = "整改通知：楼道堆放杂物，限期清理并拍照上传。" * 2  # about 120 bytes of UTF-8, as Ducha's payloads

_create = es_sqlite.SQLiteConnectionPool._create_connection
REPORTED = {}


def _full(self):
    conn = _create(self)
    raw = conn._sqlite_conn if hasattr(conn, "_sqlite_conn") else conn.sqlite_conn
    if "default" not in REPORTED:
        REPORTED["default"] = raw.execute("PRAGMA synchronous").fetchone()[0]
    raw.execute("PRAGMA synchronous=FULL")
    REPORTED["forced"] = raw.execute("PRAGMA synchronous").fetchone()[0]
    return conn


es_sqlite.SQLiteConnectionPool._create_connection = _full


class Ledger(Aggregate):
    @event("Opened")
    def __init__(self, name: str):
        self.name = name
        self.count = 0
        self.chars = 0

    @event("Noted")
    def note(self, seq: int, text: str):
        self.count += 1
        self.chars += len(text)


def app(db):
    return Application(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": db,
                            "SQLITE_LOCK_TIMEOUT": "30"})


def rss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def row(name, events, secs):
    print(f"ROW {name} {events} {secs:.6f} {rss_kib()}", flush=True)


def single(db, n):
    a = app(db)
    ledgers = [Ledger(name=f"l{i}") for i in range(100)]
    a.save(*ledgers)
    started = time.perf_counter()
    for i in range(n):
        led = ledgers[i % 100]
        led.note(seq=i, text=TEXT)
        a.save(led)
    row("single", n, time.perf_counter() - started)


def concurrent(db, n, writers=8):
    a = app(db)
    groups = [[Ledger(name=f"w{w}-{i}") for i in range(100)] for w in range(writers)]
    for g in groups:
        a.save(*g)
    per = n // writers

    def work(g):
        for i in range(per):
            led = g[i % 100]
            led.note(seq=i, text=TEXT)
            a.save(led)

    threads = [threading.Thread(target=work, args=(g,)) for g in groups]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    row("concurrent", per * writers, time.perf_counter() - started)


def generate(db, n):
    a = app(db)
    per = 1000
    made = 0
    while made < n:
        led = Ledger(name=f"g{made}")
        made += 1
        for i in range(min(per - 1, n - made)):
            led.note(seq=i, text=TEXT)
            made += 1
        a.save(led)
    row("generate", made, 0.0)


def replay(db):
    a = app(db)
    started = time.perf_counter()
    count = 0
    chars = 0
    start = 1
    while True:
        page = a.recorder.select_notifications(start=start, limit=5000)
        if not page:
            break
        for n in page:
            e = a.mapper.to_domain_event(n)
            count += 1
            chars += len(getattr(e, "text", ""))
        start = page[-1].id + 1
    row("replay", count, time.perf_counter() - started)


def aggregate(db, n):
    a = app(db)
    led = Ledger(name="big")
    for i in range(n - 1):
        led.note(seq=i, text=TEXT)
    a.save(led)
    best_full, best_half = None, None
    for _ in range(3):
        started = time.perf_counter()
        full = a.repository.get(led.id)
        secs = time.perf_counter() - started
        assert full.count == n - 1
        best_full = secs if best_full is None else min(best_full, secs)
        started = time.perf_counter()
        half = a.repository.get(led.id, version=n // 2)
        secs = time.perf_counter() - started
        assert half.count == n // 2 - 1
        best_half = secs if best_half is None else min(best_half, secs)
    row("aggregate-full", n, best_full)
    row("aggregate-half", n // 2, best_half)


def main():
    mode, db = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    {"single": lambda: single(db, n), "concurrent": lambda: concurrent(db, n), "generate": lambda: generate(db, n),
     "replay": lambda: replay(db), "aggregate": lambda: aggregate(db, n)}[mode]()
    print(f"DEFAULT synchronous={REPORTED.get('default')}", flush=True)
    print(f"FORCED synchronous={REPORTED.get('forced')}", flush=True)


if __name__ == "__main__":
    main()
