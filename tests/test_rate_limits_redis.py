"""Rate limits with Redis under real gunicorn: shared by every worker, failing open without Redis.

A private redis-server on a port of the test range is started, stopped under
load and started again; the shared Redis of the machine is never touched.
"""

import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.support.servers import Figures, GunicornServer, free_port, http, scrape
from tests.support.tools import missing_command, require

pytestmark = pytest.mark.slow

SEARCHES = 3
LOAD_THREADS = 4


class PrivateRedis:
    """A throwaway redis-server (no persistence) on 127.0.0.1:``port``."""

    def __init__(self, directory: Path, port: int):
        self.directory = directory
        self.port = port
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The redis:// URL of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "PrivateRedis":
        """Start the server and wait until it accepts connections."""
        require(missing_command("redis-server"))
        binary = shutil.which("redis-server")
        self.process = subprocess.Popen(
            [
                *(binary, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        """Stop the server and wait until its port is closed."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def flush(self) -> None:
        """Forget every counter (FLUSHALL over the Redis protocol)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as connection:
            connection.sendall(b"*1\r\n$8\r\nFLUSHALL\r\n")
            assert connection.recv(64).startswith(b"+OK")


@pytest.fixture(scope="module")
def stack(tmp_path_factory, databases):
    """A private Redis and gunicorn (2 workers) counting in it: (redis, gunicorn)."""
    directory = tmp_path_factory.mktemp("ratelimits")
    redis = PrivateRedis(directory, free_port()).start()
    database_url = databases.migrated("limits")
    server = GunicornServer(
        directory,
        database_url=database_url,
        workers=2,
        env={
            "RATELIMIT_ENABLED": "true",
            "RATELIMIT_STORAGE_URI": redis.url,
            "RATELIMIT_SEARCHES": f"{SEARCHES} per minute",
            "RATELIMIT_WRITES": "2 per minute",
            "RATELIMIT_GLOBAL": "100000 per minute",
        },
    )
    try:
        yield redis, server.start()
    finally:
        server.stop()
        redis.stop()


@pytest.fixture
def limits(stack):
    """The stack with every counter at zero."""
    redis, server = stack
    redis.flush()
    return redis, server


def failed_open_total(server: GunicornServer) -> float:
    """The rate_limits_failed_open counter, added up over the workers."""
    return scrape(server.get("/metrics").body).get(("rate_limits_failed_open_total", ()), 0.0)


def test_both_workers_share_the_counts_in_redis_and_answer_429_problems(limits):
    _redis, server = limits

    answers = [server.get("/courses?q=CS") for _ in range(SEARCHES + 2)]

    statuses = [status for status, _headers, _body in answers]
    # With per-process memory counters two workers would allow up to twice as many.
    assert statuses == [200] * SEARCHES + [429, 429]
    _status, headers, problem = answers[SEARCHES]
    assert headers["Content-Type"] == "application/problem+json"
    assert problem["status"] == 429
    assert int(headers["Retry-After"]) >= 1
    assert headers["RateLimit-Policy"].startswith(f'"searches";q={SEARCHES};w=60')
    assert headers["RateLimit"].startswith('"searches";r=0;')


def test_writes_over_the_limit_are_429_and_store_nothing(limits):
    _redis, server = limits

    statuses = [
        server.request("POST", "/students", {"name": "W", "email": f"rl{n}@example.edu"})[0]
        for n in range(3)
    ]

    assert statuses == [201, 201, 429]
    _status, _headers, students = server.get("/students?q=rl")
    assert sorted(student["email"] for student in students) == [
        "rl0@example.edu",
        "rl1@example.edu",
    ]


def test_redis_stopped_under_load_fails_open_and_limits_return_with_it(limits):
    redis, server = limits
    failed_open_before = failed_open_total(server)
    statuses: Counter = Counter()
    stop = threading.Event()

    def load():
        for _ in range(2000):  # bounded: stops by itself
            if stop.is_set():
                return
            statuses[server.get("/courses")[0]] += 1

    workers = [threading.Thread(target=load) for _ in range(LOAD_THREADS)]
    for worker in workers:
        worker.start()
    try:
        redis.stop()
        outage = [server.get("/courses?q=CS")[0] for _ in range(SEARCHES + 3)]
        redis.start()
        recovered = []
        deadline = time.monotonic() + 15
        while 429 not in recovered and time.monotonic() < deadline:
            recovered.append(server.get("/courses?q=CS")[0])
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=60)
    Figures.add("requests under a Redis outage", sum(statuses.values()) + len(outage))

    assert set(statuses) == {200}, statuses
    # Searches beyond the limit are served while the counts cannot be kept ...
    assert outage == [200] * (SEARCHES + 3)
    # ... and once Redis is back (empty) the limit applies again from zero.
    assert recovered[-1] == 429
    assert recovered.count(200) >= SEARCHES
    warnings = [
        line
        for line in server.log_lines()
        if line.get("logger") == "app.limits" and line["level"] == "WARNING"
    ]
    assert any("rate limit storage unreachable" in line["message"] for line in warnings)
    assert any("rate limits are back on" in line["message"] for line in warnings)
    assert failed_open_total(server) >= failed_open_before + SEARCHES + 3
    assert not [line for line in server.log_lines() if line.get("status") == 500]
    assert http("GET", server.url + "/livez")[0] == 200
