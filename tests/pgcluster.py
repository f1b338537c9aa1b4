"""A private PostgreSQL cluster that a test may stop and start (outage tests).

The shared server on port 5432 must never be stopped, so a test that needs a
database outage runs its own cluster: ``initdb`` into a temporary directory as
the ``postgres`` user, a server on a port of its own, ``pg_ctl stop`` and
``pg_ctl start`` at will. The port is an argument; its default is
``TEST_PRIVATE_PG_PORT`` (55432 when unset), so concurrent test runs on one
machine can each use a port of their own. Usage::

    with PrivateCluster() as cluster:  # or PrivateCluster(port=55500)
        url = cluster.create_database("outage")
        cluster.stop()
        cluster.start()

Needs PostgreSQL's server binaries on PATH (``initdb``, ``pg_ctl``), the
``postgres`` system user and root (to run them as that user); ``available()``
says whether this machine has them.
"""

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

DEFAULT_PORT = int(os.environ.get("TEST_PRIVATE_PG_PORT", "55432"))
SERVER_USER = "postgres"


def available() -> str | None:
    """None when a private cluster can run here, otherwise the reason it cannot."""
    if os.geteuid() != 0:
        return "a private PostgreSQL cluster needs root (to run initdb as postgres)"
    for tool in ("initdb", "pg_ctl", "runuser"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


class PrivateCluster:
    """One throw-away PostgreSQL cluster listening on 127.0.0.1:``port``."""

    def __init__(self, port: int | None = None):
        self.port = port or DEFAULT_PORT
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

    def connect(self, database: str = "postgres", **kwargs) -> psycopg.Connection:
        """A psycopg connection to ``database`` on this cluster."""
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=SERVER_USER, dbname=database, **kwargs
        )

    def create_database(self, name: str) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        with self.connect(autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
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
