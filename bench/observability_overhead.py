"""What issue 17's metrics and logs cost the screen-pop lookup, in CPU per call.

    DATABASE_URL=postgres://.../goldfish_bench_smoke python -m bench.observability_overhead

Two WSGI applications in one process, the same lookups through each in alternating
blocks (so a busy machine's drift hits both alike): one as configured (the request
middleware with its access line and HTTP metrics, the lookup histogram), one with the
request middleware left out and the lookup histogram switched off. Prints the CPU per
lookup of each and the difference. Uses the lookup benchmark's data (bench.lookup_load);
set PROMETHEUS_MULTIPROC_DIR to measure multiprocess mode.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from bench.lookup_run import ROOT, bench_token, sample_bodies, wsgi_environ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=3000, help="lookups per variant")
    parser.add_argument("--block", type=int, default=100, help="lookups per block before switching variant")
    args = parser.parse_args()
    dsn = os.environ.get("DATABASE_URL", "")
    if not dsn.startswith(("postgres://", "postgresql://")):
        raise SystemExit("Set DATABASE_URL to a database loaded by bench.lookup_load (e.g. make bench-lookup-smoke's).")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    os.environ.update({"CRM_HTTPS": "false", "DEBUG": "false"})
    os.environ.pop("REDIS_URL", None)
    sys.path.insert(0, str(ROOT))

    token = bench_token(dsn)
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler

    from crm import metrics

    with_obs = WSGIHandler()
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != "crm.middleware.RequestObservabilityMiddleware"]
    without_obs = WSGIHandler()
    real_observe = metrics.lookup_observe

    bodies = sample_bodies(dsn, args.lookups, seed=17)
    stamp = time.time_ns()
    cpu = {"with": 0.0, "without": 0.0}
    done = {"with": 0, "without": 0}

    def start_response(status, headers, exc_info=None):
        if not status.startswith("200"):
            raise SystemExit(f"lookup failed: {status}")

    def run(name: str, app, block: list[dict], tag: str) -> None:
        metrics.lookup_observe = real_observe if name == "with" else (lambda match, seconds: None)
        payloads = [json.dumps({**b, "call_id": f"obs-{stamp}-{tag}-{n}"}).encode() for n, b in enumerate(block)]
        started = time.process_time()
        for payload in payloads:
            b"".join(app(wsgi_environ(payload, token), start_response))
        cpu[name] += time.process_time() - started
        done[name] += len(payloads)

    apps = {"with": with_obs, "without": without_obs}
    for name in apps:  # warm both
        run(name, apps[name], bodies[:100], f"warm-{name}")
    cpu = {"with": 0.0, "without": 0.0}
    done = {"with": 0, "without": 0}
    # The same lookups through both, in ABBA order, so neither variant gets the easier
    # lookups or the quieter moments.
    for k in range(0, len(bodies), args.block):
        order = ("with", "without") if (k // args.block) % 2 == 0 else ("without", "with")
        for name in order:
            run(name, apps[name], bodies[k : k + args.block], f"{name}-{k}")
    per = {name: cpu[name] * 1000 / done[name] for name in cpu}
    print(f"lookups per variant: {done['with']}, multiprocess: {bool(os.environ.get('PROMETHEUS_MULTIPROC_DIR'))}")
    print(f"CPU per lookup with metrics and logs: {per['with']:.3f} ms; without: {per['without']:.3f} ms")
    print(f"difference: {per['with'] - per['without']:+.3f} ms ({(per['with'] / per['without'] - 1) * 100:+.1f} %)")


if __name__ == "__main__":
    main()
