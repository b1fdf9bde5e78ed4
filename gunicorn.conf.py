"""gunicorn's settings for Goldfish, read from the working directory (issue 17).

Its own log lines are JSON like the application's, and a worker that exits is
marked dead for prometheus-client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR),
so its live gauges (open agent streams) stop counting. Command-line flags still
set workers, threads and the bind address.
"""

import os

accesslog = None  # the application writes one access line per request (crm/middleware.py)
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "crm.observability.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "loggers": {
        "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # Off: its lines quote the raw path and query string (a search for a name); the
        # application's own access line names the route instead.
        "gunicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
    },
}


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
