"""Safe retries of POSTs: the ``Idempotency-Key`` request header (IETF httpapi draft).

A client that may retry a POST (a timeout on a flaky network) sends a unique
key with it. The first request with a key claims it in the database
(``idempotency_keys``, one row per caller and key) and commits the claim
before the view runs, so every worker and every instance sees it; once the
view has answered, a successful answer (status, headers, body) is stored in
that row. Then, for ``KEY_LIFETIME``:

- the same key with the same request (method, path and body, the JSON
  compared whatever its spacing or key order) replays the stored answer, with
  ``Idempotent-Replayed: true``; nothing runs again;
- the same key with another request is a 422 (:class:`KeyReused`);
- the same key while the first request still runs is a 409
  (:class:`KeyInProgress`), with ``Retry-After``;
- an empty key, or one longer than 255 characters, is a 400.

Keys belong to the caller (the hash of the token's issuer and name), so one
caller can never read another's answer. An error answer is not stored: the
claim is released and a retry runs again (a 409 for a taken email then says
so again). A claim whose request never finished (its worker died) is taken
over after ``ABANDONED_AFTER``. Expired rows are ignored, taken over when
their key comes back, and deleted by ``flask purge-idempotency-keys``.

Without the header nothing of this runs. A view takes part with
:func:`idempotent`; :class:`IdempotencyPlugin` documents the header.
"""

import hashlib
import json
from datetime import timedelta
from functools import wraps

import click
from apispec import BasePlugin
from flask import Response, request
from flask.cli import with_appcontext
from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import BadRequest, Conflict, UnprocessableEntity

from app.auth.caller import current_caller
from app.bodies import json_body_or_none
from app.database import begin_write_transaction
from app.extensions import db
from app.models import IDEMPOTENCY_KEY_MAX, IdempotencyKey, utcnow
from app.routing import document

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_LIFETIME = timedelta(hours=24)
# Longer than any request may run (gunicorn's timeout, the statement timeout).
ABANDONED_AFTER = timedelta(minutes=5)
RETRY_AFTER_SECONDS = 1
IDEMPOTENT_DOC_KEY = "x-idempotent"
# The answer's own headers worth replaying; the pipeline adds the others again.
NOT_REPLAYED = frozenset({"content-length"})


class KeyInProgress(Conflict):
    """The first request with this key is still running (409, retry later)."""

    problem = "idempotency-key-in-use"

    description = (
        "A request with this Idempotency-Key is still being processed; retry after it ends."
    )

    def get_headers(self, environ=None, scope=None):
        """Tell the client when to retry."""
        return [*super().get_headers(environ, scope), ("Retry-After", str(RETRY_AFTER_SECONDS))]


class KeyReused(UnprocessableEntity):
    """The key was first sent with another request (422)."""

    problem = "idempotency-key-reused"

    description = (
        "This Idempotency-Key was already used with a different request (method, path or "
        "body); use a new key for a new request."
    )


def idempotent(view):
    """Replay the first answer to a retried POST that carries an ``Idempotency-Key``."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return view(*args, **kwargs)
        claim = Claim(caller_scope(), valid_key(key), fingerprint())
        stored = claim.take()
        if stored is not None:
            return stored
        try:
            response = view(*args, **kwargs)
        except Exception:
            claim.release()
            raise
        claim.finish(response)
        return response

    document(wrapper, IDEMPOTENT_DOC_KEY, True)
    return wrapper


def valid_key(key: str) -> str:
    """The key, if it is 1 to 255 characters long; else a 400."""
    if not key.strip() or len(key) > IDEMPOTENCY_KEY_MAX:
        raise BadRequest(
            f"The {HEADER} header must hold 1 to {IDEMPOTENCY_KEY_MAX} characters (got {len(key)})."
        )
    return key


def caller_scope() -> str:
    """The current caller as the key's owner: a hash of their issuer and name."""
    caller = current_caller()
    return _sha256(json.dumps([caller.issuer, caller.name]).encode())


