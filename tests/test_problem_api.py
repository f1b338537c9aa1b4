"""ProblemApi overrides private flask-smorest methods: a change to them upstream fails here."""

import hashlib
import inspect

from flask_smorest import Api
from werkzeug.exceptions import NotFound

from app.problem_api import OVERRIDDEN_PRIVATE_METHODS, ProblemApi

# sha256 of the source of each overridden method in flask-smorest 0.47.0 (requirements.txt).
PINNED_SOURCE = {
    "_register_responses": "42ac780261644c27595907e09f8f27ddfa4b19313b6f315de495369aeefe7d2d",
    "_register_pagination_header": (
        "9ab8194a5ee639f70c1d96bf88cd0f77d361e80dd3cbb01179e74cf12eb0e6d8"
    ),
}


def source_hash(function) -> str:
    """The sha256 of a function's source text."""
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()


def test_every_private_override_is_pinned():
    overridden = {
        name
        for name, value in vars(ProblemApi).items()
        if name.startswith("_") and not name.startswith("__") and callable(value)
    }
    assert overridden == set(OVERRIDDEN_PRIVATE_METHODS) == set(PINNED_SOURCE)


def test_overridden_flask_smorest_methods_are_unchanged():
    for name, pinned in PINNED_SOURCE.items():
        assert source_hash(getattr(Api, name)) == pinned, (
            f"flask-smorest changed Api.{name}: review ProblemApi.{name} in app/problem_api.py, "
            "then pin the new source hash here"
        )


def test_flask_smorest_still_calls_the_overridden_methods_when_it_builds_the_spec():
    init_spec = inspect.getsource(Api._init_spec)
    for name in PINNED_SOURCE:
        assert f"self.{name}()" in init_spec, f"Api._init_spec no longer calls {name}"


def test_the_overrides_take_effect_in_the_served_spec(client):
    spec = client.get("/openapi.json").get_json()

    not_found = spec["components"]["responses"]["NOT_FOUND"]
    assert list(not_found["content"]) == ["application/problem+json"]
    assert spec["components"]["headers"]["PAGINATION"]["schema"] == {"type": "string"}


def test_flask_smorest_handler_answers_http_errors_as_problem_json(app):
    # flask-smorest registers this handler for HTTPException too, so it must answer the same.
    with app.test_request_context("/students/1/no-such-thing"):
        response = app.extensions["flask-smorest"]["apis"][""]["ext_obj"].handle_http_exception(
            NotFound()
        )

    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 404
