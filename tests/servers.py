"""Run the service under real gunicorn for tests: start, wait until it answers, stop.

The server reads the same ``gunicorn.conf.py`` as production; tests pass the
environment (DATABASE_URL, PORT, WEB_CONCURRENCY, ...) and read its JSON log
lines from ``log_lines()``.
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
START_TIMEOUT_SECONDS = 30


def http(method: str, url: str, body: dict | None = None, headers: dict | None = None):
    """One HTTP request; returns (status, headers, body text), never raises on 4xx/5xx."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - loopback test servers only
        url, data=data, method=method, headers=dict(headers or {})
    )
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


class GunicornServer:
    """``gunicorn -c gunicorn.conf.py wsgi:app`` (or ``command``) on 127.0.0.1:``port``."""

    def __init__(
        self,
        tmp_path: Path,
        port: int,
        env: dict[str, str],
        command: tuple[str, ...] = (str(GUNICORN), "-c", "gunicorn.conf.py", "wsgi:app"),
    ):
        self.port = port
        self.command = command
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = tmp_path / f"gunicorn-{port}.log"
        metrics_dir = tmp_path / f"metrics-{port}"
        metrics_dir.mkdir(exist_ok=True)
        self.env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "WEB_CONCURRENCY": "2",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "FLASK_APP": "wsgi",
            **env,
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> "GunicornServer":
        """Start the server and wait until ``/livez`` answers."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                list(self.command),
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited early:\n{self.log_path.read_text()}")
            try:
                if self.get("/livez")[0] == 200:
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer:\n{self.log_path.read_text()}")

    def get(self, path: str, **kwargs):
        """GET ``path``."""
        return http("GET", self.base_url + path, **kwargs)

    def request(self, method: str, path: str, body: dict | None = None, **kwargs):
        """Any request to ``path``."""
        return http(method, self.base_url + path, body, **kwargs)

    def stop(self) -> None:
        """Stop gracefully (SIGTERM) and wait for the master to exit."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)

    def log_lines(self) -> list[dict]:
        """Every log line the server wrote, parsed as JSON (fails on a non-JSON line)."""
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line]

    def __enter__(self) -> "GunicornServer":
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()