def fingerprint() -> str:
    """A hash of the request: method, path and body (its JSON, canonical when it parses)."""
    body = json_body_or_none(request)
    content = (
        request.get_data(cache=True)
        if body is None
        else json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    )
    return _sha256(b"\n".join([request.method.encode(), request.path.encode(), content]))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Claim:
    """One caller's key for one request, in the ``idempotency_keys`` table.

    Each step commits on the request's session, so other workers see it at once;
    the request's write transaction is opened again after each (SQLite takes its
    write lock up front).
    """

    def __init__(self, caller: str, key: str, print_: str):
        self.where = and_(IdempotencyKey.caller == caller, IdempotencyKey.key == key)
        self.row = {"caller": caller, "key": key, "fingerprint": print_}

    def take(self) -> Response | None:
        """Claim the key (None), or answer for it: the stored answer, a 409 or a 422."""
        for _attempt in range(3):
            if self._insert() or self._take_over():
                return None
            stored = db.session.execute(
                select(
                    IdempotencyKey.fingerprint,
                    IdempotencyKey.status,
                    IdempotencyKey.headers,
                    IdempotencyKey.body,
                ).where(self.where)
            ).one_or_none()
            db.session.rollback()
            if stored is None:
                continue  # released meanwhile: claim it again
            if stored.fingerprint != self.row["fingerprint"]:
                raise KeyReused()
            if stored.status is None:
                raise KeyInProgress()
            replay = Response(stored.body, status=stored.status, headers=stored.headers)
            replay.headers[REPLAYED_HEADER] = "true"
            return replay
        raise KeyInProgress()

    def _insert(self) -> bool:
        """Add the claim; False when the key is already there."""
        _begin()
        try:
            db.session.execute(insert(IdempotencyKey).values(**self.row, created_at=utcnow()))
            self._commit()
            return True
        except IntegrityError:
            db.session.rollback()
            return False

    def _take_over(self) -> bool:
        """Claim an expired key, or one whose request never finished; whether it was one."""
        now = utcnow()
        _begin()
        taken = db.session.execute(
            update(IdempotencyKey)
            .where(
                self.where,
                or_(
                    IdempotencyKey.created_at < now - KEY_LIFETIME,
                    and_(
                        IdempotencyKey.status.is_(None),
                        IdempotencyKey.created_at < now - ABANDONED_AFTER,
                    ),
                ),
            )
            .values(
                fingerprint=self.row["fingerprint"],
                created_at=now,
                status=None,
                headers=None,
                body=None,
            )
        )
        if taken.rowcount:
            self._commit()
            return True
        return False

    def finish(self, response: Response) -> None:
        """Keep a successful answer for the retries; release the key after an error."""
        if response.status_code >= 400:
            self.release()
            return
        headers = [
            [name, value]
            for name, value in response.headers.items()
            if name.lower() not in NOT_REPLAYED
        ]
        # The view has committed its work; what is open is the read of its answer.
        db.session.rollback()
        _begin()
        db.session.execute(
            update(IdempotencyKey)
            .where(self.where)
            .values(status=response.status_code, headers=headers, body=response.get_data())
        )
        self._commit()

    def release(self) -> None:
        """Forget the claim, so a retry runs again."""
        db.session.rollback()
        _begin()
        db.session.execute(delete(IdempotencyKey).where(self.where))
        self._commit()

    @staticmethod
    def _commit() -> None:
        """Commit, and open the request's write transaction again for what follows."""
        db.session.commit()
        begin_write_transaction()


def _begin() -> None:
    """Open a write transaction unless one is open (SQLite takes its write lock up front)."""
    if not db.session().in_transaction():
        begin_write_transaction()


def purge_expired() -> int:
    """Delete the keys older than ``KEY_LIFETIME``; how many there were."""
    deleted = db.session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at < utcnow() - KEY_LIFETIME)
    )
    db.session.commit()
    return deleted.rowcount


@click.command("purge-idempotency-keys")
@with_appcontext
def purge_idempotency_keys() -> None:
    """Delete the Idempotency-Key answers older than 24 hours (run it daily)."""
    click.echo(f"Deleted {purge_expired()} expired idempotency keys.")


class IdempotencyPlugin(BasePlugin):
    """Document the ``Idempotency-Key`` header on the operations marked by :func:`idempotent`."""

    def init_spec(self, spec):
        """Register the header parameter once."""
        super().init_spec(spec)
        spec.components.parameter(
            HEADER,
            "header",
            {
                "description": "A unique key (1 to 255 characters) making a retry of this POST "
                "safe: the same key with the same request replays the first successful answer "
                "for 24 hours (with Idempotent-Replayed: true); with another request it is a "
                "422, and while the first request runs a 409 (README: Idempotent retries)",
                "required": False,
                "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX},
            },
        )

    def operation_helper(self, path=None, operations=None, **kwargs):
        """Add the header, and the 400, 409 and 422 it can cause, to each marked operation."""
        for operation in (operations or {}).values():
            if not operation.pop(IDEMPOTENT_DOC_KEY, False):
                continue
            operation.setdefault("parameters", []).append(HEADER)
            responses = operation.setdefault("responses", {})
            for status, name in (("400", "BAD_REQUEST"), ("409", "CONFLICT")):
                responses.setdefault(status, name)
            responses.setdefault("422", "UNPROCESSABLE_ENTITY")
