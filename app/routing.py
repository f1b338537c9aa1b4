"""URL and request plumbing shared by every blueprint: ids in paths, method groups, JSON bodies."""

from http import HTTPStatus

from flask import Response, current_app, request
from werkzeug.exceptions import UnprocessableEntity, UnsupportedMediaType
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


def view_method(endpoint: str | None, method: str):
    """The MethodView method that serves ``method`` on an endpoint; None if there is none.

    ``HEAD`` is served by ``get``, as MethodView does.
    """
    view_class = getattr(current_app.view_functions.get(endpoint), "view_class", None)
    return getattr(view_class, "get" if method.upper() == "HEAD" else method.lower(), None)


def document(func, key: str, value) -> None:
    """Add ``key: value`` to the operation's manual OpenAPI doc, for a spec plugin to read."""
    apidoc = dict(getattr(func, "_apidoc", {}))
    apidoc["manual_doc"] = {**apidoc.get("manual_doc", {}), key: value}
    func._apidoc = apidoc


def refuse_unknown_query() -> None:
    """Refuse query parameters on a view that reads none (422), as unknown body fields are.

    Views that read some refuse the unknown ones through their schema.
    """
    if not request.args or request.routing_exception is not None:
        return
    view = view_method(request.endpoint, request.method)
    if view is None or getattr(view, "reads_query", False):
        return
    error = UnprocessableEntity()
    error.data = {"messages": {"query": {name: ["Unknown field."] for name in request.args}}}
    raise error


def options_without_media_type(response: Response) -> Response:
    """Flask's automatic OPTIONS answer has no body: it claims no (text/html) media type."""
    if request.method == "OPTIONS" and response.calculate_content_length() == 0:
        del response.headers["Content-Type"]
    return response


def error_responses(blp, *statuses: int):
    """Document the error statuses an operation can answer (problem+json)."""

    def decorator(func):
        for status in statuses:
            func = blp.alt_response(status, response=HTTPStatus(status).name)(func)
        return func

    return decorator
