"""The shape of a log line: JSON for machines or text for people, as ``LOG_FORMAT`` says.

The one definition of both formats, used by the app (``app/logs.py``), by gunicorn's own
logging (``gunicorn.conf.py``, whose master imports no application code, so this module
lives outside the ``app`` package) and by the migrations (``migrations/alembic.ini``).
"""

import logging

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from config import log_format

HANDLER_NAME = "stdout"  # gunicorn.conf.py and app/logs.py install one handler by this name
JSON_FIELDS = "{levelname}{name}{process}{message}"
RENAMED_FIELDS = {"levelname": "level", "name": "logger", "process": "pid"}
_STANDARD_ATTRIBUTES = frozenset(RESERVED_ATTRS) | {"taskName"}


class JsonLineFormatter(JsonFormatter):
    """One JSON object per line: time, level, logger, pid, message and the extras."""

    def __init__(self, *_args, **_kwargs):
        super().__init__(JSON_FIELDS, style="{", rename_fields=RENAMED_FIELDS, timestamp="time")


class TextLineFormatter(logging.Formatter):
    """One readable line: time, level, logger, message, then the extras as ``key=value``."""

    def __init__(self, *_args, **_kwargs):
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        """The line before any traceback, with the record's extra fields at its end."""
        extras = " ".join(
            f"{key}={value}"
            for key, value in record.__dict__.items()
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_")
        )
        line = super().formatMessage(record)
        return f"{line}  {extras}" if extras else line


FORMATTERS = {"json": JsonLineFormatter, "text": TextLineFormatter}


def configured_formatter(*_args, **_kwargs) -> logging.Formatter:
    """The formatter the environment asks for; logging configuration files name this factory."""
    return FORMATTERS[log_format()]()
