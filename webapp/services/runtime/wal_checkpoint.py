"""SQLite WAL checkpoints off the request path, for the processes that write runtime messages.

SQLite's default checkpoints run inside the `COMMIT` that takes the write-ahead log past 1,000 pages: that
request copies the log into the database file and waits for two `fsync`s (a few milliseconds here), while it
holds the write lock, so every other writer waits too. The runtime's store turns the automatic checkpoint off
on the connections it writes with and wakes this process's checkpointer thread after its commits instead; the
thread runs a PASSIVE checkpoint (it never waits for readers or writers, and they never wait for it) at most
every `INTERVAL_S`, on a connection of its own, with the GIL released while SQLite copies and syncs.

Nothing depends on it for correctness: a checkpoint only moves committed pages from the log to the database
file. If this thread is not running (a CLI process, a crash), the other connections' automatic checkpoints and
SQLite's checkpoint when the last connection closes still bound the log.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time

INTERVAL_S = 0.1
# Also checkpoint this often without a wake: other code's commits on the same pooled connections (the ORM's:
# the web app), which run with the automatic checkpoint off too, wake nothing.
IDLE_S = 1.0
log = logging.getLogger(__name__)


class Checkpointer(threading.Thread):
    """One daemon thread per (process, database): waits for a commit (at most IDLE_S), checkpoints, rests
    INTERVAL_S."""

    def __init__(self, database: str, interval_s: float = INTERVAL_S):
        super().__init__(name=f"wal-checkpoint:{os.path.basename(database)}", daemon=True)
        self.database, self.interval_s = database, interval_s
        self.pid = os.getpid()
        self.wake = threading.Event()
        self.checkpoints = 0  # completed checkpoint calls (tests read it)

    def run(self) -> None:
        connection = sqlite3.connect(self.database, timeout=0, isolation_level=None, check_same_thread=False)
        try:
            while True:
                self.wake.wait(IDLE_S)
                self.wake.clear()
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error as error:  # busy (another process checkpoints), I/O: try again next time
                    log.warning("WAL checkpoint of %s failed: %s", self.database, error)
                time.sleep(self.interval_s)
        finally:
            connection.close()


_checkpointers: dict[str, Checkpointer] = {}
_guard = threading.Lock()


def checkpointer(database: str) -> Checkpointer:
    """This process's running checkpointer for `database` (started on first use, again after a fork)."""
    current = _checkpointers.get(database)
    if current is None or current.pid != os.getpid():
        with _guard:
            current = _checkpointers.get(database)
            if current is None or current.pid != os.getpid():
                current = Checkpointer(database)
                current.start()
                _checkpointers[database] = current
    return current
