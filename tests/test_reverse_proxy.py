"""Debian's nginx, configured by deploy/nginx.conf, in front of a real gunicorn.

The configuration the tests run is the committed one with only its addresses
and file paths replaced (each replacement must match exactly once, so a
change to the committed file cannot slip past the tests unnoticed).
"""

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from http.client import HTTPSConnection
from pathlib import Path

import pytest

from app.problems import problem_type
from tests.support.databases import student_emails
from tests.support.servers import ROOT, Figures, GunicornServer, free_port
from tests.support.tools import missing_command, require

pytestmark = pytest.mark.slow

DEPLOY = ROOT / "deploy"
CONFIG_FILES = ("nginx.conf", "nginx-problems.conf")
SLOW_CLIENTS = 50


def require_tool(name: str) -> str:
    """The path of a Debian tool the test runs (failing under CI, skipping elsewhere)."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    require(None if path else missing_command(name))
    return path


def make_tls_pair(directory: Path) -> None:
    """A throwaway self-signed certificate and key where deploy/nginx.conf looks for them."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            require_tool("openssl"),
            *("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", "/CN=localhost"),
            *("-keyout", str(directory / "privkey.pem")),
            *("-out", str(directory / "fullchain.pem")),
        ],
        check=True,
        capture_output=True,
    )


def copy_committed_config(directory: Path) -> Path:
    """The committed nginx files, byte for byte, with a throwaway TLS pair beside them."""
    for name in CONFIG_FILES:
        shutil.copyfile(DEPLOY / name, directory / name)
    make_tls_pair(directory / "tls")
    return directory / "nginx.conf"


def replace_once(text: str, old: str, new: str) -> str:
    """Replace ``old`` with ``new``; ``old`` must occur exactly once."""
    assert text.count(old) == 1, f"deploy/nginx.conf no longer contains {old!r} exactly once"
    return text.replace(old, new)


