"""Worker CPU time for the most expensive 1 MiB request bodies we could build.

Each body is posted to the app in this process (Flask's test client, no
network) on a scratch SQLite database; the figure is the median CPU time
(``time.process_time``) of ``REPEATS`` requests. Run: ``python -m bench.bodies``.
"""

import statistics
import sys
import tempfile
import time
from pathlib import Path

import flask_migrate

from app import create_app
from app.extensions import db

REPEATS = 15
MIB = 1024 * 1024


def fill(prefix: bytes, item: bytes, suffix: bytes, separator: bytes = b",") -> bytes:
    """``prefix`` + as many ``item``s as fit in 1 MiB + ``suffix``."""
    count = (MIB - len(prefix) - len(suffix)) // (len(item) + len(separator))
    return prefix + separator.join([item] * count) + suffix


def nested_group(depth: int) -> bytes:
    """One array nested ``depth`` levels deep."""
    return b"[" * depth + b"]" * depth


BODIES = {
    "course_ids: 1 MiB of ids": (
        "/students/{student}/courses",
        fill(b'{"course_ids": [', b"1", b"]}"),
    ),
    "nested 1 MiB deep": ("/students", b"[" * (MIB // 2) + b"]" * (MIB // 2)),
    "arrays nested 900 deep, repeated": (
        "/students/{student}/courses",
        fill(b'{"course_ids": [', nested_group(900), b"]}"),
    ),
    "objects nested 900 deep, repeated": (
        "/students",
        fill(b"[", b'{"a":' * 900 + b"1" + b"}" * 900, b"]"),
    ),
    "unknown keys": ("/students", fill(b"{", b'"k%07d": 0', b"}").replace(b"%07d", b"")),
    "distinct unknown keys": (
        "/students",
        b"{" + b",".join(b'"k%d": 0' % n for n in range(MIB // 12)) + b"}",
    ),
    "4,300-digit integers": (
        "/students/{student}/courses",
        fill(b'{"course_ids": [', b"9" * 4300, b"]}"),
    ),
    "one 1 MiB string": ("/students", b'{"name": "' + b"a" * (MIB - 30) + b'", "email": "x"}'),
    "escaped characters": (
        "/students",
        b'{"name": "' + b"\\u00e9" * ((MIB - 40) // 6) + b'", "email": "x"}',
    ),
    "floats": ("/students/{student}/courses", fill(b'{"course_ids": [', b"1e308", b"]}")),
    # Within the 4,096 commas and brackets the parser lets through:
    "4,096 ids": (
        "/students/{student}/courses",
        b'{"course_ids": [' + b",".join([b"1"] * 4096) + b"]}",
    ),
    "4,096 unknown keys, long values": (
        "/students",
        b"{" + b",".join(b'"k%d": "%s"' % (n, b"v" * 240) for n in range(4096)) + b"}",
    ),
    "4,096 ids of 250 digits": (
        "/students/{student}/courses",
        b'{"course_ids": [' + b",".join([b"7" * 250] * 4096) + b"]}",
    ),
    "4 arrays nested 1,000 deep": (
        "/students/{student}/courses",
        b'{"course_ids": [' + b",".join([nested_group(1000)] * 4) + b"]}",
    ),
    "4,096 objects in an array": ("/students", b"[" + b",".join([b'{"a": 1}'] * 4095) + b"]"),
}


def main() -> None:
    """Print the median CPU time and the answer of each body."""
    with tempfile.TemporaryDirectory() as directory:
        app = create_app(
            {
                "TESTING": True,
                "RATELIMIT_ENABLED": False,
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{Path(directory) / 'bench.sqlite3'}",
            }
        )
        with app.app_context():
            flask_migrate.upgrade()
        client = app.test_client()
        student = client.post("/students", json={"name": "B", "email": "b@example.edu"})
        student_id = student.get_json()["id"]
        print(f"{'body':38} {'bytes':>8} {'status':>6} {'median ms':>10} {'max ms':>8}")
        for name, (path, body) in BODIES.items():
            url = path.format(student=student_id)
            times = []
            for _ in range(REPEATS):
                started = time.process_time()
                response = client.post(url, data=body, content_type="application/json")
                times.append((time.process_time() - started) * 1000)
            print(
                f"{name:38} {len(body):8d} {response.status_code:6d} "
                f"{statistics.median(times):10.1f} {max(times):8.1f}"
            )
        with app.app_context():
            db.engine.dispose()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
