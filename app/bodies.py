"""Request bodies that cost nothing to refuse.

Two guards sit in front of every endpoint that takes a JSON body:

- :class:`ChunkedBodyLimit` (WSGI middleware) holds a ``Transfer-Encoding:
  chunked`` body to the same ``MAX_CONTENT_LENGTH`` as a body sent with a
  ``Content-Length``: werkzeug would otherwise cut it silently at the limit.
- :class:`JsonBodyParser` (the blueprints' argument parser) counts the
  body's commas and opening brackets before parsing it (``bytes.count``, well
  under a millisecond per MiB) and refuses a body with more than
  ``MAX_JSON_SEPARATORS`` of either: that bounds the values Python's JSON
  reader would build and marshmallow would check, whatever the body's shape.
  Then it turns the two failures of the reader that are not syntax errors into
  400s: a document nested deeper than the interpreter's recursion limit
  (``RecursionError``) and an integer literal beyond Python's 4,300-digit
  conversion limit (``ValueError``). Both used to escape as 500s.

Arrays longer than a schema allows (but within the bound above) are refused by
``BoundedList`` in ``app/schemas.py`` before any element is deserialized.
"""

import io
import json

from flask_smorest import Blueprint as SmorestBlueprint
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import BadRequest

# Every body the API accepts has a handful of values, but the bytes are counted
# inside strings too: a 2,000-character description may be all commas or brackets.
MAX_JSON_SEPARATORS = 4096
NESTED_TOO_DEEPLY = "The JSON body is nested too deeply."
NUMBER_TOO_LONG = "The JSON body holds a number literal too long to read."
TOO_MANY_VALUES = (
    f"The JSON body holds too many values: at most {MAX_JSON_SEPARATORS} commas and "
    f"{MAX_JSON_SEPARATORS} arrays or objects."
)


def too_many_values(body: bytes) -> bool:
    """More commas, or more opening brackets, than any body of this API needs."""
    containers = body.count(b"[") + body.count(b"{")
    return containers > MAX_JSON_SEPARATORS or body.count(b",") > MAX_JSON_SEPARATORS


def json_body_or_none(req):
    """The request's JSON body when it is safe and valid to read, else None (for logs).

    The audit names the ids a refused write carried; a refused body may be
    hostile (too many values, nested too deeply, a huge number) or not JSON.
    Read once per request: the audit and ``Idempotency-Key`` both ask.
    """
    if not hasattr(req, "_json_body_or_none"):
        req._json_body_or_none = _safe_json(req)
    return req._json_body_or_none


def _safe_json(req):
    """The body parsed as JSON, or None when it is not JSON or not safe to parse."""
    if not req.is_json:
        return None
    data = req.get_data(cache=True)
    if too_many_values(data):
        return None
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


class JsonBodyParser(FlaskParser):
    """webargs' Flask parser, answering 400 for JSON that Python cannot read safely.

    Query parameters follow the schema's ``unknown`` (marshmallow's default,
    RAISE: an unknown parameter is a 422) instead of webargs' EXCLUDE for them.
    """

    DEFAULT_UNKNOWN_BY_LOCATION = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": None,
        "querystring": None,
    }

    def load_json(self, req, schema):
        """Load the JSON body; too many values, deep nesting or a huge number is a 400."""
        if req.is_json and too_many_values(req.get_data(cache=True)):
            raise BadRequest(TOO_MANY_VALUES)
        try:
            return super().load_json(req, schema)
        except RecursionError as error:
            raise BadRequest(NESTED_TOO_DEEPLY) from error
        except ValueError as error:
            # Syntax errors (json.JSONDecodeError) are answered inside webargs;
            # the ValueError left is int()'s limit on the digits of a literal.
            if isinstance(error, json.JSONDecodeError):
                raise
            raise BadRequest(NUMBER_TOO_LONG) from error


class Blueprint(SmorestBlueprint):
    """A flask-smorest blueprint whose JSON bodies go through :class:`JsonBodyParser`.

    A view method that reads query parameters is marked ``reads_query``, so
    ``app.routing.refuse_unknown_query`` refuses any on the views that read none.
    """

    ARGUMENTS_PARSER = JsonBodyParser()

    def arguments(self, schema, *, location: str = "json", **kwargs):
        """flask-smorest's ``arguments``, marking the views that read the query string."""
        decorator = super().arguments(schema, location=location, **kwargs)
        if location != "query":
            return decorator

        def marked(func):
            view = decorator(func)
            view.reads_query = True
            return view

        return marked


class ChunkedBodyLimit:
    """WSGI middleware giving chunked request bodies the ``Content-Length`` size limit.

    A chunked body is read up to one byte past ``max_bytes`` and handed on as
    a sized body of that length: werkzeug's own check then answers 413 for a
    body over the limit, exactly as when the client sent a ``Content-Length``.
    """

    def __init__(self, wsgi_app, max_bytes: int):
        self.wsgi_app = wsgi_app
        self.max_bytes = max_bytes

    def __call__(self, environ, start_response):
        """Buffer a chunked body (bounded) before the application sees the request."""
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not environ.get("CONTENT_LENGTH"):
            body = environ["wsgi.input"].read(self.max_bytes + 1)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            # The body is no longer chunked; werkzeug ignores the length while it says so.
            del environ["HTTP_TRANSFER_ENCODING"]
        return self.wsgi_app(environ, start_response)


def register_body_limits(app) -> None:
    """Bound chunked bodies by ``MAX_CONTENT_LENGTH``, like bodies with a length."""
    app.wsgi_app = ChunkedBodyLimit(app.wsgi_app, app.config["MAX_CONTENT_LENGTH"])
