"""``wsgi:app`` writing a JSON log line just before each SQLite ``BEGIN IMMEDIATE``.

A test holding SQLite's write lock reads this line in the server's log to know
that a request has reached the lock and waits on it (on any kernel, with no
look at process states). Served as ``tests.support.lock_probe:app``.
"""

import json
import os
import sys

from sqlalchemy import event

from app.extensions import db
from wsgi import app

WAITING = "a request is about to wait for the SQLite write lock"


def _announce(_connection, _cursor, statement, *_args) -> None:
    """Log WAITING when a write transaction starts."""
    if statement == "BEGIN IMMEDIATE":
        line = json.dumps({"logger": "tests.lock_probe", "message": WAITING}) + "\n"
        # One write call: the master and the other worker write to the same log.
        os.write(sys.stderr.fileno(), line.encode())


with app.app_context():
    event.listen(db.engine, "before_cursor_execute", _announce)
