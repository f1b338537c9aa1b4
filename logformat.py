"""The shape of a log line: JSON for machines or text for people, as ``LOG_FORMAT`` says.

The one definition of both formats, used by the app (``app/logs.py``), by gunicorn's own
logging (``gunicorn.conf.py``, whose master imports no application code, so this module
lives outside the ``app`` package) and by the migrations (``migrations/alembic.ini``).
"""

import logging
from datetime import UTC, datetime

import orjson
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonEncoder, JsonFormatter

from config import log_format

HANDLER_NAME = "stdout"  # gunicorn.conf.py and app/logs.py install one handler by this name
JSON_FIELDS = "{levelname}{name}{process}{message}"
RENAMED_FIELDS = {"levelname": "level", "name": "logger", "process": "pid"}
_STANDARD_ATTRIBUTES = frozenset(RESERVED_ATTRS) | {"taskName"}
# What python-json-logger leaves out of the extras: the named fields and the record's own.
_NOT_EXTRA = _STANDARD_ATTRIBUTES | {"levelname", "name", "process", "message"}
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS


class JsonLineFormatter(JsonFormatter):
    """One JSON object per line: time, level, logger, pid, message and the extras.

    The fields, their order and the encoding of values are python-json-logger's
    (``JsonFormatter`` with the fields above); the line is built directly and
    encoded with orjson, a tenth of the cost per request line. A record orjson
    cannot encode (an integer beyond 64 bits, a string with a lone surrogate)
    goes through python-json-logger itself.
    """

    def __init__(self, *_args, **_kwargs):
        super().__init__(JSON_FIELDS, style="{", rename_fields=RENAMED_FIELDS, timestamp="time")
        self._encoder = JsonEncoder()

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        if isinstance(record.msg, dict):
            return super().format(record)
        record.message = record.getMessage()
        line = {
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.message,
        }
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        for key, value in record.__dict__.items():
            if key not in _NOT_EXTRA and not (isinstance(key, str) and key.startswith("_")):
                line[key] = value
        line["time"] = datetime.fromtimestamp(record.created, tz=UTC)
        try:
            encoded = orjson.dumps(line, default=self._encoder.default, option=_ORJSON_OPTIONS)
            return encoded.decode()
        except (orjson.JSONEncodeError, TypeError):
            return super().format(record)


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
