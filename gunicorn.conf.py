"""gunicorn settings, read from the environment and ``.env`` (README "Deploying" lists them).

``gunicorn -c gunicorn.conf.py wsgi:app`` serves on http://127.0.0.1:8000 by
default; the container image sets HOST=0.0.0.0. This file deliberately does
not import the ``app`` package: the master stays free of application code, so
each worker builds its own app (and its own database pool) after the fork.
"""

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import gunicorn.util

from config import load_dotenv_file
from logformat import HANDLER_NAME

# Before any setting is read, so .env can hold HOST, PORT, WEB_CONCURRENCY...; the workers
# inherit the result.
load_dotenv_file()

# --- where and how many -----------------------------------------------------
bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
# Measured on 2 cores (docs/PERFORMANCE.md, "Worker class and count"): sync workers,
# 2 per core + 1, matched gthread's throughput with far tighter tails (a gthread
# worker keeps each keep-alive connection to itself, so a busy worker's clients wait).
workers = int(os.environ.get("WEB_CONCURRENCY", 2 * len(os.sched_getaffinity(0)) + 1))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
# A worker silent for this long is killed: above DB_STATEMENT_TIMEOUT_MS and SQLITE_BUSY_TIMEOUT.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = 5
# gunicorn answers over-long request lines itself, in HTML; its largest limit lets every
# URL the API accepts (and most it refuses) reach the app and its problem+json errors.
limit_request_line = 8190
# The heartbeat file on a disk-backed /tmp can stall a worker; /dev/shm is memory.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
# No runtime control socket: nothing here uses it, and instances on one host would share its path.
control_socket_disable = True

# --- logs: one line per record on stdout ---------------------------------------
# The app logs every request itself (app/logs.py: method, path, status,
# duration_ms, request_id), so gunicorn's own access log stays off rather than
# writing a second, id-less line per request. gunicorn's error log and every
# other record go to stdout as the app's lines do (logformat.py: JSON, or text
# in development), through the one handler the app then finds by its name.
loglevel = os.environ.get("LOG_LEVEL", "INFO").lower()
accesslog = None
errorlog = "-"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"line": {"()": "logformat.configured_formatter"}},
    "handlers": {
        HANDLER_NAME: {
            "class": "logging.StreamHandler",
            "formatter": "line",
            "stream": "ext://sys.stdout",
        }
    },
    "root": {"level": loglevel.upper(), "handlers": [HANDLER_NAME]},
    "loggers": {
        "gunicorn.error": {"level": loglevel.upper(), "handlers": [], "propagate": True},
        "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
        "alembic": {"level": "WARNING"},  # Flask-Migrate's import chatter in every worker
    },
}


# --- gunicorn's own error answers: problem+json, like the app's -----------------
# Requests gunicorn cannot parse (request line or headers over its limits, a malformed
# method, a bad chunk size) never reach the app: gunicorn answers them itself (in the
# worker, which has the app loaded: the registry gives the type) through
# gunicorn.util.write_error, with an HTML page. This replaces that one function, in the
# master before the workers fork; tests/test_gunicorn.py fails if gunicorn stops using it.
def write_problem(sock, status_int, reason, mesg):
    """Write gunicorn's error answer as an RFC 9457 problem document of the registry's type."""
    # Imported here, in the worker (which has the app loaded): the master stays free of it.
    from app.problems import BLANK, problem_type

    kind = problem_type(status_int)
    request_id = uuid.uuid4().hex
    problem = {
        "type": kind.uri if kind else BLANK,
        "title": kind.title if kind else reason,
        "status": status_int,
        "detail": mesg or reason,
        "instance": request_id,
    }
    body = json.dumps(problem).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/problem+json\r\n"
        f"X-Request-ID: {request_id}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    gunicorn.util.write_nonblock(sock, head.encode("latin-1") + body)


gunicorn.util.write_error = write_problem

# --- Prometheus multiprocess mode ---------------------------------------------
# Every worker writes its samples to files in this directory and /metrics adds
# them up. It must be set before any worker imports prometheus_client.
_default_metrics_dir = str(Path(tempfile.gettempdir()) / f"enrollment-metrics-{os.getpid()}")
_own_metrics_dir = (
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", _default_metrics_dir) == _default_metrics_dir
)
METRICS_DIR = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
METRICS_DIR.mkdir(parents=True, exist_ok=True)


def on_starting(server):
    """Start from empty metrics: files left by a previous run would be added in."""
    for stale in METRICS_DIR.glob("*.db"):
        stale.unlink()


def post_fork(server, worker):
    """Drop database connections inherited from the master (only with --preload)."""
    flask_app = server.app.callable
    if flask_app is not None:
        from app.database import dispose_pool

        dispose_pool(flask_app)


def child_exit(server, worker):
    """Let live-gauge samples of a dead worker go (counters and histograms stay)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics directory this file created."""
    if _own_metrics_dir:
        shutil.rmtree(METRICS_DIR, ignore_errors=True)
