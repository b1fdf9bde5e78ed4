"""The waits between an import's batches in flight (crm/import_lanes.py), with real threads, no database.

Each test runs lanes in threads and records what happened in which order; a wait that let a
batch through too early shows up as a wrong order, a wait that never ends as a join timeout.
"""

from __future__ import annotations

import threading
import time

import pytest

from crm.import_lanes import EarlierBatchFailed, LaneOrder, Lanes

SETTLE = 0.2  # long enough for a thread that should be waiting to have gone past its wait if it were not


def started(target, *args) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def joined(*threads: threading.Thread) -> None:
    for thread in threads:
        thread.join(timeout=5)
        assert not thread.is_alive(), "a lane never got past its wait"


def test_a_batch_sharing_a_key_with_an_earlier_one_in_flight_reads_only_after_it_committed():
    order = LaneOrder()
    first, second = order.open({"ref:C-1", "phone:+1"}), order.open({"phone:+1"})
    seen: list[str] = []

    def later() -> None:
        order.keys_wait(second)
        seen.append("second reads")

    thread = started(later)
    time.sleep(SETTLE)
    seen.append("first commits")
    order.end(first, result="job after first")
    joined(thread)

    assert seen == ["first commits", "second reads"]


def test_batches_without_a_shared_key_read_at_once():
    order = LaneOrder()
    order.open({"ref:C-1"})
    second = order.open({"ref:C-2"})
    thread = started(order.keys_wait, second)
    joined(thread)  # no wait for the first, still in flight


def test_batches_commit_in_file_order_whichever_finishes_first():
    order = LaneOrder()
    lanes = [order.open({n}) for n in range(4)]
    committed: list[int] = []

    def commit(lane) -> None:
        order.turn_wait(lane)
        committed.append(lane.seq)
        order.end(lane, result=lane.seq)

    threads = [started(commit, lane) for lane in reversed(lanes)]  # the last one is ready first
    joined(*threads)

    assert committed == [0, 1, 2, 3]
    assert order.latest == 3


def test_a_customer_an_earlier_batch_writes_makes_the_later_one_wait_and_resolve_again():
    order = LaneOrder()
    first, second = order.open({"ref:C-1"}), order.open({"account:AC-9"})  # two keys, one customer
    answers: list[bool] = []

    def later() -> None:
        answers.append(order.targets_settle(second, {"customer-1"}))  # waits for the first's commit
        answers.append(order.targets_settle(second, {"customer-1"}))  # resolved again: nobody in the way

    assert order.targets_settle(first, {"customer-1"}) is False
    thread = started(later)
    time.sleep(SETTLE)
    assert answers == []
    order.end(first, result="job")
    joined(thread)

    assert answers == [True, False]


def test_a_later_batch_waits_until_every_earlier_one_has_named_its_customers():
    order = LaneOrder()
    first, second = order.open({"ref:C-1"}), order.open({"ref:C-2"})
    answers: list[bool] = []
    thread = started(lambda: answers.append(order.targets_settle(second, {"customer-2"})))
    time.sleep(SETTLE)
    assert answers == []  # the first has not resolved its customers yet

    order.targets_settle(first, {"customer-1"})
    joined(thread)

    assert answers == [False]  # different customers: both write at once


def test_a_failed_batch_stops_the_later_ones_but_not_the_earlier_ones():
    order = LaneOrder()
    first, failing, later = order.open({1}), order.open({2}), order.open({3})
    outcome: dict[str, object] = {}

    def run_later() -> None:
        try:
            order.turn_wait(later)
        except EarlierBatchFailed:
            outcome["later"] = "refused"
            order.end(later, failure=EarlierBatchFailed(later.seq))

    thread = started(run_later)
    order.end(failing, failure=ValueError("boom"))
    order.turn_wait(first)  # the earlier batch still commits
    order.end(first, result="job after first")
    joined(thread)

    assert outcome == {"later": "refused"}
    assert isinstance(order.failure, ValueError)
    assert order.latest == "job after first"
    with pytest.raises(EarlierBatchFailed):
        order.keys_wait(order.open({4}))


def test_after_the_reading_thread_gives_up_no_batch_commits():
    order = LaneOrder()
    first = order.open({1})
    order.abort()  # the reading thread's own error, or an interrupt
    with pytest.raises(EarlierBatchFailed):
        order.turn_wait(first)


def test_closing_the_lanes_again_still_waits_for_them():
    """The second close() (say, from an exception raised while the first one waited) must not
    return while a lane still runs: the job is marked failed right after it."""
    lanes, release = Lanes(2), threading.Event()
    lanes.run(release.wait)
    first = started(lanes.close)
    second = started(lanes.close)
    time.sleep(SETTLE)
    assert first.is_alive() and second.is_alive()

    release.set()
    joined(first, second)