class NginxServer:
    """nginx running deploy/nginx.conf on test ports, in front of ``upstream_port``."""

    def __init__(self, directory: Path, upstream_port: int):
        self.directory = directory
        self.http_port = free_port()
        self.https_port = free_port()
        config = copy_committed_config(directory).read_text()
        user = "root" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
        for old, new in (
            ("user www-data;", f"user {user};"),
            ("pid /run/nginx.pid;", f"pid {directory}/nginx.pid;"),
            ("error_log /var/log/nginx/error.log", f"error_log {directory}/error.log"),
            ("access_log /var/log/nginx/access.log", f"access_log {directory}/access.log"),
            ("listen 80 default_server;", f"listen 127.0.0.1:{self.http_port} default_server;"),
            ("listen [::]:80 default_server;", ""),
            ("listen 443 ssl default_server;", f"listen 127.0.0.1:{self.https_port} ssl;"),
            ("listen [::]:443 ssl default_server;", ""),
            ("server 127.0.0.1:8000 ", f"server 127.0.0.1:{upstream_port} "),
            (
                "http {",
                f"http {{\n    client_body_temp_path {directory}/body;\n"
                f"    proxy_temp_path {directory}/proxy;",
            ),
        ):
            config = replace_once(config, old, new)
        self.config_path = directory / "nginx.conf"
        self.config_path.write_text(config)
        self.process: subprocess.Popen | None = None

    def start(self) -> "NginxServer":
        """Start nginx in the foreground and wait until its TLS port accepts."""
        stderr_path = self.directory / "stderr.log"
        with stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(
                [require_tool("nginx"), "-c", str(self.config_path), "-g", "daemon off;"],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx did not start: {stderr_path.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.https_port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not listen in time")

    def stop(self) -> None:
        """Stop nginx (fast shutdown) and wait for it."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)

    def tls_socket(self) -> ssl.SSLSocket:
        """A TLS connection to nginx (the test certificate is self-signed)."""
        raw = socket.create_connection(("127.0.0.1", self.https_port), timeout=10)
        return insecure_context().wrap_socket(raw, server_hostname="localhost")

    def request(self, method: str, path: str, body: bytes | None = None, headers=None):
        """One HTTPS request through nginx: (status, headers, body bytes, seconds)."""
        connection = HTTPSConnection(
            "127.0.0.1", self.https_port, timeout=10, context=insecure_context()
        )
        started = time.monotonic()
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            data = response.read()
            return response.status, response.headers, data, time.monotonic() - started
        finally:
            connection.close()


def insecure_context() -> ssl.SSLContext:
    """A client TLS context accepting the throwaway certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@pytest.fixture(scope="module")
def proxied(tmp_path_factory, databases):
    """gunicorn (2 sync workers, TRUSTED_PROXIES=1) behind nginx; yields (nginx, gunicorn, url)."""
    require_tool("nginx")
    tmp_path = tmp_path_factory.mktemp("proxied")
    database_url = databases.migrated("proxy")
    gunicorn = GunicornServer(
        tmp_path, database_url=database_url, workers=2, env={"TRUSTED_PROXIES": "1"}
    ).start()
    nginx_dir = tmp_path / "nginx"
    nginx_dir.mkdir()
    nginx = NginxServer(nginx_dir, gunicorn.port)
    try:
        yield nginx.start(), gunicorn, database_url
    finally:
        nginx.stop()
        gunicorn.stop()


def test_committed_nginx_config_passes_nginx_t(tmp_path):
    config = copy_committed_config(tmp_path)

    result = subprocess.run(
        [require_tool("nginx"), "-t", "-c", str(config)], capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_slow_clients_hold_nginx_connections_not_gunicorn_workers(proxied):
    nginx, gunicorn, database_url = proxied
    held = []
    try:
        for number in range(SLOW_CLIENTS):
            client = nginx.tls_socket()
            if number % 2:
                # half a request line and headers, then nothing
                client.sendall(b"GET /livez HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
            else:
                # complete headers announcing a body that never comes
                client.sendall(
                    b"POST /students HTTP/1.1\r\nHost: localhost\r\n"
                    b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"na'
                )
            held.append(client)

        status, _headers, body, seconds = nginx.request("GET", "/livez")
        created = nginx.request(
            "POST",
            "/students",
            json.dumps({"name": "Ada", "email": "ada@example.edu"}).encode(),
            {"Content-Type": "application/json", "X-Request-ID": "slow-clients-test-1"},
        )
    finally:
        for client in held:
            client.close()
    Figures.add("slow clients held open against nginx", len(held))
    Figures.add("ms for /livez through nginx behind the slow clients", round(seconds * 1000))

    assert status == 200, body
    assert json.loads(body) == {"status": "ok"}
    assert seconds < 1, f"/livez took {seconds:.2f} s behind {SLOW_CLIENTS} slow clients"
    assert created[0] == 201, created[2]
    assert created[1]["X-Request-ID"] == "slow-clients-test-1"
    assert created[1]["Strict-Transport-Security"].startswith("max-age=")
    assert "ada@example.edu" in student_emails(database_url)
    # The request's own log line (its audit event carries the same request id).
    logged = [
        line
        for line in gunicorn.log_lines()
        if line.get("request_id") == "slow-clients-test-1" and line.get("logger") == "app.requests"
    ]
    assert [(line["status"], line["client"]) for line in logged] == [(201, "127.0.0.1")]


@pytest.mark.parametrize(
    ("request_parts", "status"),
    [
        pytest.param(("GET", "/livez", {"X-Long": "a" * 9000}), 400, id="over-long-header"),
        pytest.param(("GET", "/" + "a" * 9000, {}), 414, id="over-long-request-line"),
    ],
)
def test_nginx_refuses_oversized_requests_with_problem_json(proxied, request_parts, status):
    nginx, gunicorn, _database_url = proxied
    method, path, headers = request_parts

    answer_status, answer_headers, body, _seconds = nginx.request(method, path, headers=headers)

    assert answer_status == status
    assert answer_headers["Content-Type"] == "application/problem+json"
    problem = json.loads(body)
    assert (problem["status"], problem["type"]) == (status, problem_type(status).uri)
    assert problem["instance"] == answer_headers["X-Request-ID"]
    assert answer_headers["Strict-Transport-Security"].startswith("max-age=")
    assert not [line for line in gunicorn.log_lines() if line.get("path", "").startswith("/a")]


def test_nginx_refuses_a_body_over_1_mib_with_problem_json(proxied):
    nginx, _gunicorn, database_url = proxied
    body = b'{"name": "' + b"a" * (1024 * 1024) + b'", "email": "big@example.edu"}'

    status, headers, answer, _seconds = nginx.request(
        "POST", "/students", body, {"Content-Type": "application/json"}
    )

    assert status == 413
    assert headers["Content-Type"] == "application/problem+json"
    assert "1048576 bytes" in json.loads(answer)["detail"]
    assert "big@example.edu" not in student_emails(database_url)


def test_plain_http_redirects_to_https(proxied):
    nginx, _gunicorn, _database_url = proxied
    with socket.create_connection(("127.0.0.1", nginx.http_port), timeout=10) as client:
        client.sendall(b"GET /students?page=2 HTTP/1.1\r\nHost: api.example.edu\r\n\r\n")
        head = client.recv(4096).decode()

    assert head.startswith("HTTP/1.1 308")
    assert "Location: https://api.example.edu/students?page=2" in head
