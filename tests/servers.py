"""Real gunicorn servers for tests: start, wait until they answer, stop or kill.

Used by the tests that need real processes (races, faults, fuzzing over
HTTP). Every server runs ``wsgi:app`` with explicit command-line options in a
process group of its own, on a free port of the test port range, against the
database URL it is given; its output goes to a log file that is shown when it
fails to start.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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


def send(
    port: int, method: str, path: str, body=None, *, raw: bytes | None = None, timeout=60
) -> tuple[int, dict | None]:
    """One HTTP request on a fresh connection; returns (status, decoded JSON body or None)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {}
        payload = raw
        if body is not None:
            payload = json.dumps(body).encode()
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
    """One gunicorn master with its workers, serving ``wsgi:app``."""

    def __init__(self, database_url: str, log_dir: Path, *, workers: int = 2, port=None, **env):
        self.database_url = database_url
        self.workers = workers
        self.port = port or free_port()
        self.log_path = log_dir / f"gunicorn-{self.port}.log"
        self.env = {
            **os.environ,
            "APP_ENV": "testing",
            "DATABASE_URL": database_url,
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "GunicornServer":
        """Start gunicorn and wait until it answers a request."""
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(self.workers),
            "--worker-class",
            "sync",
            "--timeout",
            "60",
            "--graceful-timeout",
            "30",
            "--log-level",
            "warning",
            "wsgi:app",
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_until_serving()
        return self

    def _wait_until_serving(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                status, _ = send(self.port, "GET", "/openapi.json", timeout=5)
            except OSError:
                time.sleep(0.1)
                continue
            if status == 200:
                return
        self.kill()
        raise RuntimeError(f"gunicorn did not start:\n{self.log_path.read_text()}")

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

    def log(self) -> str:
        """Everything the server wrote so far."""
        return self.log_path.read_text(errors="replace")

    def __enter__(self) -> "GunicornServer":
        return self.start()

    def __exit__(self, *_exc) -> None:
        try:
            self.terminate(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()


class Figures:
    """Counts of what the reliability tests did, printed at the end of the run."""

    counts: dict[str, int] = {}

    @classmethod
    def add(cls, name: str, amount: int = 1) -> None:
        """Add ``amount`` to the figure ``name``."""
        cls.counts[name] = cls.counts.get(name, 0) + amount
