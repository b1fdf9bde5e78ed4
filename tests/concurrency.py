"""Running the same work in several threads at once, each on its own database connection."""

import threading

from django.db import close_old_connections, connection


def run_together(worker, n: int) -> list:
    """worker() in n threads released at the same moment; each result or exception, in order."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i):
        try:
            barrier.wait(timeout=10)
            results[i] = worker()
        except Exception as exc:  # noqa: BLE001 - the test inspects what each thread got
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    close_old_connections()
    return results
