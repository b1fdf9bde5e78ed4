"""Before `make test`: do PostgreSQL and Redis answer at DATABASE_URL and REDIS_URL? About a second.

Without them the suite would fail each of its service tests one by one (hundreds of
errors, a flood of output). So this asks each service the way the suite will (a
PostgreSQL login to the `postgres` database, where pytest-django creates its test
database; a Redis PING and SELECT of the db number), and when one is missing on the
default local port it installs (Debian packages `postgresql`, `redis-server`, as root
with apt-get) and starts it, as `make browser` does for Chromium. Anything else: one
paragraph saying what to set, and exit status 1. GOLDFISH_NO_INSTALL=1 turns off
installing and starting. Standard library only: it runs before the virtualenv exists.
"""

import glob
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
from urllib.parse import unquote, urlparse

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
TIMEOUT = 1.0
PG_PROTOCOL_3 = 196608


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the server closed the connection")
        data += chunk
    return data


def postgres_problem(url: str) -> str | None:
    """None when PostgreSQL at `url` lets its user into the `postgres` database, else why not."""
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql"}:
        return f"DATABASE_URL is not a postgres:// URL ({url})"
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 5432
    user = unquote(parsed.username or "postgres")
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
            params = b"user\0" + user.encode() + b"\0database\0postgres\0\0"
            sock.sendall(struct.pack("!ii", 8 + len(params), PG_PROTOCOL_3) + params)
            while True:  # trust says AuthenticationOk first; a missing role or database is an error after it
                kind = _recv_exactly(sock, 1)
                length = struct.unpack("!i", _recv_exactly(sock, 4))[0]
                body = _recv_exactly(sock, length - 4)
                if kind == b"Z":  # ready for query: logged in
                    sock.sendall(b"X" + struct.pack("!i", 4))
                    return None
                if kind == b"E":
                    fields = {part[:1]: part[1:].decode(errors="replace") for part in body.split(b"\0") if part}
                    return f"{host}:{port} refused the login: {fields.get(b'M', 'unknown error')}"
                if kind == b"R" and struct.unpack("!i", body[:4])[0] != 0:
                    if parsed.password:  # a password the URL gives; the suite itself will check it
                        return None
                    return f"{host}:{port} asks user {user!r} for a password and DATABASE_URL has none"
                if kind not in {b"R", b"S", b"K", b"N"}:
                    return f"{host}:{port} does not speak the PostgreSQL protocol"
    except (OSError, struct.error) as exc:
        return f"nothing answers at {host}:{port} ({getattr(exc, 'strerror', None) or exc})"


def _redis_command(sock: socket.socket, *args: str) -> bytes:
    payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    sock.sendall(payload.encode())
    return sock.recv(256)


def redis_problem(url: str) -> str | None:
    """None when Redis at `url` answers PING and selects the db number, else why not."""
    parsed = urlparse(url)
    if parsed.scheme not in {"redis", "rediss"}:
        return f"REDIS_URL is not a redis:// URL ({url})"
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 6379
    db = (parsed.path or "/0").strip("/") or "0"
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
            if parsed.password:
                auth = [unquote(parsed.username), unquote(parsed.password)] if parsed.username else []
                reply = _redis_command(sock, "AUTH", *(auth or [unquote(parsed.password)]))
                if not reply.startswith(b"+OK"):
                    return f"{host}:{port} refused AUTH: {reply.decode(errors='replace').strip()}"
            reply = _redis_command(sock, "PING")
            if not reply.startswith(b"+PONG"):
                return f"{host}:{port} did not answer PING: {reply.decode(errors='replace').strip()}"
            reply = _redis_command(sock, "SELECT", db)
            if not reply.startswith(b"+OK"):
                return f"{host}:{port} refused db {db}: {reply.decode(errors='replace').strip()}"
    except OSError as exc:
        return f"nothing answers at {host}:{port} ({exc.strerror or exc})"
    return None


