"""Reading problem+json answers: their type from the registry, their invalid members."""

from app.problems import PROBLEM_TYPES

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}


def assert_problem(response, status: int, problem: str | None = None) -> dict:
    """The response is a problem of this status (and type, given its slug); returns the body.

    Every problem carries the registry's type and title, and the request id
    of its ``X-Request-ID`` header as ``instance``.
    """
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert set(body) >= PROBLEM_KEYS
    assert body["status"] == status
    assert body["instance"] == response.headers["X-Request-ID"]
    by_uri = {kind.uri: kind for kind in PROBLEM_TYPES.values()}
    kind = PROBLEM_TYPES[problem] if problem else by_uri[body["type"]]
    assert (body["type"], body["title"], kind.status) == (kind.uri, kind.title, status)
    return body


def invalid(response, location: str = "json") -> dict[str, list[str]]:
    """The messages of a problem's ``errors`` in one location, keyed by JSON Pointer."""
    messages: dict[str, list[str]] = {}
    for item in response.get_json(force=True).get("errors", []):
        if item["location"] == location:
            messages.setdefault(item["pointer"], []).append(item["detail"])
    return messages
