"""A private PostgreSQL cluster that a test may stop and start (outage tests).

The shared server on port 5432 must never be stopped, so a test that needs a
database outage runs its own cluster: ``initdb`` into a temporary directory as
the ``postgres`` user, a server on a port of its own, ``pg_ctl stop`` and
``pg_ctl start`` at will, on a free port of the test range. Usage::

    with PrivateCluster() as cluster:
        url = cluster.create_database("outage")
        cluster.stop()
        cluster.start()

Needs PostgreSQL's server binaries on PATH (``initdb``, ``pg_ctl``), the
``postgres`` system user and root (to run them as that user); ``missing()``
says what this machine lacks.
"""

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.databases import create_database
from tests.support.servers import free_port

SERVER_USER = "postgres"


def missing() -> str | None:
    """None when a private cluster can run here, otherwise what is missing."""
    if os.geteuid() != 0:
        return "a private PostgreSQL cluster needs root (to run initdb as postgres)"
    for tool in ("initdb", "pg_ctl", "runuser"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


class PrivateCluster:
    """One throw-away PostgreSQL cluster listening on 127.0.0.1:``port``."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="enrollment-pg-"))
        self.data_dir = self.root / "data"
        self.log_file = self.root / "server.log"
        shutil.chown(self.root, user=SERVER_USER)
        self._as_server_user(
            "initdb", "--auth=trust", f"--username={SERVER_USER}", "--no-sync", "-D", self.data_dir
        )

    def _as_server_user(self, *command) -> None:
        subprocess.run(
            ["runuser", "-u", SERVER_USER, "--", *map(str, command)],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self, attempts: int = 3) -> None:
        """Start the server and wait until it accepts connections.

        The port of a cluster stopped a moment ago (by this test or the one
        before) can still be held briefly; a failed start is retried, and the
        last failure shows the server's log.
        """
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        for attempt in range(1, attempts + 1):
            try:
                self._as_server_user(
                    "pg_ctl", "start", "-w", "-t", "60", "-D", self.data_dir, "-l", self.log_file,
                    "-o", options,
                )  # fmt: skip
                return
            except subprocess.CalledProcessError as error:
                if attempt == attempts:
                    log = self.log_file.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"PostgreSQL did not start:\n{log}") from error
                time.sleep(1)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast`` disconnects clients, ``immediate`` is a crash)."""
        self._as_server_user("pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", self.data_dir)

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL for ``database`` on this cluster."""
        return f"postgresql+psycopg://{SERVER_USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        create_database(self.url(name))
        return self.url(name)

    def destroy(self) -> None:
        """Stop the server if it runs and delete the cluster's files."""
        if (self.data_dir / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "PrivateCluster":
        try:
            self.start()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(self, *_exc) -> None:
        self.destroy()
