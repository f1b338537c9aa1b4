"""Conditional requests (RFC 9110, section 13) on the single resources.

``GET /students/{id}`` and ``GET /courses/{id}`` send a strong ``ETag``: a
hash of the body's bytes, so it changes whenever anything in the
representation does (an enrollment, a promotion from a waitlist, a course's
counts) and costs no statement and no column. ``If-None-Match`` on those
reads answers 304 without a body when the client's copy is current.

``PATCH`` and ``DELETE`` on them honour ``If-Match``: the service calls
:func:`if_match` once it holds the row's lock, before it changes anything,
and it reads the current representation through the resource's own ``GET``
(one statement more, only when the header is sent). A tag that no longer
matches is a 412 and nothing changes; ``If-Match: *`` matches any current
representation. A missing resource stays a 404: a request that would fail
without its preconditions ignores them (RFC 9110, 13.2.1). Successful
``PATCH`` answers carry the resource's new tag.

A view takes part with :func:`conditional`; :class:`ConditionalPlugin`
documents the headers, the 304 and the 412 on the operations so marked.
"""

from functools import wraps

from apispec import BasePlugin
from flask import Response, current_app, request
from werkzeug.exceptions import PreconditionFailed

from app.routing import READ_METHODS, document

CONDITIONAL_DOC_KEY = "x-conditional"
ETAG_HEADER = {
    "description": "Strong entity tag of the representation (send it in If-None-Match or If-Match)",
    "schema": {"type": "string"},
}
ETAG_REF = {"$ref": "#/components/headers/ETag"}
PARAMETERS = {
    "If-None-Match": "Entity tags of copies the client holds: a match answers 304 without a body",
    "If-Match": "Change only if the current entity tag is one of these (or * for any): "
    "otherwise 412 and nothing changes",
}


def conditional(method):
    """Tag a single resource's 200 answers; answer 304 for a current copy (GET, HEAD)."""

    @wraps(method)
    def wrapper(*args, **kwargs):
        response = method(*args, **kwargs)
        if isinstance(response, Response) and response.status_code == 200:
            response.add_etag()
            if request.method in READ_METHODS and not_modified(response):
                response.status_code = 304
                response.set_data(b"")
                del response.headers["Content-Type"]
                del response.headers["Content-Length"]
        return response

    document(wrapper, CONDITIONAL_DOC_KEY, True)
    return wrapper


def not_modified(response: Response) -> bool:
    """``If-None-Match`` names the response's tag, or is ``*`` (weak comparison)."""
    tag, _weak = response.get_etag()
    return request.if_none_match.contains_weak(tag)


def current_etag() -> str:
    """The entity tag the resource's ``GET`` would send now (its answer, built and hashed)."""
    view = current_app.view_functions[request.endpoint].view_class()
    answer = view.get(**request.view_args)
    answer.add_etag()
    tag, _weak = answer.get_etag()
    return tag


def if_match() -> None:
    """Raise PreconditionFailed (412) unless ``If-Match`` is absent or matches the resource.

    Called by a service once the resource exists and is locked, before any change.
    """
    if "If-Match" not in request.headers:
        return
    tags = request.if_match
    if tags.star_tag:
        return
    current = current_etag()
    if not tags.contains(current):
        raise PreconditionFailed(
            f'The resource has changed: its current entity tag is "{current}", which '
            "If-Match does not list. Read it again, then retry with that tag."
        )


class ConditionalPlugin(BasePlugin):
    """Document ETag, If-None-Match, If-Match, 304 and 412 on the conditional operations."""

    def init_spec(self, spec):
        """Register the two request headers and the ETag response header once."""
        super().init_spec(spec)
        for name, description in PARAMETERS.items():
            spec.components.parameter(
                name,
                "header",
                {"description": description, "required": False, "schema": {"type": "string"}},
            )
        spec.components.header("ETag", ETAG_HEADER)

    def operation_helper(self, path=None, operations=None, **kwargs):
        """Add the headers and answers to each operation marked by :func:`conditional`."""
        for method, operation in (operations or {}).items():
            if not operation.pop(CONDITIONAL_DOC_KEY, False):
                continue
            read = method in ("get", "head")
            header = "If-None-Match" if read else "If-Match"
            operation.setdefault("parameters", []).append(header)
            responses = operation.setdefault("responses", {})
            for status, response in responses.items():
                if str(status) == "200" and isinstance(response, dict):
                    response.setdefault("headers", {})["ETag"] = ETAG_REF
            if read:
                responses["304"] = {
                    "description": "Not Modified: the copy named in If-None-Match is current "
                    "(no body)",
                    "headers": {"ETag": ETAG_REF},
                }
            else:
                responses["412"] = "PRECONDITION_FAILED"
