"""Logs on stdout (JSON lines, or readable text in development), a request id on every request.

Each request is logged once when its response is ready (method, path, status,
duration in ms). Every record written while a request is handled carries that
request's id, taken from the ``X-Request-ID`` header when the caller sends a
sane one and generated otherwise; the response echoes it back.
"""

import logging
import re
import secrets
import sys
import time

from flask import Flask, Response, g, has_request_context, request, request_started

from logformat import FORMATTERS, HANDLER_NAME

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+=/-]{1,128}")

request_log = logging.getLogger("app.requests")


class StdoutHandler(logging.StreamHandler):
    """A stream handler on whatever ``sys.stdout`` is when a record is written."""

    def __init__(self):
        super().__init__(sys.stdout)

    @property
    def stream(self):
        """The current standard output."""
        return sys.stdout

    @stream.setter
    def stream(self, _value):
        """Ignore: the stream is always the current standard output."""


def install_stdout_handler(level: str, log_format: str = "json") -> None:
    """Give the root logger the stdout handler in ``log_format``, once per process.

    Under gunicorn the handler is already there (gunicorn.conf.py), in the same format.
    """
    root = logging.getLogger()
    root.setLevel(level.upper())
    # No line shows a record's thread or process name: spare every record the lookups
    # (the logging HOWTO's "Optimization"); the pid is still recorded.
    logging.logThreads = False
    logging.logMultiprocessing = False
    if any(handler.name == HANDLER_NAME for handler in root.handlers):
        return
    handler = StdoutHandler()
    handler.name = HANDLER_NAME
    handler.setFormatter(FORMATTERS[log_format]())
    root.addHandler(handler)


def install_request_id_factory() -> None:
    """Stamp the current request's id on every log record (once per process)."""
    base_factory = logging.getLogRecordFactory()
    if getattr(base_factory, "adds_request_id", False):
        return

    def factory(*args, **kwargs):
        record = base_factory(*args, **kwargs)
        if has_request_context() and "request_id" in g:
            record.request_id = g.request_id
        return record

    factory.adds_request_id = True
    logging.setLogRecordFactory(factory)


def start_request(_sender: Flask, **_extra) -> None:
    """Note the start time and the request id before any other hook runs."""
    context = g._get_current_object()  # one proxy lookup per object, not one per attribute
    context.request_started = time.perf_counter()
    sent = request.headers.get(REQUEST_ID_HEADER, "")
    context.request_id = sent if _SANE_REQUEST_ID.fullmatch(sent) else secrets.token_hex(16)


def finish_request(response: Response) -> Response:
    """Echo the request id and log the request with its outcome.

    The record is built and handled directly (``LogRecord``, ``Logger.handle``):
    the request line needs neither the caller's file and line, which
    ``Logger.info`` finds by walking the stack, nor the record factory's lookup
    of the request id, which is at hand here.
    """
    current, context = request._get_current_object(), g._get_current_object()
    response.headers[REQUEST_ID_HEADER] = context.request_id
    if not request_log.isEnabledFor(logging.INFO):
        return response
    method, path, status = current.method, current.path, response.status_code
    record = logging.LogRecord(
        request_log.name, logging.INFO, __file__, 0, "%s %s %s", (method, path, status), None
    )
    record.request_id = context.request_id
    record.method = method
    record.path = path
    record.client = current.remote_addr
    record.status = status
    record.duration_ms = round((time.perf_counter() - context.request_started) * 1000, 2)
    request_log.handle(record)
    return response


def register_logging(app: Flask) -> None:
    """Log to stdout in the configured format; give every request an id and one log line."""
    install_stdout_handler(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])
    install_request_id_factory()
    request_started.connect(start_request, app)
    app.after_request(finish_request)
