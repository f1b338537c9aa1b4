"""Request bodies that cost nothing to refuse.

Two guards sit in front of every endpoint that takes a JSON body:

- :class:`ChunkedBodyLimit` (WSGI middleware) holds a ``Transfer-Encoding:
  chunked`` body to the same ``MAX_CONTENT_LENGTH`` as a body sent with a
  ``Content-Length``: werkzeug would otherwise cut it silently at the limit.
- :class:`JsonBodyParser` (the blueprints' argument parser) turns the two
  failures of Python's JSON reader that are not syntax errors into 400s: a
  document nested deeper than the interpreter's recursion limit
  (``RecursionError``) and an integer literal beyond Python's 4,300-digit
  conversion limit (``ValueError``). Both used to escape as 500s.

Arrays longer than a schema allows are refused by ``BoundedList`` in
``app/schemas.py`` before any element is deserialized.
"""

import io
import json

from flask_smorest import Blueprint as SmorestBlueprint
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import BadRequest

NESTED_TOO_DEEPLY = "The JSON body is nested too deeply."
NUMBER_TOO_LONG = "The JSON body holds a number literal too long to read."


class JsonBodyParser(FlaskParser):
    """webargs' Flask parser, answering 400 for JSON that Python cannot read safely."""

    def load_json(self, req, schema):
        """Load the JSON body; excessive nesting or a huge number literal is a 400."""
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
    """A flask-smorest blueprint whose JSON bodies go through :class:`JsonBodyParser`."""

    ARGUMENTS_PARSER = JsonBodyParser()


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
