"""The request pipeline: every hook the app runs around a view, in order, defined once.

Before the view, the steps of ``BEFORE_VIEW`` run in this order; the first
one that answers ends the request:

1. authenticate (``app.security.require_write_token``): refuse writes without
   a valid bearer token. It runs first, before anything reads the body, so an
   unauthenticated write learns nothing from the checks after it. An
   authentication scheme plugs in at this step.
2. ``app.routing.require_json_body``: refuse bodies not declared as JSON (415).
3. ``app.database.begin_write_transaction``: SQLite writes take the write lock
   up front.

Flask then runs the resource blueprints' own hook (reads on PostgreSQL in
autocommit, see ``app.database.read_without_transaction``), and the view
parses and validates the body. After the view, every response gets the
security headers. When the request ends, the database session is released
(a ``teardown_request`` hook, which Flask runs before Flask-SQLAlchemy's
``teardown_appcontext`` one).

Other extensions (request logging, metrics, CORS) add hooks of their own that
do not depend on these, nor on the order they are registered in.
"""

from flask import Flask, Response

from app.database import begin_write_transaction, release_session
from app.routing import require_json_body
from app.security import add_security_headers, require_write_token, warn_if_writes_are_open

BEFORE_VIEW = (require_write_token, require_json_body, begin_write_transaction)


def before_view() -> Response | None:
    """Run the steps of ``BEFORE_VIEW`` in order; the first answer ends the request."""
    for step in BEFORE_VIEW:
        answer = step()
        if answer is not None:
            return answer
    return None


def register_pipeline(app: Flask) -> None:
    """Install the request pipeline on the app."""
    app.before_request(before_view)
    app.after_request(add_security_headers)
    app.teardown_request(release_session)
    warn_if_writes_are_open(app)
