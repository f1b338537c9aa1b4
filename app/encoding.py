"""JSON response bodies encoded by orjson.

Every JSON answer goes through ``app.json.response`` (``jsonify``, and so
flask-smorest's responses). :class:`OrjsonProvider` writes the same documents
as Flask's default provider, keys sorted and compact, with the trailing
newline, at a fraction of the cost; the one difference on the wire is that
non-ASCII text is sent as UTF-8 rather than as ``\\u`` escapes (the same
JSON). Values orjson does not encode the way Flask does (dates, which Flask
writes as HTTP dates; ``Decimal``) go through Flask's own ``default``, and a
document orjson refuses altogether (an integer beyond 64 bits, a lone
surrogate) through Flask's encoder. ``app.json.dumps`` is Flask's, unchanged.
"""

import orjson
from flask import Flask, Response
from flask.json.provider import DefaultJSONProvider

OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_NON_STR_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_APPEND_NEWLINE
)


class OrjsonProvider(DefaultJSONProvider):
    """Flask's JSON provider with its responses encoded by orjson."""

    def response(self, *args, **kwargs) -> Response:
        """A JSON response of the arguments, as ``jsonify`` makes it."""
        if self._app.debug or self.compact is False:
            return super().response(*args, **kwargs)
        document = self._prepare_response_obj(args, kwargs)
        try:
            body = orjson.dumps(document, default=self.default, option=OPTIONS)
        except (orjson.JSONEncodeError, TypeError):
            return super().response(*args, **kwargs)
        return self._app.response_class(body, mimetype=self.mimetype)


def register_json(app: Flask) -> None:
    """Encode the app's JSON responses with orjson."""
    app.json = OrjsonProvider(app)
