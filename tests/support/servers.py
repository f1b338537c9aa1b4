"""Real gunicorn servers: a port of the test range, an HTTP client, start, wait, stop or kill.

Used by every test that needs real processes (gunicorn settings, logs and
metrics across workers, outages, races, faults, fuzzing over HTTP) and by the
benchmark. A server runs the production ``gunicorn -c gunicorn.conf.py
wsgi:app`` (or another command, such as the container entrypoint) in a process
group of its own, on a free port of ``TEST_PORT_MIN``..``TEST_PORT_MAX``, with
the environment it is given; its output goes to a log file that is shown when
it fails to start.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from http.client import HTTPConnection, HTTPMessage
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
PORT_RANGE = range(
    int(os.environ.get("TEST_PORT_MIN", "8400")), int(os.environ.get("TEST_PORT_MAX", "8499")) + 1
)
START_TIMEOUT_SECONDS = 30
_next_port = iter(PORT_RANGE)


def free_port() -> int:
    """The next port of the test range that nothing listens on."""
    for port in _next_port:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port left in {PORT_RANGE}")


class Reply(NamedTuple):
    """An HTTP answer: status, headers, and the body (decoded JSON when it is JSON, else text)."""

    status: int
    headers: HTTPMessage
    body: Any


def http(
    method: str, url: str, body=None, *, headers: dict | None = None, timeout: float = 60
) -> Reply:
    """One request on a fresh connection; never raises on 4xx/5xx (a cut connection raises)."""
    parts = urlsplit(url)
    connection = HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        sent_headers = dict(headers or {})
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            sent_headers["Content-Type"] = "application/json"
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, target, body=payload, headers=sent_headers)
        response = connection.getresponse()
        text = response.read().decode()
        Figures.add("HTTP requests to gunicorn")
        if text and (response.headers.get("Content-Type") or "").endswith("json"):
            return Reply(response.status, response.headers, json.loads(text))
        return Reply(response.status, response.headers, text)
    finally:
        connection.close()


def create(server, path: str, body: dict) -> int:
    """POST a new resource through ``server.request``; return its id (fails unless 201)."""
    status, _headers, created = server.request("POST", path, body)
    assert status == 201, created
    return created["id"]


def scrape(text: str) -> dict[tuple, float]:
    """Every sample of a ``/metrics`` page keyed by (name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


class GunicornServer:
    """One gunicorn master with its workers, on 127.0.0.1."""

    def __init__(
        self,
        log_dir: Path,
        *,
        database_url: str | None = None,
        port: int | None = None,
        workers: int | None = 2,
        env: dict[str, str] | None = None,
        command: tuple[str, ...] = (GUNICORN, "-c", "gunicorn.conf.py", "wsgi:app"),
    ):
        self.port = port or free_port()
        self.command = command
        self.log_path = log_dir / f"gunicorn-{self.port}.log"
        metrics_dir = log_dir / f"metrics-{self.port}"
        metrics_dir.mkdir(exist_ok=True)
        self.env = {
            **os.environ,
            "APP_ENV": "testing",
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "FLASK_APP": "wsgi",
            "PYTHONUNBUFFERED": "1",
            **({"WEB_CONCURRENCY": str(workers)} if workers else {}),
            **({"DATABASE_URL": database_url} if database_url else {}),
            **(env or {}),
        }
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "GunicornServer":
        """Start the server and wait until ``/livez`` answers."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                list(self.command),
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if self.get("/livez").status == 200:
                    return self
            except OSError:
                time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"gunicorn did not start:\n{self.log()}")

    def get(self, path: str, **kwargs) -> Reply:
        """GET ``path``."""
        return http("GET", self.url + path, **kwargs)

    def request(self, method: str, path: str, body=None, **kwargs) -> Reply:
        """Any request to ``path``."""
        return http(method, self.url + path, body, **kwargs)

    def worker_pids(self) -> list[int]:
        """Process ids of the master's workers."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM to the master (graceful shutdown); return its exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL to the master and every worker at once (a crash, no clean-up)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """Stop gracefully, or kill when that takes more than 30 seconds."""
        try:
            self.terminate(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()

    def log(self) -> str:
        """Everything the server wrote so far."""
        return self.log_path.read_text(errors="replace")

    def log_lines(self) -> list[dict]:
        """Every log line the server wrote, parsed as JSON (fails on a non-JSON line)."""
        return [json.loads(line) for line in self.log().splitlines() if line]

    def __enter__(self) -> "GunicornServer":
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()


class Figures:
    """Counts of what the reliability tests did, printed at the end of the run."""

    counts: dict[str, int] = {}

    @classmethod
    def add(cls, name: str, amount: int = 1) -> None:
        """Add ``amount`` to the figure ``name``."""
        cls.counts[name] = cls.counts.get(name, 0) + amount
