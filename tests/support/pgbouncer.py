"""A private PgBouncer in transaction mode in front of the test PostgreSQL server.

Used by the tests that run the service behind a transaction pooler
(``DATABASE_POOLER=pgbouncer``) and by ``make bench BENCH_ARGS=--pooler``. Any
database of the server is reachable through it under its own name; its pool
holds fewer server connections than the clients the tests start, so
transactions of different clients do share server connections. Start-up
parameters it cannot pass on (``options``) are refused unless listed in
``ignored_parameters``: then they are dropped. Usage::

    with PgBouncer(server_url) as bouncer:
        url = bouncer.url_for(database_url)   # the same database, through PgBouncer

Needs Debian's ``pgbouncer`` (``/usr/sbin/pgbouncer``); ``missing()`` says when it
is not there. Run as root it drops to the ``postgres`` user, as PgBouncer refuses root.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from sqlalchemy.engine import make_url

from tests.support.servers import free_port

BINARY_PATHS = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")
RUN_AS = "postgres"
START_TIMEOUT_SECONDS = 15
# Fewer server connections than the four workers of two two-worker instances.
POOL_SIZE = 3


def binary() -> str | None:
    """The pgbouncer executable, or None."""
    found = shutil.which("pgbouncer")
    if found:
        return found
    return next((path for path in BINARY_PATHS if os.access(path, os.X_OK)), None)


def missing() -> str | None:
    """None when PgBouncer can run here, otherwise what is missing."""
    return None if binary() else "pgbouncer is not installed (Debian package pgbouncer)"


class PgBouncer:
    """One pgbouncer process on 127.0.0.1:``port``, pooling per transaction."""

    def __init__(
        self,
        server_url: str,
        *,
        pool_size: int = POOL_SIZE,
        max_clients: int = 500,
        ignored_parameters: tuple[str, ...] = (),
    ):
        server = make_url(server_url)
        self.server_url = server
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="enrollment-pgbouncer-"))
        self.log_file = self.root / "pgbouncer.log"
        user = server.username or RUN_AS
        (self.root / "users.txt").write_text(f'"{user}" ""\n')
        (self.root / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={server.host or '127.0.0.1'} port={server.port or 5432}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self.root / 'users.txt'}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {pool_size}\n"
            f"max_client_conn = {max_clients}\n"
            "server_reset_query =\n"
            f"ignore_startup_parameters = {', '.join(ignored_parameters)}\n"
            f"logfile = {self.log_file}\n"
            f"pidfile = {self.root / 'pgbouncer.pid'}\n"
        )
        if os.geteuid() == 0:
            shutil.chown(self.root, user=RUN_AS)
            for path in self.root.iterdir():
                shutil.chown(path, user=RUN_AS)
        self.process: subprocess.Popen | None = None

    def url_for(self, database_url: str) -> str:
        """The SQLAlchemy URL of ``database_url``'s database, reached through PgBouncer."""
        return (
            make_url(database_url)
            .set(host="127.0.0.1", port=self.port)
            .render_as_string(hide_password=False)
        )

    def start(self) -> "PgBouncer":
        """Start pgbouncer and wait until it accepts connections."""
        command = [binary(), str(self.root / "pgbouncer.ini")]
        if os.geteuid() == 0:
            command[1:1] = ["-u", RUN_AS]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"pgbouncer did not start:\n{self.log()}")

    def log(self) -> str:
        """What pgbouncer logged so far."""
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def stop(self) -> None:
        """Stop pgbouncer (SIGINT: at once) and delete its files."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "PgBouncer":
        try:
            return self.start()
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    def __exit__(self, *_exc) -> None:
        self.stop()
