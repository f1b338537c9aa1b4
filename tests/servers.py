"""Real gunicorn servers for tests: start, wait until they answer, stop or kill.

Used by every test that needs real processes (gunicorn settings, logs and
metrics across workers, outages, races, faults, fuzzing over HTTP). A server
runs the production ``gunicorn -c gunicorn.conf.py wsgi:app`` (or another
command, such as the container entrypoint) in a process group of its own, on
a free port of the test range, with the environment it is given; its output
goes to a log file that is shown when it fails to start.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from http.client import HTTPConnection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
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


def flask_cli(database_url: str, *args: str) -> subprocess.CompletedProcess:
    """Run the real ``flask`` command line against ``database_url``; fail on a non-zero exit."""
    return subprocess.run(
        [sys.executable, "-m", "flask", *args],
        cwd=ROOT,
        env={**os.environ, "APP_ENV": "testing", "FLASK_APP": "wsgi", "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=True,
    )


def migrate_database(database_url: str) -> None:
    """Bring a database to the head revision with ``flask db upgrade``."""
    flask_cli(database_url, "db", "upgrade")


def http(method: str, url: str, body: dict | None = None, headers: dict | None = None):
    """One HTTP request; returns (status, headers, body text), never raises on 4xx/5xx."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - loopback test servers only
        url, data=data, method=method, headers=dict(headers or {})
    )
    if data is not None:
        request.add_header("Content-Type", "application/json")
    Figures.add("HTTP requests to gunicorn")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def send(
    port: int, method: str, path: str, body=None, *, raw: bytes | None = None, timeout=60
) -> tuple[int, dict | None]:
    """One request on a fresh connection; returns (status, decoded JSON body or None)."""
    connection = HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {}
        payload = json.dumps(body).encode() if body is not None else raw
        if payload is not None:
            headers["Content-Type"] = "application/json"
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        data = response.read()
        Figures.add("HTTP requests to gunicorn")
        return response.status, (json.loads(data) if data else None)
    finally:
        connection.close()


class GunicornServer:
    """One gunicorn master with its workers, on 127.0.0.1."""

    def __init__(
        self,
        log_dir: Path,
        *,
        database_url: str | None = None,
        port: int | None = None,
        workers: int = 2,
        env: dict[str, str] | None = None,
        command: tuple[str, ...] = (str(GUNICORN), "-c", "gunicorn.conf.py", "wsgi:app"),
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
            "WEB_CONCURRENCY": str(workers),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "FLASK_APP": "wsgi",
            "PYTHONUNBUFFERED": "1",
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
                if self.get("/livez")[0] == 200:
                    return self
            except OSError:
                time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"gunicorn did not start:\n{self.log()}")

    def get(self, path: str, **kwargs):
        """GET ``path``: (status, headers, body text)."""
        return http("GET", self.url + path, **kwargs)

    def request(self, method: str, path: str, body: dict | None = None, **kwargs):
        """Any request to ``path``: (status, headers, body text)."""
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
