"""The request pipeline: every hook the app runs around a view, in order, defined once.

Before the view, the steps of ``BEFORE_VIEW`` run in this order; the first
one that answers ends the request:

1. ``app.auth.policy.authorize_request``: know the caller in the running
   ``AUTH_MODE`` and apply the operation's access rule (401, 403; 503 while
   the identity provider's keys cannot be fetched). It runs first, before
   anything reads the body or opens a write transaction, so a refused request
   changes nothing and learns nothing from the checks after it.
2. ``app.routing.require_json_body``: refuse bodies not declared as JSON (415).
3. ``app.database.begin_write_transaction``: SQLite writes take the write lock
   up front.

The authentication step also asks ``app.limits`` whether the client address
has used up its failed authentications (429), before it looks at credentials.
Then flask-limiter's own hook (``app.limits``, registered after this pipeline
so the caller is known) counts the request against the rate limits (429).
Flask then runs the resource blueprints' own hook (unknown query parameters
are refused), and the view parses and validates the body; its reads run in
autocommit on PostgreSQL (``app.database.reads_in_autocommit``). Inside the
view, two decorators act on the operations that declare them:
``app.idempotency.idempotent`` claims an ``Idempotency-Key`` (or replays its
stored answer) before the view runs and stores the answer after it, and
``app.etags.conditional`` tags a single resource's answer (304 for a current
copy); the services check ``If-Match`` through ``app.etags.if_match`` once they
hold the row's lock. After the view, every write request is audited with its
caller and outcome (``app.audit.audit_write``, refusals included), every
response gets the security headers, and automatic OPTIONS answers lose their
(text/html) media type. When the request ends, the
database session is released (a ``teardown_request`` hook, which Flask runs
before Flask-SQLAlchemy's ``teardown_appcontext`` one).

Other extensions (request logging, metrics, CORS) add hooks of their own that
do not depend on these, nor on the order they are registered in.
"""

from flask import Flask, Response

from app.audit import audit_write
from app.auth.policy import authorize_request
from app.database import begin_write_transaction, release_session
from app.routing import options_without_media_type, require_json_body
from app.security import add_security_headers

BEFORE_VIEW = (authorize_request, require_json_body, begin_write_transaction)


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
    app.after_request(audit_write)
    app.after_request(add_security_headers)
    app.after_request(options_without_media_type)
    app.teardown_request(release_session)
