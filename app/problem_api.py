"""``ProblemApi``: flask-smorest's ``Api``, documenting and answering errors as problem+json.

flask-smorest offers no public hook for the default responses and the
pagination header it writes into the spec, so two private methods of
``flask_smorest.Api`` are overridden here, and nowhere else.
``tests/test_problem_api.py`` pins the source of the overridden methods (and
checks that the spec set-up still calls them), so a flask-smorest upgrade that
changes them fails loudly instead of silently changing the spec.
"""

from http import HTTPStatus

from flask_smorest import Api
from flask_smorest.utils import prepare_response

from app.errors import PROBLEM_MIMETYPE, handle_http_exception
from app.problems import PROBLEM_TYPES, ProblemSchema, example

# The private methods of flask_smorest.Api that ProblemApi replaces.
OVERRIDDEN_PRIVATE_METHODS = ("_register_responses", "_register_pagination_header")


class ProblemApi(Api):
    """flask-smorest's Api documenting errors as problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error):
        """Answer HTTP errors as every other error is answered (public flask-smorest hook)."""
        return handle_http_exception(error)

    def _register_pagination_header(self):
        """Document X-Pagination as what it is on the wire: a JSON-encoded string."""
        self.spec.components.header(
            "PAGINATION",
            {
                "description": "Pagination metadata as a JSON object: total, total_pages, "
                "first_page, last_page, and for numbered pages page, previous_page, "
                "next_page. total is exact up to 10,000 rows; past that, on PostgreSQL, it "
                "is the query planner's estimate (never below 10,000) and the object says "
                '"total_estimated": true',
                "schema": {"type": "string"},
            },
            lazy=True,
        )

    def _register_responses(self):
        """Document every error status with the problem+json schema and its types' examples."""
        for status in HTTPStatus:
            response = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
                prepare_response(response, self.spec, PROBLEM_MIMETYPE)
                examples = {
                    slug: {"summary": problem.title, "value": example(problem)}
                    for slug, problem in PROBLEM_TYPES.items()
                    if problem.status == status
                }
                if examples:
                    response["content"][PROBLEM_MIMETYPE]["examples"] = examples
            else:
                prepare_response(response, self.spec, self.DEFAULT_RESPONSE_CONTENT_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_MIMETYPE)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)
