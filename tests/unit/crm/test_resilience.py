"""The breaker and the outage state are shared by every thread of a process and log once per change."""

import logging
import threading

from django.db import OperationalError

from crm.resilience import Breaker, _OutageState


def in_threads(work, n=16):
    start = threading.Barrier(n)
    results = [None] * n

    def run(i):
        start.wait(timeout=10)
        results[i] = work()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return results


def test_a_breaker_tripped_in_one_thread_is_open_in_all_until_reset():
    breaker = Breaker("broker", seconds=60)
    threading.Thread(target=breaker.trip).start()
    threading.Event().wait(0.05)

    assert in_threads(breaker.is_open) == [True] * 16
    breaker.reset()
    assert in_threads(breaker.is_open) == [False] * 16


def test_a_breaker_closes_by_itself_after_its_seconds():
    breaker = Breaker("cache", seconds=0.05)
    breaker.trip()
    threading.Event().wait(0.1)
    assert not breaker.is_open()


def test_an_outage_seen_by_many_threads_logs_one_warning_when_it_starts_and_one_when_it_ends(caplog):
    state = _OutageState("database")
    with caplog.at_level(logging.WARNING, logger="crm.resilience"):
        in_threads(lambda: state.down(OperationalError("connection refused")))
        assert state.is_down
        in_threads(state.up)
        in_threads(state.up)

    messages = [r.getMessage() for r in caplog.records if r.name == "crm.resilience"]
    assert len(messages) == 2, messages
    assert messages[0].startswith("database unavailable (OperationalError: connection refused)")
    assert messages[1].startswith("database available again after")
    assert not state.is_down