def _is_local_default(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    return (parsed.hostname or "127.0.0.1") in LOCAL_HOSTS and (parsed.port or default_port) == default_port


def _run(*command: str) -> None:
    print("  $", " ".join(command), flush=True)
    subprocess.run(command, check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})  # noqa: S603


def _apt_install(package: str) -> None:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeError(f"{package} is not installed, and installing it needs root and apt-get")
    print(f"Installing {package} (Debian package) for the tests...", flush=True)
    _run("apt-get", "update", "-qq")
    _run("apt-get", "install", "-y", "-qq", package)


def _trust_local_postgres(hba: str) -> None:
    """A cluster this script installed: user postgres logs in over 127.0.0.1 without a password, like CI."""
    with open(hba) as f:
        rules = f.read()
    trust = "host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust\n"
    if trust not in rules:
        with open(hba, "w") as f:
            f.write("# make test (scripts/services_check.py): local tests as postgres\n" + trust + rules)


def postgres_start() -> None:
    """Install PostgreSQL if absent, then start the cluster on port 5432 if it is down (never stops one)."""
    installed_now = False
    if not shutil.which("pg_lsclusters"):
        _apt_install("postgresql")
        installed_now = True
    if installed_now:
        for hba in glob.glob("/etc/postgresql/*/*/pg_hba.conf"):
            _trust_local_postgres(hba)
    listing = ["pg_lsclusters", "--no-header"]
    out = subprocess.run(listing, capture_output=True, text=True, check=True).stdout  # noqa: S603
    for line in out.splitlines():
        version, cluster, port, status = line.split()[:4]
        if port != "5432":
            continue
        if status == "online" and installed_now:
            _run("pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, "reload")
        elif status != "online":
            _run("pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, "start")


def redis_start(port: int = 6379) -> None:
    """Install Redis if absent, then start a throwaway local server (no persistence)."""
    if not shutil.which("redis-server"):
        _apt_install("redis-server")
    options = ["--daemonize", "yes", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    _run("redis-server", *options)


def _wait(check, url: str, seconds: float = 20) -> str | None:
    deadline = time.monotonic() + seconds
    problem = check(url)
    while problem and time.monotonic() < deadline:
        time.sleep(0.5)
        problem = check(url)
    return problem


def main() -> int:
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    may_start = os.environ.get("GOLDFISH_NO_INSTALL", "") in {"", "0", "false"}
    services = [
        ("PostgreSQL", "DATABASE_URL", database_url, postgres_problem, postgres_start, 5432),
        ("Redis", "REDIS_URL", redis_url, redis_problem, redis_start, 6379),
    ]
    problems = []
    for name, variable, url, check, start, default_port in services:
        problem = check(url) if url else f"{variable} is not set"
        if problem and url and may_start and _is_local_default(url, default_port):
            print(f"{name} is not answering at {variable}={url} ({problem}); starting it.", flush=True)
            try:
                start()
                problem = _wait(check, url)
            except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
                problem = f"{problem}; starting it failed: {exc}"
        if problem:
            problems.append(f"{name} at {variable}={url or '(unset)'}: {problem}")
    if not problems:
        return 0
    print(
        "\nmake test runs the whole suite against real PostgreSQL and Redis, and "
        + "; ".join(problems)
        + ". Point DATABASE_URL (a PostgreSQL user that may create databases; the suite makes test_<name>) "
        "and REDIS_URL (any db number) at services you have, e.g. "
        "`DATABASE_URL=postgres://postgres@127.0.0.1:5432/goldfish REDIS_URL=redis://127.0.0.1:6379/1 make test`. "
        "On a Debian-like machine, as root with apt-get, make test installs (packages postgresql, redis-server) "
        "and starts them on their default local ports itself unless GOLDFISH_NO_INSTALL=1. Without them, "
        "`make test-sqlite` runs every test that needs neither service, on SQLite with tasks in-process.\n",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
