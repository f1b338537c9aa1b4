"""URL and request plumbing shared by every blueprint: ids in paths, method groups, JSON bodies."""

from http import HTTPStatus

from flask import request
from werkzeug.exceptions import UnsupportedMediaType
from werkzeug.routing import BaseConverter, ValidationError

from app.models import INT32_MAX

# The HTTP method groups every request hook works with, defined once.
READ_METHODS = frozenset({"GET", "HEAD"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
WRITE_METHODS = BODY_METHODS | {"DELETE"}


class IdConverter(BaseConverter):
    """A positive 32-bit integer path id; anything else does not match (404)."""

    regex = r"[1-9][0-9]{0,9}"

    def to_python(self, value: str) -> int:
        """Refuse ids beyond the 32-bit column range."""
        number = int(value)
        if number > INT32_MAX:
            raise ValidationError()
        return number

    def to_url(self, value: int) -> str:
        """Render an id in a URL."""
        return str(value)


def id_parameter_schema(_converter: IdConverter) -> dict:
    """How the spec documents an ``<id:...>`` path parameter."""
    return {"type": "integer", "minimum": 1, "maximum": INT32_MAX}


def require_json_body() -> None:
    """Refuse request bodies that are not declared as JSON (415)."""
    if request.method in BODY_METHODS and request.routing_exception is None and not request.is_json:
        raise UnsupportedMediaType("Send the request body as application/json.")


def error_responses(blp, *statuses: int):
    """Document the error statuses an operation can answer (problem+json)."""

    def decorator(func):
        for status in statuses:
            func = blp.alt_response(status, response=HTTPStatus(status).name)(func)
        return func

    return decorator
