"""An import's batches applied on several database connections at once, committed in file order.

One PostgreSQL backend's per-row work (index entries, foreign-key checks) caps a
single-connection import near 20,000 rows/s whatever Python does; a second connection puts
the machine's other core to work. The outcome must stay the one a single connection gives,
line for line, and a killed runner must still resume after the last committed batch. So:

- Batches commit strictly in file order (each waits for the one before), so the job's resume
  point (`last_line`) only ever moves over batches that are all committed, the counters,
  the report and the error file grow in file order, and a batch after a failed one never
  commits.
- A batch whose keys (external refs, identifiers, external ids) meet an earlier batch still
  in flight waits for that batch to commit before it reads anything, so it sees what an
  earlier line of the file did, as it would on one connection.
- Existing customers reached by different keys (one row by external_ref, another by an
  account) are caught after the batch has resolved its targets: the later batch waits for
  the earlier one's commit and resolves again (a "redo"), before it has written anything.

Every wait is on an earlier batch, never a later one, so the waits cannot form a cycle; the
rows two batches in flight write never overlap, so neither waits on the other's row locks
(the lanes' `lock_timeout` turns a wait this reasoning missed into an error, not a hang).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

from django.db import connection


class EarlierBatchFailed(Exception):
    """A batch before this one failed: this one must not commit past the gap."""


@dataclass(eq=False)
class Lane:
    """One batch in flight: its place in the file, the keys it reads by, the customers it writes."""

    seq: int
    keys: frozenset[Hashable]
    targets: frozenset[Hashable] | None = None  # None until the batch has resolved them
    ended: bool = False
    opaque: bool = False  # may write customers its keys do not name (crm.imports.unchanged_rows)


@dataclass
class LaneOrder:
    """The waits between the batches in flight; every method is thread-safe."""

    _cond: threading.Condition = field(default_factory=threading.Condition)
    _flight: dict[int, Lane] = field(default_factory=dict)
    _next: int = 0
    failure: BaseException | None = None
    _failed_seq: int | None = None
    latest: object | None = None  # what the most recently committed batch returned (the job)

    def open(self, keys: Iterable[Hashable], *, opaque: bool = False) -> Lane:
        """Called in file order, by the thread that reads the file."""
        with self._cond:
            lane = Lane(self._next, frozenset(keys), opaque=opaque)
            self._next += 1
            self._flight[lane.seq] = lane
            return lane

    def in_flight(self) -> tuple[list[frozenset[Hashable]], bool]:
        """The keys of the batches opened and not yet ended, and whether one of them is opaque.

        Read by the reading thread before it reads the database for its next batch: what it
        reads is then either committed or named here."""
        with self._cond:
            lanes = list(self._flight.values())
        return [lane.keys for lane in lanes], any(lane.opaque for lane in lanes)

    def _earlier(self, lane: Lane) -> list[Lane]:
        return [other for seq, other in self._flight.items() if seq < lane.seq]

    def _wait(self, lane: Lane, ready: Callable[[], bool]) -> None:
        while True:
            if self._failed_seq is not None and lane.seq > self._failed_seq:
                raise EarlierBatchFailed(lane.seq) from self.failure
            if ready():
                return
            self._cond.wait()

    def keys_wait(self, lane: Lane) -> None:
        """Before the batch reads: every earlier batch sharing one of its keys has committed."""
        with self._cond:
            self._wait(lane, lambda: not any(other.keys & lane.keys for other in self._earlier(lane)))

    def targets_settle(self, lane: Lane, targets: Iterable[Hashable]) -> bool:
        """After the batch resolved its existing customers, before it writes: True means an
        earlier batch in flight writes one of them too; it has now committed, so resolve again."""
        targets = frozenset(targets)
        with self._cond:
            self._wait(lane, lambda: all(other.targets is not None for other in self._earlier(lane)))
            clashing = [other for other in self._earlier(lane) if other.targets and other.targets & targets]
            if clashing:
                self._wait(lane, lambda: all(other.ended for other in clashing))
                return True
            lane.targets = targets
            self._cond.notify_all()
            return False

    def turn_wait(self, lane: Lane) -> None:
        """Before the batch commits: every earlier batch has committed (raises if one failed)."""
        with self._cond:
            self._wait(lane, lambda: not self._earlier(lane))

    def end(self, lane: Lane, *, result: object = None, failure: BaseException | None = None) -> None:
        """After the batch committed (or failed, or rolled back)."""
        with self._cond:
            lane.ended = True
            if lane.targets is None:
                lane.targets = frozenset()
            del self._flight[lane.seq]
            if failure is not None and not isinstance(failure, EarlierBatchFailed):
                if self._failed_seq is None or lane.seq < self._failed_seq:
                    self.failure, self._failed_seq = failure, lane.seq
            elif failure is None:
                self.latest = result
            self._cond.notify_all()

    def abort(self) -> None:
        """The reading thread gave up (its own error, an interrupt): no batch commits from now on."""
        with self._cond:
            if self.failure is None:
                self.failure = EarlierBatchFailed(-1)
            self._failed_seq = -1
            self._cond.notify_all()


class Lanes:
    """`count` threads, each with its own database connection, running the batches handed to it.

    With one lane the batch runs in the calling thread, on its connection (and inside its
    transaction, as the tests' are): the single-connection import, and the only one SQLite has.
    """

    def __init__(self, count: int):
        self.count = count
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=1)
        self._threads = [
            threading.Thread(target=self._work, name=f"import-lane-{n}", daemon=True) for n in range(count)
        ] if count > 1 else []  # fmt: skip
        for thread in self._threads:
            thread.start()
        self._stopping = False

    def _work(self) -> None:
        try:
            while (task := self._queue.get()) is not None:
                task()
        finally:
            connection.close()  # this thread's own connection

    def run(self, task: Callable[[], None]) -> None:
        """Hand over a batch; blocks while every lane is busy and one batch already waits."""
        if self.count > 1:
            self._queue.put(task)
        else:
            task()

    def close(self) -> None:
        """Let the batches handed over finish, then stop the threads (closing their connections).

        Safe to call again, from an exception raised while the first call waited: every call
        waits until the threads have ended, so nothing of the run goes on behind its caller.
        """
        if not self._stopping:
            self._stopping = True
            for _ in self._threads:
                self._queue.put(None)
        for thread in self._threads:
            thread.join()
